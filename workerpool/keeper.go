package workerpool

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// markAfter is how long an attempt runs before its record is marked
// processing. A shorter job goes from pending to completed without the extra
// write; a client polling a longer one sees that a worker took it.
const markAfter = 100 * time.Millisecond

// keeper looks after the deliveries of one runner's attempts while they run:
// it extends each lease every lease/3 and marks each record processing once
// the attempt has run markAfter. One goroutine does it for every attempt, and
// only when a deadline is due, so an attempt shorter than both costs a map
// insert and delete, not a goroutine and a ticker.
//
// Goroutines: run is owned by the runner, started with it and stopped (stop
// waits for it) once the runner's jobs have ended; when deadlines are due it
// starts one goroutine per attempt to look after and waits for them.
type keeper struct {
	p *Pool
	r *runner

	mu    sync.Mutex
	idle  sync.Cond             // signalled when an attempt stops being busy
	kept  map[*attempt]struct{} // attempts whose delivery the keeper looks after
	next  time.Time             // when run wakes up next; zero: not scheduled
	kick  chan struct{}         // cap 1: an earlier deadline was added
	quit  chan struct{}         // closed by stop
	done  chan struct{}         // closed when run returned
	batch []*attempt            // run's scratch space
}

// keep state of an attempt, guarded by keeper.mu.
type keepState struct {
	extendAt time.Time     // next lease extension; zero: never (lease lost)
	every    time.Duration // extension period: lease/3
	lease    time.Duration
	markAt   time.Time // when to mark the record processing; zero: not (yet) allowed or done
	busy     bool      // the keeper is extending or marking it now
}

func newKeeper(p *Pool, r *runner) *keeper {
	k := &keeper{p: p, r: r, kept: map[*attempt]struct{}{}, kick: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{})}
	k.idle.L = &k.mu
	go k.run() // owned by the runner: stop waits for it
	return k
}

// stop ends run and waits for it.
func (k *keeper) stop() {
	close(k.quit)
	<-k.done
}

// add starts looking after a's lease. The lease is extended every lease/3,
// like the delivery's backend expects (defaultLease when the queue is no
// longer configured and the delivery says nothing).
func (k *keeper) add(a *attempt) {
	lease := defaultLease
	if a.cfg != nil && a.cfg.Queues[a.r.queue] != nil && a.cfg.Queues[a.r.queue].Lease > 0 {
		lease = a.cfg.Queues[a.r.queue].Lease
	} else if left := a.d.LeaseUntil.Sub(a.start); left > 0 {
		lease = left
	}
	every := max(lease/3, 10*time.Millisecond)
	k.mu.Lock()
	a.keep = keepState{extendAt: a.start.Add(every), every: every, lease: lease}
	k.kept[a] = struct{}{}
	k.scheduleLocked(a.keep.extendAt)
	k.mu.Unlock()
}

// allowMark lets the keeper mark a's record processing once it has run
// markAfter from now: a is charged from now on (it no longer waits for the
// endpoint).
func (k *keeper) allowMark(a *attempt, now time.Time) {
	k.mu.Lock()
	if _, ok := k.kept[a]; ok {
		a.keep.markAt = now.Add(markAfter)
		k.scheduleLocked(a.keep.markAt)
	}
	k.mu.Unlock()
}

// remove stops looking after a, waiting for an extension or a mark in
// progress. Afterwards the delivery and the record belong to the attempt
// alone. Safe to call more than once.
func (k *keeper) remove(a *attempt) {
	k.mu.Lock()
	delete(k.kept, a)
	for a.keep.busy {
		k.idle.Wait()
	}
	k.mu.Unlock()
}

// scheduleLocked makes run wake up by at; k.mu is held.
func (k *keeper) scheduleLocked(at time.Time) {
	if at.IsZero() || (!k.next.IsZero() && !at.Before(k.next)) {
		return
	}
	k.next = at
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

func (k *keeper) run() {
	defer close(k.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-k.quit:
			t.Stop()
			return
		case <-k.kick:
		case <-t.C:
		}
		now := time.Now()
		k.mu.Lock()
		k.batch = k.batch[:0]
		next := time.Time{}
		for a := range k.kept {
			ks := &a.keep
			if (!ks.extendAt.IsZero() && !now.Before(ks.extendAt)) || (!ks.markAt.IsZero() && !now.Before(ks.markAt)) {
				ks.busy = true
				k.batch = append(k.batch, a)
				continue
			}
			next = earliest(next, earliest(ks.extendAt, ks.markAt))
		}
		k.next = time.Time{}
		k.mu.Unlock()

		// Side by side, so that the backends group the marks (and the
		// extensions, where they can) into few round trips.
		var wg sync.WaitGroup
		for _, a := range k.batch {
			wg.Go(func() { k.look(a, now) })
		}
		wg.Wait()

		k.mu.Lock()
		for _, a := range k.batch {
			a.keep.busy = false
			if _, ok := k.kept[a]; ok {
				next = earliest(next, earliest(a.keep.extendAt, a.keep.markAt))
			}
		}
		if len(k.batch) > 0 {
			k.idle.Broadcast()
		}
		clear(k.batch)
		// An add since the scan may have scheduled an earlier wake-up.
		if !k.next.IsZero() {
			next = earliest(next, k.next)
		}
		k.next = next
		k.mu.Unlock()
		if !next.IsZero() {
			t.Reset(time.Until(next))
		}
	}
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// look extends a's lease and marks its record when due. a is busy, so its
// attempt does not settle meanwhile; its keepState is the keeper's to change
// (the scan no longer reads it while busy).
func (k *keeper) look(a *attempt, now time.Time) {
	defer func() {
		if v := recover(); v != nil {
			k.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "panic").Inc()
			a.newLogger().Error("lease keeper panicked; the lease is no longer extended", keyErr, fmt.Errorf("panic: %v", v))
			a.keep.extendAt, a.keep.markAt = time.Time{}, time.Time{}
		}
	}()
	ks := &a.keep
	ctx := a.r.jobCtx
	if !ks.extendAt.IsZero() && !now.Before(ks.extendAt) {
		err := a.r.c.Extend(ctx, a.d, ks.lease)
		ks.extendAt = time.Now().Add(ks.every)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			ks.extendAt, ks.markAt = time.Time{}, time.Time{}
			return
		case errors.Is(err, backends.ErrLeaseLost):
			ks.extendAt = time.Time{}
			k.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "lease_lost").Inc()
			a.newLogger().Warn("lease lost; another worker may process the job too", keyErr, err)
		default:
			k.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "extend").Inc()
			k.p.logs.log(a.newLogger(), slog.LevelWarn, "extend:"+a.r.queue, "lease extension failed", keyErr, err)
		}
	}
	if !ks.markAt.IsZero() && !now.Before(ks.markAt) && ctx.Err() == nil {
		ks.markAt = time.Time{} // once, whatever happens
		err := a.results.Update(ctx, a.res, a.cfg.Results.TTL)
		switch {
		case err == nil, ctx.Err() != nil, errors.Is(err, backends.ErrFinished):
		default:
			// The status lags; the job goes on.
			k.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "results").Inc()
			k.p.logs.log(a.newLogger(), slog.LevelWarn, "results:"+a.r.queue, "could not mark the job processing", keyErr, err)
		}
	}
}
