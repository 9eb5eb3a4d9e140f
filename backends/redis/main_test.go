package redis

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/backendtest"
	"github.com/openhqm/openhqm/internal/testredis"
)

// srv is the package's redis-server, shared by every test that does not
// restart or stop it.
var srv *testredis.Server

// quiet drops go-redis's own logging of dial failures, which the outage tests provoke.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	goredis.SetLogger(quiet{})
	var err error
	srv, err = testredis.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

func newQueue(t testing.TB, url string, o Options) *Queue {
	t.Helper()
	o.URL = url
	q, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func TestQueueConformance(t *testing.T) {
	backendtest.RunQueue(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		return newQueue(t, srv.URL(), Options{Stream: cfg.Name, Group: "g", MaxDepth: cfg.MaxDepth, Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax})
	}, backendtest.Ordered, backendtest.ExactDepth, backendtest.DetectsLeaseLoss, backendtest.Durable)
}

func TestQueueConformanceUnbatched(t *testing.T) {
	backendtest.RunQueue(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		return newQueue(t, srv.URL(), Options{Stream: cfg.Name, Group: "g", MaxDepth: cfg.MaxDepth, Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax, Batch: BatchOptions{Disabled: true}})
	}, backendtest.Ordered, backendtest.ExactDepth, backendtest.DetectsLeaseLoss, backendtest.Durable)
}

func TestResultsConformance(t *testing.T) {
	n := 0
	backendtest.RunResultStore(t, func(t *testing.T) backends.ResultStore {
		n++
		s, err := NewResults(context.Background(), ResultsOptions{URL: srv.URL(), Prefix: fmt.Sprintf("rt%d-%d:", time.Now().UnixNano(), n)})
		if err != nil {
			t.Fatalf("NewResults: %v", err)
		}
		return s
	})
}

func TestInspectorConformance(t *testing.T) {
	backendtest.RunInspector(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		return newQueue(t, srv.URL(), Options{Stream: cfg.Name, Group: "g", Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax})
	}, backendtest.ListsLive|backendtest.ExactDeadLetters)
}
