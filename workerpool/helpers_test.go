package workerpool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/upstream"
)

// app is an upstream application on 127.0.0.1 that records what it receives.
type app struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

type seen struct {
	Method, URI, Body, IdempotencyKey, Custom string
}

func newApp(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *app {
	t.Helper()
	a := &app{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.reqs = append(a.reqs, seen{r.Method, r.RequestURI, string(body), r.Header.Get("Idempotency-Key"), r.Header.Get("X-Custom")})
		n := len(a.reqs)
		a.mu.Unlock()
		h(w, r, n)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *app) seen() []seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seen(nil), a.reqs...)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// testConfig is a configuration with endpoint "app", queues "jobs" and
// "other", route "orders" (retries in milliseconds) and a submit API.
func testConfig(t *testing.T, appURL string) *config.Config {
	t.Helper()
	retry := config.Retry{
		Attempts: 3, Backoff: "exponential", Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond,
		On: []config.RetryOn{config.RetryConnect, config.RetryTimeout, config.Retry5xx, config.Retry429},
	}
	return &config.Config{
		Endpoints: map[string]*config.Endpoint{
			"app": {Name: "app", URL: mustURL(t, appURL), Timeout: 5 * time.Second},
		},
		Queues: map[string]*config.Queue{
			"jobs":  {Name: "jobs", Backend: config.BackendMemory, Lease: 2 * time.Second},
			"other": {Name: "other", Backend: config.BackendMemory, Lease: 2 * time.Second},
		},
		Results: config.Results{Backend: config.BackendMemory, TTL: time.Hour},
		Routes: []*config.Route{
			{Name: "orders", Mode: config.ModeAsync, Endpoint: "app", Queue: "jobs", Retry: retry},
		},
		SubmitAPI: &config.SubmitAPI{Endpoint: "app", Queue: "jobs", Retry: retry},
	}
}

// harness runs a pool over memory queues and a memory result store.
type harness struct {
	t       *testing.T
	cfg     atomic.Pointer[config.Config]
	queues  map[string]*memory.Queue
	results *memory.Results
	store   Results // what the pool writes to (results, or a wrapper)
	reg     *prometheus.Registry
	pool    *Pool

	acquired, released atomic.Int64 // snapshots handed to attempts, and given back

	cancel context.CancelFunc
	done   chan error
}

type harnessOptions struct {
	concurrency, batch int
	drain              time.Duration
	wrapQueue          func(*memory.Queue) Consumer // default: the queue itself
	wrapResults        func(*memory.Results) Results
}

func newHarness(t *testing.T, cfg *config.Config, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, queues: map[string]*memory.Queue{}, reg: prometheus.NewRegistry()}
	h.cfg.Store(cfg)
	for name, q := range cfg.Queues {
		mq, err := memory.NewQueue(memory.QueueOptions{Name: name, Lease: q.Lease, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		h.queues[name] = mq
		t.Cleanup(func() { mq.Close() })
	}
	res, err := memory.NewResults(memory.ResultsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.results = res
	h.store = res
	if o.wrapResults != nil {
		h.store = o.wrapResults(res)
	}
	if o.drain == 0 {
		o.drain = 5 * time.Second
	}
	level := slog.LevelError
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	ups := upstream.NewPool(upstream.PoolOptions{})
	p, err := New(Options{
		Name:        "worker-1",
		Concurrency: o.concurrency,
		BatchSize:   o.batch,
		Drain:       o.drain,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Registry:    h.reg,
		Current: func() (*Snapshot, func()) {
			cfg := h.cfg.Load()
			h.acquired.Add(1)
			release := func() { h.released.Add(1) }
			if cfg == nil {
				return nil, release
			}
			eps := map[string]*upstream.Client{}
			for name, ep := range cfg.Endpoints {
				eps[name] = ups.Client(ep)
			}
			return &Snapshot{Config: cfg, Results: h.store, Endpoints: eps}, release
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.pool = p
	consumers := map[string]Consumer{}
	for name, q := range h.queues {
		if name != "jobs" {
			continue // tests add other queues with Reconcile
		}
		consumers[name] = q
		if o.wrapQueue != nil {
			consumers[name] = o.wrapQueue(q)
		}
	}
	p.Reconcile(consumers)
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.pool.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Fatal("Run did not return")
	}
}

func newID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// submit enqueues a job the way the router does: a pending record, then the job.
func (h *harness) submit(queue string, job *backends.Job) *backends.Job {
	h.t.Helper()
	if job.ID == "" {
		job.ID = newID(h.t)
	}
	if job.Queue == "" {
		job.Queue = queue
	}
	if job.Endpoint == "" {
		job.Endpoint = "app"
	}
	if job.Method == "" {
		job.Method = "POST"
	}
	if job.Path == "" {
		job.Path = "/orders"
	}
	job.CreatedAt = time.Now()
	ctx := context.Background()
	if err := h.results.Create(ctx, &backends.Result{ID: job.ID, Route: job.Route, Status: backends.StatusPending, SubmittedAt: job.CreatedAt}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.queues[queue].Enqueue(ctx, job); err != nil {
		h.t.Fatal(err)
	}
	return job
}

// redeliver makes the next delivery of a queued job a redelivery, as after
// a worker that died holding it: another consumer takes the job and returns
// it at once. Call it before start; it returns the delivery it took.
func (h *harness) redeliver(queue string) *backends.Delivery {
	h.t.Helper()
	ctx := context.Background()
	ds, err := h.queues[queue].Receive(ctx, "dead-worker", 1)
	if err != nil || len(ds) != 1 {
		h.t.Fatalf("Receive: %d deliveries, %v", len(ds), err)
	}
	if err := h.queues[queue].Nack(ctx, ds[0], 0); err != nil {
		h.t.Fatal(err)
	}
	return ds[0]
}

// wait polls the result of id until it has one of the statuses.
func (h *harness) wait(id string, statuses ...backends.Status) *backends.Result {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last *backends.Result
	for time.Now().Before(deadline) {
		r, err := h.results.Get(context.Background(), id)
		if err != nil && !errors.Is(err, backends.ErrNotFound) {
			h.t.Fatal(err)
		}
		if r != nil {
			last = r
			for _, s := range statuses {
				if r.Status == s {
					return r
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("job %s: no status %v in time; last record %+v", id, statuses, last)
	return nil
}

func (h *harness) stats(queue string) backends.Stats {
	h.t.Helper()
	s, err := h.queues[queue].Stats(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// counter returns the value of a counter or gauge with exactly these labels.
func (h *harness) metric(name string, labels map[string]string) float64 {
	h.t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// waitFor polls cond until it holds, failing after 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
