package memory

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/openhqm/openhqm/backends"
)

var _ backends.Inspector = (*Queue)(nil)

// List answers the jobs held and the dead letters that pass f: waiting and
// in-flight jobs in enqueue order, then dead letters oldest first.
func (q *Queue) List(ctx context.Context, f backends.Filter) ([]backends.Entry, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, q.errorf("list: %w", backends.ErrClosed)
	}
	var out []backends.Entry
	add := func(e backends.Entry) bool {
		if f.Match(&e) {
			out = append(out, e)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	}
	for i := range q.all.len() {
		it := q.all.at(i)
		if it.done {
			continue
		}
		st := backends.StateWaiting
		if it.receipt != "" {
			st = backends.StateInFlight
		}
		if !add(backends.Entry{Job: it.job, State: st, Attempts: it.attempts}) {
			return out, nil
		}
	}
	for _, dl := range q.dead {
		e := backends.Entry{Job: dl.Job, State: backends.StateDead, Attempts: dl.Attempts, Reason: dl.Reason, At: dl.At, LastStatus: dl.LastStatus}
		if !add(e) {
			break
		}
	}
	return out, nil
}

// Cancel drops job id if it waits (for its first delivery or a retry); a
// job leased to a consumer answers ErrStarted. A job the queue does not hold
// answers ErrNotFound.
func (q *Queue) Cancel(ctx context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return q.errorf("cancel: %w", backends.ErrClosed)
	}
	for i := range q.all.len() {
		it := q.all.at(i)
		if it.done || it.job.ID != id {
			continue
		}
		if it.receipt != "" {
			return fmt.Errorf("memory queue %q: cancel %s: %w", q.opts.Name, id, backends.ErrStarted)
		}
		if it.heapIdx >= 0 {
			heap.Remove(&q.delayed, it.heapIdx)
		}
		// A waiting item stays in the ready list, skipped by take.
		it.done = true
		q.depth--
		for q.all.len() > 0 && q.all.front().done {
			q.all.popFront()
		}
		return nil
	}
	return fmt.Errorf("memory queue %q: cancel %s: %w", q.opts.Name, id, backends.ErrNotFound)
}

// WithdrawsCancelled is true: Cancel removes the job under the queue's lock.
func (q *Queue) WithdrawsCancelled() bool { return true }

// Redrive enqueues the selected dead letters again as new jobs with the
// same ids, and drops them from the dead letters. MaxDepth does not apply:
// the jobs were accepted once.
func (q *Queue) Redrive(ctx context.Context, o backends.RedriveOptions) (int, error) {
	q.mu.Lock()
	var picked []backends.DeadLetter
	for _, dl := range q.dead {
		if o.Selects(dl.Job) {
			picked = append(picked, dl)
		}
	}
	q.mu.Unlock()
	moved := 0
	for _, dl := range picked {
		if o.Prepare != nil {
			err := o.Prepare(ctx, dl.Job)
			if err != nil && err != backends.ErrSkip {
				return moved, err
			}
			if err == backends.ErrSkip {
				q.dropDead(dl.Job.ID)
				continue
			}
		}
		if q.requeue(dl.Job) {
			moved++
		}
	}
	return moved, nil
}

// dropDead removes the dead letter of job id and reports whether it was there.
func (q *Queue) dropDead(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, dl := range q.dead {
		if dl.Job != nil && dl.Job.ID == id {
			q.dead = slices.Delete(q.dead, i, i+1)
			return true
		}
	}
	return false
}

// requeue moves the dead letter of job back to the ready list, unless
// another redrive moved it first.
func (q *Queue) requeue(job *backends.Job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	i := slices.IndexFunc(q.dead, func(dl backends.DeadLetter) bool { return dl.Job != nil && dl.Job.ID == job.ID })
	if i < 0 {
		return false
	}
	q.dead = slices.Delete(q.dead, i, i+1)
	q.push(job)
	return true
}

// Purge drops the dead letters dead-lettered before cutoff (zero: all).
func (q *Queue) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, q.errorf("purge: %w", backends.ErrClosed)
	}
	n := len(q.dead)
	q.dead = slices.DeleteFunc(q.dead, func(dl backends.DeadLetter) bool {
		return cutoff.IsZero() || dl.At.Before(cutoff)
	})
	return n - len(q.dead), nil
}

// Cancel marks the pending record of job id cancelled at now, to expire ttl
// later, and answers it. ErrNotFound or ErrExpired for an unknown id,
// ErrStarted when it is processing, ErrFinished when it already has an
// outcome.
func (s *Results) Cancel(ctx context.Context, id string, now time.Time, ttl time.Duration) (*backends.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("cancel"); err != nil {
		return nil, err
	}
	s.sweep(now)
	rec := s.records[id]
	switch {
	case rec == nil && s.tombs[id] != (time.Time{}):
		return nil, fmt.Errorf("memory results: %s: %w", id, backends.ErrExpired)
	case rec == nil:
		return nil, fmt.Errorf("memory results: %s: %w", id, backends.ErrNotFound)
	}
	r := rec.r
	if err := r.Cancellable(); err != nil {
		return nil, fmt.Errorf("memory results: cancel %s: %w", id, err)
	}
	r.Status, r.Error = backends.StatusCancelled, backends.CancelledReason
	r.UpdatedAt, r.CompletedAt = now, now
	if err := s.putLocked("cancel", &r, ttl); err != nil {
		return nil, err
	}
	return &r, nil
}

// Reopen replaces the record of r.ID, finished or not, with r: a
// dead-lettered job sent back to its queue starts again as pending.
func (s *Results) Reopen(ctx context.Context, r *backends.Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("reopen"); err != nil {
		return err
	}
	delete(s.records, r.ID)
	delete(s.tombs, r.ID)
	return s.putLocked("reopen", r, 0)
}

// Records answers the records in status st (of route, when not ""),
// oldest submission first, at most limit (≤ 0: all).
func (s *Results) Records(ctx context.Context, st backends.Status, route string, limit int) ([]*backends.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("records"); err != nil {
		return nil, err
	}
	s.sweep(s.opts.Now())
	var out []*backends.Result
	for _, rec := range s.records {
		if rec.r.Status == st && (route == "" || rec.r.Route == route) {
			r := rec.r
			out = append(out, &r)
		}
	}
	slices.SortStableFunc(out, func(a, b *backends.Result) int { return a.SubmittedAt.Compare(b.SubmittedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
