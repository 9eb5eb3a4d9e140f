package redis

import (
	"context"
	"errors"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/wire"
)

// ResultsQueue is a Queue that also stores a job's pending result record with
// the job, in the same script call (and the same grouped round trip) as its
// XADD: a submit costs one round trip instead of Results.Create then Enqueue.
// The router uses EnqueueWithResult whenever the queue it is given has it, so
// only a queue built with Options.Results has it: a plain *Queue does not, and
// hands the router the two-call path.
//
// It is the Queue: every other method, Close included, is the Queue's, and it
// is safe for concurrent use. On Redis Cluster the stream and the record keys
// must share a slot (a hash tag in both Stream and the results Prefix).
type ResultsQueue struct {
	*Queue
}

// WithResults returns q with EnqueueWithResult when it was built with
// Options.Results, and false otherwise. Hand the router the ResultsQueue (it
// is a backends.Queue) in place of q; both are the same queue.
func (q *Queue) WithResults() (*ResultsQueue, bool) {
	return q.results, q.results != nil
}

var errRecordMismatch = errors.New("record does not belong to the job")

// EnqueueWithResult stores the job and pending as the job's result record,
// atomically: the record is written exactly as Results.Create writes it (key
// Prefix+id, same value, PendingTTL). ErrFull at MaxDepth (then neither is
// stored), ErrUnavailable (wrapped) when Redis cannot be reached, ErrClosed
// after Close. When ctx ends first both may still have been stored.
// pending must have the job's ID and a status that is not final.
func (q *ResultsQueue) EnqueueWithResult(ctx context.Context, job *backends.Job, pending *backends.Result) error {
	const op = "enqueue with result"
	if q.closed.Load() {
		return q.errorf("%s: %w", op, backends.ErrClosed)
	}
	if pending.ID != job.ID || finished(pending.Status) {
		return q.errorf("%s %s: %w: id %q, status %q", op, job.ID, errRecordMismatch, pending.ID, pending.Status)
	}
	rval := appendValue(getValue(), pending)
	err := q.enqueue(ctx, op, job, entry{
		meta: wire.AppendFields(nil, job), body: job.Body,
		rkey: q.opts.Results.key(pending.ID), rval: rval,
	})
	if ctx.Err() == nil {
		putValue(rval) // sent, or refused before sending
	}
	return err
}

// AckWithResult stores r as the job's record and acks d, in one script call
// grouped with concurrent Ack and AckWithResult calls: the record is written
// exactly as Results.Update(r, ttl) writes it, and before the ack, so the
// outcome is never lost and the job never replayed once its outcome is
// stored. Errors:
//   - wrapping ErrFinished: the record was already completed or failed and
//     stays as it was; d was still acked, unless the error also wraps
//     ErrLeaseLost;
//   - wrapping ErrLeaseLost: another delivery of the job was made since; r
//     was still stored (unless finished) and that delivery settles;
//   - ErrUnavailable, ErrClosed: nothing is known to have happened.
//
// Use it only with the store WritesResults accepts.
func (q *ResultsQueue) AckWithResult(ctx context.Context, d *backends.Delivery, r *backends.Result, ttl time.Duration) error {
	if q.closed.Load() {
		return q.errorf("ack with result: %w", backends.ErrClosed)
	}
	w := q.opts.Results.write(r, ttl)
	err := q.ack(ctx, d, w)
	if ctx.Err() == nil {
		putValue(w.value) // sent, or refused before sending
	}
	if err != nil {
		return q.errorf("ack job %s with result: %w", d.Job.ID, err)
	}
	return nil
}

// WritesResults reports whether AckWithResult writes the records that store
// reads: store is a *Results on the same Redis (same URL, or the same
// shared client) with the layout given as Options.Results.
func (q *ResultsQueue) WritesResults(store any) bool {
	s, ok := store.(*Results)
	return ok && s.layout == *q.opts.Results && s.sameRedis(q.opts.conn(), q.opts.Client)
}
