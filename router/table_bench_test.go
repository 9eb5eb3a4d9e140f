package router

import (
	"fmt"
	"net"
	"testing"

	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

// manyRoutes returns a configuration of n routes of every kind, in
// declaration order: exact paths, templates, prefixes, prefixes with a
// method, then a catch-all. requests are, for each kind, a request only its
// last route takes, then one for the catch-all.
func manyRoutes(t testing.TB, n int) (cfg *config.Config, requests []struct{ method, uri, route string }) {
	cfg = simpleConfig(t, "127.0.0.1:1")
	catchAll := cfg.Routes[0]
	cfg.Routes = cfg.Routes[:0]
	add := func(name string, m config.Match) {
		cfg.Routes = append(cfg.Routes, &config.Route{Name: name, Index: len(cfg.Routes), Mode: config.ModeSync, Endpoint: "app", Match: m})
	}
	last := map[int]int{}
	for i := range n - 1 {
		switch i % 4 {
		case 0:
			add(fmt.Sprintf("exact-%d", i), config.Match{Path: fmt.Sprintf("/svc/%d/status", i)})
		case 1:
			add(fmt.Sprintf("template-%d", i), config.Match{Path: fmt.Sprintf("/t%d/{id}/items", i),
				PathSegments: []config.Segment{{Literal: fmt.Sprintf("t%d", i)}, {Param: "id"}, {Literal: "items"}}})
		case 2:
			add(fmt.Sprintf("prefix-%d", i), config.Match{PathPrefix: fmt.Sprintf("/p/%d", i)})
		case 3:
			add(fmt.Sprintf("post-%d", i), config.Match{PathPrefix: fmt.Sprintf("/q%d/", i), Methods: []string{"POST"}})
		}
		last[i%4] = i
	}
	catchAll.Index = len(cfg.Routes)
	cfg.Routes = append(cfg.Routes, catchAll)
	type req = struct{ method, uri, route string }
	if i, ok := last[0]; ok {
		requests = append(requests, req{"GET", fmt.Sprintf("/svc/%d/status", i), fmt.Sprintf("exact-%d", i)})
	}
	if i, ok := last[1]; ok {
		requests = append(requests, req{"GET", fmt.Sprintf("/t%d/42/items", i), fmt.Sprintf("template-%d", i)})
	}
	if i, ok := last[2]; ok {
		requests = append(requests, req{"GET", fmt.Sprintf("/p/%d/a/b", i), fmt.Sprintf("prefix-%d", i)})
	}
	if i, ok := last[3]; ok {
		requests = append(requests, req{"POST", fmt.Sprintf("/q%d/x", i), fmt.Sprintf("post-%d", i)})
	}
	requests = append(requests, req{"GET", "/nothing/here", "default"})
	return cfg, requests
}

func requestCtx(method, uri string) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("x")
	ctx.Path()
	return ctx
}

func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		cfg, _ := manyRoutes(b, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				compile(cfg, nil)
			}
		})
	}
}

// BenchmarkMatchRoutes matches requests that only the last route of each
// kind takes, and one for the catch-all (one operation is one request).
func BenchmarkMatchRoutes(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		cfg, requests := manyRoutes(b, n)
		tab := compile(cfg, nil)
		var ctxs []*fasthttp.RequestCtx
		for _, r := range requests {
			ctx := requestCtx(r.method, r.uri)
			if got := tab.Match(ctx); got == nil || got.Name != r.route {
				b.Fatalf("%s %s matched %v, want %s", r.method, r.uri, got, r.route)
			}
			ctxs = append(ctxs, ctx)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tab.Match(ctxs[i%len(ctxs)])
				i++
			}
		})
	}
}

// Matching costs about the number of segments of the path, not the number
// of routes: with 100,000 routes, the request only the last route of each
// kind takes looks at a handful of index entries and routes. The result is
// the reference matcher's (FuzzMatch's), for those requests and for
// requests near them.
func TestMatchScales(t *testing.T) {
	cfg, requests := manyRoutes(t, 100000)
	tab := compile(cfg, nil)
	ref := newRefMatcher(t, cfg)
	for _, r := range requests {
		for _, uri := range []string{r.uri, r.uri + "/", r.uri + "/more/segments", "/x" + r.uri, r.uri[:len(r.uri)-1]} {
			ctx := requestCtx(r.method, uri)
			req := request{method: ctx.Method(), host: stripPort(ctx.Host()), path: ctx.Path(), header: &ctx.Request.Header}
			got := tab.match(&req, ctx)
			want := ref.match(ctx)
			if got == nil || got.Config != want {
				t.Errorf("%s %s matched %v, want %s", r.method, uri, got, want.Name)
			}
			if req.probes > 16 {
				t.Errorf("%s %s: %d probes", r.method, uri, req.probes)
			}
		}
	}
}
