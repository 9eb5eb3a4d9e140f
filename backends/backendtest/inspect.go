package backendtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
)

// InspectCapabilities declare what a queue's Inspector can see.
type InspectCapabilities uint

const (
	// ListsLive: List answers waiting and in-flight jobs (Kafka and SQS
	// see only their dead letters).
	ListsLive InspectCapabilities = 1 << iota
	// ExactDeadLetters: a dead letter sent back by id leaves the count at
	// once (Kafka's count is of the records after a commit point, which
	// passes a record only when every one before it was handled).
	ExactDeadLetters
	// ListsBacklog: List answers every job not yet acknowledged as waiting,
	// without telling in-flight ones apart (Kafka: the records after the
	// group's commit point), once each even after a retry.
	ListsBacklog
)

// RunInspector runs the operator tooling's conformance tests (list,
// cancel, redrive, purge) against queues made by newQueue, which must
// implement backends.Inspector.
func RunInspector(t *testing.T, newQueue NewQueueFunc, caps InspectCapabilities) {
	open := func(t *testing.T) (backends.Queue, backends.Inspector, string) {
		name := uniqueName(t)
		q := newQueue(t, QueueConfig{Name: name, Lease: 5 * time.Second, DeadLetterMax: 100})
		t.Cleanup(func() { q.Close() })
		in, ok := q.(backends.Inspector)
		if !ok {
			t.Fatalf("%T does not implement backends.Inspector", q)
		}
		return q, in, name
	}
	ctx := context.Background()

	if caps&ListsLive != 0 {
		t.Run("ListWaitingAndInFlight", func(t *testing.T) {
			q, in, name := open(t)
			ids := enqueueJobs(t, q, name, 3)
			got := entryIDs(t, in, backends.Filter{State: backends.StateWaiting})
			if diff := cmp.Diff(ids, got); diff != "" {
				t.Fatalf("waiting (-want +got):\n%s", diff)
			}
			if got := entryIDs(t, in, backends.Filter{Route: "billing"}); !slices.Equal(got, ids[2:]) {
				t.Fatalf("route billing: %v, want %v", got, ids[2:])
			}
			if got := entryIDs(t, in, backends.Filter{Limit: 2}); !slices.Equal(got, ids[:2]) {
				t.Fatalf("limit 2: %v, want %v", got, ids[:2])
			}
			ds := receiveAll(t, q, 1)
			es, err := in.List(ctx, backends.Filter{State: backends.StateInFlight})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 || es[0].Job.ID != ds[0].Job.ID || es[0].Attempts != 1 {
				t.Fatalf("in flight: %+v, want job %s with 1 attempt", es, ds[0].Job.ID)
			}
			if es[0].Job.Method != "POST" || es[0].Job.Path != "/api/orders" {
				t.Fatalf("in-flight job decoded as %+v", es[0].Job)
			}
		})
	}

	if caps&ListsBacklog != 0 {
		t.Run("ListBacklog", func(t *testing.T) {
			q, in, name := open(t)
			ids := enqueueJobs(t, q, name, 3)
			sorted := func(ids []string) []string { return slices.Sorted(slices.Values(ids)) }
			if diff := cmp.Diff(sorted(ids), sorted(entryIDs(t, in, backends.Filter{State: backends.StateWaiting}))); diff != "" {
				t.Fatalf("waiting (-want +got):\n%s", diff)
			}
			if got := entryIDs(t, in, backends.Filter{Route: "billing"}); !slices.Equal(got, ids[2:]) {
				t.Fatalf("route billing: %v, want %v", got, ids[2:])
			}
			if got := entryIDs(t, in, backends.Filter{Limit: 2}); len(got) != 2 {
				t.Fatalf("limit 2: %v", got)
			}
			// A job sent to wait for a retry is listed once, with its delivery
			// counted, also by another process of the queue (as the operator's
			// command is), which does not know what this one has settled.
			ds := receiveAll(t, q, 1)
			if err := q.Nack(ctx, ds[0], time.Hour); err != nil {
				t.Fatal(err)
			}
			other := newQueue(t, QueueConfig{Name: name, Lease: 5 * time.Second, DeadLetterMax: 100})
			t.Cleanup(func() { other.Close() })
			es, err := other.(backends.Inspector).List(ctx, backends.Filter{State: backends.StateWaiting})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Job.ID)
				if want := 0; e.Job.ID == ds[0].Job.ID {
					want = 1
					if e.Attempts != want {
						t.Errorf("the retried job lists %d deliveries, want %d", e.Attempts, want)
					}
				} else if e.Attempts != want {
					t.Errorf("job %s lists %d deliveries, want %d", e.Job.ID, e.Attempts, want)
				}
			}
			if diff := cmp.Diff(sorted(ids), sorted(got)); diff != "" {
				t.Fatalf("waiting after a retry (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("CancelWaitingNotInFlight", func(t *testing.T) {
		q, in, name := open(t)
		a, b := NewJob(name, 1), NewJob(name, 2)
		enqueue(t, q, a)
		ds := receiveAll(t, q, 1)
		if err := in.Cancel(ctx, ds[0].Job.ID); in.WithdrawsCancelled() && !errors.Is(err, backends.ErrStarted) {
			t.Fatalf("cancel of a delivered job: %v, want ErrStarted", err)
		}
		enqueue(t, q, b)
		if err := in.Cancel(ctx, b.ID); err != nil {
			t.Fatalf("cancel of a waiting job: %v", err)
		}
		if !in.WithdrawsCancelled() {
			return // the worker honours the record; nothing to see in the queue
		}
		c := NewJob(name, 3)
		enqueue(t, q, c)
		got := receiveAll(t, q, 1)
		if got[0].Job.ID != c.ID {
			t.Fatalf("received %s after cancelling %s, want %s", got[0].Job.ID, b.ID, c.ID)
		}
		receiveNone(t, q, "c1", 1500*time.Millisecond)
	})

	if caps&ListsLive != 0 {
		t.Run("CancelDelayedRetry", func(t *testing.T) {
			q, in, name := open(t)
			j := NewJob(name, 1)
			enqueue(t, q, j)
			ds := receiveAll(t, q, 1)
			if err := q.Nack(ctx, ds[0], 400*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if err := in.Cancel(ctx, j.ID); err != nil {
				t.Fatalf("cancel of a job waiting for its retry: %v", err)
			}
			receiveNone(t, q, "c1", 1500*time.Millisecond)
		})
	}

	t.Run("RedriveAndPurge", func(t *testing.T) {
		q, in, name := open(t)
		ids := enqueueJobs(t, q, name, 4)
		for _, d := range receiveAll(t, q, 4) {
			dl := backends.DeadLetter{Job: d.Job, Reason: "upstream answered 503", Attempts: 2, LastStatus: 503, At: time.Now()}
			if err := q.DeadLetter(ctx, d, dl); err != nil {
				t.Fatal(err)
			}
		}
		waitDead(t, q, 4)
		es, err := in.List(ctx, backends.Filter{State: backends.StateDead})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Job.ID)
			if e.Reason != "upstream answered 503" || e.Attempts != 2 || e.LastStatus != 503 || e.At.IsZero() {
				t.Fatalf("dead letter %+v: want reason, 2 attempts, status 503, a time", e)
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(ids))
		if !slices.Equal(got, want) {
			t.Fatalf("dead letters %v, want %v", got, want)
		}

		// Route billing: one job, back with a fresh attempt budget.
		var prepared []string
		n, err := in.Redrive(ctx, backends.RedriveOptions{Route: "billing", Prepare: func(_ context.Context, j *backends.Job) error {
			prepared = append(prepared, j.ID)
			return nil
		}})
		if err != nil || n != 1 || !slices.Equal(prepared, ids[3:]) {
			t.Fatalf("redrive route billing: %d, %v, prepared %v; want 1 (%s)", n, err, prepared, ids[3])
		}
		d := receiveAll(t, q, 1)[0]
		if d.Job.ID != ids[3] || d.Attempt != 1 {
			t.Fatalf("redriven delivery: job %s attempt %d, want %s attempt 1", d.Job.ID, d.Attempt, ids[3])
		}
		if err := q.Ack(ctx, d); err != nil {
			t.Fatal(err)
		}
		// By id, with one skipped: it leaves the dead letters unmoved.
		n, err = in.Redrive(ctx, backends.RedriveOptions{IDs: ids[:2], Prepare: func(_ context.Context, j *backends.Job) error {
			if j.ID == ids[1] {
				return backends.ErrSkip
			}
			return nil
		}})
		if err != nil || n != 1 {
			t.Fatalf("redrive by id: %d, %v; want 1", n, err)
		}
		if d := receiveAll(t, q, 1)[0]; d.Job.ID != ids[0] {
			t.Fatalf("redriven %s, want %s", d.Job.ID, ids[0])
		}
		// A second redrive of the same ids moves nothing. The caller's
		// Prepare skips jobs that were sent back already (their records
		// are no longer failed), as the jobs tooling does; ids[1] was
		// skipped above for that reason.
		sentBack := map[string]bool{ids[0]: true, ids[1]: true, ids[3]: true}
		skipSent := func(_ context.Context, j *backends.Job) error {
			if sentBack[j.ID] {
				return backends.ErrSkip
			}
			return nil
		}
		if n, err := in.Redrive(ctx, backends.RedriveOptions{IDs: ids[:2], Prepare: skipSent}); err != nil || n != 0 {
			t.Fatalf("second redrive: %d, %v; want 0", n, err)
		}
		if n, err := in.Purge(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("purge of dead letters older than an hour: %d, %v; want 0", n, err)
		}
		if caps&ExactDeadLetters != 0 {
			waitDead(t, q, 1)
			if n, err := in.Purge(ctx, time.Time{}); err != nil || n != 1 {
				t.Fatalf("purge: %d, %v; want 1", n, err)
			}
		} else if n, err := in.Purge(ctx, time.Time{}); err != nil || n < 1 {
			t.Fatalf("purge: %d, %v; want at least 1", n, err)
		}
		waitDead(t, q, 0)
		if es, err := in.List(ctx, backends.Filter{State: backends.StateDead}); err != nil || len(es) != 0 {
			t.Fatalf("dead letters after the purge: %d (%v)", len(es), err)
		}
	})
}

// receiveAll receives exactly n deliveries within 10s.
func receiveAll(t *testing.T, q backends.Queue, n int) []*backends.Delivery {
	t.Helper()
	ds := receiveN(t, q, "c1", n, 10*time.Second)
	if len(ds) != n {
		t.Fatalf("received %d of %d jobs", len(ds), n)
	}
	return ds
}

// enqueueJobs enqueues n jobs, the last on route billing, and answers
// their ids.
func enqueueJobs(t *testing.T, q backends.Queue, name string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		j := NewJob(name, i)
		if i == n-1 {
			j.Route = "billing"
		}
		enqueue(t, q, j)
		ids = append(ids, j.ID)
	}
	return ids
}

func entryIDs(t *testing.T, in backends.Inspector, f backends.Filter) []string {
	t.Helper()
	es, err := in.List(context.Background(), f)
	if err != nil {
		t.Fatalf("list %+v: %v", f, err)
	}
	var ids []string
	for _, e := range es {
		ids = append(ids, e.Job.ID)
	}
	return ids
}

// waitDead waits up to 10s for Stats to count n dead letters.
func waitDead(t *testing.T, q backends.Queue, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := q.Stats(context.Background())
		if err == nil && s.DeadLetters == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters: %d (%v), want %d", s.DeadLetters, err, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
