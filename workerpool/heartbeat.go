package workerpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// heartbeat extends a delivery's lease every lease/3 until stopped.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// stop ends the heartbeat and waits for it; safe to call more than once.
// After stop returns, the delivery belongs to the job goroutine alone.
func (h *heartbeat) stop() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		h.cancel()
		<-h.done
	})
}

func (p *Pool) startHeartbeat(a *attempt) *heartbeat {
	lease := defaultLease
	if a.cfg != nil && a.cfg.Queues[a.r.queue] != nil && a.cfg.Queues[a.r.queue].Lease > 0 {
		lease = a.cfg.Queues[a.r.queue].Lease
	} else if left := a.d.LeaseUntil.Sub(p.now()); left > 0 {
		lease = left
	}
	every := max(lease/3, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(a.r.jobCtx)
	h := &heartbeat{cancel: cancel, done: make(chan struct{})}
	go func() { // owned by the job: stop waits for it
		defer close(h.done)
		defer func() {
			if v := recover(); v != nil {
				p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "panic").Inc()
				a.log.Error("lease heartbeat panicked; the lease is no longer extended", keyErr, fmt.Errorf("panic: %v", v))
			}
		}()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := a.r.c.Extend(ctx, a.d, lease)
			switch {
			case err == nil:
			case ctx.Err() != nil:
				return
			case errors.Is(err, backends.ErrLeaseLost):
				p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "lease_lost").Inc()
				a.log.Warn("lease lost; another worker may process the job too", keyErr, err)
				return
			default:
				p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "extend").Inc()
				p.logs.log(a.log, slog.LevelWarn, "extend:"+a.r.queue, "lease extension failed", keyErr, err)
			}
		}
	}()
	return h
}
