package workerpool

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
)

// countingResults records the calls the pool makes to the result store.
type countingResults struct {
	*memory.Results
	gets     atomic.Int32
	mu       sync.Mutex
	statuses map[string][]backends.Status // per job, the statuses written in order
}

func (c *countingResults) Get(ctx context.Context, id string) (*backends.Result, error) {
	c.gets.Add(1)
	return c.Results.Get(ctx, id)
}

func (c *countingResults) Update(ctx context.Context, r *backends.Result, ttl time.Duration) error {
	c.mu.Lock()
	if c.statuses == nil {
		c.statuses = map[string][]backends.Status{}
	}
	c.statuses[r.ID] = append(c.statuses[r.ID], r.Status)
	c.mu.Unlock()
	return c.Results.Update(ctx, r, ttl)
}

func (c *countingResults) written(id string) []backends.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]backends.Status(nil), c.statuses[id]...)
}

// countingQueue records the lease extensions the pool asks for.
type countingQueue struct {
	*memory.Queue
	extends atomic.Int32
}

func (q *countingQueue) Extend(ctx context.Context, d *backends.Delivery, lease time.Duration) error {
	q.extends.Add(1)
	return q.Queue.Extend(ctx, d, lease)
}

// A first delivery that ends quickly reads no record and writes one: its
// outcome. Nothing extends its lease.
func TestShortJobWritesOnlyItsOutcome(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) { fmt.Fprint(w, "ok") })
	var cr *countingResults
	var cq *countingQueue
	cfg := testConfig(t, a.URL)
	cfg.Queues["jobs"].Lease = 3 * time.Second
	h := newHarness(t, cfg, harnessOptions{concurrency: 8,
		wrapResults: func(r *memory.Results) Results { cr = &countingResults{Results: r}; return cr },
		wrapQueue:   func(q *memory.Queue) Consumer { cq = &countingQueue{Queue: q}; return cq },
	})
	h.start()
	var ids []string
	for range 20 {
		ids = append(ids, h.submit("jobs", &backends.Job{Route: "orders"}).ID)
	}
	for _, id := range ids {
		h.wait(id, backends.StatusCompleted, backends.StatusFailed)
	}
	h.stop()
	for _, id := range ids {
		if d := cmp.Diff([]backends.Status{backends.StatusCompleted}, cr.written(id)); d != "" {
			t.Errorf("job %s: statuses written (-want +got):\n%s", id, d)
		}
	}
	if n := cr.gets.Load(); n != 0 {
		t.Errorf("the pool read %d records of first deliveries, want none", n)
	}
	if n := cq.extends.Load(); n != 0 {
		t.Errorf("%d lease extensions for jobs far shorter than a third of the lease", n)
	}
}

// A first delivery that runs longer than markAfter is marked processing
// while it runs, with its start time and attempt.
func TestLongJobIsMarkedProcessing(t *testing.T) {
	release := make(chan struct{})
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		<-release
		fmt.Fprint(w, "ok")
	})
	var cr *countingResults
	h := newHarness(t, testConfig(t, a.URL), harnessOptions{
		wrapResults: func(r *memory.Results) Results { cr = &countingResults{Results: r}; return cr },
	})
	h.start()
	job := h.submit("jobs", &backends.Job{Route: "orders"})
	r := h.wait(job.ID, backends.StatusProcessing)
	close(release)
	if r.Attempts != 1 || r.StartedAt.IsZero() {
		t.Errorf("processing record: attempts %d, started %v; want 1 and a start time", r.Attempts, r.StartedAt)
	}
	done := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
	if done.Status != backends.StatusCompleted || !done.StartedAt.Equal(r.StartedAt) {
		t.Errorf("outcome %s started %v; want completed, started when marked (%v)", done.Status, done.StartedAt, r.StartedAt)
	}
	h.stop()
	if d := cmp.Diff([]backends.Status{backends.StatusProcessing, backends.StatusCompleted}, cr.written(job.ID)); d != "" {
		t.Errorf("statuses written (-want +got):\n%s", d)
	}
}

// A redelivery is charged before the app sees it: were its worker to die
// too, the attempt would still count (a job that kills workers runs out of
// attempts).
func TestRedeliveryIsChargedBeforeTheApp(t *testing.T) {
	var h *harness
	var seen atomic.Pointer[backends.Result]
	var job *backends.Job
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		rec, err := h.results.Get(context.Background(), job.ID)
		if err == nil {
			seen.Store(rec)
		}
		fmt.Fprint(w, "ok")
	})
	h = newHarness(t, testConfig(t, a.URL), harnessOptions{})
	job = h.submit("jobs", &backends.Job{Route: "orders"})
	h.redeliver("jobs")
	h.start()
	done := h.wait(job.ID, backends.StatusCompleted, backends.StatusFailed)
	rec := seen.Load()
	if rec == nil || rec.Status != backends.StatusProcessing || rec.Attempts != 1 {
		t.Fatalf("record while the app had the redelivery: %+v; want processing, attempt 1", rec)
	}
	if done.Status != backends.StatusCompleted || done.Attempts != 1 {
		t.Errorf("outcome %s, attempts %d; want completed, 1", done.Status, done.Attempts)
	}
}
