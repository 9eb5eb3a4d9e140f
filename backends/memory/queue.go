// Package memory is the embedded queue and result store: everything lives in
// the memory of one process. It needs nothing installed and is the default, but
// it is not durable: jobs and results do not survive a restart of the process,
// and only consumers in the same process see them. Use redis (or kafka)
// when accepted jobs must outlive the process.
package memory

import (
	"container/heap"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// QueueOptions configures a Queue.
type QueueOptions struct {
	Name          string        // queue name, for errors
	MaxDepth      int           // jobs held (waiting, leased, delayed) before Enqueue answers ErrFull; ≤ 0: unbounded
	Lease         time.Duration // how long a delivery is held before it is redelivered; default 60s
	DeadLetterMax int           // dead letters kept, oldest dropped first; default 1000
	// PollInterval bounds how long Receive waits for a job; default and maximum 1s.
	PollInterval time.Duration
	// Now is the clock; default time.Now. Waiting always uses real timers.
	Now func() time.Time
}

// item is one job held by the queue.
type item struct {
	job        *backends.Job
	seq        uint64
	enqueuedAt time.Time
	attempts   int       // deliveries so far
	receipt    string    // current lease receipt, "" when not leased
	leaseUntil time.Time // when leased
	dueAt      time.Time // when delayed
	heapIdx    int       // index in the delayed heap, -1 when not delayed
	done       bool      // acked or dead-lettered
}

// Queue is an in-process queue with leases, delayed retries and a bounded
// dead-letter list. All methods are safe for concurrent use. Jobs are kept by
// pointer: callers must not modify a Job after Enqueue, nor the Job of a Delivery.
type Queue struct {
	opts QueueOptions

	mu       sync.Mutex
	closed   bool
	wake     chan struct{} // closed and replaced when a job becomes ready
	wakeUsed bool          // a Receive is (or was) waiting on wake
	ready    deque
	leased   map[string]*item // by receipt
	leases   leaseHeap        // lease expiry, lazily pruned
	delayed  delayHeap
	all      deque // every live item in enqueue order (lazily pruned) for OldestAge
	depth    int
	seq      uint64
	receipts uint64
	dead     []backends.DeadLetter
}

// NewQueue returns an empty queue.
func NewQueue(opts QueueOptions) (*Queue, error) {
	if opts.Lease <= 0 {
		opts.Lease = 60 * time.Second
	}
	if opts.DeadLetterMax <= 0 {
		opts.DeadLetterMax = 1000
	}
	if opts.PollInterval <= 0 || opts.PollInterval > time.Second {
		opts.PollInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Queue{opts: opts, wake: make(chan struct{}), leased: make(map[string]*item)}, nil
}

func (q *Queue) errorf(format string, err error) error {
	return fmt.Errorf("memory queue %q: "+format, q.opts.Name, err)
}

// signal wakes every waiting Receive; q.mu is held. Without waiters it costs
// nothing: the channel is replaced only once it was handed out.
func (q *Queue) signal() {
	if !q.wakeUsed {
		return
	}
	close(q.wake)
	q.wake = make(chan struct{})
	q.wakeUsed = false
}

// Enqueue adds the job; it answers ErrFull at MaxDepth and ErrClosed after Close.
func (q *Queue) Enqueue(ctx context.Context, job *backends.Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return q.errorf("enqueue: %w", backends.ErrClosed)
	}
	if q.opts.MaxDepth > 0 && q.depth >= q.opts.MaxDepth {
		return q.errorf("enqueue: %w", backends.ErrFull)
	}
	q.push(job)
	return nil
}

// push adds job to the ready list as a new entry and wakes a receiver;
// q.mu is held.
func (q *Queue) push(job *backends.Job) {
	q.seq++
	it := &item{job: job, seq: q.seq, enqueuedAt: q.opts.Now(), heapIdx: -1}
	q.depth++
	q.all.pushBack(it)
	q.ready.pushBack(it)
	q.signal()
}

// promote moves due delayed jobs and expired leases to the ready list and
// returns when the next of them is due (zero when none); q.mu is held.
func (q *Queue) promote(now time.Time) (next time.Time) {
	for q.delayed.Len() > 0 && !q.delayed[0].dueAt.After(now) {
		it := heap.Pop(&q.delayed).(*item)
		q.ready.pushBack(it)
	}
	for q.leases.Len() > 0 {
		e := q.leases[0]
		if e.it.receipt != e.receipt || !e.it.leaseUntil.Equal(e.until) {
			heap.Pop(&q.leases) // stale: acked, nacked, extended or redelivered
			continue
		}
		if e.until.After(now) {
			break
		}
		heap.Pop(&q.leases)
		delete(q.leased, e.it.receipt)
		e.it.receipt = ""
		q.ready.pushFront(e.it) // it is older than what waits
	}
	if q.delayed.Len() > 0 {
		next = q.delayed[0].dueAt
	}
	if q.leases.Len() > 0 && (next.IsZero() || q.leases[0].until.Before(next)) {
		next = q.leases[0].until
	}
	return next
}

// Receive leases up to max ready jobs to consumer, waiting up to the poll
// interval (≤ 1s) for one. It never busy-waits: it sleeps until a job is
// enqueued, a delay or lease ends, ctx is done, or the interval passes.
func (q *Queue) Receive(ctx context.Context, consumer string, max int) ([]*backends.Delivery, error) {
	if max <= 0 {
		max = 1
	}
	poll := time.NewTimer(q.opts.PollInterval)
	defer poll.Stop()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, q.errorf("receive: %w", backends.ErrClosed)
		}
		now := q.opts.Now()
		next := q.promote(now)
		if q.ready.len() > 0 {
			ds := q.take(now, max)
			q.mu.Unlock()
			return ds, nil
		}
		wake := q.wake
		q.wakeUsed = true
		q.mu.Unlock()

		var tc <-chan time.Time
		if !next.IsZero() {
			d := next.Sub(now)
			if d < time.Millisecond {
				d = time.Millisecond
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-poll.C:
			return nil, nil
		case <-wake:
		case <-tc:
		}
	}
}

// take leases up to max ready jobs; q.mu is held.
func (q *Queue) take(now time.Time, max int) []*backends.Delivery {
	ds := make([]*backends.Delivery, 0, min(max, q.ready.len()))
	for len(ds) < max && q.ready.len() > 0 {
		it := q.ready.popFront()
		if it.done {
			continue // cancelled while it waited
		}
		q.receipts++
		it.attempts++
		it.receipt = strconv.FormatUint(q.receipts, 10)
		it.leaseUntil = now.Add(q.opts.Lease)
		q.leased[it.receipt] = it
		heap.Push(&q.leases, leaseEntry{it: it, receipt: it.receipt, until: it.leaseUntil})
		ds = append(ds, &backends.Delivery{Job: it.job, Attempt: it.attempts, Receipt: it.receipt, LeaseUntil: it.leaseUntil})
	}
	return ds
}

// holder returns the item d still holds; q.mu is held.
func (q *Queue) holder(op string, d *backends.Delivery) (*item, error) {
	if q.closed {
		return nil, q.errorf(op+": %w", backends.ErrClosed)
	}
	it := q.leased[d.Receipt]
	if it == nil {
		return nil, fmt.Errorf("memory queue %q: %s job %s: %w", q.opts.Name, op, d.Job.ID, backends.ErrLeaseLost)
	}
	return it, nil
}

// finish removes a leased item for good; q.mu is held.
func (q *Queue) finish(it *item) {
	delete(q.leased, it.receipt)
	it.receipt = ""
	it.done = true
	q.depth--
	for q.all.len() > 0 && q.all.front().done {
		q.all.popFront()
	}
}

// Ack finishes the delivery. A delivery whose lease expired and was handed to
// another consumer answers ErrLeaseLost; one whose lease expired but that no
// one took yet is still acknowledged.
func (q *Queue) Ack(ctx context.Context, d *backends.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, err := q.holder("ack", d)
	if err != nil {
		return err
	}
	q.finish(it)
	return nil
}

// Nack makes the job available again after delay (at once when delay ≤ 0).
func (q *Queue) Nack(ctx context.Context, d *backends.Delivery, delay time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, err := q.holder("nack", d)
	if err != nil {
		return err
	}
	delete(q.leased, it.receipt)
	it.receipt = ""
	if delay <= 0 {
		q.ready.pushBack(it)
	} else {
		it.dueAt = q.opts.Now().Add(delay)
		heap.Push(&q.delayed, it)
	}
	q.signal() // a waiter recomputes its timer
	return nil
}

// Extend moves the lease to now+lease and updates d.LeaseUntil.
func (q *Queue) Extend(ctx context.Context, d *backends.Delivery, lease time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, err := q.holder("extend", d)
	if err != nil {
		return err
	}
	it.leaseUntil = q.opts.Now().Add(lease)
	heap.Push(&q.leases, leaseEntry{it: it, receipt: it.receipt, until: it.leaseUntil})
	d.LeaseUntil = it.leaseUntil
	return nil
}

// DeadLetter records dl (with the delivery's job) in the bounded dead-letter
// list, dropping the oldest entry beyond DeadLetterMax, and acknowledges the job.
func (q *Queue) DeadLetter(ctx context.Context, d *backends.Delivery, dl backends.DeadLetter) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, err := q.holder("dead-letter", d)
	if err != nil {
		return err
	}
	dl.Job = it.job
	if dl.At.IsZero() {
		dl.At = q.opts.Now()
	}
	if len(q.dead) >= q.opts.DeadLetterMax {
		copy(q.dead, q.dead[1:])
		q.dead = q.dead[:len(q.dead)-1]
	}
	q.dead = append(q.dead, dl)
	q.finish(it)
	return nil
}

// DeadLetters returns up to max dead letters, newest first. The entries share
// memory with the queue: callers must not modify them.
func (q *Queue) DeadLetters(ctx context.Context, max int) ([]backends.DeadLetter, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]backends.DeadLetter, 0, min(max, len(q.dead)))
	for i := len(q.dead) - 1; i >= 0 && len(out) < max; i-- {
		out = append(out, q.dead[i])
	}
	return out, nil
}

// Stats reports the backlog; the counts are exact.
func (q *Queue) Stats(ctx context.Context) (backends.Stats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.opts.Now()
	q.promote(now)
	s := backends.Stats{
		Depth:       int64(q.depth),
		Pending:     int64(len(q.leased)),
		Delayed:     int64(q.delayed.Len()),
		DeadLetters: int64(len(q.dead)),
	}
	if q.all.len() > 0 {
		s.OldestAge = max(now.Sub(q.all.front().enqueuedAt), time.Nanosecond)
	}
	return s, nil
}

// Close wakes every waiting Receive and makes further calls answer ErrClosed.
// The jobs still held are lost with the process.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.wakeUsed = true
		q.signal()
	}
	return nil
}
