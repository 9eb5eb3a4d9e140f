package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/backendtest"
	"github.com/openhqm/openhqm/internal/testredis"
)

func stream(t *testing.T) string {
	return "rt-" + strings.NewReplacer("/", "-").Replace(t.Name()) + "-" + time.Now().Format("150405.000000")
}

func receive(t *testing.T, q *Queue, consumer string, n int, within time.Duration) []*backends.Delivery {
	t.Helper()
	var out []*backends.Delivery
	deadline := time.Now().Add(within)
	for len(out) < n && time.Now().Before(deadline) {
		ds, err := q.Receive(context.Background(), consumer, n-len(out))
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		out = append(out, ds...)
	}
	return out
}

// A worker that dies without acking loses nothing: a worker with another
// name, in another process (another Queue), takes the job over after the lease.
func TestDeadConsumerJobTakenOver(t *testing.T) {
	name := stream(t)
	opts := Options{Stream: name, Group: "workers", Lease: 300 * time.Millisecond}
	dying, survivor := newQueue(t, srv.URL(), opts), newQueue(t, srv.URL(), opts)
	job := backendtest.NewJob("q", 1)
	if err := dying.Enqueue(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if ds := receive(t, dying, "worker-a", 1, 5*time.Second); len(ds) != 1 {
		t.Fatalf("worker-a received %d, want 1", len(ds))
	}
	dying.Close() // killed: no ack, no nack

	ds := receive(t, survivor, "worker-b", 1, 10*time.Second)
	if len(ds) != 1 || ds[0].Job.ID != job.ID || ds[0].Attempt != 2 {
		t.Fatalf("worker-b received %d deliveries, want job %s attempt 2", len(ds), job.ID)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	p, err := rdb.XPendingExt(context.Background(), &goredis.XPendingExtArgs{Stream: name, Group: "workers", Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(p) != 1 || p[0].Consumer != "worker-b" {
		t.Fatalf("pending after takeover = %+v, %v; want one entry owned by worker-b", p, err)
	}
	if err := survivor.Ack(context.Background(), ds[0]); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.XLen(context.Background(), name).Result(); n != 0 {
		t.Errorf("stream holds %d entries after the ack, want 0 (acked entries are deleted)", n)
	}
}

// Accepted jobs survive a Redis restart with AOF on, delayed retries included.
func TestRestartWithAOFKeepsJobs(t *testing.T) {
	s := testredis.Start(t, testredis.WithAOF())
	opts := Options{Stream: "jobs", Group: "workers", Lease: time.Second}
	q := newQueue(t, s.URL(), opts)
	want := map[string]bool{}
	for i := range 50 {
		j := backendtest.NewJob("q", i)
		if err := q.Enqueue(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		want[j.ID] = true
	}
	ds := receive(t, q, "w1", 1, 5*time.Second)
	if len(ds) != 1 {
		t.Fatal("no delivery")
	}
	if err := q.Nack(context.Background(), ds[0], 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)

	q2 := newQueue(t, s.URL(), opts)
	got := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		ds, err := q2.Receive(context.Background(), "w2", 50)
		if err != nil {
			t.Fatalf("Receive after restart: %v", err)
		}
		for _, d := range ds {
			got[d.Job.ID] = true
			if err := q2.Ack(context.Background(), d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("jobs after restart (-accepted +delivered):\n%s", d)
	}
	// The client of the first queue reconnects by itself.
	if err := q.Enqueue(context.Background(), backendtest.NewJob("q", 99)); err != nil {
		t.Fatalf("Enqueue on the old client after restart: %v", err)
	}
}

// During an outage Enqueue fails with ErrUnavailable instead of hanging, and
// works again once Redis is back.
func TestOutageAnswersUnavailable(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "unbatched", true: "batched"}[batch], func(t *testing.T) {
			s := testredis.Start(t)
			q := newQueue(t, s.URL(), Options{Stream: "jobs", Batch: BatchOptions{Disabled: !batch}})
			results, err := NewResults(context.Background(), ResultsOptions{URL: s.URL()})
			if err != nil {
				t.Fatal(err)
			}
			defer results.Close()
			s.Halt()
			done := make(chan error, 3)
			go func() {
				start := time.Now()
				err := q.Enqueue(context.Background(), backendtest.NewJob("q", 1))
				t.Logf("Enqueue during the outage answered after %v: %v", time.Since(start), err)
				done <- err
			}()
			go func() { _, err := q.Stats(context.Background()); done <- err }()
			go func() { _, err := results.Get(context.Background(), "x"); done <- err }()
			for range 3 {
				select {
				case err := <-done:
					if !errors.Is(err, backends.ErrUnavailable) {
						t.Errorf("call during an outage = %v, want ErrUnavailable", err)
					}
				case <-time.After(30 * time.Second): // a hang detector, not a speed check
					t.Fatal("call during an outage did not return")
				}
			}
			if _, err := q.Receive(context.Background(), "w", 1); !errors.Is(err, backends.ErrUnavailable) {
				t.Errorf("Receive during an outage = %v, want ErrUnavailable", err)
			}
			if err := s.RestartErr(); err != nil {
				t.Fatal(err)
			}
			if err := q.Enqueue(context.Background(), backendtest.NewJob("q", 2)); err != nil {
				t.Fatalf("Enqueue after the outage: %v", err)
			}
		})
	}
}

// A group lost by Redis (or a new group) sees every job still in the stream:
// only unacknowledged entries remain there, so nothing is replayed twice.
func TestLostGroupIsRecreatedAtStart(t *testing.T) {
	name := stream(t)
	q := newQueue(t, srv.URL(), Options{Stream: name, Group: "g", Lease: time.Second})
	for i := range 3 {
		if err := q.Enqueue(context.Background(), backendtest.NewJob("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	ds := receive(t, q, "w", 1, 5*time.Second)
	if err := q.Ack(context.Background(), ds[0]); err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := rdb.XGroupDestroy(context.Background(), name, "g").Err(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, q, "w", 2, 5*time.Second); len(got) != 2 {
		t.Fatalf("after the group was lost, received %d jobs, want the 2 unacknowledged", len(got))
	}
}

// An entry no worker can decode goes to the dead-letter stream instead of
// being delivered forever.
func TestUndecodableEntryIsDeadLettered(t *testing.T) {
	name := stream(t)
	q := newQueue(t, srv.URL(), Options{Stream: name, Group: "g"})
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := rdb.XAdd(context.Background(), &goredis.XAddArgs{Stream: name, Values: []any{"m", "\x01\xff", "b", "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if ds := receive(t, q, "w", 1, 1500*time.Millisecond); len(ds) != 0 {
		t.Fatalf("undecodable entry delivered")
	}
	s, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(backends.Stats{DeadLetters: 1}, s); d != "" {
		t.Errorf("Stats (-want +got):\n%s", d)
	}
}
