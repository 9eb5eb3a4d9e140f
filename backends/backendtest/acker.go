package backendtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// ResultAcker is a queue that stores a job's outcome in a result store and
// acks its delivery in one step (Redis, when the queue and the results share
// a server): the outcome is stored before, or together with, the ack.
type ResultAcker interface {
	backends.Queue
	// AckWithResult stores r as Update(r, ttl) would and acks d. ErrFinished
	// (wrapped): the record was already completed or failed and is left as
	// it was, and d is still acked. ErrLeaseLost (wrapped): another delivery
	// was made since; r is still stored and d is not acked.
	AckWithResult(ctx context.Context, d *backends.Delivery, r *backends.Result, ttl time.Duration) error
}

// NewResultAckerFunc opens a queue for cfg and the result store it writes
// to; the suite closes both.
type NewResultAckerFunc func(t *testing.T, cfg QueueConfig) (ResultAcker, backends.ResultStore)

// RunResultAcker runs the conformance suite of ResultAcker.
func RunResultAcker(t *testing.T, open NewResultAckerFunc) {
	tests := []struct {
		name string
		run  func(*testing.T, ResultAcker, backends.ResultStore)
	}{
		{"StoresThenAcks", testAckerStores},
		{"FinishedStaysAndIsAcked", testAckerFinished},
		{"LeaseLostStillStores", testAckerLeaseLost},
		{"Concurrent", testAckerConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, s := open(t, QueueConfig{Name: uniqueName(t), Lease: lease, DeadLetterMax: 100})
			t.Cleanup(func() { q.Close(); s.Close() })
			tt.run(t, q, s)
		})
	}
}

func completedOf(j *backends.Job, body string) *backends.Result {
	now := time.Now().Truncate(time.Millisecond)
	return &backends.Result{
		ID: j.ID, Route: j.Route, Principal: j.Principal, Status: backends.StatusCompleted, Attempts: 1,
		SubmittedAt: j.CreatedAt.Truncate(time.Millisecond), StartedAt: now, UpdatedAt: now, CompletedAt: now,
		StatusCode: 200, Headers: []backends.Header{{Name: "Content-Type", Value: "text/plain"}}, Body: []byte(body),
	}
}

func createPending(t *testing.T, s backends.ResultStore, j *backends.Job) {
	t.Helper()
	err := s.Create(ctxT(t), &backends.Result{ID: j.ID, Route: j.Route, Principal: j.Principal, Status: backends.StatusPending, SubmittedAt: j.CreatedAt})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func testAckerStores(t *testing.T, q ResultAcker, s backends.ResultStore) {
	j := NewJob("q", 1)
	createPending(t, s, j)
	enqueue(t, q, j)
	ds := receiveN(t, q, "c1", 1, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("received %d, want 1", len(ds))
	}
	r := completedOf(j, "answer\x00")
	if err := q.AckWithResult(ctxT(t), ds[0], r, time.Hour); err != nil {
		t.Fatalf("AckWithResult: %v", err)
	}
	wantResult(t, r, get(t, s, j.ID))
	if st := stats(t, q); st.Depth != 0 {
		t.Errorf("depth after AckWithResult = %d, want 0", st.Depth)
	}
	receiveNone(t, q, "c2", 3*lease)

	// The record expires on the ttl it was given, with a tombstone.
	j2 := NewJob("q", 2)
	enqueue(t, q, j2)
	ds = receiveN(t, q, "c1", 1, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("received %d, want 1", len(ds))
	}
	if err := q.AckWithResult(ctxT(t), ds[0], completedOf(j2, "short-lived"), 300*time.Millisecond); err != nil {
		t.Fatalf("AckWithResult: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Get(ctxT(t), j2.ID)
		if errors.Is(err, backends.ErrExpired) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Get after the ttl = %v, want ErrExpired", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testAckerFinished(t *testing.T, q ResultAcker, s backends.ResultStore) {
	for _, final := range []backends.Status{backends.StatusCompleted, backends.StatusFailed} {
		j := NewJob("q", 1)
		first := completedOf(j, "first answer")
		first.Status = final
		if err := s.Update(ctxT(t), first, time.Hour); err != nil {
			t.Fatal(err)
		}
		enqueue(t, q, j)
		ds := receiveN(t, q, "c1", 1, 5*time.Second)
		if len(ds) != 1 {
			t.Fatalf("received %d, want 1", len(ds))
		}
		err := q.AckWithResult(ctxT(t), ds[0], completedOf(j, "second answer"), time.Hour)
		if !errors.Is(err, backends.ErrFinished) || errors.Is(err, backends.ErrLeaseLost) {
			t.Errorf("AckWithResult over a %s record = %v, want ErrFinished alone", final, err)
		}
		wantResult(t, first, get(t, s, j.ID))
		if st := stats(t, q); st.Depth != 0 {
			t.Errorf("depth = %d, want 0: a finished job's delivery is acked", st.Depth)
		}
	}
}

func testAckerLeaseLost(t *testing.T, q ResultAcker, s backends.ResultStore) {
	j := NewJob("q", 1)
	enqueue(t, q, j)
	first := receiveN(t, q, "c1", 1, 5*time.Second)
	if len(first) != 1 {
		t.Fatalf("received %d, want 1", len(first))
	}
	second := receiveN(t, q, "c2", 1, 10*time.Second)
	if len(second) != 1 {
		t.Fatalf("job not redelivered after the lease expired")
	}
	late := completedOf(j, "late answer")
	if err := q.AckWithResult(ctxT(t), first[0], late, time.Hour); !errors.Is(err, backends.ErrLeaseLost) || errors.Is(err, backends.ErrFinished) {
		t.Fatalf("AckWithResult after the lease was taken over = %v, want ErrLeaseLost alone", err)
	}
	wantResult(t, late, get(t, s, j.ID))
	// The new holder settles: its outcome does not replace the stored one.
	err := q.AckWithResult(ctxT(t), second[0], completedOf(j, "new holder's answer"), time.Hour)
	if !errors.Is(err, backends.ErrFinished) || errors.Is(err, backends.ErrLeaseLost) {
		t.Fatalf("AckWithResult by the new holder = %v, want ErrFinished alone", err)
	}
	wantResult(t, late, get(t, s, j.ID))
	if st := stats(t, q); st.Depth != 0 {
		t.Errorf("depth = %d, want 0", st.Depth)
	}
}

func testAckerConcurrent(t *testing.T, q ResultAcker, s backends.ResultStore) {
	const n = 200
	jobs := make(map[string]*backends.Job, n)
	for i := range n {
		j := NewJob("q", i)
		jobs[j.ID] = j
		createPending(t, s, j)
		enqueue(t, q, j)
	}
	ds := receiveN(t, q, "c1", n, 10*time.Second)
	if len(ds) != n {
		t.Fatalf("received %d, want %d", len(ds), n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, d := range ds {
		wg.Go(func() {
			if err := q.AckWithResult(context.Background(), d, completedOf(d.Job, "answer "+d.Job.ID), time.Hour); err != nil {
				errs <- fmt.Errorf("job %s: %w", d.Job.ID, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for id := range jobs {
		if r := get(t, s, id); r.Status != backends.StatusCompleted || string(r.Body) != "answer "+id {
			t.Errorf("job %s: %s %q", id, r.Status, r.Body)
		}
	}
	if st := stats(t, q); st.Depth != 0 {
		t.Errorf("depth = %d, want 0", st.Depth)
	}
}
