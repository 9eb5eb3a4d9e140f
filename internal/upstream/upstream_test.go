package upstream

import (
	"errors"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openhqm/openhqm/config"
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
	for c.lim.pending.Load() != 1 {
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
	for len(c2.lim.slots) != 1 {
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

func TestStripHopByHop(t *testing.T) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	raw := "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret-Hop\r\nConnection: Foo\r\nKeep-Alive: 5\r\n" +
		"TE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: x\r\nX-Secret-Hop: 1\r\nFoo: 2\r\nX-Keep: 3\r\n\r\n"
	if err := req.Read(bufioReader(raw)); err != nil {
		t.Fatal(err)
	}
	StripHopByHop(&req.Header)
	if diff := cmp.Diff([]string{"Host: h", "X-Keep: 3"}, headerLines(req.Header.All())); diff != "" {
		t.Errorf("request headers (-want +got):\n%s", diff)
	}

	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	rawResp := "HTTP/1.1 200 OK\r\nConnection: close, X-Internal\r\nX-Internal: 1\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nProxy-Authenticate: Basic\r\nX-Keep: 1\r\n\r\n2\r\nok\r\n0\r\n\r\n"
	if err := resp.Read(bufioReader(rawResp)); err != nil {
		t.Fatal(err)
	}
	StripHopByHopResponse(&resp.Header)
	got := headerLines(resp.Header.All())
	for _, l := range got {
		name := strings.SplitN(l, ":", 2)[0]
		switch name {
		case "Connection", "X-Internal", "Transfer-Encoding", "Trailer", "Proxy-Authenticate":
			t.Errorf("response still has %q (all: %v)", l, got)
		}
	}
	if resp.ConnectionClose() {
		t.Error("response still asks to close")
	}
	if string(resp.Body()) != "ok" {
		t.Errorf("body %q", resp.Body())
	}
}

func TestStripHopByHopAllocs(t *testing.T) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	allocs := testing.AllocsPerRun(200, func() {
		req.Header.Set("Connection", "keep-alive, X-Hop")
		req.Header.Set("X-Hop", "1")
		req.Header.Set("Te", "trailers")
		StripHopByHop(&req.Header)
	})
	if allocs != 0 {
		t.Errorf("StripHopByHop allocates %v times per run", allocs)
	}
}

func TestDoAllocs(t *testing.T) {
	addr := startApp(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"ok":true}`) })
	pool := NewPool(PoolOptions{})
	defer pool.Close()
	ep := endpoint(t, "a", "http://"+addr+"/base")
	ep.MaxConcurrency, ep.MaxPending = 8, 8
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
		t.Errorf("Do allocates %v times per request", allocs)
	}
}

func headerLines(all func(func([]byte, []byte) bool)) []string {
	var out []string
	for k, v := range all {
		out = append(out, string(k)+": "+string(v))
	}
	sort.Strings(out)
	return out
}
