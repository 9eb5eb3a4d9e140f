package upstream

import (
	"context"
	"sync"
	"time"
)

// BreakerState is the state of an endpoint's circuit breaker.
type BreakerState int

const (
	// Closed: requests flow; consecutive failures are counted.
	Closed BreakerState = iota
	// Open: the app is taken to be down; nothing is sent until open_for
	// has passed.
	Open
	// HalfOpen: one probe is in flight; its outcome closes or reopens.
	HalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "closed"
}

// breaker stops an endpoint from being hammered while its app is down. After
// Failures consecutive failures (connect, timeout, reset, 5xx) it opens;
// while open, sync requests are refused at once and jobs wait without being
// sent. After OpenFor it lets exactly one request through as a probe: the
// oldest waiting job, else the next request of any kind. A probe that
// succeeds closes the breaker and releases every waiting job; one that fails
// reopens it, and the job that probed goes to the back of the line, so a job
// that fails for reasons of its own cannot keep the breaker open. It is safe
// for concurrent use.
type breaker struct {
	failures int
	openFor  time.Duration
	now      func() time.Time
	onChange func(from, to BreakerState)

	mu      sync.Mutex
	state   BreakerState
	fails   int
	until   time.Time     // Open: when a probe may go
	closed  chan struct{} // closed when the breaker closes; replaced when it opens
	jobs    []chan bool   // waiting jobs, oldest first; receives true: you probe
	timer   *time.Timer   // fires at until, to hand the probe to a waiting job
	stopped bool
}

func newBreaker(failures int, openFor time.Duration, onChange func(from, to BreakerState)) *breaker {
	if failures <= 0 {
		return nil
	}
	if openFor <= 0 {
		openFor = 5 * time.Second
	}
	closed := make(chan struct{})
	close(closed)
	return &breaker{failures: failures, openFor: openFor, now: time.Now, onChange: onChange, closed: closed}
}

// allow decides for a request about to be sent without waiting (a sync
// request). It answers probe true when the request is the half-open probe
// (the caller must then report its outcome with done), and the time left
// before a probe may go when the breaker refuses.
func (b *breaker) allow() (probe bool, retryAfter time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Closed:
		return false, 0, true
	case Open:
		now := b.now()
		if now.Before(b.until) {
			return false, b.until.Sub(now), false
		}
		if len(b.jobs) > 0 {
			// The probe belongs to the oldest waiting job.
			b.handProbeLocked()
			return false, b.openFor, false
		}
		b.setLocked(HalfOpen)
		return true, 0, true
	}
	return false, b.openFor, false // a probe is in flight
}

// wait blocks a job until it may be sent: at once while the breaker is
// closed (probe false), or when it is this job's turn to probe (probe true;
// report the outcome with done). It returns ctx's error when ctx ends first.
// A waiting job costs no CPU: it sleeps on a channel.
func (b *breaker) wait(ctx context.Context) (probe bool, err error) {
	b.mu.Lock()
	if b.state == Closed {
		b.mu.Unlock()
		return false, nil
	}
	turn := make(chan bool, 1)
	b.jobs = append(b.jobs, turn)
	closed := b.closed
	if b.state == Open && !b.now().Before(b.until) {
		b.handProbeLocked()
	}
	b.mu.Unlock()
	select {
	case p := <-turn:
		return p, nil
	case <-closed:
		if !b.leave(turn) {
			// It reopened meanwhile and handed this job the probe.
			return <-turn, nil
		}
		return false, nil
	case <-ctx.Done():
		if b.leave(turn) {
			return false, ctx.Err()
		}
		// The probe was handed over as ctx ended: give it back.
		if <-turn {
			b.abandon()
		}
		return false, ctx.Err()
	}
}

// leave removes a waiting job; it reports false when the job was no longer
// waiting (it was handed the probe, or released).
func (b *breaker) leave(turn chan bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range b.jobs {
		if c == turn {
			b.jobs = append(b.jobs[:i], b.jobs[i+1:]...)
			return true
		}
	}
	return false
}

// handProbeLocked moves the breaker to half-open and makes the oldest
// waiting job the probe.
func (b *breaker) handProbeLocked() {
	turn := b.jobs[0]
	b.jobs = b.jobs[1:]
	b.setLocked(HalfOpen)
	turn <- true
}

// done reports the outcome of a request that was sent. A probe's outcome
// decides the state; other failures count toward opening.
func (b *breaker) done(probe, failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !failed:
		b.fails = 0
		if probe || b.state != Closed {
			b.setLocked(Closed)
		}
	case probe:
		b.openLocked()
	case b.state == Closed:
		b.fails++
		if b.fails >= b.failures {
			b.openLocked()
		}
	}
}

// abandon gives back a probe that was never sent (its deadline passed
// while it waited for a concurrency slot): the next one may go at once.
func (b *breaker) abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != HalfOpen {
		return
	}
	b.setLocked(Open)
	b.until = b.now()
	if len(b.jobs) > 0 {
		b.handProbeLocked()
	}
}

func (b *breaker) openLocked() {
	b.fails = 0
	b.until = b.now().Add(b.openFor)
	b.setLocked(Open)
	if b.timer != nil {
		b.timer.Stop()
	}
	if !b.stopped {
		b.timer = time.AfterFunc(b.openFor, b.expire)
	}
}

// expire runs when open_for has passed: a waiting job, if any, probes.
func (b *breaker) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && !b.now().Before(b.until) && len(b.jobs) > 0 {
		b.handProbeLocked()
	}
}

func (b *breaker) setLocked(s BreakerState) {
	from := b.state
	if from == s {
		return
	}
	b.state = s
	switch {
	case s == Closed:
		close(b.closed)
	case from == Closed:
		b.closed = make(chan struct{})
	}
	if b.onChange != nil {
		b.onChange(from, s)
	}
}

// current is the state, for metrics and tests.
func (b *breaker) current() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// stop ends the timer; waiting jobs are released by their contexts.
func (b *breaker) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	if b.timer != nil {
		b.timer.Stop()
	}
}
