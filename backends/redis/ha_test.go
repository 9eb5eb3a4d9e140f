package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/backendtest"
	"github.com/openhqm/openhqm/internal/testredis"
)

// A queue split over shards on one server keeps the common contract; only
// the order (per shard) and the exact depth (per shard) are given up.
func TestQueueConformanceSharded(t *testing.T) {
	backendtest.RunQueue(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		return newQueue(t, srv.URL(), Options{Stream: cfg.Name, Group: "g", Shards: 3, MaxDepth: cfg.MaxDepth, Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax})
	}, backendtest.DetectsLeaseLoss, backendtest.Durable)
}

// The operator's view covers every shard.
func TestInspectorConformanceSharded(t *testing.T) {
	backendtest.RunInspector(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		return newQueue(t, srv.URL(), Options{Stream: cfg.Name, Group: "g", Shards: 3, Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax})
	}, backendtest.ListsLive|backendtest.ExactDeadLetters)
}

// Jobs go to the shards in turn, each shard's keys share one hash tag, and
// a consumer reads them all.
func TestShardsSpreadJobs(t *testing.T) {
	ctx := context.Background()
	name := stream(t)
	q := newQueue(t, srv.URL(), Options{Stream: name, Group: "g", Shards: 4})
	for i := range 40 {
		if err := q.Enqueue(ctx, backendtest.NewJob("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	for i := range 4 {
		key := fmt.Sprintf("{%s:%d}", name, i)
		if n, err := rdb.XLen(ctx, key).Result(); err != nil || n != 10 {
			t.Errorf("shard %s holds %d jobs (%v), want 10", key, n, err)
		}
	}
	if ds := receive(t, q, "w", 40, 10*time.Second); len(ds) != 40 {
		t.Fatalf("received %d of 40 jobs", len(ds))
	}
}

// With KeyedShards, jobs of one key share a shard and keep their order.
func TestKeyedShardsKeepOrderPerKey(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, srv.URL(), Options{Stream: stream(t), Group: "g", Shards: 4, KeyedShards: true})
	var want []string
	for i := range 20 {
		j := backendtest.NewJob("q", i)
		j.Key = "tenant-7"
		want = append(want, j.ID)
		if err := q.Enqueue(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	ds := receive(t, q, "w", 20, 10*time.Second)
	if len(ds) != 20 {
		t.Fatalf("received %d of 20 jobs", len(ds))
	}
	for i, d := range ds {
		if d.Job.ID != want[i] {
			t.Fatalf("delivery %d is %s, want %s: jobs of one key left their order", i, d.Job.ID, want[i])
		}
	}
}

// A submit that no replica confirms answers ErrUnavailable (a 503), though
// the primary stored it: the documented at-least-once case, where the job
// still runs.
func TestUnconfirmedEnqueueIsUnavailable(t *testing.T) {
	ctx := context.Background()
	name := stream(t)
	q := newQueue(t, srv.URL(), Options{Stream: name, Group: "g", Replicas: Replicas{N: 1, Timeout: 50 * time.Millisecond}})
	job := backendtest.NewJob("q", 1)
	err := q.Enqueue(ctx, job)
	if !errors.Is(err, backends.ErrUnavailable) || !errors.Is(err, errNotReplicated) {
		t.Fatalf("Enqueue with no replica = %v, want ErrUnavailable (not replicated)", err)
	}
	if ds := receive(t, q, "w", 1, 5*time.Second); len(ds) != 1 || ds[0].Job.ID != job.ID {
		t.Fatalf("the unconfirmed job was not delivered (%d deliveries)", len(ds))
	}
	s, err := NewResults(ctx, ResultsOptions{URL: srv.URL(), Prefix: name + ":r:", Replicas: Replicas{N: 1, Timeout: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := &backends.Result{ID: job.ID, Status: backends.StatusPending}
	if err := s.Create(ctx, r); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Create with no replica = %v, want ErrUnavailable", err)
	}
}

// On a Redis Cluster with a replica per primary, the queue (sharded, every
// write confirmed by a replica) and the result store keep the contract.
func TestClusterConformance(t *testing.T) {
	c := testredis.StartCluster(t, 3, 1)
	cl := &Cluster{Addrs: c.Addrs()}
	rep := Replicas{N: 1, Timeout: 2 * time.Second}
	t.Run("queue", func(t *testing.T) {
		backendtest.RunQueue(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
			q, err := New(context.Background(), Options{Cluster: cl, Stream: cfg.Name, Group: "g", Shards: 3, Replicas: rep,
				MaxDepth: cfg.MaxDepth, Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { q.Close() })
			return q
		}, backendtest.DetectsLeaseLoss, backendtest.Durable)
	})
	t.Run("inspector", func(t *testing.T) {
		backendtest.RunInspector(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
			q, err := New(context.Background(), Options{Cluster: cl, Stream: cfg.Name, Group: "g", Shards: 3, Replicas: rep,
				Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { q.Close() })
			return q
		}, backendtest.ListsLive|backendtest.ExactDeadLetters)
	})
	t.Run("results", func(t *testing.T) {
		n := 0
		backendtest.RunResultStore(t, func(t *testing.T) backends.ResultStore {
			n++
			s, err := NewResults(context.Background(), ResultsOptions{Cluster: cl, Replicas: rep, Prefix: fmt.Sprintf("rt%d:", n)})
			if err != nil {
				t.Fatalf("NewResults: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("no shared writes", func(t *testing.T) {
		l := ResultsLayout{}
		q, err := New(context.Background(), Options{Cluster: cl, Stream: "jobs", Group: "g", Results: &l})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		if _, ok := q.WithResults(); ok {
			t.Error("a cluster queue offers EnqueueWithResult, whose stream and record keys cannot share a slot")
		}
	})
}

// Resharding renames the streams: a queue opened with another shards
// setting says that the old streams still hold jobs.
func TestReshardWarnsOfStrandedJobs(t *testing.T) {
	ctx := context.Background()
	name := stream(t)
	one := newQueue(t, srv.URL(), Options{Stream: name, Group: "g"})
	if err := one.Enqueue(ctx, backendtest.NewJob("q", 1)); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	newQueue(t, srv.URL(), Options{Stream: name, Group: "g", Shards: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "stream="+name+" jobs=1") {
		t.Errorf("opening the queue with 2 shards logged %q; want a warning that stream %s holds 1 job", logs.String(), name)
	}
}

// TLS: a rediss:// URL with the server's CA reaches a TLS-only port; the
// same URL without that CA is refused, so the traffic is really TLS.
func TestTLS(t *testing.T) {
	srv := testredis.StartTLS(t)
	url := srv.TLSURL()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CAPEM)

	ctx := context.Background()
	q, err := New(ctx, Options{URL: url, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Stream: stream(t), Group: "g"})
	if err != nil {
		t.Fatalf("New over TLS: %v", err)
	}
	defer q.Close()
	job := backendtest.NewJob("q", 1)
	if err := q.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	if ds := receive(t, q, "w", 1, 5*time.Second); len(ds) != 1 || ds[0].Job.ID != job.ID {
		t.Fatalf("received %d deliveries over TLS, want job %s", len(ds), job.ID)
	}
	if _, err := New(ctx, Options{URL: url, Stream: stream(t), Group: "g"}); err == nil {
		t.Error("New without the server's CA succeeded; want a certificate error")
	}
}
