package memory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/backendtest"
)

func TestQueueConformance(t *testing.T) {
	backendtest.RunQueue(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		q, err := NewQueue(QueueOptions{Name: cfg.Name, MaxDepth: cfg.MaxDepth, Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}, backendtest.Ordered, backendtest.ExactDepth, backendtest.DetectsLeaseLoss)
}

func TestResultsConformance(t *testing.T) {
	backendtest.RunResultStore(t, func(t *testing.T) backends.ResultStore {
		s, err := NewResults(ResultsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestDeadLetterBound(t *testing.T) {
	q, _ := NewQueue(QueueOptions{Name: "q", DeadLetterMax: 2})
	ctx := context.Background()
	for i := range 3 {
		if err := q.Enqueue(ctx, backendtest.NewJob("q", i)); err != nil {
			t.Fatal(err)
		}
		ds, _ := q.Receive(ctx, "c", 1)
		if err := q.DeadLetter(ctx, ds[0], backends.DeadLetter{Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	dls, _ := q.DeadLetters(ctx, 10)
	if len(dls) != 2 || dls[0].Job.Query != "n=2&x=%20" {
		t.Fatalf("dead letters = %d (newest %v), want the 2 newest", len(dls), dls[0].Job.Query)
	}
}

func TestResultsBoundEvictsFinishedFirst(t *testing.T) {
	s, _ := NewResults(ResultsOptions{MaxEntries: 2})
	ctx := context.Background()
	now := time.Now()
	done := &backends.Result{ID: "done", Status: backends.StatusCompleted, CompletedAt: now}
	pending := &backends.Result{ID: "pending", Status: backends.StatusPending}
	for _, r := range []*backends.Result{done, pending} {
		if err := s.Update(ctx, r, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, &backends.Result{ID: "new", Status: backends.StatusPending}); err != nil {
		t.Fatalf("Create at the bound: %v", err)
	}
	if _, err := s.Get(ctx, "done"); !errors.Is(err, backends.ErrExpired) {
		t.Errorf("evicted finished record: %v, want ErrExpired", err)
	}
	if _, err := s.Get(ctx, "pending"); err != nil {
		t.Errorf("pending record was evicted: %v", err)
	}
	if err := s.Create(ctx, &backends.Result{ID: "more", Status: backends.StatusPending}); !errors.Is(err, backends.ErrFull) {
		t.Errorf("Create with only pending records at the bound = %v, want ErrFull", err)
	}
}

func TestInspectorConformance(t *testing.T) {
	backendtest.RunInspector(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		q, err := NewQueue(QueueOptions{Name: cfg.Name, Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}, backendtest.ListsLive|backendtest.ExactDeadLetters)
}
