package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
)

func newService(t *testing.T) (*Service, *memory.Queue, *memory.Results) {
	t.Helper()
	q, err := memory.NewQueue(memory.QueueOptions{Name: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := memory.NewResults(memory.ResultsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close(); res.Close() })
	s := &Service{Queues: []Queue{{Name: "jobs", Backend: "memory", Q: q}}, Results: res, TTL: time.Hour,
		QueueOf: func(route string) string {
			if route == "work" {
				return "jobs"
			}
			return ""
		}}
	return s, q, res
}

func submit(t *testing.T, q *memory.Queue, res *memory.Results, id string) *backends.Job {
	t.Helper()
	j := &backends.Job{ID: id, Route: "work", Endpoint: "app", Method: "POST", Path: "/work", CreatedAt: time.Now()}
	ctx := context.Background()
	if err := res.Create(ctx, &backends.Result{ID: id, Route: "work", Status: backends.StatusPending, SubmittedAt: j.CreatedAt}); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestRedriveResetsTheRecord: a dead letter goes back with its record
// pending again and no attempts, and is not sent twice.
func TestRedriveResetsTheRecord(t *testing.T) {
	s, q, res := newService(t)
	ctx := context.Background()
	j := submit(t, q, res, "0123456789abcdef0123456789abcdef")
	ds, err := q.Receive(ctx, "w", 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("receive: %d %v", len(ds), err)
	}
	failed := &backends.Result{ID: j.ID, Route: "work", Status: backends.StatusFailed, Attempts: 2, Error: "upstream answered 503",
		SubmittedAt: j.CreatedAt, CompletedAt: time.Now()}
	if err := res.Update(ctx, failed, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := q.DeadLetter(ctx, ds[0], backends.DeadLetter{Reason: "upstream answered 503", Attempts: 2}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Show(ctx, j.ID, false)
	if err != nil || d.State != "dead" || d.Attempts != 2 || d.Result.Status != "failed" || d.Body != nil {
		t.Fatalf("show before the redrive: %+v %v", d, err)
	}
	if n, err := s.Redrive(ctx, RedriveOptions{Queue: "jobs"}); err != nil || n != 1 {
		t.Fatalf("redrive: %d %v", n, err)
	}
	r, err := res.Get(ctx, j.ID)
	if err != nil || r.Status != backends.StatusPending || r.Attempts != 0 || r.Error != "" || !r.SubmittedAt.Equal(failed.SubmittedAt) {
		t.Fatalf("record after the redrive: %+v %v", r, err)
	}
	if d, err := s.Show(ctx, j.ID, true); err != nil || d.State != "waiting" || d.Body == nil {
		t.Fatalf("show after the redrive: %+v %v", d, err)
	}
	if n, err := s.Redrive(ctx, RedriveOptions{Queue: "jobs"}); err != nil || n != 0 {
		t.Fatalf("second redrive: %d %v", n, err)
	}
	if _, err := s.Redrive(ctx, RedriveOptions{Queue: "nope"}); !errors.Is(err, ErrNoQueue) {
		t.Fatalf("redrive of an unknown queue: %v", err)
	}
}

func TestCancel(t *testing.T) {
	s, q, res := newService(t)
	ctx := context.Background()
	a := submit(t, q, res, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	b := submit(t, q, res, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	ds, err := q.Receive(ctx, "w", 1)
	if err != nil || len(ds) != 1 || ds[0].Job.ID != a.ID {
		t.Fatalf("receive: %v %v", ds, err)
	}
	if _, err := s.Cancel(ctx, a.ID); !errors.Is(err, ErrStarted) {
		t.Fatalf("cancel of a delivered job: %v, want ErrStarted", err)
	}
	if r, _ := res.Get(ctx, a.ID); r.Status != backends.StatusPending {
		t.Fatalf("a refused cancel changed the record: %+v", r)
	}
	r, err := s.Cancel(ctx, b.ID)
	if err != nil || r.Status != backends.StatusCancelled {
		t.Fatalf("cancel of a waiting job: %+v %v", r, err)
	}
	if _, err := s.Cancel(ctx, b.ID); !errors.Is(err, ErrFinished) {
		t.Fatalf("second cancel: %v, want ErrFinished", err)
	}
	if _, err := s.Cancel(ctx, "cccccccccccccccccccccccccccccccc"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancel of an unknown job: %v, want ErrNotFound", err)
	}
	if st, _ := q.Stats(ctx); st.Depth != 1 {
		t.Fatalf("queue depth %d after the cancel, want the delivered job only", st.Depth)
	}
	l, err := s.List(ctx, ListOptions{State: "cancelled"})
	if err != nil || len(l.Jobs) != 1 || l.Jobs[0].ID != b.ID || l.Jobs[0].Queue != "jobs" {
		t.Fatalf("ls --state cancelled: %+v %v", l, err)
	}
	if _, err := s.List(ctx, ListOptions{State: "gone"}); err == nil {
		t.Fatal("ls of an unknown state: no error")
	}
}

// TestShowListsEachAttempt: show lists the failed attempts the record
// keeps and, for a completed job, the attempt that completed it.
func TestShowListsEachAttempt(t *testing.T) {
	s, _, res := newService(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second)
	id := "0123456789abcdef0123456789abcdef"
	if err := res.Create(ctx, &backends.Result{ID: id, Route: "work", Status: backends.StatusPending, SubmittedAt: at}); err != nil {
		t.Fatal(err)
	}
	rec := &backends.Result{ID: id, Route: "work", Status: backends.StatusCompleted, Attempts: 3, SubmittedAt: at,
		CompletedAt: at.Add(3 * time.Second), StatusCode: 201}
	rec.AddAttempt(backends.Attempt{Number: 1, At: at.Add(time.Second), StatusCode: 502, Error: "upstream answered 502 Bad Gateway"})
	rec.AddAttempt(backends.Attempt{Number: 2, At: at.Add(2 * time.Second), Error: "no answer within 30s"})
	if err := res.Update(ctx, rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	d, err := s.Show(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []Outcome{
		{Attempt: 1, At: at.Add(time.Second), StatusCode: 502, Outcome: "upstream answered 502 Bad Gateway"},
		{Attempt: 2, At: at.Add(2 * time.Second), Outcome: "no answer within 30s"},
		{Attempt: 3, At: at.Add(3 * time.Second), StatusCode: 201, Outcome: "completed"},
	}
	if diff := cmp.Diff(want, d.Outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

// TestListLeavesOutFinishedWaitingJobs: jobs a queue still holds whose
// records are final (cancelled on Redis, finished and not yet committed
// on Kafka) are not listed as waiting, and do not use up --limit.
func TestListLeavesOutFinishedWaitingJobs(t *testing.T) {
	s, q, res := newService(t)
	ctx := context.Background()
	ids := []string{"00000000000000000000000000000001", "00000000000000000000000000000002", "00000000000000000000000000000003"}
	for _, id := range ids {
		submit(t, q, res, id)
	}
	for _, id := range ids[:2] {
		if err := res.Update(ctx, &backends.Result{ID: id, Route: "work", Status: backends.StatusCompleted, CompletedAt: time.Now()}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.List(ctx, ListOptions{State: "waiting", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Jobs) != 1 || l.Jobs[0].ID != ids[2] {
		t.Fatalf("ls --state waiting --limit 2: %+v, want only %s", l.Jobs, ids[2])
	}
}
