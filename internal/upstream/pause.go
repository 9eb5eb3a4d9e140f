package upstream

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pause holds back an endpoint's jobs until a time the app asked for (a 429
// or 503 with Retry-After): every worker of the process then waits instead
// of sending the app more of what it just refused.
type pause struct {
	untilNS atomic.Int64 // unix nanoseconds; 0: none
}

// until extends the pause to t (a pause never shortens).
func (p *pause) until(t time.Time) {
	ns := t.UnixNano()
	for {
		cur := p.untilNS.Load()
		if cur >= ns || p.untilNS.CompareAndSwap(cur, ns) {
			return
		}
	}
}

// wait sleeps while the pause lasts, counting itself in waiting; it returns
// ctx's error when ctx ends first.
func (p *pause) wait(ctx context.Context, waiting prometheus.Gauge) error {
	for {
		left := time.Until(time.Unix(0, p.untilNS.Load()))
		if left <= 0 {
			return nil
		}
		waiting.Inc()
		t := time.NewTimer(left)
		select {
		case <-t.C:
			waiting.Dec()
		case <-ctx.Done():
			t.Stop()
			waiting.Dec()
			return ctx.Err()
		}
	}
}
