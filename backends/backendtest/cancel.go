package backendtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// CancelStore is the part of a result store that cancel and redrive use.
type CancelStore interface {
	Cancel(ctx context.Context, id string, now time.Time, ttl time.Duration) (*backends.Result, error)
	Reopen(ctx context.Context, r *backends.Result) error
}

func testResultCancel(t *testing.T, s backends.ResultStore) {
	cs, ok := s.(CancelStore)
	if !ok {
		t.Fatalf("%T has no Cancel and Reopen", s)
	}
	ctx := ctxT(t)
	now := time.Now()
	if _, err := cs.Cancel(ctx, NewJob("q", 0).ID, now, time.Minute); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("cancel of an unknown id: %v, want ErrNotFound", err)
	}
	pending := newResult()
	if err := s.Create(ctx, pending); err != nil {
		t.Fatal(err)
	}
	r, err := cs.Cancel(ctx, pending.ID, now, time.Minute)
	if err != nil || r.Status != backends.StatusCancelled {
		t.Fatalf("cancel of a pending job: %+v, %v", r, err)
	}
	if got := get(t, s, pending.ID); got.Status != backends.StatusCancelled || got.Error == "" || got.CompletedAt.IsZero() {
		t.Fatalf("record after cancel: %+v", got)
	}
	// A worker's mark and outcome are refused from now on.
	late := *pending
	late.Status = backends.StatusProcessing
	if err := s.Update(ctx, &late, time.Minute); !errors.Is(err, backends.ErrFinished) {
		t.Fatalf("processing after cancel: %v, want ErrFinished", err)
	}
	if _, err := cs.Cancel(ctx, pending.ID, now, time.Minute); !errors.Is(err, backends.ErrFinished) {
		t.Fatalf("second cancel: %v, want ErrFinished", err)
	}

	started := newResult()
	started.Status = backends.StatusProcessing
	if err := s.Create(ctx, started); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Cancel(ctx, started.ID, now, time.Minute); !errors.Is(err, backends.ErrStarted) {
		t.Fatalf("cancel of a processing job: %v, want ErrStarted", err)
	}

	// A failed job reopened for a redrive is pending again and takes a
	// worker's writes.
	failed := *started
	failed.Status, failed.Error, failed.CompletedAt, failed.Attempts = backends.StatusFailed, "upstream answered 503", now, 2
	if err := s.Update(ctx, &failed, time.Minute); err != nil {
		t.Fatal(err)
	}
	again := *started
	again.Status, again.Attempts, again.Error = backends.StatusPending, 0, ""
	if err := cs.Reopen(ctx, &again); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if got := get(t, s, again.ID); got.Status != backends.StatusPending || got.Attempts != 0 || got.Error != "" {
		t.Fatalf("reopened record: %+v", got)
	}
	done := again
	done.Status, done.CompletedAt, done.StatusCode = backends.StatusCompleted, time.Now(), 200
	if err := s.Update(ctx, &done, time.Minute); err != nil {
		t.Fatalf("completing a reopened job: %v", err)
	}

	// The records of a status are listed, oldest submission first.
	lister, ok := s.(RecordLister)
	if !ok {
		t.Fatalf("%T has no Records", s)
	}
	for st, want := range map[backends.Status]string{backends.StatusCompleted: done.ID, backends.StatusCancelled: pending.ID} {
		rs, err := lister.Records(ctx, st, "", 0)
		if err != nil || len(rs) != 1 || rs[0].ID != want || rs[0].Status != st {
			t.Fatalf("records %s: %d (%v), want %s", st, len(rs), err, want)
		}
	}
	if rs, err := lister.Records(ctx, backends.StatusCompleted, "billing", 0); err != nil || len(rs) != 0 {
		t.Fatalf("completed records of route billing: %d (%v), want none", len(rs), err)
	}
}

// RecordLister lists a result store's records by status.
type RecordLister interface {
	Records(ctx context.Context, st backends.Status, route string, limit int) ([]*backends.Result, error)
}
