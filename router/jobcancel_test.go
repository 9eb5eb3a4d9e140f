package router

import (
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
	"github.com/openhqm/openhqm/internal/jobs"
)

// startCancellable is startAsync with DELETE /-/requests/{id} wired to the
// jobs tooling over the same memory backends.
func startCancellable(t *testing.T) *asyncEnv {
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
	cfg := asyncConfig(t)
	svc := &jobs.Service{
		Queues: []jobs.Queue{{Name: "jobs", Backend: "memory", Q: q}}, Results: res, TTL: time.Hour,
		QueueOf: func(string) string { return "jobs" },
	}
	deps := Deps{Queues: map[string]Enqueuer{"jobs": q}, Results: res, Jobs: svc}
	return &asyncEnv{proxy: startProxy(t, cfg, deps), cfg: cfg, queue: q, results: res}
}

func TestJobCancel(t *testing.T) {
	e := startCancellable(t)
	del := func(id string, hdr ...string) (int, map[string]any) {
		resp := send(t, e.addr, newReq("DELETE", "/-/requests/"+id, nil, hdr...))
		return resp.StatusCode(), decode(t, resp)
	}

	// Only the submitting principal may cancel; others see no such job.
	id := e.submit(t, "/secure", "Authorization", "Bearer alice-token")
	if code, _ := del(id, "Authorization", "Bearer bob-token"); code != 404 {
		t.Fatalf("DELETE by another principal: %d, want 404", code)
	}
	if code, _ := del(id); code != 404 {
		t.Fatalf("DELETE without credentials: %d, want 404", code)
	}
	code, body := del(id, "Authorization", "Bearer alice-token")
	if code != 200 || body["status"] != "cancelled" {
		t.Fatalf("DELETE by the submitter: %d %v", code, body)
	}
	st := decode(t, get(t, e.addr, "/-/requests/"+id, "Authorization", "Bearer alice-token"))
	if st["status"] != "cancelled" || st["error"] == nil {
		t.Fatalf("status after the cancel: %v", st)
	}
	if resp := get(t, e.addr, "/-/requests/"+id+"/response", "Authorization", "Bearer alice-token"); resp.StatusCode() != 409 {
		t.Fatalf("response of a cancelled job: %d, want 409", resp.StatusCode())
	}
	if code, _ := del(id, "Authorization", "Bearer alice-token"); code != 409 {
		t.Fatalf("second DELETE: %d, want 409", code)
	}

	// A job a worker took is refused with its status; the queue never
	// hands out a cancelled one.
	started := e.submit(t, "/orders")
	d := e.receiveOne(t)
	if d.Job.ID != started {
		t.Fatalf("received %s, want %s", d.Job.ID, started)
	}
	code, body = del(started)
	if code != 409 || body["status"] == nil {
		t.Fatalf("DELETE of a delivered job: %d %v, want 409 with its status", code, body)
	}
	waiting := e.submit(t, "/orders")
	if code, _ := del(waiting); code != 200 {
		t.Fatalf("DELETE of a waiting job: %d", code)
	}
	if st, _ := e.queue.Stats(t.Context()); st.Depth != 1 || st.Pending != 1 {
		t.Fatalf("queue after the cancel: %+v, want only the delivered job", st)
	}
	if code, _ := del("0123456789abcdef0123456789abcdef"); code != 404 {
		t.Fatalf("DELETE of an unknown id: %d, want 404", code)
	}
	complete(t, e.results, started, backends.StatusCompleted, 200, "ok")
	if code, body := del(started); code != 409 || body["error"] != "the job has already finished" {
		t.Fatalf("DELETE of a completed job: %d %v", code, body)
	}
}
