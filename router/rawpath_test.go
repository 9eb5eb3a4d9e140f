package router

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestAmbiguousPath(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want bool
	}{
		{"/", false},
		{"/api/orders?x=..%2F", false},
		{"/a%20b/c%41", false},
		{"/users/42/profile", false},
		{"/files/name.tar.gz", false},
		{"/..well/x", false},
		{"http://example.org/ok", false},
		{"/public/..%2Fadmin", true},
		{"/public/%2e%2e/admin", true},
		{"/users/a%2Fb/profile", true},
		{"/users/a%2fb", true},
		{"/a%5Cb", true},
		{`/a\b`, true},
		{"/a/../b", true},
		{"/a/./b", true},
		{"/a/..", true},
		{"/a/.?x", true},
		{"HTTP://example.org/a/../b", true},
	} {
		if got := ambiguousPath([]byte(tc.uri)); got != tc.want {
			t.Errorf("ambiguousPath(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ambiguousPath([]byte("/public/api/v1/orders/123?x=1")) }); n != 0 {
		t.Errorf("ambiguousPath allocates %v times", n)
	}
}

// TestAmbiguousPathRefused: a path that could mean one route to openhqm and
// another to the app never reaches the app.
func TestAmbiguousPathRefused(t *testing.T) {
	hits := 0
	app := startApp(t, func(ctx *fasthttp.RequestCtx) { hits++ })
	p := startProxy(t, simpleConfig(t, app), Deps{})
	for _, path := range []string{"/admin/..%2Fpublic", "/x/%2E%2E/y", "/a/../b"} {
		resp := roundTrip(t, p.addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode() != fasthttp.StatusBadRequest {
			t.Errorf("GET %s: %d %s, want 400", path, resp.StatusCode(), resp.Body())
		}
	}
	if resp := roundTrip(t, p.addr, "GET /fine%20path HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode() != 200 {
		t.Errorf("GET /fine%%20path: %d", resp.StatusCode())
	}
	if hits != 1 {
		t.Errorf("the app saw %d requests, want only the unambiguous one", hits)
	}
}
