package workerpool

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
)

// keepsCancelled is a queue that cannot withdraw a cancelled job, as Kafka
// and SQS: the job is still delivered, and the worker must honour its
// record.
type keepsCancelled struct{ *memory.Queue }

func (keepsCancelled) WithdrawsCancelled() bool { return false }

// TestCancelledRecordIsNeverReplayed: on a queue that delivers cancelled
// jobs, the worker's processing mark is refused by the cancelled record
// and the job is acknowledged without reaching the app; the other job is
// marked processing before its replay and completes.
func TestCancelledRecordIsNeverReplayed(t *testing.T) {
	var h *harness
	var marked atomic.Value // the record's status while the app ran
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, n int) {
		res, _ := h.results.Get(context.Background(), r.Header.Get("Idempotency-Key"))
		marked.Store(string(res.Status))
		fmt.Fprint(w, "ok")
	})
	h = newHarness(t, testConfig(t, a.URL), harnessOptions{
		wrapQueue: func(q *memory.Queue) Consumer { return keepsCancelled{q} },
	})
	cancelled := h.submit("jobs", &backends.Job{Route: "orders"})
	kept := h.submit("jobs", &backends.Job{Route: "orders"})
	if _, err := h.results.Cancel(context.Background(), cancelled.ID, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	h.start()
	deadline := time.Now().Add(10 * time.Second)
	for h.stats("jobs").Depth != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	h.stop()
	if s := h.stats("jobs"); s.Depth != 0 || s.DeadLetters != 0 {
		t.Fatalf("queue %+v, want both jobs acknowledged and no dead letter", s)
	}
	seen := a.seen()
	if len(seen) != 1 || seen[0].IdempotencyKey != kept.ID {
		t.Fatalf("app saw %+v, want only job %s", seen, kept.ID)
	}
	if m := marked.Load(); m != string(backends.StatusProcessing) {
		t.Fatalf("the replayed job's record read %v while the app ran, want processing", m)
	}
	for id, want := range map[string]backends.Status{cancelled.ID: backends.StatusCancelled, kept.ID: backends.StatusCompleted} {
		if r, err := h.results.Get(context.Background(), id); err != nil || r.Status != want {
			t.Fatalf("record of %s: %+v %v, want %s", id, r, err, want)
		}
	}
}
