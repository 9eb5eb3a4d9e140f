package redis

import (
	"context"
	"sync"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// BatchOptions tunes how concurrent calls share round trips: Enqueue calls
// of a Queue; Ack and AckWithResult calls of a Queue; Create and Update
// calls of a Results store. Each kind is grouped on its own.
type BatchOptions struct {
	// Disabled sends every call on its own round trip.
	Disabled bool
	// MaxJobs per round trip; default 128.
	MaxJobs int
	// MaxBytes of bodies per round trip (a batch always holds at least one
	// call); default 1 MiB.
	MaxBytes int
	// Linger is how long a sender waits for more calls when the batch is not
	// full; default 0: a batch is whatever queued up while the previous round
	// trip was in flight, which adds no latency to a lone caller and measured
	// best (a 100µs linger cut throughput by more than half on a 2-core VM,
	// where timers fire late).
	Linger time.Duration
	// Senders is the number of round trips in flight at once; default 2.
	Senders int
}

func (o BatchOptions) withDefaults() BatchOptions {
	if o.MaxJobs <= 0 {
		o.MaxJobs = 128
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Senders <= 0 {
		o.Senders = 2
	}
	return o
}

// batchItem is what one call asks a batcher to send.
type batchItem interface {
	// size is what the item counts against BatchOptions.MaxBytes.
	size() int
}

// request is one call waiting in a batcher. The send function sets err.
type request[T batchItem] struct {
	ctx  context.Context
	item T
	err  error
	done chan error // buffered: a sender never blocks on it
}

// batcher collects concurrent calls and hands each group to send, which
// makes one round trip for all of them and sets each request's err. Each
// caller still waits for its own answer. The senders are owned by the
// batcher: close stops them after everything queued was sent, and waits for
// them.
type batcher[T batchItem] struct {
	opts BatchOptions
	send func(ctx context.Context, reqs []*request[T])
	reqs chan *request[T]
	pool sync.Pool

	mu     sync.RWMutex // held shared while sending on reqs, exclusively to close
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

func newBatcher[T batchItem](opts BatchOptions, send func(ctx context.Context, reqs []*request[T])) *batcher[T] {
	opts = opts.withDefaults()
	b := &batcher[T]{opts: opts, send: send, reqs: make(chan *request[T], 4*opts.MaxJobs), stop: make(chan struct{})}
	b.pool.New = func() any { return &request[T]{done: make(chan error, 1)} }
	for range opts.Senders {
		b.wg.Add(1)
		go b.run()
	}
	return b
}

// do queues one item and waits for its answer (or ctx).
func (b *batcher[T]) do(ctx context.Context, item T) error {
	r := b.pool.Get().(*request[T])
	r.ctx, r.item = ctx, item
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		b.put(r)
		return backends.ErrClosed
	}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		b.mu.RUnlock()
		b.put(r)
		return ctx.Err()
	}
	b.mu.RUnlock()
	select {
	case err := <-r.done:
		b.put(r)
		return err
	case <-ctx.Done():
		// The request is in flight; its sender still answers on done, which
		// is buffered, and the request is then dropped rather than reused.
		return ctx.Err()
	}
}

func (b *batcher[T]) put(r *request[T]) {
	var zero T
	r.ctx, r.item, r.err = nil, zero, nil
	b.pool.Put(r)
}

func (b *batcher[T]) run() {
	defer b.wg.Done()
	batch := make([]*request[T], 0, b.opts.MaxJobs)
	var linger *time.Timer
	for {
		var first *request[T]
		select {
		case first = <-b.reqs:
		case <-b.stop:
			// Everything queued before close is still sent.
			select {
			case first = <-b.reqs:
			default:
				return
			}
		}
		batch = append(batch[:0], first)
		size := first.item.size()
	fill:
		for len(batch) < b.opts.MaxJobs && size < b.opts.MaxBytes {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
				size += r.item.size()
				continue
			default:
			}
			if b.opts.Linger <= 0 {
				break
			}
			if linger == nil {
				linger = time.NewTimer(b.opts.Linger)
			} else {
				linger.Reset(b.opts.Linger)
			}
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
				size += r.item.size()
				linger.Stop()
			case <-linger.C:
				break fill
			}
		}
		b.flush(batch)
		clear(batch)
	}
}

// flush sends the batch; requests whose caller already gave up are skipped.
func (b *batcher[T]) flush(batch []*request[T]) {
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.done <- r.ctx.Err()
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	b.send(ctx, live)
	cancel()
	for _, r := range live {
		r.done <- r.err
	}
}

// close stops accepting, sends what is queued, and waits for the senders.
func (b *batcher[T]) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	b.wg.Wait()
}

// direct sends one item on its own round trip, for callers whose batching
// is disabled.
func direct[T batchItem](ctx context.Context, send func(context.Context, []*request[T]), item T) error {
	r := &request[T]{ctx: ctx, item: item}
	send(ctx, []*request[T]{r})
	return r.err
}
