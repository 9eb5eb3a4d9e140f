package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

func TestAsyncAccepted(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	resp := send(t, e.addr, newReq("POST", "/orders/7?x=1", []byte(`{"a":1}`), "X-Request-Id", "req-1"))
	if resp.StatusCode() != 202 {
		t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	body := decode(t, resp)
	id, _ := body["id"].(string)
	if !validJobID([]byte(id)) {
		t.Fatalf("id %q is not 32 hex digits", id)
	}
	want := map[string]any{"id": id, "status": "pending", "status_url": "/-/requests/" + id}
	if d := cmp.Diff(want, body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	for h, v := range map[string]string{"Location": "/-/requests/" + id, "Retry-After": "1", "X-Request-Id": "req-1", "Content-Type": "application/json"} {
		if got := string(resp.Header.Peek(h)); got != v {
			t.Errorf("%s = %q, want %q", h, got, v)
		}
	}
	d := e.receiveOne(t)
	if d.Job.ID != id {
		t.Errorf("queued job %s, answered %s", d.Job.ID, id)
	}
	r, err := e.results.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != backends.StatusPending || r.Route != "orders" || r.SubmittedAt.IsZero() {
		t.Errorf("pending record %+v", r)
	}
	if got := counterValue(t, e.reg, "openhqm_async_accepted_total", "route", "orders"); got != 1 {
		t.Errorf("openhqm_async_accepted_total{route=orders} = %v", got)
	}
}

// The job is a faithful, self-owned copy of the request, minus what was
// addressed to openhqm or to the connection.
func TestAsyncJobContent(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	body := make([]byte, 4096)
	for i := range body {
		body[i] = byte(i * 7) // binary, with NULs and invalid UTF-8
	}
	resp := send(t, e.addr, newReq("PUT", "/secure/a/b/c?q=%20x&y", body,
		"Authorization", "Bearer bob-token",
		"Content-Type", "application/octet-stream",
		"X-Custom", "kept",
		"Connection", "X-Hop",
		"X-Hop", "dropped",
		"Keep-Alive", "timeout=5",
		"Prefer", "wait=0",
		"Idempotency-Key", "k1",
		"X-Forwarded-For", "203.0.113.9",
	))
	if resp.StatusCode() != 202 {
		t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	job := e.receiveOne(t).Job
	got := map[string]string{}
	for _, h := range job.Headers {
		got[h.Name] = h.Value
	}
	want := map[string]string{
		"Content-Type":      "application/octet-stream",
		"X-Custom":          "kept",
		"User-Agent":        got["User-Agent"],
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Host":  e.addr,
		"X-Forwarded-Proto": "http",
		"X-Request-Id":      got["X-Request-Id"],
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("headers (-want +got):\n%s", d)
	}
	if len(got["X-Request-Id"]) == 0 {
		t.Error("no X-Request-Id in the job")
	}
	if d := cmp.Diff(body, job.Body); d != "" {
		t.Error("body differs")
	}
	wantJob := backends.Job{Route: "secure", Endpoint: "app", Queue: "jobs", Method: "PUT", Path: "/secure/a/b/c",
		Query: "q=%20x&y", Principal: digestOf("bob-token"), Key: "secure"}
	if d := cmp.Diff(wantJob, *job, cmpopts.IgnoreFields(backends.Job{}, "ID", "Headers", "Body", "CreatedAt")); d != "" {
		t.Errorf("job (-want +got):\n%s", d)
	}
	for _, h := range job.Headers {
		if strings.Contains(h.Value, "bob-token") {
			t.Errorf("credential stored in header %s", h.Name)
		}
	}
	if time.Since(job.CreatedAt) > time.Minute {
		t.Errorf("CreatedAt %v", job.CreatedAt)
	}
	r, err := e.results.Get(context.Background(), job.ID)
	if err != nil || r.Principal != digestOf("bob-token") {
		t.Errorf("record principal: %v %+v", err, r)
	}
}

// The path is kept exactly as the client wrote it, escapes included.
func TestAsyncJobRawPath(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	resp := roundTrip(t, e.addr, "POST /orders/a%20b/%41c?q=a%20b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode() != 202 {
		t.Fatalf("got %d %s", resp.StatusCode(), resp.Body())
	}
	job := e.receiveOne(t).Job
	if job.Path != "/orders/a%20b/%41c" || job.Query != "q=a%20b" {
		t.Errorf("path %q query %q", job.Path, job.Query)
	}
}

func TestAsyncRejected(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, q *memory.Queue)
		reason  string
		retry   string
	}{
		{"full", func(t *testing.T, q *memory.Queue) {
			if err := q.Enqueue(context.Background(), &backends.Job{ID: "filler"}); err != nil {
				t.Fatal(err)
			}
		}, reasonFull, "5"},
		{"closed", func(t *testing.T, q *memory.Queue) { q.Close() }, reasonUnavailable, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := memory.NewQueue(memory.QueueOptions{Name: "jobs", MaxDepth: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			e := startAsync(t, asyncConfig(t), q, nil)
			tt.prepare(t, q)
			resp := send(t, e.addr, newReq("POST", "/orders", []byte("x"), "Idempotency-Key", "abc"))
			if resp.StatusCode() != 503 || string(resp.Header.Peek("Retry-After")) != tt.retry {
				t.Fatalf("got %d Retry-After %q, want 503 %s: %s", resp.StatusCode(), resp.Header.Peek("Retry-After"), tt.retry, resp.Body())
			}
			if _, ok := decode(t, resp)["error"]; !ok {
				t.Errorf("no error in %s", resp.Body())
			}
			// The key is bound to the id the failed submit used; its record
			// must be gone.
			id, _, err := e.results.Reserve(context.Background(), scopeKey("orders", "", []byte("abc")), "probe", "", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if id == "probe" {
				t.Fatal("the idempotency key was not reserved")
			}
			if _, err := e.results.Get(context.Background(), id); !errors.Is(err, backends.ErrNotFound) {
				t.Errorf("pending record of a rejected job: %v", err)
			}
			if got := counterValue(t, e.reg, "openhqm_async_rejected_total", "route", "orders", "reason", tt.reason); got != 1 {
				t.Errorf("rejected{%s} = %v", tt.reason, got)
			}
		})
	}
}

// A retry with the same Idempotency-Key after a 503 takes over the id the
// failed attempt reserved.
func TestIdempotencyRetryAfterFailure(t *testing.T) {
	q, err := memory.NewQueue(memory.QueueOptions{Name: "jobs", MaxDepth: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	e := startAsync(t, asyncConfig(t), q, nil)
	if err := q.Enqueue(context.Background(), &backends.Job{ID: "filler"}); err != nil {
		t.Fatal(err)
	}
	req := func() *fasthttp.Response {
		return send(t, e.addr, newReq("POST", "/orders", []byte("x"), "Idempotency-Key", "k"))
	}
	if r := req(); r.StatusCode() != 503 {
		t.Fatalf("full queue: %d", r.StatusCode())
	}
	if err := q.Ack(context.Background(), e.receiveOne(t)); err != nil { // the filler: free the slot
		t.Fatal(err)
	}
	r := req()
	if r.StatusCode() != 202 {
		t.Fatalf("retry: %d %s", r.StatusCode(), r.Body())
	}
	id := decode(t, r)["id"].(string)
	bound, _, _ := e.results.Reserve(context.Background(), scopeKey("orders", "", []byte("k")), "probe", "", time.Hour)
	if bound != id {
		t.Errorf("retry got id %s, key bound to %s", id, bound)
	}
	if r2 := req(); decode(t, r2)["id"] != id {
		t.Errorf("third submit: %s", r2.Body())
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	post := func(path, body, key string, hdr ...string) *fasthttp.Response {
		return send(t, e.addr, newReq("POST", path, []byte(body), append([]string{"Idempotency-Key", key}, hdr...)...))
	}
	first := post("/orders", "one", "key-1")
	id := decode(t, first)["id"]
	if first.StatusCode() != 202 {
		t.Fatalf("first: %d", first.StatusCode())
	}
	again := post("/orders", "one", "key-1")
	if again.StatusCode() != 202 || decode(t, again)["id"] != id {
		t.Errorf("same key, same body: %d %s, want id %v", again.StatusCode(), again.Body(), id)
	}
	conflict := post("/orders", "two", "key-1")
	if conflict.StatusCode() != 422 {
		t.Errorf("same key, other body: %d %s", conflict.StatusCode(), conflict.Body())
	}
	other := post("/orders", "one", "key-2")
	if decode(t, other)["id"] == id {
		t.Error("another key got the same job")
	}
	// Keys are scoped by principal: Alice's and Bob's key-1 are different jobs.
	a := post("/secure", "one", "key-1", "Authorization", "Bearer alice-token")
	b := post("/secure", "one", "key-1", "Authorization", "Bearer bob-token")
	if decode(t, a)["id"] == decode(t, b)["id"] {
		t.Error("two principals share an idempotency key")
	}
	e.receiveOne(t)
	e.receiveOne(t)
	e.receiveOne(t)
	e.receiveOne(t)
	if ds, _ := e.queue.Receive(context.Background(), "t", 10); len(ds) != 0 {
		t.Errorf("%d extra jobs enqueued", len(ds))
	}
	if got := counterValue(t, e.reg, "openhqm_async_rejected_total", "route", "orders", "reason", reasonConflict); got != 1 {
		t.Errorf("rejected{conflict} = %v", got)
	}
}

func TestPreferWait(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	t.Run("completed in time", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			d := e.receiveOne(t)
			time.Sleep(30 * time.Millisecond)
			complete(t, e.results, d.Job.ID, backends.StatusCompleted, 201, `{"ok":true}`, "Content-Type", "application/json", "X-App", "yes")
		}()
		resp := send(t, e.addr, newReq("POST", "/orders", []byte("x"), "Prefer", "wait=5"))
		<-done
		if resp.StatusCode() != 201 || string(resp.Body()) != `{"ok":true}` {
			t.Fatalf("got %d %s", resp.StatusCode(), resp.Body())
		}
		for h, v := range map[string]string{"X-App": "yes", "Content-Type": "application/json", "Preference-Applied": "wait=5", "OpenHQM-Status": "completed"} {
			if got := string(resp.Header.Peek(h)); got != v {
				t.Errorf("%s = %q, want %q", h, got, v)
			}
		}
	})
	t.Run("not in time", func(t *testing.T) {
		start := time.Now()
		resp := send(t, e.addr, newReq("POST", "/orders", []byte("x"), "Prefer", "wait=1"))
		if resp.StatusCode() != 202 || len(resp.Header.Peek("Location")) == 0 {
			t.Fatalf("got %d %s", resp.StatusCode(), resp.Body())
		}
		if time.Since(start) < time.Second {
			t.Errorf("answered before the wait passed")
		}
		e.receiveOne(t)
	})
}

func TestAutoMode(t *testing.T) {
	app := newEchoApp(t)
	cfg := asyncConfig(t)
	cfg.Endpoints["app"].URL = mustURL(t, "http://"+app.addr)
	e := startAsync(t, cfg, nil, nil)
	tests := []struct {
		name   string
		prefer string
		want   int
	}{
		{"sync without Prefer", "", 200},
		{"async with respond-async", "respond-async", 202},
		{"async with respond-async and wait", "respond-async, wait=1", 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.prefer != "" {
				hdr = []string{"Prefer", tt.prefer}
			}
			resp := send(t, e.addr, newReq("POST", "/auto/x", []byte("b"), hdr...))
			if resp.StatusCode() != tt.want {
				t.Fatalf("got %d %s", resp.StatusCode(), resp.Body())
			}
			if tt.want == 202 {
				if d := e.receiveOne(t); d.Job.Route != "auto" {
					t.Errorf("job route %q", d.Job.Route)
				}
			}
		})
	}
}

func TestBuildRefusesMissingQueue(t *testing.T) {
	cfg := asyncConfig(t)
	srv := newTestServer(t, nil, Deps{})
	if err := srv.Apply(cfg); err == nil || srv.Current() != nil {
		t.Fatalf("Apply without result store or queue: %v", err)
	}
	sync := simpleConfig(t, "127.0.0.1:1")
	if err := srv.Apply(sync); err != nil {
		t.Fatalf("a sync-only configuration needs no queue: %v", err)
	}
	_ = config.ModeSync
}

func TestPreferWaitParse(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"wait=5", 5 * time.Second, true},
		{"respond-async, wait=10", 10 * time.Second, true},
		{"respond-async; WAIT=3", 3 * time.Second, true},
		{"wait=600", time.Minute, true},
		{"wait=0", 0, false},
		{"wait=-1", 0, false},
		{"wait=x", 0, false},
		{"respond-async", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		d, ok := preferWait([]byte(tt.in), time.Minute)
		if d != tt.want || ok != tt.ok {
			t.Errorf("preferWait(%q) = %v %v, want %v %v", tt.in, d, ok, tt.want, tt.ok)
		}
	}
}

// pairedQueue is a memory queue that stores the pending record itself, the
// way a Redis queue sharing the result store's server can in one round trip.
type pairedQueue struct {
	*memory.Queue
	res   *memory.Results
	calls atomic.Int32
}

func (p *pairedQueue) EnqueueWithResult(ctx context.Context, job *backends.Job, pending *backends.Result) error {
	p.calls.Add(1)
	if err := p.res.Create(ctx, pending); err != nil {
		return err
	}
	if err := p.Enqueue(ctx, job); err != nil {
		_ = p.res.Delete(ctx, pending.ID)
		return err
	}
	return nil
}

// limitedQueue is a memory queue with a message size limit, as SQS has.
type limitedQueue struct {
	*memory.Queue
	limit int
}

func (q *limitedQueue) Enqueue(ctx context.Context, job *backends.Job) error {
	if len(job.Body) > q.limit {
		return fmt.Errorf("enqueue %s: %w", job.ID, &backends.TooLargeError{Backend: "SQS", Limit: int64(q.limit)})
	}
	return q.Queue.Enqueue(ctx, job)
}

// TestJobTooLargeForTheQueueIs413: a body the queue cannot take is refused
// with 413 naming the limit, and leaves no record behind.
func TestJobTooLargeForTheQueueIs413(t *testing.T) {
	mq, _ := memory.NewQueue(memory.QueueOptions{Name: "jobs"})
	defer mq.Close()
	e := startAsync(t, asyncConfig(t), &limitedQueue{Queue: mq, limit: 2048}, nil)
	resp := send(t, e.addr, newReq("POST", "/orders", make([]byte, 4096)))
	if resp.StatusCode() != 413 || !strings.Contains(string(resp.Body()), "SQS message limit of 2 KiB") {
		t.Fatalf("oversized job: %d %s", resp.StatusCode(), resp.Body())
	}
	if got := counterValue(t, e.reg, "openhqm_async_rejected_total", "route", "orders", "reason", "too_large"); got != 1 {
		t.Errorf("rejected{too_large} = %v", got)
	}
	if id := e.submit(t, "/orders"); id == "" {
		t.Error("a small job is still accepted")
	}
}

func TestResultEnqueuerIsUsed(t *testing.T) {
	mq, _ := memory.NewQueue(memory.QueueOptions{Name: "jobs"})
	defer mq.Close()
	res, _ := memory.NewResults(memory.ResultsOptions{})
	q := &pairedQueue{Queue: mq, res: res}
	e := startAsync(t, asyncConfig(t), q, res)
	id := e.submit(t, "/orders")
	if n := q.calls.Load(); n != 1 {
		t.Errorf("EnqueueWithResult called %d times", n)
	}
	if r, err := res.Get(context.Background(), id); err != nil || r.Status != backends.StatusPending || r.Route != "orders" {
		t.Errorf("record %+v %v", r, err)
	}
	if d := e.receiveOne(t); d.Job.ID != id {
		t.Errorf("queued %s, answered %s", d.Job.ID, id)
	}
}

// A queue's key_header (Kafka's partition key, an SQS FIFO queue's message
// group) sets the job's key; without the header the key is the route name.
func TestJobKeyFromQueueKeyHeader(t *testing.T) {
	for _, qc := range []*config.Queue{
		{Name: "jobs", Backend: config.BackendKafka, Kafka: &config.KafkaQueue{KeyHeader: "X-Tenant"}},
		{Name: "jobs", Backend: config.BackendSQS, SQS: &config.SQSQueue{KeyHeader: "X-Tenant"}},
	} {
		t.Run(string(qc.Backend), func(t *testing.T) {
			cfg := asyncConfig(t)
			cfg.Queues["jobs"] = qc
			e := startAsync(t, cfg, nil, nil)
			for _, tc := range []struct{ tenant, want string }{{"acme", "acme"}, {"", "orders"}} {
				var hdr []string
				if tc.tenant != "" {
					hdr = []string{"X-Tenant", tc.tenant}
				}
				if resp := send(t, e.addr, newReq("POST", "/orders", []byte("{}"), hdr...)); resp.StatusCode() != 202 {
					t.Fatalf("submit: %d %s", resp.StatusCode(), resp.Body())
				}
				if got := e.receiveOne(t).Job.Key; got != tc.want {
					t.Errorf("X-Tenant %q: job key %q, want %q", tc.tenant, got, tc.want)
				}
			}
		})
	}
}
