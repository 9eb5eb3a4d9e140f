package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// Operator tooling on a Kafka queue (backends.Inspector). Kafka keeps
// records until retention drops them, so a dead letter that was sent back
// or purged is not deleted: the consumer group Group+"-redrive" commits the
// offsets of the dead-letter topic's records that were handled, and the
// dead letters are the records after its commit point. A second redrive
// starts there and never sends a record twice.
//
// A job cannot be withdrawn from a topic: a cancel is recorded in the
// result store, and a worker marks every first delivery processing there
// before the replay (WithdrawsCancelled is false), which a cancelled record
// refuses.

var _ backends.Inspector = (*Queue)(nil)

// redriveGroup is the group whose commits mark dead letters handled.
func (q *Queue) redriveGroup() string { return q.opts.Group + "-redrive" }

// WithdrawsCancelled is false: see above.
func (q *Queue) WithdrawsCancelled() bool { return false }

// Cancel does nothing: the worker honours the job's cancelled record.
func (q *Queue) Cancel(ctx context.Context, id string) error { return nil }

// span is the unhandled part of a partition: the records of the topic's
// partition from offset from up to (not including) newest.
type span struct {
	topic        string
	partition    int32
	from, newest int64
}

// unhandled answers, per partition of topic, the records after group's
// commit point. A partition's span starts at the oldest record kept when
// nothing is committed or retention dropped records past the commit point,
// and at floor[p] when that is later (nil: none).
func unhandled(cn *conn, topic, group string, floor map[int32]int64) ([]span, error) {
	parts, err := cn.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: partitions of %s: %w: %w", topic, backends.ErrUnavailable, err)
	}
	resp, err := cn.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		resp, err = nil, nil // no member joined yet: nothing committed
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: committed offsets of %s: %w: %w", group, backends.ErrUnavailable, err)
	}
	out := make([]span, 0, len(parts))
	for _, p := range parts {
		newest, err := cn.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("kafka: offsets of %s/%d: %w: %w", topic, p, backends.ErrUnavailable, err)
		}
		oldest, err := cn.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("kafka: offsets of %s/%d: %w: %w", topic, p, backends.ErrUnavailable, err)
		}
		from := max(oldest, floor[p])
		if resp != nil {
			if b := resp.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError {
				from = max(from, b.Offset)
			}
		}
		out = append(out, span{topic: topic, partition: p, from: from, newest: newest})
	}
	return out, nil
}

// deadSpans answers, per partition of the dead-letter topic, the records
// after the redrive group's commit point.
func (q *Queue) deadSpans(cn *conn) ([]span, error) {
	return unhandled(cn, q.opts.DeadLetterTopic, q.redriveGroup(), nil)
}

// deadCount is the number of dead letters not yet handled.
func (q *Queue) deadCount(cn *conn) (int64, error) {
	spans, err := q.deadSpans(cn)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, s := range spans {
		n += max(s.newest-s.from, 0)
	}
	return n, nil
}

// readSpan calls each with the records of s in order until it answers false.
func (q *Queue) readSpan(ctx context.Context, cn *conn, s span, each func(*sarama.ConsumerMessage) bool) error {
	if s.from >= s.newest {
		return nil
	}
	consumer, err := sarama.NewConsumerFromClient(cn.client)
	if err != nil {
		return fmt.Errorf("kafka: read %s: %w: %w", s.topic, backends.ErrUnavailable, err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(s.topic, s.partition, s.from)
	if err != nil {
		return fmt.Errorf("kafka: read %s/%d: %w: %w", s.topic, s.partition, backends.ErrUnavailable, err)
	}
	defer pc.Close()
	for off := s.from; off < s.newest; {
		select {
		case msg := <-pc.Messages():
			off = msg.Offset + 1
			if !each(msg) {
				return nil
			}
		case err := <-pc.Errors():
			return fmt.Errorf("kafka: read %s/%d: %w: %w", s.topic, s.partition, backends.ErrUnavailable, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// commit moves the redrive group's commit point of each partition in to,
// with one standalone commit (no group member: generation -1).
func (q *Queue) commit(cn *conn, to map[int32]int64) error {
	if len(to) == 0 {
		return nil
	}
	group := q.redriveGroup()
	b, err := cn.client.Coordinator(group)
	if err != nil {
		return fmt.Errorf("kafka: commit %s: %w: %w", group, backends.ErrUnavailable, err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group, ConsumerGroupGeneration: -1,
		RetentionTime: -1}
	for p, off := range to {
		req.AddBlock(q.opts.DeadLetterTopic, p, off, -1, "")
	}
	resp, err := b.CommitOffset(req)
	if err != nil {
		return fmt.Errorf("kafka: commit %s: %w: %w", group, backends.ErrUnavailable, err)
	}
	for _, parts := range resp.Errors {
		for p, kerr := range parts {
			if kerr != sarama.ErrNoError {
				return fmt.Errorf("kafka: commit %s partition %d: %w: %w", group, p, backends.ErrUnavailable, kerr)
			}
		}
	}
	return nil
}

func (q *Queue) inspectConn(ctx context.Context, op string) (*conn, error) {
	if q.isClosed() {
		return nil, fmt.Errorf("kafka: %s: %w", op, backends.ErrClosed)
	}
	cn, err := q.connection(ctx)
	if err != nil {
		return nil, fmt.Errorf("kafka: %s: %w", op, err)
	}
	return cn, nil
}

func deadEntry(msg *sarama.ConsumerMessage) (backends.Entry, bool) {
	dl, err := DecodeDeadLetter(msg)
	if err != nil {
		return backends.Entry{}, false
	}
	return backends.Entry{Job: dl.Job, State: backends.StateDead, Attempts: dl.Attempts, Reason: dl.Reason, At: dl.At, LastStatus: dl.LastStatus}, true
}

// waitingEntry is the entry of a job record of the topic or the retry
// topic: the attempt header names the next delivery, and a retry's At is
// when it is due.
func waitingEntry(msg *sarama.ConsumerMessage) (backends.Entry, bool) {
	job, err := decodeJob(msg.Value)
	if err != nil {
		return backends.Entry{}, false
	}
	e := backends.Entry{Job: job, State: backends.StateWaiting}
	if n, ok := headerInt(msg.Headers, hdrAttempt); ok && n > 1 && n < 1<<30 {
		e.Attempts = int(n) - 1
	}
	if n, ok := headerInt(msg.Headers, hdrDue); ok {
		e.At = time.UnixMilli(n).UTC()
	}
	return e, true
}

// List answers the entries that pass f: the jobs after the group's commit
// point on the topic and then the retry topic, as waiting, and then the
// dead letters, partition by partition. Kafka cannot tell a waiting job
// from one a worker holds, nor from one finished moments ago whose offset
// is not committed yet: all of them read waiting here (the operator's tool
// drops those whose record is final). A job that moved to the retry topic
// since its offset was last committed is listed once, from the retry
// topic. Reading the backlog does not touch the group: the workers' share
// is unchanged. A search by id (f.ID) reads the dead letters only; a
// waiting job is found by its record.
func (q *Queue) List(ctx context.Context, f backends.Filter) ([]backends.Entry, error) {
	waiting := (f.State == "" || f.State == backends.StateWaiting) && f.ID == ""
	dead := f.State == "" || f.State == backends.StateDead
	if !waiting && !dead {
		return nil, nil
	}
	cn, err := q.inspectConn(ctx, "list")
	if err != nil {
		return nil, err
	}
	full := func(out []backends.Entry) bool { return f.Limit > 0 && len(out) >= f.Limit }
	var spans []span
	if waiting {
		for _, topic := range []string{q.opts.Topic, q.opts.RetryTopic} {
			_, backlog, err := q.lag(cn, topic)
			if err != nil {
				return nil, err
			}
			spans = append(spans, backlog...)
		}
	}
	var out []backends.Entry
	at := make(map[string]int) // job id → index in out, for waiting entries
	read := func(spans []span, entry func(*sarama.ConsumerMessage) (backends.Entry, bool)) error {
		for _, s := range spans {
			err := q.readSpan(ctx, cn, s, func(msg *sarama.ConsumerMessage) bool {
				e, ok := entry(msg)
				if !ok || !f.Match(&e) {
					return true
				}
				if e.State == backends.StateWaiting {
					if i, seen := at[e.Job.ID]; seen {
						out[i] = e // the later record: the job's retry
						return true
					}
					at[e.Job.ID] = len(out)
				}
				out = append(out, e)
				return !full(out)
			})
			if err != nil || full(out) {
				return err
			}
		}
		return nil
	}
	if err := read(spans, waitingEntry); err != nil {
		return nil, err
	}
	if dead && !full(out) {
		spans, err := q.deadSpans(cn)
		if err != nil {
			return nil, err
		}
		if err := read(spans, deadEntry); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Redrive produces the selected dead letters to the topic again (same
// value and key, no attempt header: a fresh attempt budget), then commits
// in each partition the records handled before the first one left there.
// A record selected after one left behind is sent but stays after the
// commit point; a later redrive finds its job's record pending again and
// the caller's Prepare skips it.
func (q *Queue) Redrive(ctx context.Context, o backends.RedriveOptions) (int, error) {
	cn, err := q.inspectConn(ctx, "redrive")
	if err != nil {
		return 0, err
	}
	spans, err := q.deadSpans(cn)
	if err != nil {
		return 0, err
	}
	moved := 0
	to := map[int32]int64{}
	var failed error
	for _, s := range spans {
		contiguous, commitTo := true, int64(-1)
		var batch []*sarama.ProducerMessage
		err := q.readSpan(ctx, cn, s, func(msg *sarama.ConsumerMessage) bool {
			e, ok := deadEntry(msg)
			handled := !ok // an undecodable record cannot go back
			if ok && o.Selects(e.Job) {
				err := error(nil)
				if o.Prepare != nil {
					err = o.Prepare(ctx, e.Job)
				}
				switch {
				case errors.Is(err, backends.ErrSkip):
				case err != nil:
					failed = err
					return false
				default:
					batch = append(batch, q.redriven(msg, e.Job))
				}
				handled = true
			}
			if contiguous && handled {
				commitTo = msg.Offset + 1
			} else {
				contiguous = false
			}
			return true
		})
		// The span's records are produced together: one at a time, each
		// waiting for acks=all, would take a round trip of the brokers each.
		n, perr := q.produceAll(ctx, batch)
		moved += n
		failed = cmpOr(failed, err, perr)
		if failed != nil {
			break
		}
		if commitTo >= 0 {
			to[s.partition] = commitTo
		}
	}
	if err := q.commit(cn, to); err != nil && failed == nil {
		failed = err
	}
	return moved, failed
}

func cmpOr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// produceAll produces msgs concurrently and answers how many the brokers
// confirmed, and the first error.
func (q *Queue) produceAll(ctx context.Context, msgs []*sarama.ProducerMessage) (int, error) {
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = q.produce(ctx, m)
		}()
	}
	wg.Wait()
	n := 0
	for _, err := range errs {
		if err == nil {
			n++
		}
	}
	return n, cmpOr(errs...)
}

// redriven is the record that sends a dead letter's job back.
func (q *Queue) redriven(msg *sarama.ConsumerMessage, job *backends.Job) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{
		Topic:   q.opts.Topic,
		Value:   sarama.ByteEncoder(msg.Value),
		Headers: []sarama.RecordHeader{{Key: []byte(hdrID), Value: []byte(job.ID)}},
	}
	if job.Key != "" {
		m.Key = sarama.StringEncoder(job.Key)
	}
	return m
}

// Purge commits, in each partition, the dead letters dead-lettered before
// cutoff (all when zero) up to the first younger one, and answers how many.
func (q *Queue) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	cn, err := q.inspectConn(ctx, "purge")
	if err != nil {
		return 0, err
	}
	spans, err := q.deadSpans(cn)
	if err != nil {
		return 0, err
	}
	n := 0
	to := map[int32]int64{}
	for _, s := range spans {
		if s.from >= s.newest {
			continue
		}
		if cutoff.IsZero() {
			n += int(s.newest - s.from)
			to[s.partition] = s.newest
			continue
		}
		err := q.readSpan(ctx, cn, s, func(msg *sarama.ConsumerMessage) bool {
			if e, ok := deadEntry(msg); ok && !e.At.Before(cutoff) {
				return false
			}
			to[s.partition] = msg.Offset + 1
			n++
			return true
		})
		if err != nil {
			return 0, err
		}
	}
	if err := q.commit(cn, to); err != nil {
		return 0, err
	}
	return n, nil
}
