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

// TestSharedExposure: on the application's listener the probes and
// /metrics answer anyone; introspection and control answer only the admin
// token's bearer (not a loopback caller without it), and nobody when no
// token is set. A dedicated listener serves every page.
func TestSharedExposure(t *testing.T) {
	reloads := 0
	token := ""
	h := New(Options{
		Gatherer: prometheus.NewRegistry(),
		Config:   func() any { return map[string]any{"generation": 1} },
		Routes:   func() any { return map[string]any{"routes": []any{}} },
		Reload: func(context.Context) (any, error) {
			reloads++
			return map[string]any{"status": "reloaded"}, nil
		},
		Token: func() string { return token },
	})
	send := func(exp Exposure, method, path, remote, auth string) *fasthttp.RequestCtx {
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(path)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(remote), Port: 40000}, nil)
		if !h.Serve(ctx, exp) {
			t.Fatalf("%s %s not served", method, path)
		}
		return ctx
	}
	for _, tc := range []struct {
		token        string
		exp          Exposure
		method, path string
		remote, auth string
		want         int
	}{
		// No token: introspection and control do not exist on the main
		// listener, even from loopback; probes and metrics do.
		{"", Shared, "GET", "/-/config", "127.0.0.1", "", 404},
		{"", Shared, "GET", "/-/routes", "::1", "", 404},
		{"", Shared, "POST", "/-/reload", "127.0.0.1", "", 404},
		{"", Shared, "GET", "/-/config", "10.0.0.1", "Bearer anything", 404},
		{"", Shared, "GET", "/-/healthz", "10.0.0.1", "", 200},
		{"", Shared, "GET", "/-/readyz", "10.0.0.1", "", 200},
		{"", Shared, "GET", "/health", "10.0.0.1", "", 200},
		{"", Shared, "GET", "/metrics", "10.0.0.1", "", 200},
		{"", Dedicated, "GET", "/-/config", "10.0.0.1", "", 200},
		{"", Dedicated, "POST", "/-/reload", "10.0.0.1", "", 200},
		// A token: only its bearer.
		{"s3cret-admin", Shared, "GET", "/-/config", "127.0.0.1", "", 401},
		{"s3cret-admin", Shared, "GET", "/-/config", "10.0.0.1", "Bearer s3cret-admi", 401},
		{"s3cret-admin", Shared, "GET", "/-/config", "10.0.0.1", "Bearer s3cret-admin2", 401},
		{"s3cret-admin", Shared, "GET", "/-/config", "10.0.0.1", "Basic s3cret-admin", 401},
		{"s3cret-admin", Shared, "GET", "/-/config", "10.0.0.1", "s3cret-admin", 401},
		{"s3cret-admin", Shared, "GET", "/-/config", "10.0.0.1", "Bearer s3cret-admin", 200},
		{"s3cret-admin", Shared, "GET", "/-/routes", "10.0.0.1", "bearer s3cret-admin", 200},
		{"s3cret-admin", Shared, "POST", "/-/reload", "127.0.0.1", "", 401},
		{"s3cret-admin", Shared, "POST", "/-/reload", "10.0.0.1", "Bearer s3cret-admin", 200},
		{"s3cret-admin", Shared, "GET", "/-/reload", "10.0.0.1", "Bearer s3cret-admin", 405},
		{"s3cret-admin", Shared, "GET", "/-/healthz", "10.0.0.1", "Bearer wrong", 200},
		{"s3cret-admin", Shared, "GET", "/metrics", "10.0.0.1", "", 200},
	} {
		token = tc.token
		ctx := send(tc.exp, tc.method, tc.path, tc.remote, tc.auth)
		if got := ctx.Response.StatusCode(); got != tc.want {
			t.Errorf("token %q, exposure %d: %s %s from %s with %q: %d %s, want %d", tc.token, tc.exp, tc.method, tc.path, tc.remote, tc.auth, got, ctx.Response.Body(), tc.want)
		}
		if got := ctx.Response.StatusCode(); got >= 400 {
			if b := body(t, ctx); b["error"] == nil {
				t.Errorf("%s %s: %d without a JSON error", tc.method, tc.path, got)
			}
		}
		if ctx.Response.StatusCode() == 401 && len(ctx.Response.Header.Peek("WWW-Authenticate")) == 0 {
			t.Errorf("%s %s: 401 without WWW-Authenticate", tc.method, tc.path)
		}
		if strings.Contains(string(ctx.Response.Body()), "s3cret") {
			t.Errorf("%s %s: the answer quotes the token: %s", tc.method, tc.path, ctx.Response.Body())
		}
	}
	if reloads != 2 {
		t.Errorf("reload hook called %d times, want 2", reloads)
	}
}

func TestFailedReload(t *testing.T) {
	failing := New(Options{Reload: func(context.Context) (any, error) { return nil, errors.New("invalid configuration: x.hcl:3,1: bad") }})
	ctx, _ := request(failing, Dedicated, "POST", "/-/reload", "127.0.0.1")
	if b := body(t, ctx); ctx.Response.StatusCode() != 422 || b["status"] != "failed" || !strings.Contains(b["error"].(string), "x.hcl:3,1") {
		t.Errorf("failed reload: %d %v", ctx.Response.StatusCode(), b)
	}
}
