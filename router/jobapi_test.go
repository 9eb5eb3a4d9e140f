package router

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
)

// submit posts to path and returns the job id.
func (e *asyncEnv) submit(t testing.TB, path string, hdr ...string) string {
	t.Helper()
	resp := send(t, e.addr, newReq("POST", path, []byte("body"), hdr...))
	if resp.StatusCode() != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode(), resp.Body())
	}
	return decode(t, resp)["id"].(string)
}

func TestJobStatus(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	id := e.submit(t, "/orders")

	resp := get(t, e.addr, "/-/requests/"+id)
	if resp.StatusCode() != 200 {
		t.Fatalf("status: %d %s", resp.StatusCode(), resp.Body())
	}
	got := decode(t, resp)
	if got["submitted_at"] == nil || got["updated_at"] == nil {
		t.Errorf("times missing: %v", got)
	}
	delete(got, "submitted_at")
	delete(got, "updated_at")
	want := map[string]any{"id": id, "status": "pending", "route": "orders", "attempts": 0.0, "response_url": "/-/requests/" + id + "/response"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("pending status (-want +got):\n%s", d)
	}

	complete(t, e.results, id, backends.StatusFailed, 500, "boom")
	got = decode(t, get(t, e.addr, "/-/requests/"+id))
	for _, k := range []string{"started_at", "completed_at", "error"} {
		if got[k] == nil {
			t.Errorf("failed status lacks %s: %v", k, got)
		}
	}
	if got["status"] != "failed" || got["attempts"] != 1.0 {
		t.Errorf("failed status %v", got)
	}
}

func TestJobResponse(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	t.Run("pending", func(t *testing.T) {
		id := e.submit(t, "/orders")
		resp := get(t, e.addr, "/-/requests/"+id+"/response")
		if resp.StatusCode() != 202 || string(resp.Header.Peek("Retry-After")) != "1" || decode(t, resp)["status"] != "pending" {
			t.Errorf("got %d %q %s", resp.StatusCode(), resp.Header.Peek("Retry-After"), resp.Body())
		}
	})
	t.Run("completed verbatim", func(t *testing.T) {
		id := e.submit(t, "/orders")
		body := string([]byte{0, 1, 2, 0xff, 'x'})
		complete(t, e.results, id, backends.StatusCompleted, 404, body, "Content-Type", "application/x-thing", "Set-Cookie", "a=1", "Set-Cookie", "b=2", "Connection", "close")
		resp := get(t, e.addr, "/-/requests/"+id+"/response")
		if resp.StatusCode() != 404 || string(resp.Body()) != body {
			t.Fatalf("got %d %q", resp.StatusCode(), resp.Body())
		}
		raw := roundTrip(t, e.addr, "GET /-/requests/"+id+"/response HTTP/1.1\r\nHost: x\r\n\r\n").Header.String()
		for _, line := range []string{"\r\nSet-Cookie: a=1\r\n", "\r\nSet-Cookie: b=2\r\n"} {
			if !strings.Contains(raw, line) {
				t.Errorf("answer lacks %q:\n%s", line, raw)
			}
		}
		if ct := string(resp.Header.ContentType()); ct != "application/x-thing" {
			t.Errorf("content type %q", ct)
		}
		if resp.ConnectionClose() {
			t.Error("the app's hop-by-hop Connection: close was replayed")
		}
	})
	t.Run("no content type added", func(t *testing.T) {
		id := e.submit(t, "/orders")
		complete(t, e.results, id, backends.StatusCompleted, 204, "")
		resp := roundTrip(t, e.addr, "GET /-/requests/"+id+"/response HTTP/1.1\r\nHost: x\r\n\r\n")
		if raw := resp.Header.String(); resp.StatusCode() != 204 || strings.Contains(raw, "Content-Type") {
			t.Errorf("got %d:\n%s", resp.StatusCode(), raw)
		}
	})
	t.Run("failed with an answer", func(t *testing.T) {
		id := e.submit(t, "/orders")
		complete(t, e.results, id, backends.StatusFailed, 503, "down")
		resp := get(t, e.addr, "/-/requests/"+id+"/response")
		if resp.StatusCode() != 503 || string(resp.Body()) != "down" || string(resp.Header.Peek("OpenHQM-Status")) != "failed" {
			t.Errorf("got %d %s %q", resp.StatusCode(), resp.Body(), resp.Header.Peek("OpenHQM-Status"))
		}
	})
	t.Run("failed without an answer", func(t *testing.T) {
		id := e.submit(t, "/orders")
		complete(t, e.results, id, backends.StatusFailed, 0, "")
		resp := get(t, e.addr, "/-/requests/"+id+"/response")
		if resp.StatusCode() != 502 || decode(t, resp)["error"] == nil {
			t.Errorf("got %d %s", resp.StatusCode(), resp.Body())
		}
	})
	t.Run("long poll", func(t *testing.T) {
		id := e.submit(t, "/orders")
		go func() {
			time.Sleep(50 * time.Millisecond)
			complete(t, e.results, id, backends.StatusCompleted, 200, "late")
		}()
		resp := get(t, e.addr, "/-/requests/"+id+"/response?wait=5s")
		if resp.StatusCode() != 200 || string(resp.Body()) != "late" {
			t.Errorf("got %d %s", resp.StatusCode(), resp.Body())
		}
	})
}

func TestJobAPIErrors(t *testing.T) {
	now := time.Now()
	res, err := memory.NewResults(memory.ResultsOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e := startAsync(t, asyncConfig(t), nil, res)
	expired := e.submit(t, "/orders")
	r, _ := res.Get(context.Background(), expired)
	r.Status, r.CompletedAt = backends.StatusCompleted, now.Add(-2*time.Hour)
	if err := res.Update(context.Background(), r, time.Hour); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		want               int
	}{
		{"unknown", "GET", "/-/requests/0123456789abcdef0123456789abcdef", 404},
		{"malformed", "GET", "/-/requests/not-an-id", 404},
		{"upper case", "GET", "/-/requests/0123456789ABCDEF0123456789ABCDEF", 404},
		{"other subpath", "GET", "/-/requests/" + expired + "/other", 404},
		{"expired", "GET", "/-/requests/" + expired, 410},
		{"expired response", "GET", "/-/requests/" + expired + "/response", 410},
		{"method", "DELETE", "/-/requests/" + expired, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(t, e.addr, newReq(tt.method, tt.path, nil))
			if resp.StatusCode() != tt.want {
				t.Errorf("got %d %s, want %d", resp.StatusCode(), resp.Body(), tt.want)
			}
		})
	}
}

// Only the submitting principal reads a job of an authenticated route.
func TestJobPrincipalIsolation(t *testing.T) {
	e := startAsync(t, asyncConfig(t), nil, nil)
	bearer := e.submit(t, "/secure", "Authorization", "Bearer alice-token")
	keyed := e.submit(t, "/keyed", "X-Key", "k-one")
	open := e.submit(t, "/orders")
	tests := []struct {
		name string
		id   string
		hdr  []string
		want int
	}{
		{"owner", bearer, []string{"Authorization", "Bearer alice-token"}, 200},
		{"owner lower-case scheme", bearer, []string{"Authorization", "bearer alice-token"}, 200},
		{"other valid token", bearer, []string{"Authorization", "Bearer bob-token"}, 404},
		{"no credential", bearer, nil, 404},
		{"credential as api key", bearer, []string{"X-API-Key", "alice-tokenx"}, 404},
		{"api key owner", keyed, []string{"X-Key", "k-one"}, 200},
		{"api key other", keyed, []string{"X-Key", "k-two"}, 404},
		{"anonymous job", open, nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, suffix := range []string{"", "/response"} {
				want := tt.want
				if want == 200 && suffix != "" {
					want = 202
				}
				resp := get(t, e.addr, "/-/requests/"+tt.id+suffix, tt.hdr...)
				if resp.StatusCode() != want {
					t.Errorf("%s: got %d %s, want %d", suffix, resp.StatusCode(), resp.Body(), want)
				}
			}
		})
	}
}

// The job API is served on the main listener even with admin_listen set.
func TestJobAPIWithAdminListen(t *testing.T) {
	cfg := asyncConfig(t)
	cfg.Server.AdminListen = "127.0.0.1:0"
	e := startAsync(t, cfg, nil, nil)
	id := e.submit(t, "/orders")
	if resp := get(t, e.addr, "/-/requests/"+id); resp.StatusCode() != 200 {
		t.Errorf("got %d %s", resp.StatusCode(), resp.Body())
	}
}
