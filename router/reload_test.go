package router

import (
	"context"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestReloadOnlyFromLoopbackOnMainListener: without admin_listen, POST
// /-/reload shares the public listener, so only callers inside the pod may
// use it.
func TestReloadOnlyFromLoopbackOnMainListener(t *testing.T) {
	cfg := simpleConfig(t, "127.0.0.1:1")
	reloads := 0
	srv, err := New(Options{Reload: func(context.Context) error { reloads++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"10.1.2.3", fasthttp.StatusForbidden},
		{"127.0.0.1", fasthttp.StatusOK},
		{"::1", fasthttp.StatusOK},
	} {
		t.Run(tc.remote, func(t *testing.T) {
			var req fasthttp.Request
			req.Header.SetMethod("POST")
			req.SetRequestURI("/-/reload")
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tc.remote), Port: 40000}, nil)
			srv.Handler(&ctx)
			if got := ctx.Response.StatusCode(); got != tc.want {
				t.Fatalf("POST /-/reload from %s: %d %s, want %d", tc.remote, got, ctx.Response.Body(), tc.want)
			}
		})
	}
	if reloads != 2 {
		t.Fatalf("reload hook called %d times, want 2", reloads)
	}
}
