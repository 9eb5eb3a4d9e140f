package router

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
	redisbackend "github.com/openhqm/openhqm/backends/redis"
	"github.com/openhqm/openhqm/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// quietRedis drops go-redis's own logging of dial failures, which the outage
// tests provoke on purpose.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

func redisBackends(t testing.TB, srv *testredis.Server, stream string) (*redisbackend.Queue, *redisbackend.Results) {
	t.Helper()
	quietOnce.Do(func() { redis.SetLogger(quietRedis{}) })
	q, err := redisbackend.New(context.Background(), redisbackend.Options{URL: srv.URL(), Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	res, err := redisbackend.NewResults(context.Background(), redisbackend.ResultsOptions{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	return q, res
}

// Submit, read the job back from the stream, complete it and read the
// result: the whole path on a real redis-server.
func TestAsyncRedis(t *testing.T) {
	srv := testredis.Start(t)
	q, res := redisBackends(t, srv, "router-test")
	e := startAsync(t, asyncConfig(t), q, res)
	body := []byte{0, 0xff, '\r', '\n', 'b', 0}
	resp := send(t, e.addr, newReq("POST", "/secure/x?y=1", body, "Authorization", "Bearer alice-token"))
	if resp.StatusCode() != 202 {
		t.Fatalf("got %d %s", resp.StatusCode(), resp.Body())
	}
	id := decode(t, resp)["id"].(string)
	d := e.receiveOne(t)
	if d.Job.ID != id || !bytes.Equal(d.Job.Body, body) || d.Job.Principal != digestOf("alice-token") {
		t.Fatalf("job %+v", d.Job)
	}
	if r := get(t, e.addr, "/-/requests/"+id, "Authorization", "Bearer alice-token"); r.StatusCode() != 200 || decode(t, r)["status"] != "pending" {
		t.Errorf("status: %d %s", r.StatusCode(), r.Body())
	}
	complete(t, res, id, backends.StatusCompleted, 200, "done")
	if r := get(t, e.addr, "/-/requests/"+id+"/response", "Authorization", "Bearer alice-token"); r.StatusCode() != 200 || string(r.Body()) != "done" {
		t.Errorf("response: %d %s", r.StatusCode(), r.Body())
	}
	if r := get(t, e.addr, "/-/requests/"+id+"/response", "Authorization", "Bearer bob-token"); r.StatusCode() != 404 {
		t.Errorf("other principal: %d", r.StatusCode())
	}
}

// With Redis down a submit answers 503 quickly and leaves no pending record.
func TestAsyncRedisDown(t *testing.T) {
	srv := testredis.Start(t)
	q, _ := redisBackends(t, srv, "router-down")
	res, err := memory.NewResults(memory.ResultsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := startAsync(t, asyncConfig(t), q, res)
	srv.Kill()
	start := time.Now()
	resp := send(t, e.addr, newReq("POST", "/orders", []byte("x"), "Idempotency-Key", "during-outage"))
	if resp.StatusCode() != 503 || len(resp.Header.Peek("Retry-After")) == 0 {
		t.Fatalf("got %d %s", resp.StatusCode(), resp.Body())
	}
	t.Logf("503 after %v", time.Since(start))
	bound, _, err := res.Reserve(context.Background(), scopeKey("orders", "", []byte("during-outage")), "probe", "", time.Hour)
	if err != nil || bound == "probe" {
		t.Fatalf("key not reserved: %v", err)
	}
	if _, err := res.Get(context.Background(), bound); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("pending record left behind: %v", err)
	}

	// Both stores on the dead Redis: still 503, and the legacy API too.
	q2, res2 := redisBackendsDown(t)
	e2 := startAsync(t, asyncConfig(t), q2, res2)
	if r := send(t, e2.addr, newReq("POST", "/orders", []byte("x"))); r.StatusCode() != 503 {
		t.Errorf("all-Redis submit: %d %s", r.StatusCode(), r.Body())
	}
	if r := send(t, e2.addr, newReq("POST", "/api/v1/submit", []byte(`{"payload":{}}`), "Content-Type", "application/json")); r.StatusCode() != 503 || decode(t, r)["detail"] == nil {
		t.Errorf("legacy submit: %d %s", r.StatusCode(), r.Body())
	}
	if r := get(t, e2.addr, "/-/requests/0123456789abcdef0123456789abcdef"); r.StatusCode() != 503 {
		t.Errorf("status read: %d %s", r.StatusCode(), r.Body())
	}
}

// redisBackendsDown connects both stores to a redis-server and stops it.
func redisBackendsDown(t testing.TB) (*redisbackend.Queue, *redisbackend.Results) {
	srv := testredis.Start(t)
	q, res := redisBackends(t, srv, "router-down-2")
	srv.Kill()
	return q, res
}
