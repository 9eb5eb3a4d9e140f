package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// Stats reports the backlog:
//   - Depth is the group's lag over the topic and the retry topic (high
//     watermark minus committed offset, summed over partitions): records
//     finished out of order above a committed offset still count.
//   - Delayed is the retry topic's share of it.
//   - Pending is the number of jobs leased by this process.
//   - OldestAge is the age of the oldest unfinished job this process has
//     fetched; jobs not yet fetched by any member of this process are not
//     seen, so it is 0 while this process consumes nothing.
//   - DeadLetters is the number of records in the dead-letter topic after
//     the commit point of the redrive group (see inspect.go).
//
// Until the queue has connected it answers an error wrapping
// ErrUnavailable, so a process whose readiness asks Stats stays unready.
// It costs a few broker round trips per partition; call it for metrics and
// readiness, not per request.
func (q *Queue) Stats(ctx context.Context) (backends.Stats, error) {
	if q.isClosed() {
		return backends.Stats{}, fmt.Errorf("kafka: stats: %w", backends.ErrClosed)
	}
	var s backends.Stats
	cn, err := q.connection(ctx)
	if err != nil {
		return s, fmt.Errorf("kafka: stats: %w", err)
	}
	main, mainHeads, err := q.lag(cn, q.opts.Topic)
	if err != nil {
		return s, err
	}
	retry, retryHeads, err := q.lag(cn, q.opts.RetryTopic)
	if err != nil {
		return s, err
	}
	q.sample(main + retry)
	s.Depth, s.Delayed = main+retry, retry
	if s.DeadLetters, err = q.deadCount(cn); err != nil {
		return s, err
	}
	var oldest time.Time
	older := func(t time.Time) {
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	q.mu.Lock()
	s.Pending = int64(len(q.held))
	for c := range q.claims {
		if t, ok := c.oldest(); ok {
			older(t)
		}
	}
	q.mu.Unlock()
	for _, h := range mainHeads {
		if t, ok := q.headTime(cn, q.opts.Topic, h); ok {
			older(t)
		}
	}
	for _, h := range retryHeads {
		if t, ok := q.headTime(cn, q.opts.RetryTopic, h); ok {
			older(t)
		}
	}
	if !oldest.IsZero() && s.Depth > 0 {
		s.OldestAge = max(time.Since(oldest), time.Nanosecond)
	}
	return s, ctx.Err()
}

func (q *Queue) sample(depth int64) {
	q.depthMu.Lock()
	q.depth, q.depthAt = depth, time.Now()
	q.sinceSample.Store(0)
	q.depthDirty.Store(false)
	q.depthMu.Unlock()
}

// approxDepth is the lag as of the last sample younger than StatsInterval,
// plus the enqueues of this process since that sample.
//
// Before refusing a job it takes a fresh sample when jobs finished since
// the last one, so a queue that drained below the bound accepts again at
// once.
func (q *Queue) approxDepth(ctx context.Context, cn *conn) (int64, error) {
	q.depthMu.Lock()
	est := q.depth + q.sinceSample.Load()
	age := time.Since(q.depthAt)
	q.depthMu.Unlock()
	stale := age >= q.opts.StatsInterval ||
		(est >= q.opts.MaxDepth && (q.depthDirty.Load() || age >= q.opts.StatsInterval/10))
	if !stale {
		return est, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	q.depthDirty.Store(false)
	main, _, err := q.lag(cn, q.opts.Topic)
	if err != nil {
		return 0, err
	}
	retry, _, err := q.lag(cn, q.opts.RetryTopic)
	if err != nil {
		return 0, err
	}
	q.sample(main + retry)
	return main + retry, nil
}

// lag is the group's lag on topic, and the partitions with a backlog.
// For partitions this process owns, the local commit point (ahead of the
// last auto-commit) is used.
func (q *Queue) lag(cn *conn, topic string) (int64, []span, error) {
	local := make(map[int32]int64)
	q.mu.Lock()
	for c := range q.claims {
		if c.topic == topic && !c.revoked && c.base >= 0 && c.base > local[c.partition] {
			local[c.partition] = c.base
		}
	}
	q.mu.Unlock()
	spans, err := unhandled(cn, topic, q.opts.Group, local)
	if err != nil {
		return 0, nil, err
	}
	var total int64
	backlog := spans[:0]
	for _, s := range spans {
		if n := s.newest - s.from; n > 0 {
			total += n
			backlog = append(backlog, s)
		}
	}
	return total, backlog, nil
}

// headTime returns when the job at h.from (or the first one after it) was
// accepted, reading one batch of the partition.
func (q *Queue) headTime(cn *conn, topic string, h span) (time.Time, bool) {
	b, err := cn.client.Leader(topic, h.partition)
	if err != nil {
		return time.Time{}, false
	}
	req := &sarama.FetchRequest{Version: 4, MinBytes: 1, MaxBytes: 1 << 20, Isolation: sarama.ReadUncommitted}
	req.AddBlock(topic, h.partition, h.from, 1<<20, -1)
	resp, err := b.Fetch(req)
	if err != nil {
		return time.Time{}, false
	}
	blk := resp.GetBlock(topic, h.partition)
	if blk == nil || blk.Err != sarama.ErrNoError {
		return time.Time{}, false
	}
	for _, rs := range blk.RecordsSet {
		if rs == nil || rs.RecordBatch == nil {
			continue
		}
		batch := rs.RecordBatch
		for _, r := range batch.Records {
			if batch.FirstOffset+r.OffsetDelta < h.from {
				continue
			}
			if j, err := decodeJob(r.Value); err == nil && !j.CreatedAt.IsZero() {
				return j.CreatedAt, true
			}
			return batch.FirstTimestamp.Add(r.TimestampDelta), true
		}
	}
	return time.Time{}, false
}
