package backendtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
)

// NewResultStoreFunc opens an empty result store whose tombstones last at
// least a minute; the suite closes it.
type NewResultStoreFunc func(t *testing.T) backends.ResultStore

// RunResultStore runs the result-store conformance suite.
func RunResultStore(t *testing.T, newStore NewResultStoreFunc) {
	tests := []struct {
		name string
		run  func(*testing.T, backends.ResultStore)
	}{
		{"Lifecycle", testResultLifecycle},
		{"FinishedIsFinal", testResultFinishedIsFinal},
		{"ExpiryLeavesTombstone", testResultExpiry},
		{"NotFound", testResultNotFound},
		{"Delete", testResultDelete},
		{"Reserve", testReserve},
		{"ReserveConcurrent", testReserveConcurrent},
		{"CancelAndReopen", testResultCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tt.run(t, s)
		})
	}
}

func newResult() *backends.Result {
	j := NewJob("q", 1)
	return &backends.Result{
		ID:          j.ID,
		Route:       "orders",
		Principal:   "p1",
		Status:      backends.StatusPending,
		SubmittedAt: time.Now().Truncate(time.Millisecond),
		UpdatedAt:   time.Now().Truncate(time.Millisecond),
	}
}

func get(t *testing.T, s backends.ResultStore, id string) *backends.Result {
	t.Helper()
	r, err := s.Get(ctxT(t), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

var resultCmp = []cmp.Option{cmp.Comparer(func(a, b time.Time) bool { return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond)) })}

func wantResult(t *testing.T, want, got *backends.Result) {
	t.Helper()
	if d := cmp.Diff(want, got, append(resultCmp, jobCmp...)...); d != "" {
		t.Errorf("result (-want +got):\n%s", d)
	}
}

// testResultFinishedIsFinal: once completed or failed, a record is never
// replaced, whatever a late or overlapping delivery of the job writes.
func testResultFinishedIsFinal(t *testing.T, s backends.ResultStore) {
	ctx := ctxT(t)
	for _, final := range []backends.Status{backends.StatusCompleted, backends.StatusFailed} {
		r := newResult()
		r.Status, r.CompletedAt, r.StatusCode, r.Body = final, time.Now(), 200, []byte("first answer")
		if err := s.Update(ctx, r, time.Hour); err != nil {
			t.Fatalf("Update(%s): %v", final, err)
		}
		for _, late := range []backends.Status{backends.StatusProcessing, backends.StatusPending, backends.StatusCompleted, backends.StatusFailed} {
			l := *r
			l.Status, l.Body, l.StatusCode, l.CompletedAt = late, []byte("late answer"), 500, time.Now()
			if err := s.Update(ctx, &l, time.Hour); !errors.Is(err, backends.ErrFinished) {
				t.Errorf("Update(%s) over a %s record: %v, want ErrFinished", late, final, err)
			}
		}
		if err := s.Create(ctx, r); !errors.Is(err, backends.ErrFinished) {
			t.Errorf("Create over a %s record: %v, want ErrFinished", final, err)
		}
		wantResult(t, r, get(t, s, r.ID))
	}
}

func testResultLifecycle(t *testing.T, s backends.ResultStore) {
	ctx := ctxT(t)
	r := newResult()
	if err := s.Create(ctx, r); err != nil {
		t.Fatalf("Create: %v", err)
	}
	wantResult(t, r, get(t, s, r.ID))

	p := *r
	p.Status, p.Attempts, p.StartedAt, p.UpdatedAt = backends.StatusProcessing, 1, time.Now(), time.Now()
	if err := s.Update(ctx, &p, time.Hour); err != nil {
		t.Fatalf("Update(processing): %v", err)
	}
	wantResult(t, &p, get(t, s, r.ID))

	c := p
	c.Status, c.CompletedAt, c.UpdatedAt = backends.StatusCompleted, time.Now(), time.Now()
	c.StatusCode = 201
	c.Headers = []backends.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "Set-Cookie", Value: "a=b"}}
	c.Body = []byte("{\"ok\":true}\x00\xff")
	if err := s.Update(ctx, &c, time.Hour); err != nil {
		t.Fatalf("Update(completed): %v", err)
	}
	wantResult(t, &c, get(t, s, r.ID))

	f := c
	f.ID = newResult().ID
	f.Status, f.Error, f.StatusCode, f.Body, f.Headers = backends.StatusFailed, "upstream answered 500 five times", 500, nil, nil
	if err := s.Update(ctx, &f, time.Hour); err != nil {
		t.Fatalf("Update(failed) without Create: %v", err)
	}
	wantResult(t, &f, get(t, s, f.ID))
}

func testResultExpiry(t *testing.T, s backends.ResultStore) {
	ctx := ctxT(t)
	r := newResult()
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	c := *r
	c.Status, c.CompletedAt, c.StatusCode, c.Body = backends.StatusCompleted, time.Now(), 200, []byte("x")
	const ttl = 400 * time.Millisecond
	if err := s.Update(ctx, &c, ttl); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, r.ID); got.Status != backends.StatusCompleted {
		t.Fatalf("status before expiry = %s", got.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Get(ctx, r.ID)
		if errors.Is(err, backends.ErrExpired) {
			if time.Since(c.CompletedAt) < ttl {
				t.Errorf("expired %v after completion, before its ttl %v", time.Since(c.CompletedAt), ttl)
			}
			return
		}
		if err != nil {
			t.Fatalf("Get after ttl = %v, want ErrExpired", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("result still readable %v after its ttl", time.Since(c.CompletedAt))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testResultNotFound(t *testing.T, s backends.ResultStore) {
	if _, err := s.Get(ctxT(t), newResult().ID); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
}

func testResultDelete(t *testing.T, s backends.ResultStore) {
	r := newResult()
	if err := s.Create(ctxT(t), r); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctxT(t), r.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctxT(t), r.ID); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
}

func testReserve(t *testing.T, s backends.ResultStore) {
	ctx := ctxT(t)
	key := "orders/p1/" + newResult().ID
	id, dg, err := s.Reserve(ctx, key, "id-1", "digest-1", 500*time.Millisecond)
	if err != nil || id != "id-1" || dg != "digest-1" {
		t.Fatalf("first Reserve = %q, %q, %v; want id-1, digest-1", id, dg, err)
	}
	id, dg, err = s.Reserve(ctx, key, "id-2", "digest-2", time.Hour)
	if err != nil || id != "id-1" || dg != "digest-1" {
		t.Fatalf("second Reserve = %q, %q, %v; want the first binding id-1, digest-1", id, dg, err)
	}
	id, _, err = s.Reserve(ctx, key+"-other", "id-3", "digest-3", time.Hour)
	if err != nil || id != "id-3" {
		t.Fatalf("Reserve of another key = %q, %v; want id-3", id, err)
	}
	time.Sleep(700 * time.Millisecond)
	id, dg, err = s.Reserve(ctx, key, "id-4", "digest-4", time.Hour)
	if err != nil || id != "id-4" || dg != "digest-4" {
		t.Fatalf("Reserve after the binding expired = %q, %q, %v; want id-4, digest-4", id, dg, err)
	}
}

func testReserveConcurrent(t *testing.T, s backends.ResultStore) {
	key := "orders/p1/" + newResult().ID
	const n = 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, _, err := s.Reserve(context.Background(), key, "id-"+string(rune('a'+i)), "d", time.Hour)
			if err != nil {
				t.Errorf("Reserve: %v", err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent Reserve bound different ids: %v", ids)
		}
	}
}
