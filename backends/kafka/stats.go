package kafka

import (
	"context"
	"errors"
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
//   - DeadLetters is the number of records in the dead-letter topic.
//
// It costs a few broker round trips per partition; call it for metrics and
// readiness, not per request.
func (q *Queue) Stats(ctx context.Context) (backends.Stats, error) {
	if q.isClosed() {
		return backends.Stats{}, fmt.Errorf("kafka: stats: %w", backends.ErrClosed)
	}
	var s backends.Stats
	main, err := q.lag(q.opts.Topic)
	if err != nil {
		return s, err
	}
	retry, err := q.lag(q.opts.RetryTopic)
	if err != nil {
		return s, err
	}
	s.Depth, s.Delayed = main+retry, retry
	if s.DeadLetters, err = q.count(q.opts.DeadLetterTopic); err != nil {
		return s, err
	}
	q.mu.Lock()
	s.Pending = int64(len(q.held))
	var oldest time.Time
	for c := range q.claims {
		if t, ok := c.oldest(); ok && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	q.mu.Unlock()
	if !oldest.IsZero() {
		s.OldestAge = max(time.Since(oldest), 0)
	}
	q.depthMu.Lock()
	q.depth, q.depthAt = s.Depth, time.Now()
	q.sinceSample.Store(0)
	q.depthMu.Unlock()
	return s, ctx.Err()
}

// approxDepth is the lag as of the last sample younger than StatsInterval,
// plus the enqueues of this process since that sample.
func (q *Queue) approxDepth(ctx context.Context) (int64, error) {
	q.depthMu.Lock()
	defer q.depthMu.Unlock()
	if time.Since(q.depthAt) >= q.opts.StatsInterval {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		main, err := q.lag(q.opts.Topic)
		if err != nil {
			return 0, err
		}
		retry, err := q.lag(q.opts.RetryTopic)
		if err != nil {
			return 0, err
		}
		q.depth, q.depthAt = main+retry, time.Now()
		q.sinceSample.Store(0)
	}
	return q.depth + q.sinceSample.Load(), nil
}

// lag is the group's lag on topic.
func (q *Queue) lag(topic string) (int64, error) {
	parts, err := q.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: partitions of %s: %w: %w", topic, backends.ErrUnavailable, err)
	}
	resp, err := q.admin.ListConsumerGroupOffsets(q.opts.Group, map[string][]int32{topic: parts})
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		resp, err = nil, nil // no member joined yet: nothing committed
	}
	if err != nil {
		return 0, fmt.Errorf("kafka: committed offsets of %s: %w: %w", q.opts.Group, backends.ErrUnavailable, err)
	}
	var total int64
	for _, p := range parts {
		hwm, err := q.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("kafka: offsets of %s/%d: %w: %w", topic, p, backends.ErrUnavailable, err)
		}
		committed := int64(-1)
		if resp != nil {
			if b := resp.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError {
				committed = b.Offset
			}
		}
		if committed < 0 {
			// Nothing committed yet: the group starts at the oldest record.
			if committed, err = q.client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
				return 0, fmt.Errorf("kafka: offsets of %s/%d: %w: %w", topic, p, backends.ErrUnavailable, err)
			}
		}
		total += max(hwm-committed, 0)
	}
	return total, nil
}

// count is the number of records retained in topic.
func (q *Queue) count(topic string) (int64, error) {
	parts, err := q.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: partitions of %s: %w: %w", topic, backends.ErrUnavailable, err)
	}
	var total int64
	for _, p := range parts {
		newest, err := q.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("kafka: offsets of %s/%d: %w: %w", topic, p, backends.ErrUnavailable, err)
		}
		oldest, err := q.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return 0, fmt.Errorf("kafka: offsets of %s/%d: %w: %w", topic, p, backends.ErrUnavailable, err)
		}
		total += max(newest-oldest, 0)
	}
	return total, nil
}
