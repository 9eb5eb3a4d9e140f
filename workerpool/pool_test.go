package workerpool

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
	"github.com/openhqm/openhqm/config"
)

func TestCompletedStoresAnswerVerbatim(t *testing.T) {
	tests := []struct {
		name   string
		status int
	}{
		{"created", http.StatusCreated},
		{"redirect", http.StatusFound},
		{"client error is the app's answer", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", "application/xml")
				w.Header().Set("X-App", "legacy")
				w.Header().Set("Connection", "X-Private")
				w.Header().Set("X-Private", "hop")
				w.Header().Add("Set-Cookie", "a=1")
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tt.status)
				fmt.Fprint(w, "<ok>\x00binary</ok>")
			})
			h := newHarness(t, testConfig(t, a.URL), harnessOptions{})
			h.start()
			job := h.submit("jobs", &backends.Job{
				Route: "orders", Method: "POST", Path: "/orders/7", Query: "x=1&y=%20",
				Headers: []backends.Header{{Name: "X-Custom", Value: "c"}, {Name: "Idempotency-Key", Value: "client-key"}},
				Body:    []byte(`{"n":1}`),
			})
			r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)

			want := &backends.Result{
				ID: job.ID, Route: "orders", Status: backends.StatusCompleted, Attempts: 1,
				StatusCode: tt.status,
				Headers: []backends.Header{
					{Name: "Content-Type", Value: "application/xml"},
					{Name: "Set-Cookie", Value: "a=1"},
					{Name: "Date", Value: r.Headers[len(r.Headers)-1].Value},
					{Name: "Location", Value: "/elsewhere"},
					{Name: "X-App", Value: "legacy"},
				},
				Body: []byte("<ok>\x00binary</ok>"),
			}
			got := *r
			got.Headers = slices.Clone(r.Headers)
			slices.SortFunc(got.Headers[2:], func(a, b backends.Header) int { return strings.Compare(a.Name, b.Name) })
			slices.SortFunc(want.Headers[2:], func(a, b backends.Header) int { return strings.Compare(a.Name, b.Name) })
			got.SubmittedAt, got.StartedAt, got.UpdatedAt, got.CompletedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if d := cmp.Diff(want, &got); d != "" {
				t.Errorf("result (-want +got):\n%s", d)
			}
			if r.StartedAt.IsZero() || r.CompletedAt.Before(r.StartedAt) {
				t.Errorf("times: started %v completed %v", r.StartedAt, r.CompletedAt)
			}
			wantSeen := []seen{{Method: "POST", URI: "/orders/7?x=1&y=%20", Body: `{"n":1}`, IdempotencyKey: job.ID, Custom: "c"}}
			if d := cmp.Diff(wantSeen, a.seen()); d != "" {
				t.Errorf("app saw (-want +got):\n%s", d)
			}
			h.stop()
			if s := h.stats("jobs"); s.Depth != 0 {
				t.Errorf("depth after completion = %d, want 0 (acked)", s.Depth)
			}
			if got := h.metric("openhqm_worker_jobs_total", map[string]string{"queue": "jobs", "endpoint": "app", "outcome": "completed"}); got != 1 {
				t.Errorf("jobs_total completed = %v, want 1", got)
			}
		})
	}
}

func TestRetryThenComplete(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "done")
	})
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{})
	h.start()
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
	if r.Status != backends.StatusCompleted || r.Attempts != 3 || string(r.Body) != "done" || r.Error != "" {
		t.Errorf("result = %s attempts %d body %q error %q; want completed, 3, done, no error", r.Status, r.Attempts, r.Body, r.Error)
	}
	keys := []string{}
	for _, s := range a.seen() {
		keys = append(keys, s.IdempotencyKey)
	}
	if d := cmp.Diff([]string{job.ID, job.ID, job.ID}, keys); d != "" {
		t.Errorf("Idempotency-Key per attempt (-want +got):\n%s", d)
	}
	// The completed record keeps the outcomes of the two failed attempts.
	wantHistory := []backends.Attempt{
		{Number: 1, StatusCode: 503, Error: "upstream answered 503 Service Unavailable"},
		{Number: 2, StatusCode: 503, Error: "upstream answered 503 Service Unavailable"},
	}
	if d := cmp.Diff(wantHistory, r.History, cmpopts.IgnoreFields(backends.Attempt{}, "At")); d != "" {
		t.Errorf("history (-want +got):\n%s", d)
	}
	if len(r.History) == 2 && (r.History[0].At.IsZero() || r.History[1].At.Before(r.History[0].At)) {
		t.Errorf("history times %v, %v: want set, in order", r.History[0].At, r.History[1].At)
	}
	h.stop()
	for outcome, want := range map[string]float64{"retried": 2, "completed": 1, "failed": 0} {
		if got := h.metric("openhqm_worker_jobs_total", map[string]string{"queue": "jobs", "endpoint": "app", "outcome": outcome}); got != want {
			t.Errorf("jobs_total{outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	if got := h.metric("openhqm_worker_errors_total", map[string]string{"queue": "jobs", "endpoint": "app", "reason": "5xx"}); got != 2 {
		t.Errorf("errors_total{reason=5xx} = %v, want 2", got)
	}
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name     string
		route    string
		mutate   func(*config.Config)
		attempts int
	}{
		{"route policy", "orders", nil, 3},
		{"submit api policy", "", func(c *config.Config) { c.SubmitAPI.Retry.Attempts = 2 }, 2},
		{"retries disabled", "orders", func(c *config.Config) { c.Routes[0].Retry.Attempts = 1 }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintf(w, "boom %d", n)
			})
			cfg := testConfig(t, a.URL)
			if tt.mutate != nil {
				tt.mutate(cfg)
			}
			h := newHarness(t, cfg, harnessOptions{})
			h.start()
			job := h.submit("jobs", &backends.Job{Route: tt.route})
			r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
			h.stop()
			wantBody := fmt.Sprintf("boom %d", tt.attempts)
			if r.Status != backends.StatusFailed || r.Attempts != tt.attempts || r.StatusCode != 500 || string(r.Body) != wantBody {
				t.Errorf("result = %s attempts %d last %d %q; want failed, %d, 500 %q", r.Status, r.Attempts, r.StatusCode, r.Body, tt.attempts, wantBody)
			}
			if !strings.Contains(r.Error, "500") {
				t.Errorf("error %q does not name the status", r.Error)
			}
			if len(r.History) != tt.attempts {
				t.Fatalf("history has %d attempts, want %d: %+v", len(r.History), tt.attempts, r.History)
			}
			for i, o := range r.History {
				if o.Number != i+1 || o.StatusCode != 500 || o.Uncounted || !strings.Contains(o.Error, "500") {
					t.Errorf("history[%d] = %+v, want attempt %d answered 500", i, o, i+1)
				}
			}
			if last := r.History[len(r.History)-1]; last.Error != r.Error {
				t.Errorf("last history entry %q, want the record's error %q", last.Error, r.Error)
			}
			if n := len(a.seen()); n != tt.attempts {
				t.Errorf("app saw %d requests, want %d", n, tt.attempts)
			}
			dls, err := h.queues["jobs"].DeadLetters(context.Background(), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(dls) != 1 {
				t.Fatalf("dead letters = %d, want 1", len(dls))
			}
			dl := dls[0]
			if dl.Job.ID != job.ID || dl.Reason != r.Error || dl.Attempts != tt.attempts || dl.LastStatus != 500 || string(dl.LastBody) != wantBody {
				t.Errorf("dead letter = job %s reason %q attempts %d last %d %q", dl.Job.ID, dl.Reason, dl.Attempts, dl.LastStatus, dl.LastBody)
			}
			if s := h.stats("jobs"); s.Depth != 0 {
				t.Errorf("depth = %d, want 0 (dead-lettered jobs are acked)", s.Depth)
			}
		})
	}
}

func TestEndpointRemovedFailsJob(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {})
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{})
	h.start()
	job := h.submit("jobs", &backends.Job{Route: "orders", Endpoint: "gone"})
	r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
	if r.Status != backends.StatusFailed || !strings.Contains(r.Error, `endpoint "gone"`) || r.Attempts != 1 {
		t.Errorf("result = %s %q attempts %d", r.Status, r.Error, r.Attempts)
	}
	if len(r.History) != 0 {
		t.Errorf("history %+v: nothing was sent to an app, want none", r.History)
	}
	dls, _ := h.queues["jobs"].DeadLetters(context.Background(), 10)
	if len(dls) != 1 || dls[0].Reason != r.Error {
		t.Errorf("dead letters = %+v", dls)
	}
}

// recordingQueue records the delays the pool nacks with.
type recordingQueue struct {
	*memory.Queue
	mu     sync.Mutex
	delays []time.Duration
}

func (q *recordingQueue) Nack(ctx context.Context, d *backends.Delivery, delay time.Duration) error {
	q.mu.Lock()
	q.delays = append(q.delays, delay)
	q.mu.Unlock()
	return q.Queue.Nack(ctx, d, delay)
}

// TestRetryAfterPausesTheEndpoint: a 429 with Retry-After pauses the
// endpoint's jobs for the time the app asked; the job waits it out in place
// (no nack, no lease churn) and the attempt is not charged.
func TestRetryAfterPausesTheEndpoint(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "ok")
	})
	var rq *recordingQueue
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{wrapQueue: func(q *memory.Queue) Consumer {
		rq = &recordingQueue{Queue: q}
		return rq
	}})
	h.start()
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
	if r.Status != backends.StatusCompleted || r.Attempts != 1 {
		t.Errorf("result = %s attempts %d; want completed, the paused attempt not charged", r.Status, r.Attempts)
	}
	if n := len(a.seen()); n != 2 {
		t.Errorf("app saw %d requests, want 2", n)
	}
	rq.mu.Lock()
	defer rq.mu.Unlock()
	if len(rq.delays) != 0 {
		t.Errorf("nacked with %v; the job should have waited in place", rq.delays)
	}
}

// TestLongRetryAfterReturnsTheJobUncharged: a pause longer than a job
// should hold its worker slot returns the job to the queue with that delay,
// still uncharged.
func TestLongRetryAfterReturnsTheJobUncharged(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	var rq *recordingQueue
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{wrapQueue: func(q *memory.Queue) Consumer {
		rq = &recordingQueue{Queue: q}
		return rq
	}})
	h.start()
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	waitFor(t, func() bool { rq.mu.Lock(); defer rq.mu.Unlock(); return len(rq.delays) == 1 })
	rq.mu.Lock()
	if rq.delays[0] != 120*time.Second {
		t.Errorf("nack delay %v, want the 120s the app asked", rq.delays[0])
	}
	rq.mu.Unlock()
	r, err := h.results.Get(context.Background(), job.ID)
	if err != nil || r.Status != backends.StatusPending || r.Attempts != 0 {
		t.Fatalf("record %+v (%v), want pending with no attempt charged", r, err)
	}
	if len(r.History) != 1 || !r.History[0].Uncounted || r.History[0].StatusCode != 503 || r.History[0].Number != 1 {
		t.Errorf("history %+v, want one uncounted attempt 1 answered 503", r.History)
	}
}

// TestSlotWaitIsNotAnAttempt: jobs that wait longer than their timeout for
// one of the endpoint's slots were never sent. They wait on, uncharged,
// instead of failing as an ambiguous timeout: every POST completes with
// one request to the app.
func TestSlotWaitIsNotAnAttempt(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(120 * time.Millisecond)
		fmt.Fprint(w, "done")
	})
	cfg := testConfig(t, a.URL)
	cfg.Endpoints["app"].Timeout = 300 * time.Millisecond
	cfg.Endpoints["app"].MaxConcurrency = 1
	h := newHarness(t, cfg, harnessOptions{concurrency: 6})
	h.start()
	var jobs []*backends.Job
	for range 6 {
		jobs = append(jobs, h.submit("jobs", &backends.Job{Route: "orders", Method: "POST"}))
	}
	for _, j := range jobs {
		r := h.wait(j.ID, backends.StatusCompleted, backends.StatusFailed)
		if r.Status != backends.StatusCompleted || r.Attempts != 1 {
			t.Errorf("job %s: %s after %d attempts (%q); want completed at the first", j.ID, r.Status, r.Attempts, r.Error)
		}
	}
	if n := len(a.seen()); n != len(jobs) {
		t.Errorf("the app saw %d requests, want %d", n, len(jobs))
	}
}

func TestAmbiguousFailureOfNonIdempotentRequest(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		idempotent bool
		want       backends.Status
		requests   int
	}{
		{"POST is not replayed", "POST", false, backends.StatusFailed, 1},
		{"PATCH is not replayed", "PATCH", false, backends.StatusFailed, 1},
		{"POST on an idempotent route is replayed", "POST", true, backends.StatusCompleted, 2},
		{"PUT is idempotent by RFC 9110", "PUT", false, backends.StatusCompleted, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					<-release // answer only after the worker gave up
				}
				fmt.Fprint(w, "ok")
			})
			t.Cleanup(func() { close(release) })
			cfg := testConfig(t, a.URL)
			cfg.Routes[0].Timeout = 100 * time.Millisecond
			cfg.Routes[0].Idempotent = tt.idempotent
			h := newHarness(t, cfg, harnessOptions{})
			h.start()
			job := h.submit("jobs", &backends.Job{Route: "orders", Method: tt.method})
			r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
			if r.Status != tt.want {
				t.Errorf("status = %s (%q), want %s", r.Status, r.Error, tt.want)
			}
			if tt.want == backends.StatusFailed && !strings.Contains(r.Error, "not idempotent") {
				t.Errorf("error %q does not say why the job was not retried", r.Error)
			}
			if n := len(a.seen()); n != tt.requests {
				t.Errorf("app saw %d requests, want %d", n, tt.requests)
			}
		})
	}
}

func TestJobCompletesAfterConfigChange(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(150 * time.Millisecond)
		fmt.Fprint(w, "answer of the new endpoint")
	})
	down := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {})
	downURL := down.URL
	down.Close() // connection refused from now on

	cfg := testConfig(t, downURL)
	cfg.Routes[0].Retry.Initial = 300 * time.Millisecond
	cfg.Routes[0].Retry.Max = 300 * time.Millisecond
	cfg.Routes[0].Retry.Backoff = "constant"
	cfg.Routes[0].Timeout = 100 * time.Millisecond
	h := newHarness(t, cfg, harnessOptions{})
	h.start()
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	r := h.wait(job.ID, backends.StatusPending, backends.StatusFailed)
	for r.Status == backends.StatusPending && r.Error == "" {
		r = h.wait(job.ID, backends.StatusPending, backends.StatusFailed)
	}
	if r.Status != backends.StatusPending || r.Attempts != 1 {
		t.Fatalf("after the first attempt: %s attempts %d %q", r.Status, r.Attempts, r.Error)
	}

	// A reload: the endpoint moves and the route's timeout is raised above
	// the app's latency (the old 100ms would time the job out).
	next := testConfig(t, a.URL)
	next.Routes[0].Timeout = 2 * time.Second
	h.cfg.Store(next)
	r = h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
	if r.Status != backends.StatusCompleted || string(r.Body) != "answer of the new endpoint" || r.Attempts != 2 {
		t.Errorf("result = %s attempts %d %q %q", r.Status, r.Attempts, r.Body, r.Error)
	}
}

func TestDrainFinishesInFlightAndLeavesQueued(t *testing.T) {
	started := make(chan struct{}, 10)
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "ok")
	})
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{concurrency: 2, batch: 2})
	var jobs []*backends.Job
	for range 5 {
		jobs = append(jobs, h.submit("jobs", &backends.Job{Route: "orders"}))
	}
	h.start()
	<-started
	<-started
	h.stop() // like SIGTERM: returns once the two in-flight jobs are done

	completed := 0
	for _, j := range jobs {
		r, err := h.results.Get(context.Background(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch r.Status {
		case backends.StatusCompleted:
			completed++
		case backends.StatusPending:
		default:
			t.Errorf("job %s is %s after drain", j.ID, r.Status)
		}
	}
	if completed != 2 || len(a.seen()) != 2 {
		t.Errorf("completed %d, app saw %d; want the 2 in flight", completed, len(a.seen()))
	}
	if s := h.stats("jobs"); s.Depth != 3 || s.Pending != 0 {
		t.Errorf("queue after drain: depth %d leased %d; want 3 waiting, none leased", s.Depth, s.Pending)
	}
}

// TestDrainTimeoutLeavesJobUnacked: a job still running when the drain time
// is over is abandoned: neither stored nor acked. It ran long enough to be
// marked processing, which it stays.
func TestDrainTimeoutLeavesJobUnacked(t *testing.T) {
	started := make(chan struct{}, 1)
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		started <- struct{}{}
		time.Sleep(time.Second)
		fmt.Fprint(w, "late")
	})
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{drain: 3 * markAfter})
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	h.start()
	<-started
	h.stop()
	r, err := h.results.Get(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != backends.StatusProcessing {
		t.Errorf("status = %s, want processing (abandoned, not stored)", r.Status)
	}
	if s := h.stats("jobs"); s.Depth != 1 || s.Pending != 1 {
		t.Errorf("queue: depth %d leased %d; want the job still leased, unacked", s.Depth, s.Pending)
	}
}

func TestReconcile(t *testing.T) {
	release := make(chan struct{})
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/slow" {
			<-release
		}
		fmt.Fprint(w, "ok")
	})
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{})
	jobs, other := h.queues["jobs"], h.queues["other"]
	h.start()

	// Only "jobs" is consumed.
	j1 := h.submit("jobs", &backends.Job{Route: "orders"})
	o1 := h.submit("other", &backends.Job{Route: "orders"})
	h.wait(j1.ID, backends.StatusCompleted)
	time.Sleep(100 * time.Millisecond)
	if s := h.stats("other"); s.Depth != 1 {
		t.Fatalf("other depth = %d before it is consumed", s.Depth)
	}

	// Add "other", keep "jobs" (same value: not restarted).
	done := h.pool.Reconcile(map[string]Consumer{"jobs": jobs, "other": other})
	<-done
	h.wait(o1.ID, backends.StatusCompleted)

	// Remove "jobs" while one of its jobs is in flight: it drains.
	slow := h.submit("jobs", &backends.Job{Route: "orders", Path: "/slow"})
	h.wait(slow.ID, backends.StatusProcessing)
	done = h.pool.Reconcile(map[string]Consumer{"other": other})
	select {
	case <-done:
		t.Fatal("removed queue finished before its in-flight job")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-done
	if r := h.wait(slow.ID, backends.StatusCompleted, backends.StatusFailed); r.Status != backends.StatusCompleted {
		t.Errorf("in-flight job of a removed queue: %s", r.Status)
	}
	j2 := h.submit("jobs", &backends.Job{Route: "orders"})
	o2 := h.submit("other", &backends.Job{Route: "orders"})
	h.wait(o2.ID, backends.StatusCompleted)
	time.Sleep(100 * time.Millisecond)
	if r, _ := h.results.Get(context.Background(), j2.ID); r.Status != backends.StatusPending {
		t.Errorf("job on a removed queue is %s, want pending", r.Status)
	}
	if got := h.metric("openhqm_queue_depth", map[string]string{"queue": "other"}); got != 0 {
		t.Errorf("openhqm_queue_depth{other} = %v, want 0", got)
	}
	fams, _ := h.reg.Gather()
	for _, f := range fams {
		if f.GetName() == "openhqm_queue_depth" && len(f.GetMetric()) != 1 {
			t.Errorf("openhqm_queue_depth has %d series, want only the consumed queue", len(f.GetMetric()))
		}
	}
}

// flakyResults fails the first failUpdates updates to a finished status, and
// panics on the first Get when panicGet is set.
type flakyResults struct {
	*memory.Results
	failUpdates atomic.Int32
	panicGet    atomic.Bool
}

func (f *flakyResults) Update(ctx context.Context, r *backends.Result, ttl time.Duration) error {
	if r.Status == backends.StatusCompleted && f.failUpdates.Add(-1) >= 0 {
		return fmt.Errorf("redis: %w", backends.ErrUnavailable)
	}
	return f.Results.Update(ctx, r, ttl)
}

func (f *flakyResults) Get(ctx context.Context, id string) (*backends.Result, error) {
	if f.panicGet.CompareAndSwap(true, false) {
		panic("results exploded")
	}
	return f.Results.Get(ctx, id)
}

func TestFailuresAroundTheJob(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*flakyResults)
		requests int
	}{
		{"store failure is not acked and the job is redelivered", func(f *flakyResults) { f.failUpdates.Store(1) }, 2},
		{"panic becomes a nack", func(f *flakyResults) { f.panicGet.Store(true) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) { fmt.Fprint(w, "ok") })
			var fr *flakyResults
			h := newHarness(t, testConfig(t, a.URL), harnessOptions{wrapResults: func(r *memory.Results) Results {
				fr = &flakyResults{Results: r}
				tt.setup(fr)
				return fr
			}})
			h.start()
			job := h.submit("jobs", &backends.Job{Route: "orders"})
			r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
			if r.Status != backends.StatusCompleted {
				t.Errorf("status = %s %q", r.Status, r.Error)
			}
			if n := len(a.seen()); n != tt.requests {
				t.Errorf("app saw %d requests, want %d", n, tt.requests)
			}
			h.stop()
			if s := h.stats("jobs"); s.Depth != 0 {
				t.Errorf("depth = %d, want 0", s.Depth)
			}
		})
	}
}

// TestRedeliveryOfFinishedJobDoesNotCallTheApp: a worker stored the outcome
// and died before acking; the redelivery acks without calling the app.
func TestRedeliveryOfFinishedJobDoesNotCallTheApp(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) { fmt.Fprint(w, "ok") })
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{})
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	now := time.Now()
	done := &backends.Result{ID: job.ID, Route: "orders", Status: backends.StatusCompleted, Attempts: 1,
		StartedAt: now, CompletedAt: now, UpdatedAt: now, StatusCode: 200, Body: []byte("stored")}
	if err := h.results.Update(context.Background(), done, time.Hour); err != nil {
		t.Fatal(err)
	}
	h.redeliver("jobs")
	h.start()
	deadline := time.Now().Add(10 * time.Second)
	for h.stats("jobs").Depth != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	h.stop()
	if s := h.stats("jobs"); s.Depth != 0 {
		t.Errorf("depth = %d, want the redelivery acked", s.Depth)
	}
	if n := len(a.seen()); n != 0 {
		t.Errorf("app saw %d requests, want 0", n)
	}
	if r, _ := h.results.Get(context.Background(), job.ID); string(r.Body) != "stored" {
		t.Errorf("stored result changed: %q", r.Body)
	}
}

// TestEveryAttemptGivesItsSnapshotBack: the process retires a configuration
// generation when the last attempt using it gives it back, so every attempt
// must, however it ends (completed, retried, dead-lettered, panicked).
func TestEveryAttemptGivesItsSnapshotBack(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/flaky":
			if n%2 == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprint(w, "ok")
	})
	cfg := testConfig(t, a.URL)
	for _, r := range cfg.Routes {
		r.Retry.Initial, r.Retry.Max = time.Millisecond, time.Millisecond
	}
	h := newHarness(t, cfg, harnessOptions{concurrency: 4})
	h.start()
	var ids []string
	for i := range 12 {
		path := []string{"/ok", "/fail", "/flaky"}[i%3]
		ids = append(ids, h.submit("jobs", &backends.Job{Route: "orders", Method: "PUT", Path: path}).ID)
	}
	for _, id := range ids {
		h.wait(id, backends.StatusCompleted, backends.StatusFailed)
	}
	h.stop()
	acq, rel := h.acquired.Load(), h.released.Load()
	if acq < int64(len(ids)) || acq != rel {
		t.Errorf("snapshots acquired %d, released %d; want every one released, at least %d", acq, rel, len(ids))
	}
}

// TestOpenBreakerHoldsJobsUncharged: while the app is down the breaker
// opens after two failures; jobs then wait, unsent and uncharged, while one
// probe a turn tests the app; once it is back every job completes, although
// each may fail only twice.
func TestOpenBreakerHoldsJobsUncharged(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	})
	cfg := testConfig(t, a.URL)
	cfg.Endpoints["app"].CircuitBreaker = &config.CircuitBreaker{Failures: 2, OpenFor: 20 * time.Millisecond}
	for _, r := range cfg.Routes {
		r.Retry.Attempts = 2
	}
	h := newHarness(t, cfg, harnessOptions{concurrency: 8})
	h.start()
	var ids []string
	for range 10 {
		ids = append(ids, h.submit("jobs", &backends.Job{Route: "orders", Method: "PUT", Path: "/x"}).ID)
	}
	waitFor(t, func() bool { return len(a.seen()) >= 8 }) // two failures, then probes
	down.Store(false)
	for _, id := range ids {
		if r := h.wait(id, backends.StatusCompleted, backends.StatusFailed); r.Status != backends.StatusCompleted {
			t.Errorf("job %s ended %s: %s", id, r.Status, r.Error)
		}
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without Current succeeded")
	}
}

// TestAnswerOverResultsMaxBodySizeFailsJob: an answer larger than
// results.max_body_size is not stored; the job fails at once (retrying
// would get the same answer) and says why, with the sizes.
func TestAnswerOverResultsMaxBodySizeFailsJob(t *testing.T) {
	const limit = 1 << 20
	big := strings.Repeat("x", 2*limit)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"content-length", "/length", fmt.Sprintf("the app's answer is %d bytes, over results.max_body_size (%d bytes)", len(big), limit)},
		{"chunked", "/chunked", fmt.Sprintf("the app's answer is over results.max_body_size (%d bytes)", limit)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.URL.Path == "/length" {
					w.Header().Set("Content-Length", strconv.Itoa(len(big)))
				}
				_, _ = io.WriteString(w, big)
			})
			cfg := testConfig(t, a.URL)
			cfg.Results.MaxBodySize = limit
			h := newHarness(t, cfg, harnessOptions{})
			h.start()
			job := h.submit("jobs", &backends.Job{Route: "orders", Endpoint: "app", Method: "GET", Path: tc.path})
			r := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
			if r.Status != backends.StatusFailed || !strings.Contains(r.Error, tc.want) || r.Attempts != 1 {
				t.Errorf("result = %s %q attempts %d; want failed with %q after 1 attempt", r.Status, r.Error, r.Attempts, tc.want)
			}
			if len(r.Body) != 0 {
				t.Errorf("stored %d bytes of the answer", len(r.Body))
			}
		})
	}
}
