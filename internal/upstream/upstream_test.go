package upstream

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// startApp serves h on 127.0.0.1 and returns its host:port.
func startApp(t testing.TB, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: h, NoDefaultServerHeader: true, NoDefaultDate: true}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown(); <-done })
	return ln.Addr().String()
}

// seen is what the app received.
type seen struct {
	Method, URI, Host string
	Headers           map[string]string
}

func recorder(t testing.TB) (string, func() seen) {
	var mu sync.Mutex
	var last seen
	addr := startApp(t, func(ctx *fasthttp.RequestCtx) {
		s := seen{Method: string(ctx.Method()), URI: string(ctx.RequestURI()), Host: string(ctx.Host()), Headers: map[string]string{}}
		for k, v := range ctx.Request.Header.All() {
			s.Headers[string(k)] = string(v)
		}
		mu.Lock()
		last = s
		mu.Unlock()
		ctx.SetStatusCode(200)
		ctx.SetBodyString("ok")
	})
	return addr, func() seen { mu.Lock(); defer mu.Unlock(); return last }
}

func endpoint(t testing.TB, name, rawURL string) *config.Endpoint {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return &config.Endpoint{Name: name, URL: u, Timeout: 5 * time.Second, Auth: config.Auth{Type: config.AuthNone}}
}

func do(t testing.TB, c *Client, method, uri string, hdr map[string]string, timeout time.Duration) (*fasthttp.Response, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost("client.example")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp := &fasthttp.Response{}
	err := c.Do(req, resp, time.Now().Add(timeout))
	return resp, err
}

// TestJobToBaseSendsTheEndpointURL: a job of the original's submit API goes to
// the endpoint's URL exactly as configured, trailing slash or not.
func TestJobToBaseSendsTheEndpointURL(t *testing.T) {
	addr, last := recorder(t)
	pool := NewPool(PoolOptions{})
	defer pool.Close()
	for _, tc := range []struct{ path, uri, want string }{
		{"", "/ignored", "/"},
		{"/api/process", "/", "/api/process"},
		{"/api/process/", "/x", "/api/process/"},
		{"/api/process", "/?a=1", "/api/process?a=1"},
	} {
		req := fasthttp.AcquireRequest()
		req.Header.SetMethod("POST")
		req.SetRequestURI(tc.uri)
		resp := &fasthttp.Response{}
		turn, err := pool.Client(endpoint(t, "app", "http://"+addr+tc.path)).AwaitJob(context.Background())
		if err == nil {
			err = turn.Send(req, resp, time.Second, true, 1<<20)
		}
		fasthttp.ReleaseRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := last().URI; got != tc.want {
			t.Errorf("endpoint path %q, request %q: app saw %q, want %q", tc.path, tc.uri, got, tc.want)
		}
	}
}

func TestDoInjectsAuthHeadersAndBasePath(t *testing.T) {
	addr, last := recorder(t)
	tests := []struct {
		name    string
		path    string
		auth    config.Auth
		headers []config.Header
		client  map[string]string
		uri     string
		want    map[string]string // headers that must be present with this value
		absent  []string
	}{
		{
			name:   "bearer replaces the client's Authorization",
			auth:   config.Auth{Type: config.AuthBearer, Token: "app-token"},
			client: map[string]string{"Authorization": "Bearer client-token"},
			uri:    "/a/b?x=1",
			want:   map[string]string{"Authorization": "Bearer app-token"},
		},
		{
			name: "basic",
			auth: config.Auth{Type: config.AuthBasic, Username: "u", Password: "p:w"},
			uri:  "/",
			want: map[string]string{"Authorization": "Basic dTpwOnc="},
		},
		{
			name:   "api_key default header replaces the client's",
			auth:   config.Auth{Type: config.AuthAPIKey, Token: "k1"},
			client: map[string]string{"x-api-key": "forged"},
			uri:    "/k",
			want:   map[string]string{"X-Api-Key": "k1"},
		},
		{
			name: "header type with its own name",
			auth: config.Auth{Type: config.AuthHeader, Header: "X-App-Secret", Token: "s3"},
			uri:  "/h",
			want: map[string]string{"X-App-Secret": "s3"},
		},
		{
			name:   "none forwards the client's Authorization",
			auth:   config.Auth{Type: config.AuthNone},
			client: map[string]string{"Authorization": "Bearer client-token"},
			uri:    "/n",
			want:   map[string]string{"Authorization": "Bearer client-token"},
		},
		{
			name:    "static headers and base path",
			path:    "/base/",
			headers: []config.Header{{Name: "X-Service", Value: "openhqm"}},
			client:  map[string]string{"X-Service": "spoofed"},
			uri:     "/users/%2F7?q=a%20b",
			want:    map[string]string{"X-Service": "openhqm"},
		},
	}
	pool := NewPool(PoolOptions{})
	defer pool.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := endpoint(t, "app", "http://"+addr+tt.path)
			ep.Auth = tt.auth
			ep.Headers = tt.headers
			resp, err := do(t, pool.Client(ep), "GET", tt.uri, tt.client, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != 200 || string(resp.Body()) != "ok" {
				t.Fatalf("got %d %q", resp.StatusCode(), resp.Body())
			}
			got := last()
			wantURI := strings.TrimSuffix(tt.path, "/") + tt.uri
			if got.URI != wantURI || got.Host != addr {
				t.Errorf("app saw uri %q host %q, want %q %q", got.URI, got.Host, wantURI, addr)
			}
			for k, v := range tt.want {
				if got.Headers[k] != v {
					t.Errorf("header %s = %q, want %q (all: %v)", k, got.Headers[k], v, got.Headers)
				}
			}
		})
	}
}

func TestDoErrors(t *testing.T) {
	slow := startApp(t, func(ctx *fasthttp.RequestCtx) { time.Sleep(300 * time.Millisecond) })
	// An app that reads the request and drops the connection without answering.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()

	pool := NewPool(PoolOptions{})
	defer pool.Close()
	tests := []struct {
		name   string
		addr   string
		method string
		want   error
	}{
		{"connection refused", refused, "POST", ErrConnect},
		{"timeout", slow, "POST", ErrTimeout},
		{"reset after sending", ln.Addr().String(), "POST", ErrReset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := pool.Client(endpoint(t, tt.name, "http://"+tt.addr))
			_, err := do(t, c, tt.method, "/", nil, 100*time.Millisecond)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	addr := startApp(t, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		<-release
	})
	pool := NewPool(PoolOptions{})
	defer pool.Close()
	ep := endpoint(t, "lim", "http://"+addr)
	ep.MaxConcurrency, ep.MaxPending = 1, 1
	c := pool.Client(ep)

	first := make(chan error, 1)
	go func() { _, err := do(t, c, "GET", "/1", nil, 5*time.Second); first <- err }()
	<-entered
	second := make(chan error, 1)
	go func() { _, err := do(t, c, "GET", "/2", nil, 5*time.Second); second <- err }()
	// Wait until the second request is pending in the limiter.
	for n, _ := c.lim.pending(); n != 1; n, _ = c.lim.pending() {
		time.Sleep(time.Millisecond)
	}
	if _, err := do(t, c, "GET", "/3", nil, 5*time.Second); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third request: got %v, want ErrOverloaded", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}

	// A pending request whose deadline passes gets ErrTimeout.
	hold := make(chan struct{})
	addr2 := startApp(t, func(ctx *fasthttp.RequestCtx) { <-hold })
	ep2 := endpoint(t, "lim2", "http://"+addr2)
	ep2.MaxConcurrency, ep2.MaxPending = 1, 4
	c2 := pool.Client(ep2)
	busy := make(chan error, 1)
	go func() { _, err := do(t, c2, "GET", "/", nil, 5*time.Second); busy <- err }()
	for c2.lim.busy() != 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := do(t, c2, "GET", "/", nil, 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("pending past deadline: got %v, want ErrTimeout", err)
	}
	close(hold)
	<-busy
}

func TestPoolReuse(t *testing.T) {
	pool := NewPool(PoolOptions{})
	defer pool.Close()
	a := endpoint(t, "a", "http://127.0.0.1:1/x")
	c1 := pool.Client(a)
	same := endpoint(t, "a", "http://127.0.0.1:1/x")
	if pool.Client(same) != c1 {
		t.Error("unchanged endpoint: want the same client")
	}
	auth := endpoint(t, "a", "http://127.0.0.1:1/x")
	auth.Auth = config.Auth{Type: config.AuthBearer, Token: "t"}
	c2 := pool.Client(auth)
	if c2 == c1 || c2.hc != c1.hc {
		t.Error("changed auth: want a new client sharing the connections")
	}
	moved := endpoint(t, "a", "http://127.0.0.1:2/x")
	if c3 := pool.Client(moved); c3.hc == c2.hc {
		t.Error("changed address: want new connections")
	}
	pool.Retain(map[string]*config.Endpoint{})
	if got := pool.Client(moved); got.hc == nil || len(pool.clients) != 1 {
		t.Error("after Retain: want a fresh client")
	}
}

// TestPoolAdaptiveLimiter: an adaptive limiter is kept across a reload
// that leaves its settings alone, and replaced when they change.
func TestPoolAdaptiveLimiter(t *testing.T) {
	pool := NewPool(PoolOptions{})
	defer pool.Close()
	ep := func(tolerance float64) *config.Endpoint {
		e := endpoint(t, "a", "http://127.0.0.1:1/x")
		e.MaxConcurrency = 16
		e.Adaptive = &config.AdaptiveConcurrency{Min: 1, Tolerance: tolerance}
		return e
	}
	c1 := pool.Client(ep(1.5))
	if c1.lim == nil || c1.lim.adaptive == nil || c1.lim.max != initialLimit {
		t.Fatalf("limiter %+v, want an adaptive one starting at %d", c1.lim, initialLimit)
	}
	auth := ep(1.5)
	auth.Auth = config.Auth{Type: config.AuthBearer, Token: "t"}
	if c2 := pool.Client(auth); c2.lim != c1.lim {
		t.Error("unchanged adaptive settings: want the same limiter")
	}
	if c3 := pool.Client(ep(2)); c3.lim == c1.lim || c3.lim.adaptive == nil {
		t.Error("changed tolerance: want a new adaptive limiter")
	}
}

// TestRetiredLimiterLeavesTheGauge: after a reload replaced an adaptive
// limiter with a fixed one, the old limiter (still serving older
// generations' requests) no longer writes the endpoint's limit gauge.
func TestRetiredLimiterLeavesTheGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	pool := NewPool(PoolOptions{Registry: reg})
	defer pool.Close()
	adaptive := endpoint(t, "a", "http://127.0.0.1:1/x")
	adaptive.MaxConcurrency = 32
	adaptive.Adaptive = &config.AdaptiveConcurrency{Min: 1, Tolerance: 1.5}
	old := pool.Client(adaptive)
	gauge := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "openhqm_upstream_concurrency_limit" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no openhqm_upstream_concurrency_limit")
		return 0
	}
	if g := gauge(); g != initialLimit {
		t.Fatalf("gauge %v, want the adaptive start %d", g, initialLimit)
	}
	fixed := endpoint(t, "a", "http://127.0.0.1:1/x")
	fixed.MaxConcurrency = 32
	pool.Client(fixed)
	for range 100 {
		old.lim.observe(time.Millisecond, overloaded)
	}
	if g := gauge(); g != 32 {
		t.Fatalf("gauge %v after the old limiter moved, want the fixed 32", g)
	}
}

func TestDoAllocs(t *testing.T) {
	addr := startApp(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"ok":true}`) })
	for _, adaptive := range []*config.AdaptiveConcurrency{nil, {Min: 1, Tolerance: 1.5}} {
		pool := NewPool(PoolOptions{})
		defer pool.Close()
		ep := endpoint(t, "a", "http://"+addr+"/base")
		ep.MaxConcurrency, ep.MaxPending = 8, 8
		ep.Adaptive = adaptive
		ep.Auth = config.Auth{Type: config.AuthBearer, Token: "t"}
		ep.Headers = []config.Header{{Name: "X-Service", Value: "openhqm"}}
		c := pool.Client(ep)
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		run := func() {
			req.Reset()
			req.SetRequestURI("/p?q=1")
			req.Header.SetHost("client")
			if err := c.Do(req, resp, time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		for range 10 {
			run()
		}
		if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
			t.Errorf("Do (adaptive %v) allocates %v times per request", adaptive != nil, allocs)
		}
	}
}
