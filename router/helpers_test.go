package router

import (
	"bufio"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/upstream"
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
	s := &fasthttp.Server{Handler: h, NoDefaultServerHeader: true, NoDefaultDate: true, MaxRequestBodySize: 64 << 20}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown(); <-done })
	return ln.Addr().String()
}

type proxy struct {
	srv  *testServer
	http *fasthttp.Server
	addr string
	reg  *prometheus.Registry
	done chan struct{}
}

// testServer is a Server whose generations the test publishes, as the
// process does: Apply builds one from cfg with the test's queues and result
// store and stores it; every request uses the latest.
type testServer struct {
	*Server
	gen  atomic.Pointer[Generation]
	ups  *upstream.Pool
	deps Deps
}

func newTestServer(t testing.TB, reg prometheus.Registerer, deps Deps) *testServer {
	t.Helper()
	ts := &testServer{ups: upstream.NewPool(upstream.PoolOptions{}), deps: deps}
	srv, err := New(Options{Registry: reg, Current: func() (*Generation, func()) { return ts.gen.Load(), func() {} }})
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	t.Cleanup(ts.ups.Close)
	return ts
}

// Apply builds cfg and publishes it; on error the current generation stays.
func (ts *testServer) Apply(cfg *config.Config) error {
	deps := ts.deps
	deps.Endpoints = map[string]*upstream.Client{}
	for name, ep := range cfg.Endpoints {
		deps.Endpoints[name] = ts.ups.Client(ep)
	}
	g, err := ts.Build(cfg, deps, ts.gen.Load())
	if err != nil {
		return err
	}
	ts.gen.Store(g)
	return nil
}

// Current is the generation requests use.
func (ts *testServer) Current() *Generation { return ts.gen.Load() }

// startProxy applies cfg to a new Server and serves it on 127.0.0.1.
func startProxy(t testing.TB, cfg *config.Config, deps Deps) *proxy {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv := newTestServer(t, reg, deps)
	if err := srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{srv: srv, http: NewHTTPServer(cfg.Server, srv.Handler, nil), addr: ln.Addr().String(), reg: reg, done: make(chan struct{})}
	go func() { defer close(p.done); _ = p.http.Serve(Listen(ln, cfg.Server, nil)) }()
	t.Cleanup(func() { _ = p.http.Shutdown(); <-p.done })
	return p
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// simpleConfig routes everything under / to one endpoint at addr.
func simpleConfig(t testing.TB, addr string) *config.Config {
	ep := &config.Endpoint{Name: "app", URL: mustURL(t, "http://"+addr), Timeout: 5 * time.Second, Auth: config.Auth{Type: config.AuthNone}}
	return &config.Config{
		Server:    config.Server{MaxBodySize: 10 << 20, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second},
		Endpoints: map[string]*config.Endpoint{"app": ep},
		Routes: []*config.Route{{
			Name: "default", Mode: config.ModeSync, Endpoint: "app",
			Match: config.Match{PathPrefix: "/"},
		}},
		Telemetry: config.Telemetry{Metrics: true, LogLevel: "info"},
	}
}

// roundTrip sends a raw request over a new connection and reads the answer.
func roundTrip(t testing.TB, addr, raw string) *fasthttp.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp := &fasthttp.Response{}
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	return resp
}

// send sends req through a fresh client to addr.
func send(t testing.TB, addr string, req *fasthttp.Request) *fasthttp.Response {
	t.Helper()
	c := &fasthttp.HostClient{Addr: addr, MaxResponseBodySize: 64 << 20, ReadTimeout: 10 * time.Second}
	if len(req.Header.Host()) == 0 {
		req.Header.SetHost(addr)
	}
	resp := &fasthttp.Response{}
	if err := c.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func get(t testing.TB, addr, uri string, hdr ...string) *fasthttp.Response {
	t.Helper()
	req := &fasthttp.Request{}
	req.SetRequestURI(uri)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return send(t, addr, req)
}
