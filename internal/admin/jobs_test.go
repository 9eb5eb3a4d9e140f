package admin

import (
	"context"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
	"github.com/openhqm/openhqm/internal/jobs"
)

// TestJobsPages drives the queues and jobs pages over real memory
// backends: answers, methods, bad input and the admin token.
func TestJobsPages(t *testing.T) {
	q, err := memory.NewQueue(memory.QueueOptions{Name: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := memory.NewResults(memory.ResultsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	job := &backends.Job{ID: "0123456789abcdef0123456789abcdef", Route: "work", Endpoint: "app", Method: "POST", Path: "/work", Body: []byte("secret body"), CreatedAt: time.Now()}
	if err := res.Create(ctx, &backends.Result{ID: job.ID, Route: "work", Status: backends.StatusPending}); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	svc := &jobs.Service{Queues: []jobs.Queue{{Name: "jobs", Backend: "memory", Q: q}}, Results: res, TTL: time.Hour,
		QueueOf: func(string) string { return "jobs" }}
	released := 0
	h := New(Options{
		Jobs:  func() (*jobs.Service, func()) { return svc, func() { released++ } },
		Token: func() string { return "admin-secret" },
	})
	for _, tc := range []struct {
		name, method, path string
		exp                Exposure
		code               int
		key                string // a key the JSON answer has
	}{
		{"stats", "GET", "/-/queues", Dedicated, 200, "queues"},
		{"stats needs the token on the main listener", "GET", "/-/queues", Shared, 401, "error"},
		{"list", "GET", "/-/jobs?queue=jobs&state=waiting", Dedicated, 200, "jobs"},
		{"list of an unknown state", "GET", "/-/jobs?state=nope", Dedicated, 400, "error"},
		{"list of an unknown queue", "GET", "/-/jobs?queue=nope", Dedicated, 404, "error"},
		{"show", "GET", "/-/jobs/" + job.ID, Dedicated, 200, "method"},
		{"show of an unknown job", "GET", "/-/jobs/ffffffffffffffffffffffffffffffff", Dedicated, 404, "error"},
		{"stats is read only", "POST", "/-/queues", Dedicated, 405, "error"},
		{"redrive without a selection", "POST", "/-/queues/jobs/redrive", Dedicated, 400, "error"},
		{"redrive is a POST", "GET", "/-/queues/jobs/redrive?all=1", Dedicated, 405, "error"},
		{"redrive", "POST", "/-/queues/jobs/redrive?all=1", Dedicated, 200, "redriven"},
		{"purge with a bad duration", "POST", "/-/queues/jobs/purge?older_than=soon", Dedicated, 400, "error"},
		{"purge of an unknown queue", "POST", "/-/queues/nope/purge", Dedicated, 404, "error"},
		{"unknown action", "POST", "/-/queues/jobs/drain", Dedicated, 404, "error"},
		{"cancel", "DELETE", "/-/jobs/" + job.ID, Dedicated, 200, "status"},
		{"second cancel", "DELETE", "/-/jobs/" + job.ID, Dedicated, 409, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := request(h, tc.exp, tc.method, tc.path, "10.0.0.1")
			if !ok || c.Response.StatusCode() != tc.code {
				t.Fatalf("%s %s: served %v, %d %s; want %d", tc.method, tc.path, ok, c.Response.StatusCode(), c.Response.Body(), tc.code)
			}
			if _, has := body(t, c)[tc.key]; !has {
				t.Fatalf("answer %s lacks %q", c.Response.Body(), tc.key)
			}
		})
	}
	c, _ := request(h, Dedicated, "GET", "/-/jobs/"+job.ID, "10.0.0.1")
	if got := body(t, c); got["body"] != nil || got["state"] != string(backends.StatusCancelled) {
		t.Fatalf("show after the cancel: %v; want state cancelled and no body unless asked", got)
	}
	if released == 0 {
		t.Fatal("the pages never gave the service back")
	}
}
