package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

func request(h *Handler, exp Exposure, method, path, remote string) (*fasthttp.RequestCtx, bool) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(remote), Port: 40000}, nil)
	return ctx, h.Serve(ctx, exp)
}

func body(t *testing.T, ctx *fasthttp.RequestCtx) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ctx.Response.Body(), &m); err != nil {
		t.Fatalf("body %q: %v", ctx.Response.Body(), err)
	}
	return m
}

func TestPages(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "openhqm_test_total", Help: "x"})
	reg.MustRegister(c)
	var readyErr error
	metricsOn := true
	observed := 0
	h := New(Options{
		Version:        "1.2.3",
		Gatherer:       reg,
		MetricsEnabled: func() bool { return metricsOn },
		Ready:          func(context.Context) error { return readyErr },
		Config:         func() any { return map[string]any{"generation": 7} },
		Observe:        func(int, time.Time) { observed++ },
	})
	for _, tc := range []struct {
		name, path string
		setup      func()
		code       int
		check      func(t *testing.T, ctx *fasthttp.RequestCtx)
	}{
		{name: "liveness", path: "/-/healthz", code: 200},
		{name: "ready", path: "/-/readyz", code: 200},
		{name: "not ready names why", path: "/-/readyz", setup: func() { readyErr = errors.New(`queue "jobs": connection refused`) }, code: 503,
			check: func(t *testing.T, ctx *fasthttp.RequestCtx) {
				if b := body(t, ctx); !strings.Contains(b["error"].(string), "connection refused") {
					t.Errorf("body %v", b)
				}
			}},
		{name: "health degraded in the original's shape", path: "/health", code: 503,
			check: func(t *testing.T, ctx *fasthttp.RequestCtx) {
				b := body(t, ctx)
				comps := b["components"].(map[string]any)
				if b["status"] != "degraded" || b["version"] != "1.2.3" || comps["api"] != "healthy" || !strings.HasPrefix(comps["queue"].(string), "unhealthy") {
					t.Errorf("body %v", b)
				}
			}},
		{name: "health", path: "/health", setup: func() { readyErr = nil }, code: 200,
			check: func(t *testing.T, ctx *fasthttp.RequestCtx) {
				if b := body(t, ctx); b["status"] != "healthy" {
					t.Errorf("body %v", b)
				}
			}},
		{name: "metrics", path: "/metrics", code: 200,
			check: func(t *testing.T, ctx *fasthttp.RequestCtx) {
				if !strings.Contains(string(ctx.Response.Body()), "openhqm_test_total 0") {
					t.Errorf("body %q", ctx.Response.Body())
				}
			}},
		{name: "metrics off", path: "/metrics", setup: func() { metricsOn = false }, code: 404},
		{name: "config", path: "/-/config", code: 200,
			check: func(t *testing.T, ctx *fasthttp.RequestCtx) {
				if b := body(t, ctx); b["generation"] != float64(7) {
					t.Errorf("body %v", b)
				}
			}},
		{name: "no routes in a worker", path: "/-/routes", code: 404},
		{name: "no reload without a hook", path: "/-/reload", code: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			ctx, served := request(h, Dedicated, "GET", tc.path, "10.0.0.1")
			if !served || ctx.Response.StatusCode() != tc.code {
				t.Fatalf("GET %s: served %v, %d %s; want %d", tc.path, served, ctx.Response.StatusCode(), ctx.Response.Body(), tc.code)
			}
			if tc.check != nil {
				tc.check(t, ctx)
			}
		})
	}
	if observed != 10 {
		t.Errorf("observed %d answers, want 10", observed)
	}
	if ctx, served := request(h, Shared, "GET", "/orders", "10.0.0.1"); served || ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) != 0 {
		t.Error("a path that is not an admin page was answered")
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/orders")
	h.Dedicated(&ctx)
	if ctx.Response.StatusCode() != 404 {
		t.Errorf("dedicated listener, other path: %d", ctx.Response.StatusCode())
	}
}

// TestReloadExposure: on the application's listener only a caller inside
// the pod may trigger a reload; a dedicated listener is reachable only by
// whom the operator lets reach it.
func TestReloadExposure(t *testing.T) {
	reloads := 0
	h := New(Options{Reload: func(context.Context) (any, error) {
		reloads++
		return map[string]any{"status": "reloaded", "generation": reloads + 1}, nil
	}})
	for _, tc := range []struct {
		exp    Exposure
		method string
		remote string
		want   int
	}{
		{Shared, "POST", "10.1.2.3", fasthttp.StatusForbidden},
		{Shared, "POST", "127.0.0.1", fasthttp.StatusOK},
		{Shared, "POST", "::1", fasthttp.StatusOK},
		{Dedicated, "POST", "10.1.2.3", fasthttp.StatusOK},
		{Dedicated, "GET", "127.0.0.1", fasthttp.StatusMethodNotAllowed},
	} {
		ctx, _ := request(h, tc.exp, tc.method, "/-/reload", tc.remote)
		if got := ctx.Response.StatusCode(); got != tc.want {
			t.Errorf("%s /-/reload from %s (exposure %d): %d %s, want %d", tc.method, tc.remote, tc.exp, got, ctx.Response.Body(), tc.want)
		}
	}
	if reloads != 3 {
		t.Errorf("reload hook called %d times, want 3", reloads)
	}
	failing := New(Options{Reload: func(context.Context) (any, error) { return nil, errors.New("invalid configuration: x.hcl:3,1: bad") }})
	ctx, _ := request(failing, Dedicated, "POST", "/-/reload", "127.0.0.1")
	if b := body(t, ctx); ctx.Response.StatusCode() != 422 || b["status"] != "failed" || !strings.Contains(b["error"].(string), "x.hcl:3,1") {
		t.Errorf("failed reload: %d %v", ctx.Response.StatusCode(), b)
	}
}
