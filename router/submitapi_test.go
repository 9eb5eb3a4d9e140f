package router

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
)

func (e *asyncEnv) legacySubmit(t testing.TB, body string, hdr ...string) string {
	t.Helper()
	resp := send(t, e.addr, newReq("POST", "/api/v1/submit", []byte(body), append([]string{"Content-Type", "application/json"}, hdr...)...))
	if resp.StatusCode() != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode(), resp.Body())
	}
	return decode(t, resp)["correlation_id"].(string)
}

func TestSubmitAPISubmit(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	resp := send(t, e.addr, newReq("POST", "/api/v1/submit",
		[]byte(`{"payload": {"data": "x", "n": [1, null, "é"]}, "headers": {"Authorization": "Bearer t", "X-Custom": "v", "Connection": "close", "Content-Type": "text/plain"},
		  "metadata": {"endpoint": "other", "method": "put", "timeout": 300, "priority": 5, "session_id": "ignored"}}`),
		"Content-Type", "application/json; charset=utf-8"))
	if resp.StatusCode() != 202 {
		t.Fatalf("got %d %s", resp.StatusCode(), resp.Body())
	}
	body := decode(t, resp)
	id := body["correlation_id"].(string)
	if body["status"] != "PENDING" || !validJobID([]byte(id)) {
		t.Errorf("body %v", body)
	}
	if _, err := time.Parse(time.RFC3339Nano, body["submitted_at"].(string)); err != nil {
		t.Errorf("submitted_at: %v", err)
	}
	job := e.receiveOne(t).Job
	// No path: the worker sends the job to the endpoint's URL itself, as
	// the original did.
	want := backends.Job{ID: id, Endpoint: "other", Queue: "jobs", Method: "PUT", Path: "", Key: "other",
		Headers: []backends.Header{{Name: "Authorization", Value: "Bearer t"}, {Name: "X-Custom", Value: "v"}, {Name: "Content-Type", Value: "application/json"}},
		Body:    []byte(`{"data": "x", "n": [1, null, "é"]}`)}
	sortHeaders := cmpopts.SortSlices(func(a, b backends.Header) bool { return a.Name < b.Name })
	if d := cmp.Diff(want, *job, sortHeaders, cmpopts.IgnoreFields(backends.Job{}, "CreatedAt")); d != "" {
		t.Errorf("job (-want +got):\n%s", d)
	}
}

// TestSubmitAPIIdempotencyKey: a retried submit with the same key and body
// gets the first job's id and stores no second job; another body is refused.
func TestSubmitAPIIdempotencyKey(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	body := `{"payload": {"order": 7}}`
	first := e.legacySubmit(t, body, "Idempotency-Key", "order-7")
	second := e.legacySubmit(t, body, "Idempotency-Key", "order-7")
	if first != second {
		t.Errorf("retried submit got id %s, want %s", second, first)
	}
	e.receiveOne(t)
	if ds, err := e.queue.Receive(context.Background(), "test", 10); err != nil || len(ds) != 0 {
		t.Errorf("queue holds %d more jobs (err %v), want none", len(ds), err)
	}
	resp := send(t, e.addr, newReq("POST", "/api/v1/submit", []byte(`{"payload": {"order": 8}}`),
		"Content-Type", "application/json", "Idempotency-Key", "order-7"))
	if resp.StatusCode() != 422 || !strings.Contains(string(resp.Body()), "detail") {
		t.Errorf("same key, other body: %d %s, want 422 with a detail", resp.StatusCode(), resp.Body())
	}
}

func TestSubmitAPIValidation(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	tests := []struct {
		name, method, ctype, body string
		want                      int
		detail                    string // substring of the answer
	}{
		{"empty object", "POST", "application/json", `{}`, 422, "payload"},
		{"invalid JSON", "POST", "application/json", `{"payload":`, 422, "invalid JSON"},
		{"array payload", "POST", "application/json", `{"payload":[1]}`, 422, "dict"},
		{"scalar payload", "POST", "application/json", `{"payload":"x"}`, 422, "dict"},
		{"body not an object", "POST", "application/json", `[1]`, 422, "object"},
		{"priority 10", "POST", "application/json", `{"payload":{},"metadata":{"priority":10}}`, 422, "priority"},
		{"priority -1", "POST", "application/json", `{"payload":{},"metadata":{"priority":-1}}`, 422, "priority"},
		{"priority as a word", "POST", "application/json", `{"payload":{},"metadata":{"priority":"normal"}}`, 422, "metadata"},
		{"timeout 0", "POST", "application/json", `{"payload":{},"metadata":{"timeout":0}}`, 422, "timeout"},
		{"unknown endpoint", "POST", "application/json", `{"payload":{},"metadata":{"endpoint":"non-existent"}}`, 422, "Endpoint 'non-existent' not found"},
		{"bad header", "POST", "application/json", `{"payload":{},"headers":{"X-A":"a\r\nX-B: b"}}`, 422, "header"},
		{"headers not strings", "POST", "application/json", `{"payload":{},"headers":{"X-A":1}}`, 422, "headers"},
		{"form body", "POST", "application/x-www-form-urlencoded", `payload=x`, 415, "application/json"},
		{"no content type", "POST", "", `{"payload":{}}`, 415, "application/json"},
		{"PUT", "PUT", "application/json", `{"payload":{}}`, 405, "Method Not Allowed"},
		{"GET", "GET", "", ``, 405, "Method Not Allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newReq(tt.method, "/api/v1/submit", []byte(tt.body))
			if tt.ctype != "" {
				req.Header.SetContentType(tt.ctype)
			}
			resp := send(t, e.addr, req)
			if resp.StatusCode() != tt.want || !strings.Contains(string(resp.Body()), tt.detail) {
				t.Errorf("got %d %s, want %d with %q", resp.StatusCode(), resp.Body(), tt.want, tt.detail)
			}
			if _, ok := decode(t, resp)["detail"]; !ok {
				t.Errorf("no detail in %s", resp.Body())
			}
			if tt.want == 405 && string(resp.Header.Peek("Allow")) != "POST" {
				t.Errorf("Allow = %q", resp.Header.Peek("Allow"))
			}
		})
	}
	if ds, _ := e.queue.Receive(context.Background(), "t", 10); len(ds) != 0 {
		t.Errorf("%d invalid submits were enqueued", len(ds))
	}
}

func TestSubmitAPIStatusAndResponse(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	pending := e.legacySubmit(t, `{"payload":{"a":1}}`)

	status := decode(t, get(t, e.addr, "/api/v1/status/"+pending))
	if status["status"] != "PENDING" || status["submitted_at"] != status["updated_at"] || status["correlation_id"] != pending {
		t.Errorf("pending status %v", status)
	}
	resp := get(t, e.addr, "/api/v1/response/"+pending)
	if d := cmp.Diff(map[string]any{"correlation_id": pending, "status": "PENDING", "result": nil}, decode(t, resp)); d != "" || resp.StatusCode() != 202 || len(resp.Header.Peek("Retry-After")) == 0 {
		t.Errorf("pending response %d (-want +got):\n%s", resp.StatusCode(), d)
	}

	tests := []struct {
		name       string
		status     backends.Status
		code       int
		body, ct   string
		wantResult any
	}{
		{"json object", backends.StatusCompleted, 200, `{"result":"success"}`, "application/json", map[string]any{"result": "success"}},
		{"json array", backends.StatusCompleted, 200, `[1,2]`, "application/json", []any{1.0, 2.0}},
		{"json scalar", backends.StatusCompleted, 200, `42`, "application/json", 42.0},
		{"text on 500", backends.StatusCompleted, 500, `oops`, "text/plain", map[string]any{"response": "oops", "content_type": "text/plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := e.legacySubmit(t, `{"payload":{}}`)
			complete(t, e.results, id, tt.status, tt.code, tt.body, "Content-Type", tt.ct, "X-Response-Id", "r1")
			resp := get(t, e.addr, "/api/v1/response/"+id)
			got := decode(t, resp)
			if resp.StatusCode() != 200 || got["completed_at"] == nil {
				t.Fatalf("got %d %s", resp.StatusCode(), resp.Body())
			}
			delete(got, "completed_at")
			want := map[string]any{"correlation_id": id, "status": "COMPLETED", "result": tt.wantResult,
				"headers": map[string]any{"Content-Type": tt.ct, "X-Response-Id": "r1"}, "status_code": float64(tt.code), "processing_time_ms": 42.0}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if s := decode(t, get(t, e.addr, "/api/v1/status/"+id)); s["status"] != "COMPLETED" {
				t.Errorf("status %v", s)
			}
		})
	}

	t.Run("failed", func(t *testing.T) {
		id := e.legacySubmit(t, `{"payload":{}}`)
		complete(t, e.results, id, backends.StatusFailed, 0, "")
		resp := get(t, e.addr, "/api/v1/status/"+id)
		if s := decode(t, resp); resp.StatusCode() != 200 || s["status"] != "FAILED" || s["submitted_at"] == nil {
			t.Errorf("failed status %d %s", resp.StatusCode(), resp.Body())
		}
		resp = get(t, e.addr, "/api/v1/response/"+id)
		got := decode(t, resp)
		if resp.StatusCode() != 200 || got["status"] != "FAILED" || !strings.Contains(got["error"].(string), "gave up") || got["completed_at"] == nil {
			t.Errorf("failed response %d %s", resp.StatusCode(), resp.Body())
		}
	})

	for _, path := range []string{"/api/v1/status/", "/api/v1/response/"} {
		resp := get(t, e.addr, path+"0123456789abcdef0123456789abcdef")
		if d := cmp.Diff(map[string]any{"detail": "Request not found or expired"}, decode(t, resp)); resp.StatusCode() != 404 || d != "" {
			t.Errorf("%s unknown: %d %s", path, resp.StatusCode(), d)
		}
	}
}

func TestSubmitAPIAuth(t *testing.T) {
	cfg := asyncConfig(t)
	cfg.SubmitAPI.ClientAuth = &config.ClientAuth{Type: config.AuthAPIKey, Tokens: []string{"sk-1", "sk-2"}}
	e := startAsync(t, cfg, nil, nil)
	resp := send(t, e.addr, newReq("POST", "/api/v1/submit", []byte(`{"payload":{}}`), "Content-Type", "application/json"))
	if resp.StatusCode() != 401 || len(resp.Header.Peek("WWW-Authenticate")) == 0 {
		t.Fatalf("anonymous submit: %d %s", resp.StatusCode(), resp.Body())
	}
	id := e.legacySubmit(t, `{"payload":{}}`, "X-API-Key", "sk-1")
	job := e.receiveOne(t).Job
	if job.Principal != digestOf("sk-1") {
		t.Errorf("principal %q", job.Principal)
	}
	for _, h := range job.Headers {
		if h.Value == "sk-1" {
			t.Errorf("credential stored in %s", h.Name)
		}
	}
	for key, want := range map[string]int{"sk-1": 200, "sk-2": 404, "": 404} {
		if resp := get(t, e.addr, "/api/v1/status/"+id, "X-API-Key", key); resp.StatusCode() != want {
			t.Errorf("status with key %q: %d, want %d", key, resp.StatusCode(), want)
		}
	}
}

// Without submit_api the /api/v1 paths are ordinary paths for the routes.
func TestSubmitAPIDisabled(t *testing.T) {
	cfg := asyncConfig(t)
	cfg.SubmitAPI = nil
	app := newEchoApp(t)
	cfg.Endpoints["app"].URL = mustURL(t, "http://"+app.addr)
	e := startAsync(t, cfg, nil, nil)
	resp := send(t, e.addr, newReq("POST", "/api/v1/submit", []byte(`{"payload":{}}`), "Content-Type", "application/json"))
	if resp.StatusCode() != 200 || string(resp.Body()) != "hello" {
		t.Errorf("got %d %s", resp.StatusCode(), resp.Body())
	}
}
