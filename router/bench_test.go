package router

import (
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

// benchConfig has enough routes of every kind that matching is not trivial.
func benchConfig(t testing.TB, addr string) *config.Config {
	cfg := simpleConfig(t, addr)
	ep := cfg.Endpoints["app"]
	ep.MaxConcurrency, ep.MaxPending = 256, 1024
	ep.Auth = config.Auth{Type: config.AuthBearer, Token: "app-token"}
	ep.Headers = []config.Header{{Name: "X-Service", Value: "openhqm"}}
	cfg.Routes = []*config.Route{
		{Name: "health", Mode: config.ModeSync, Endpoint: "app", Match: config.Match{Path: "/status"}},
		{Name: "user", Mode: config.ModeSync, Endpoint: "app", Match: config.Match{Path: "/users/{id}",
			PathSegments: []config.Segment{{Literal: "users"}, {Param: "id"}}, Methods: []string{"GET"}}},
		{Name: "tenant", Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/api/orders",
			Headers: []config.HeaderMatch{{Name: "X-Tenant", Regex: regexp.MustCompile(`^(?:acme|globex)$`)}}}},
		{Name: "orders", Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/api/orders", Methods: []string{"GET", "POST"}}},
		{Name: "vhost", Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/api", Hosts: []string{"admin.example"}}},
		{Name: "api", Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/api"}},
		{Name: "default", Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/"}},
	}
	for i, r := range cfg.Routes {
		r.Index = i
	}
	return cfg
}

// forwardFixture drives Server.Handler directly with one reused RequestCtx,
// so the measurement is the handler's work plus the real upstream round trip.
type forwardFixture struct {
	srv *testServer
	ctx *fasthttp.RequestCtx
}

func newForwardFixture(t testing.TB) *forwardFixture {
	app := startApp(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"id":42,"name":"answer","items":[1,2,3],"ok":true,"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
	})
	srv := newTestServer(t, nil, Deps{})
	if err := srv.Apply(benchConfig(t, app)); err != nil {
		t.Fatal(err)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}, nil)
	return &forwardFixture{srv: srv, ctx: ctx}
}

func (f *forwardFixture) do(t testing.TB) {
	ctx := f.ctx
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/api/orders/17?expand=items")
	ctx.Request.Header.SetHost("shop.example")
	ctx.Request.Header.Set("Connection", "keep-alive")
	ctx.Request.Header.Set("X-Request-Id", "bench-request-0001")
	f.srv.Handler(ctx)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

func TestForwardAllocs(t *testing.T) {
	f := newForwardFixture(t)
	for range 20 {
		f.do(t)
	}
	if n := testing.AllocsPerRun(500, func() { f.do(t) }); n != 0 {
		t.Errorf("forward path allocates %v times per request", n)
	}
}

func BenchmarkForward(b *testing.B) {
	f := newForwardFixture(b)
	for range 20 {
		f.do(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f.do(b)
	}
}

func matchFixture(t testing.TB) (*Table, []*fasthttp.RequestCtx) {
	srv := newTestServer(t, nil, Deps{})
	if err := srv.Apply(benchConfig(t, "127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	var ctxs []*fasthttp.RequestCtx
	for _, c := range []struct{ method, uri, host, tenant string }{
		{"GET", "/status", "x", ""},
		{"GET", "/users/7", "x", ""},
		{"POST", "/api/orders/9", "x", "acme"},
		{"GET", "/api/orders", "x", ""},
		{"GET", "/api/things", "admin.example:8000", ""},
		{"DELETE", "/api/orders/1", "x", ""},
		{"GET", "/other/path", "x", ""},
	} {
		ctx := &fasthttp.RequestCtx{}
		ctx.Request.Header.SetMethod(c.method)
		ctx.Request.SetRequestURI(c.uri)
		ctx.Request.Header.SetHost(c.host)
		if c.tenant != "" {
			ctx.Request.Header.Set("X-Tenant", c.tenant)
		}
		ctx.Path()
		ctxs = append(ctxs, ctx)
	}
	return srv.Current().Table, ctxs
}

func TestMatchAllocs(t *testing.T) {
	tbl, ctxs := matchFixture(t)
	want := []string{"health", "user", "tenant", "orders", "vhost", "api", "default"}
	for i, ctx := range ctxs {
		if r := tbl.Match(ctx); r == nil || r.Name != want[i] {
			t.Fatalf("request %d matched %v, want %s", i, r, want[i])
		}
	}
	n := testing.AllocsPerRun(1000, func() {
		for _, ctx := range ctxs {
			tbl.Match(ctx)
		}
	})
	if n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

func BenchmarkMatch(b *testing.B) {
	tbl, ctxs := matchFixture(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tbl.Match(ctxs[i%len(ctxs)])
		i++
	}
}

var _ = time.Second
