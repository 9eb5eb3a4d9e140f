package upstream

import (
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// limiter bounds the requests in flight toward one endpoint
// (max_concurrency) and the requests allowed to wait for a slot
// (max_pending). It is safe for concurrent use. Acquiring a free slot
// allocates nothing; waiting uses a pooled timer.
type limiter struct {
	slots      chan struct{}
	pending    atomic.Int64
	maxPending int64
}

func newLimiter(maxConcurrency, maxPending int) *limiter {
	if maxConcurrency <= 0 {
		return nil
	}
	return &limiter{slots: make(chan struct{}, maxConcurrency), maxPending: int64(maxPending)}
}

// acquire takes a slot, waiting until deadline when none is free and fewer
// than maxPending requests already wait. Every nil return must be paired
// with release.
func (l *limiter) acquire(deadline time.Time) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if l.pending.Add(1) > l.maxPending {
		l.pending.Add(-1)
		return ErrOverloaded
	}
	defer l.pending.Add(-1)
	d := time.Until(deadline)
	if d <= 0 {
		return errSlotTimeout
	}
	t := fasthttp.AcquireTimer(d)
	defer fasthttp.ReleaseTimer(t)
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errSlotTimeout
	}
}

func (l *limiter) release() { <-l.slots }

// errSlotTimeout is preallocated: a saturated endpoint must not make every
// rejected request allocate.
var errSlotTimeout = &slotTimeoutError{}

type slotTimeoutError struct{}

func (*slotTimeoutError) Error() string   { return ErrTimeout.Error() + ": " + errSlotWait.Error() }
func (*slotTimeoutError) Unwrap() []error { return []error{ErrTimeout, errSlotWait} }
