package upstream

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Priority orders the requests waiting for an endpoint's concurrency slot.
type Priority uint8

const (
	// Interactive is a sync request: a person waits on it, so it gets a
	// free slot before any waiting job.
	Interactive Priority = iota
	// Background is a job replayed by a worker.
	Background
)

// limiter bounds the requests in flight toward one endpoint
// (max_concurrency), shared by everything in the process that calls it (the
// sync proxy and the embedded workers). A released slot goes to the oldest
// waiting interactive request, else to the oldest waiting job. At most
// maxPending interactive requests wait; a job's wait is bounded by the worker
// pool's concurrency instead, so that queued jobs never crowd sync requests
// out. It is safe for concurrent use; taking a free slot allocates nothing.
//
// With an adaptive limit (adaptive_concurrency) max moves under the
// configured ceiling with the app's latency (see gradient): a lower max
// takes effect as slots are released, a higher one hands slots to waiters
// at once.
type limiter struct {
	mu         sync.Mutex
	max        int
	inUse      int
	maxPending int
	waiting    [2][]*waiter // by Priority, oldest first
	adaptive   *gradient    // nil: max is fixed
	onLimit    func(int)    // called, under mu, when an adaptive max changes, until retired
	retired    atomic.Bool  // a newer configuration's limiter replaced this one
}

type waiter struct {
	ready chan struct{} // receives once the slot is handed over
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ready: make(chan struct{}, 1)} }}

func newLimiter(maxConcurrency, maxPending int) *limiter {
	if maxConcurrency <= 0 {
		return nil
	}
	return &limiter{max: maxConcurrency, maxPending: maxPending}
}

// newAdaptiveLimiter is a limiter whose max moves between floor and
// maxConcurrency, from where the gradient starts. onLimit, when not nil, is
// told each new max until the limiter is retired.
func newAdaptiveLimiter(maxConcurrency, maxPending, floor int, tolerance float64, onLimit func(int)) *limiter {
	l := newLimiter(maxConcurrency, maxPending)
	if l != nil {
		l.adaptive = newGradient(floor, maxConcurrency, tolerance)
		l.onLimit = onLimit
		l.max = l.adaptive.current()
	}
	return l
}

// retire marks l replaced by a newer configuration's limiter; it still
// serves the requests and jobs that hold it, but no longer reports its
// max. A nil l is a no-op.
func (l *limiter) retire() {
	if l != nil {
		l.retired.Store(true)
	}
}

// observe feeds an adaptive limit one completed request, while its slot is
// still held; see gradient.sample.
func (l *limiter) observe(latency time.Duration, o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.adaptive.sample(latency, o, l.inUse)
	if n == 0 || n == l.max {
		return
	}
	l.max = n
	if l.onLimit != nil && !l.retired.Load() {
		l.onLimit(n)
	}
	for l.inUse < l.max && l.handOver() {
		l.inUse++
	}
}

// acquire takes a slot, waiting until deadline when none is free. An
// interactive request is refused at once with ErrOverloaded when
// maxPending interactive requests already wait. It reports how long it
// waited. Every nil return must be paired with release.
func (l *limiter) acquire(deadline time.Time, p Priority) (time.Duration, error) {
	l.mu.Lock()
	if l.inUse < l.max && len(l.waiting[Interactive]) == 0 && (p == Interactive || len(l.waiting[Background]) == 0) {
		l.inUse++
		l.mu.Unlock()
		return 0, nil
	}
	if p == Interactive && len(l.waiting[Interactive]) >= l.maxPending {
		l.mu.Unlock()
		return 0, ErrOverloaded
	}
	d := time.Until(deadline)
	if d <= 0 {
		l.mu.Unlock()
		return 0, errSlotTimeout
	}
	w := waiterPool.Get().(*waiter)
	l.waiting[p] = append(l.waiting[p], w)
	l.mu.Unlock()

	start := time.Now()
	t := fasthttp.AcquireTimer(d)
	defer fasthttp.ReleaseTimer(t)
	select {
	case <-w.ready:
		waiterPool.Put(w)
		return time.Since(start), nil
	case <-t.C:
	}
	l.mu.Lock()
	if i := indexOf(l.waiting[p], w); i >= 0 {
		l.waiting[p] = append(l.waiting[p][:i], l.waiting[p][i+1:]...)
		l.mu.Unlock()
		waiterPool.Put(w)
		return 0, errSlotTimeout
	}
	l.mu.Unlock()
	// The slot was handed over as the deadline passed: take it and give
	// it back, so the next waiter gets it.
	<-w.ready
	waiterPool.Put(w)
	l.release()
	return 0, errSlotTimeout
}

func indexOf(ws []*waiter, w *waiter) int {
	for i, x := range ws {
		if x == w {
			return i
		}
	}
	return -1
}

// release gives the slot to the oldest interactive waiter, else to the
// oldest waiting job, else frees it. A slot above a lowered max is freed.
func (l *limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inUse > l.max || !l.handOver() {
		l.inUse--
	}
}

// handOver gives a slot to the oldest interactive waiter, else to the
// oldest waiting job; false when none waits. Called under mu.
func (l *limiter) handOver() bool {
	for p := range l.waiting {
		if q := l.waiting[p]; len(q) > 0 {
			w := q[0]
			copy(q, q[1:])
			q[len(q)-1] = nil
			l.waiting[p] = q[:len(q)-1]
			w.ready <- struct{}{}
			return true
		}
	}
	return false
}

// busy is the number of slots in use.
func (l *limiter) busy() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inUse
}

// pending is the number of requests and jobs waiting for a slot.
func (l *limiter) pending() (interactive, background int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiting[Interactive]), len(l.waiting[Background])
}

// errSlotTimeout is preallocated: a saturated endpoint must not make every
// rejected request allocate.
var errSlotTimeout = &slotTimeoutError{}

type slotTimeoutError struct{}

func (*slotTimeoutError) Error() string   { return ErrTimeout.Error() + ": " + ErrSlotWait.Error() }
func (*slotTimeoutError) Unwrap() []error { return []error{ErrTimeout, ErrSlotWait} }
