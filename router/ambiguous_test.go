package router

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	redisbackend "github.com/openhqm/openhqm/backends/redis"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/testredis"
)

var jobIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestAmbiguousSubmit: while Redis is frozen (SIGSTOP) a submit cannot know
// whether its write landed. Its 503 says the outcome is unknown and names
// the id it tried; once Redis runs again (and executes what it was sent
// meanwhile), retries with the same Idempotency-Key get that same id, and
// the queue never holds a job with another id. The submit API answers the
// same way in its own shape.
func TestAmbiguousSubmit(t *testing.T) {
	srv := testredis.Start(t)
	q, res := redisBackends(t, srv, "router-ambiguous")
	cfg := asyncConfig(t)
	ts := newTestServerOpts(t, Options{Registry: prometheus.NewRegistry(), SubmitTimeout: 300 * time.Millisecond}, Deps{Queues: map[string]Enqueuer{"jobs": q}, Results: res})
	addr := serveTestServer(t, ts, cfg)

	for _, tc := range []struct {
		name, path, body string
		hdr              []string
		idField          string
	}{
		{"async route", "/orders", "x", []string{"Idempotency-Key", "frozen-1"}, "id"},
		{"submit API", "/api/v1/submit", `{"payload":{"a":1}}`, []string{"Idempotency-Key", "frozen-2", "Content-Type", "application/json"}, "correlation_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.Pause()
			resumed := false
			defer func() {
				if !resumed {
					srv.Resume()
				}
			}()
			resp := send(t, addr, newReq("POST", tc.path, []byte(tc.body), tc.hdr...))
			var got map[string]string
			if err := json.Unmarshal(resp.Body(), &got); err != nil {
				t.Fatalf("503 body %q: %v", resp.Body(), err)
			}
			id := got["id"]
			msg := got["error"] + got["detail"]
			if resp.StatusCode() != 503 || !jobIDPattern.MatchString(id) || len(resp.Header.Peek("Retry-After")) == 0 {
				t.Fatalf("while Redis is frozen: %d %s, want 503 naming the job id", resp.StatusCode(), resp.Body())
			}
			for _, want := range []string{"unknown", id, "/-/requests/" + id, "Idempotency-Key"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not say %q", msg, want)
				}
			}
			srv.Resume()
			resumed = true
			// Retries with the same key, as a client does after a 503.
			for i := range 3 {
				r := send(t, addr, newReq("POST", tc.path, []byte(tc.body), tc.hdr...))
				if r.StatusCode() != 202 {
					t.Fatalf("retry %d: %d %s", i, r.StatusCode(), r.Body())
				}
				var acc map[string]string
				if err := json.Unmarshal(r.Body(), &acc); err != nil || acc[tc.idField] != id {
					t.Fatalf("retry %d answered %s, want the id of the 503, %s", i, r.Body(), id)
				}
			}
			// Every job in the queue carries that id: no second job.
			seen := 0
			for {
				c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				ds, err := q.Receive(c, "test", 10)
				cancel()
				if err != nil || len(ds) == 0 {
					break
				}
				for _, d := range ds {
					if d.Job.ID != id {
						t.Errorf("the queue holds a second job %s besides %s", d.Job.ID, id)
					}
					seen++
				}
			}
			if seen == 0 {
				t.Errorf("no job %s in the queue", id)
			}
		})
	}

	// Without a key (and with the job and its record written in one call)
	// the 503 still names the id, and says to poll it: once Redis runs
	// again the status shows whether the job was stored.
	layout := res.Layout()
	q2, err := redisbackend.New(context.Background(), redisbackend.Options{URL: srv.URL(), Stream: "router-ambiguous-2", Results: &layout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q2.Close() })
	rq, _ := q2.WithResults()
	ts2 := newTestServerOpts(t, Options{Registry: prometheus.NewRegistry(), SubmitTimeout: 300 * time.Millisecond}, Deps{Queues: map[string]Enqueuer{"jobs": rq}, Results: res})
	addr2 := serveTestServer(t, ts2, cfg)
	srv.Pause()
	resp := send(t, addr2, newReq("POST", "/orders", []byte("y")))
	srv.Resume()
	var got map[string]string
	_ = json.Unmarshal(resp.Body(), &got)
	if resp.StatusCode() != 503 || !jobIDPattern.MatchString(got["id"]) || !strings.Contains(got["error"], "poll /-/requests/"+got["id"]) {
		t.Errorf("keyless submit while frozen: %d %s", resp.StatusCode(), resp.Body())
	} else {
		// The frozen Redis executes the write once it runs again.
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := get(t, addr2, "/-/requests/"+got["id"])
			if r.StatusCode() == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("status of the job the 503 named: %d %s", r.StatusCode(), r.Body())
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A Redis that refuses connections is no unknown outcome: plain 503.
	srv.Kill()
	resp = send(t, addr, newReq("POST", "/orders", []byte("z"), "Idempotency-Key", "down-1"))
	got = nil
	_ = json.Unmarshal(resp.Body(), &got)
	if resp.StatusCode() != 503 || got["id"] != "" {
		t.Errorf("Redis down: %d %s, want a 503 without an id", resp.StatusCode(), resp.Body())
	}
}

// newTestServerOpts is newTestServer with Options of the test's own.
func newTestServerOpts(t testing.TB, opts Options, deps Deps) *testServer {
	t.Helper()
	ts := newTestServer(t, nil, deps)
	srv, err := New(Options{Registry: opts.Registry, SubmitTimeout: opts.SubmitTimeout, Current: func() (*Generation, func()) { return ts.gen.Load(), func() {} }})
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	return ts
}

// serveTestServer applies cfg to ts and serves it on 127.0.0.1.
func serveTestServer(t testing.TB, ts *testServer, cfg *config.Config) string {
	t.Helper()
	if err := ts.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHTTPServer(cfg.Server, ts.Handler, nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Serve(Listen(ln, cfg.Server, nil)) }()
	t.Cleanup(func() { _ = h.Shutdown(); <-done })
	return ln.Addr().String()
}
