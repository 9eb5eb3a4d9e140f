package sqs

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/openhqm/openhqm/backends"
)

// counts are a queue's approximate message counts.
type counts struct{ visible, inFlight, delayed int64 }

func (c counts) total() int64 { return c.visible + c.inFlight + c.delayed }

func (q *Queue) counts(ctx context.Context, url string) (counts, error) {
	out, err := q.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return counts{}, unavailable(ctx, err)
	}
	n := func(a types.QueueAttributeName) int64 {
		v, _ := strconv.ParseInt(out.Attributes[string(a)], 10, 64)
		return v
	}
	return counts{
		visible:  n(types.QueueAttributeNameApproximateNumberOfMessages),
		inFlight: n(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		delayed:  n(types.QueueAttributeNameApproximateNumberOfMessagesDelayed),
	}, nil
}

// Stats reports the backlog from SQS's approximate counts (they lag behind
// by up to a minute on AWS):
//   - Depth is visible + in flight + delayed messages.
//   - Pending is the messages in flight: leased, and nacked jobs waiting for
//     their retry delay (a Nack keeps the message in flight).
//   - Delayed is the messages sent with a delay, which openhqm does not
//     send; it is 0 unless another producer uses delays.
//   - OldestAge is best effort: SQS tells the age of its oldest message
//     only through CloudWatch. It is the older of the oldest job this
//     process holds and the time since this process first saw the queue
//     non-empty (in Stats or a MaxDepth sample) without seeing it empty
//     since, so it can understate (a backlog older than the first look) and
//     overstate (a queue that never drains but whose messages are young).
//   - DeadLetters is the dead-letter queue's depth.
//
// Two requests; call it for metrics and readiness, not per request.
func (q *Queue) Stats(ctx context.Context) (backends.Stats, error) {
	if q.closed.Load() {
		return backends.Stats{}, q.errorf("stats: %w", backends.ErrClosed)
	}
	c, err := q.counts(ctx, q.opts.QueueURL)
	if err != nil {
		return backends.Stats{}, q.errorf("stats: %w", err)
	}
	q.sample(c.total())
	dlq, err := q.deadLetterURL(ctx)
	if err != nil {
		return backends.Stats{}, err
	}
	dc, err := q.counts(ctx, dlq)
	if err != nil {
		return backends.Stats{}, q.errorf("stats of the dead-letter queue: %w", err)
	}
	s := backends.Stats{Depth: c.total(), Pending: c.inFlight, Delayed: c.delayed, DeadLetters: dc.total()}
	now := time.Now()
	q.depthMu.Lock()
	oldest := q.busySince
	q.depthMu.Unlock()
	q.heldMu.Lock()
	for r, h := range q.held {
		if now.After(h.until) { // given up by its holder; SQS delivers it again
			delete(q.held, r)
			continue
		}
		if !h.since.IsZero() && (oldest.IsZero() || h.since.Before(oldest)) {
			oldest = h.since
		}
	}
	q.heldMu.Unlock()
	if !oldest.IsZero() && s.Depth > 0 {
		s.OldestAge = max(now.Sub(oldest), time.Nanosecond)
	}
	return s, nil
}

func (q *Queue) sample(depth int64) {
	q.depthMu.Lock()
	q.depth, q.depthAt = depth, time.Now()
	switch {
	case depth == 0:
		q.busySince = time.Time{}
	case q.busySince.IsZero():
		q.busySince = q.depthAt
	}
	q.sinceSample.Store(0)
	q.depthDirty.Store(false)
	q.depthMu.Unlock()
}

// approxDepth is the depth as of the last sample younger than
// StatsInterval, plus this process's enqueues since. Before refusing a job
// it samples again when jobs left the queue since the last sample, so a
// queue that drained below the bound accepts again at once.
func (q *Queue) approxDepth(ctx context.Context) (int64, error) {
	q.depthMu.Lock()
	est := q.depth + q.sinceSample.Load()
	age := time.Since(q.depthAt)
	q.depthMu.Unlock()
	stale := age >= q.opts.StatsInterval ||
		(est >= q.opts.MaxDepth && (q.depthDirty.Load() || age >= q.opts.StatsInterval/10))
	if !stale {
		return est, nil
	}
	c, err := q.counts(ctx, q.opts.QueueURL)
	if err != nil {
		return 0, err
	}
	q.sample(c.total())
	return c.total(), nil
}
