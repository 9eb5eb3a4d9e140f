package workerpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
)

func TestHeartbeatKeepsLongJobLeased(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(600 * time.Millisecond) // several leases long
		fmt.Fprint(w, "slow but fine")
	})
	cfg := testConfig(t, a.URL)
	cfg.Queues["jobs"].Lease = 150 * time.Millisecond
	h := newHarness(t, cfg, harnessOptions{})
	h.start()
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
	if r.Status != backends.StatusCompleted || r.Attempts != 1 {
		t.Errorf("result = %s attempts %d %q", r.Status, r.Attempts, r.Error)
	}
	if n := len(a.seen()); n != 1 {
		t.Errorf("app saw %d requests; the lease expired and the job was redelivered", n)
	}
}

func TestConcurrencyIsBoundedAcrossQueues(t *testing.T) {
	var now, peak atomic.Int32
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		c := now.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		now.Add(-1)
		fmt.Fprint(w, "ok")
	})
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{concurrency: 3, batch: 10})
	h.pool.Reconcile(map[string]Consumer{"jobs": h.queues["jobs"], "other": h.queues["other"]})
	var jobs []*backends.Job
	for i := range 30 {
		q := "jobs"
		if i%2 == 1 {
			q = "other"
		}
		jobs = append(jobs, h.submit(q, &backends.Job{Route: "orders"}))
	}
	h.start()
	for _, j := range jobs {
		h.wait(j.ID, backends.StatusCompleted)
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrent requests = %d, want 2..3 (concurrency 3)", p)
	}
	if got := h.metric("openhqm_worker_processing_duration_seconds", map[string]string{"queue": "other", "endpoint": "app"}); got != 15 {
		t.Errorf("duration observations for queue other = %v, want 15", got)
	}
	if got := h.metric("openhqm_worker_active", map[string]string{"queue": "jobs"}); got != 0 {
		t.Errorf("openhqm_worker_active = %v after all jobs, want 0", got)
	}
}

// downQueue fails Receive while down is set, like a Redis that is restarting.
type downQueue struct {
	*memory.Queue
	down     atomic.Bool
	failures atomic.Int32
}

func (q *downQueue) Receive(ctx context.Context, consumer string, max int) ([]*backends.Delivery, error) {
	if q.down.Load() {
		q.failures.Add(1)
		return nil, fmt.Errorf("dial tcp: %w", backends.ErrUnavailable)
	}
	return q.Queue.Receive(ctx, consumer, max)
}

func TestReceiveFailuresAreRetriedWithBackoff(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) { fmt.Fprint(w, "ok") })
	var dq *downQueue
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{wrapQueue: func(q *memory.Queue) Consumer {
		dq = &downQueue{Queue: q}
		dq.down.Store(true)
		return dq
	}})
	h.start()
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	time.Sleep(400 * time.Millisecond)
	// 100ms, 200ms, ... with jitter: a handful of attempts, not a busy loop.
	if n := dq.failures.Load(); n < 2 || n > 6 {
		t.Errorf("%d receive attempts in 400ms while down, want a few (backoff)", n)
	}
	dq.down.Store(false)
	if r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed); r.Status != backends.StatusCompleted {
		t.Errorf("status after the backend came back = %s", r.Status)
	}
	if got := h.metric("openhqm_worker_errors_total", map[string]string{"queue": "jobs", "endpoint": "", "reason": "receive"}); got < 2 {
		t.Errorf("receive errors counted = %v", got)
	}
}

func TestJobThatNeverFinishesIsDeadLettered(t *testing.T) {
	// Three earlier attempts started and never stored an outcome (workers
	// killed mid-request); the fourth delivery gives up without calling the app.
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) { fmt.Fprint(w, "ok") })
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{})
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	r := &backends.Result{ID: job.ID, Route: "orders", Status: backends.StatusProcessing, Attempts: 3, StartedAt: time.Now()}
	if err := h.results.Update(context.Background(), r, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		h.redeliver("jobs")
	}
	h.start()
	got := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
	if got.Status != backends.StatusFailed || !strings.Contains(got.Error, "without an outcome") {
		t.Errorf("result = %s %q", got.Status, got.Error)
	}
	if n := len(a.seen()); n != 0 {
		t.Errorf("app saw %d requests, want 0", n)
	}
}

func TestRunTwice(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {})
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.pool.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := h.pool.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}
