package workerpool

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	redisbackend "github.com/openhqm/openhqm/backends/redis"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/testredis"
	"github.com/openhqm/openhqm/internal/upstream"
)

// settleCounter is a Redis queue that counts how the pool settles its jobs.
type settleCounter struct {
	*redisbackend.ResultsQueue
	acks, withResult atomic.Int32
}

func (q *settleCounter) Ack(ctx context.Context, d *backends.Delivery) error {
	q.acks.Add(1)
	return q.ResultsQueue.Ack(ctx, d)
}

func (q *settleCounter) AckWithResult(ctx context.Context, d *backends.Delivery, r *backends.Result, ttl time.Duration) error {
	q.withResult.Add(1)
	return q.ResultsQueue.AckWithResult(ctx, d, r, ttl)
}

// runRedisPool runs a pool over a Redis queue and store on s until the test ends.
func runRedisPool(t *testing.T, cfg *config.Config, c Consumer, store Results) {
	t.Helper()
	ups := upstream.NewPool(upstream.PoolOptions{})
	eps := map[string]*upstream.Client{}
	for name, ep := range cfg.Endpoints {
		eps[name] = ups.Client(ep)
	}
	snap := &Snapshot{Config: cfg, Results: store, Endpoints: eps}
	p, err := New(Options{Name: "w1", Concurrency: 16, BatchSize: 16, Current: func() (*Snapshot, func()) { return snap, func() {} }})
	if err != nil {
		t.Fatal(err)
	}
	p.Reconcile(map[string]Consumer{"jobs": c})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func redisPair(t *testing.T, s *testredis.Server, stream string) (*redisbackend.ResultsQueue, *redisbackend.Results) {
	t.Helper()
	ctx := context.Background()
	store, err := redisbackend.NewResults(ctx, redisbackend.ResultsOptions{URL: s.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	l := store.Layout()
	q, err := redisbackend.New(ctx, redisbackend.Options{URL: s.URL(), Stream: stream, Group: "g", Lease: 5 * time.Second, Results: &l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	rq, ok := q.WithResults()
	if !ok {
		t.Fatal("no ResultsQueue")
	}
	return rq, store
}

// With the queue and the results on one Redis, each outcome is stored with
// its ack in one step; a redelivery of a job whose outcome is stored is
// acked without calling the app.
func TestRedisOutcomeAndAckInOneStep(t *testing.T) {
	s := testredis.Start(t)
	var calls atomic.Int32
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		calls.Add(1)
		fmt.Fprint(w, "answer to ", r.URL.RawQuery)
	})
	cfg := testConfig(t, a.URL)
	q, store := redisPair(t, s, "jobs")
	ctx := context.Background()

	// A job whose outcome a dead worker stored without acking.
	finished := &backends.Job{ID: newID(t), Route: "orders", Endpoint: "app", Queue: "jobs", Method: "POST", Path: "/orders", CreatedAt: time.Now()}
	if err := q.Enqueue(ctx, finished); err != nil {
		t.Fatal(err)
	}
	ds, err := q.Receive(ctx, "dead-worker", 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Receive: %d, %v", len(ds), err)
	}
	now := time.Now()
	stored := &backends.Result{ID: finished.ID, Status: backends.StatusCompleted, Attempts: 1, CompletedAt: now, StatusCode: 200, Body: []byte("stored")}
	if err := store.Update(ctx, stored, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := q.Nack(ctx, ds[0], 0); err != nil {
		t.Fatal(err)
	}

	var ids []string
	for i := range 100 {
		job := &backends.Job{ID: newID(t), Route: "orders", Endpoint: "app", Queue: "jobs", Method: "POST", Path: "/orders",
			Query: fmt.Sprint("n=", i), CreatedAt: time.Now()}
		pending := &backends.Result{ID: job.ID, Route: job.Route, Status: backends.StatusPending, SubmittedAt: job.CreatedAt}
		if err := q.EnqueueWithResult(ctx, job, pending); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, job.ID)
	}
	sc := &settleCounter{ResultsQueue: q}
	runRedisPool(t, cfg, sc, store)
	for i, id := range ids {
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := store.Get(ctx, id)
			if err == nil && r.Status == backends.StatusCompleted {
				if want := fmt.Sprint("answer to n=", i); string(r.Body) != want || r.Attempts != 1 {
					t.Errorf("job %d: body %q attempts %d; want %q, 1", i, r.Body, r.Attempts, want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %d: %+v, %v", i, r, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(t, func() bool { st, err := q.Stats(ctx); return err == nil && st.Depth == 0 })
	if got := calls.Load(); got != 100 {
		t.Errorf("the app saw %d requests, want 100 (not the finished job)", got)
	}
	if r, err := store.Get(ctx, finished.ID); err != nil || string(r.Body) != "stored" {
		t.Errorf("the finished job's outcome: %+v, %v; want it unchanged", r, err)
	}
	if n := sc.withResult.Load(); n != 100 {
		t.Errorf("%d outcomes stored with their ack, want 100", n)
	}
	if n := sc.acks.Load(); n != 1 {
		t.Errorf("%d plain acks, want 1 (the finished job's redelivery)", n)
	}
}

// A store the queue does not write (another prefix here) gets the outcome
// with Update, then the delivery is acked.
func TestRedisOutcomeInAnotherStore(t *testing.T) {
	s := testredis.Start(t)
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) { fmt.Fprint(w, "ok") })
	q, _ := redisPair(t, s, "jobs")
	other, err := redisbackend.NewResults(context.Background(), redisbackend.ResultsOptions{URL: s.URL(), Prefix: "elsewhere:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	ctx := context.Background()
	job := &backends.Job{ID: newID(t), Route: "orders", Endpoint: "app", Queue: "jobs", Method: "POST", Path: "/orders", CreatedAt: time.Now()}
	if err := q.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	sc := &settleCounter{ResultsQueue: q}
	runRedisPool(t, testConfig(t, a.URL), sc, other)
	waitFor(t, func() bool {
		r, err := other.Get(ctx, job.ID)
		return err == nil && r.Status == backends.StatusCompleted
	})
	waitFor(t, func() bool { st, err := q.Stats(ctx); return err == nil && st.Depth == 0 })
	if sc.withResult.Load() != 0 || sc.acks.Load() != 1 {
		t.Errorf("settled with %d AckWithResult and %d Ack calls; want 0 and 1", sc.withResult.Load(), sc.acks.Load())
	}
}
