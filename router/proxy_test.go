package router

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

// echoApp records the last request and answers with extra response headers.
type echoApp struct {
	mu   sync.Mutex
	last map[string]string // header name → value, plus ":uri", ":host", ":body-len"
	addr string
}

func newEchoApp(t testing.TB, respHeaders ...string) *echoApp {
	a := &echoApp{}
	a.addr = startApp(t, func(ctx *fasthttp.RequestCtx) {
		m := map[string]string{":uri": string(ctx.RequestURI()), ":host": string(ctx.Host())}
		for k, v := range ctx.Request.Header.All() {
			m[string(k)] = string(v)
		}
		m[":body-len"] = strings.Repeat("", 0) + itoa(len(ctx.Request.Body()))
		a.mu.Lock()
		a.last = m
		a.mu.Unlock()
		for i := 0; i+1 < len(respHeaders); i += 2 {
			ctx.Response.Header.Add(respHeaders[i], respHeaders[i+1])
		}
		ctx.SetBodyString("hello")
	})
	return a
}

func (a *echoApp) seen() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestOutboundAuth(t *testing.T) {
	tests := []struct {
		name   string
		auth   config.Auth
		header string
		want   string
	}{
		{"bearer", config.Auth{Type: config.AuthBearer, Token: "app-secret"}, "Authorization", "Bearer app-secret"},
		{"basic", config.Auth{Type: config.AuthBasic, Username: "svc", Password: "pw"}, "Authorization", "Basic c3ZjOnB3"},
		{"api_key", config.Auth{Type: config.AuthAPIKey, Header: "X-API-Key", Token: "k"}, "X-Api-Key", "k"},
		{"header", config.Auth{Type: config.AuthHeader, Header: "X-Legacy-Token", Token: "lt"}, "X-Legacy-Token", "lt"},
		{"none keeps the client's", config.Auth{Type: config.AuthNone}, "Authorization", "Bearer from-client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newEchoApp(t)
			cfg := simpleConfig(t, app.addr)
			cfg.Endpoints["app"].Auth = tt.auth
			p := startProxy(t, cfg, Deps{})
			resp := get(t, p.addr, "/x", "Authorization", "Bearer from-client", "X-Api-Key", "forged")
			if resp.StatusCode() != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
			}
			if got := app.seen()[tt.header]; got != tt.want {
				t.Errorf("app saw %s=%q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func TestHopByHopAndForwardedHeaders(t *testing.T) {
	app := newEchoApp(t, "Connection", "X-App-Hop", "X-App-Hop", "1", "Keep-Alive", "timeout=5",
		"Proxy-Authenticate", "Basic", "Upgrade", "h2c", "X-App-Keep", "yes")
	p := startProxy(t, simpleConfig(t, app.addr), Deps{})
	raw := "GET /a/b?c=d HTTP/1.1\r\nHost: public.example:8443\r\nConnection: keep-alive, X-Client-Hop\r\n" +
		"X-Client-Hop: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\nUpgrade: websocket\r\n" +
		"X-Forwarded-For: 203.0.113.9\r\nX-Request-ID: req-123\r\nX-Client-Keep: yes\r\n\r\n"
	resp := roundTrip(t, p.addr, raw)
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	seen := app.seen()
	for _, h := range []string{"Connection", "X-Client-Hop", "Keep-Alive", "Te", "Proxy-Authorization", "Upgrade"} {
		if v, ok := seen[h]; ok {
			t.Errorf("app received hop-by-hop %s: %q", h, v)
		}
	}
	want := map[string]string{
		"X-Client-Keep":     "yes",
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Host":  "public.example:8443",
		"X-Forwarded-Proto": "http",
		"X-Request-Id":      "req-123",
		":host":             app.addr,
		":uri":              "/a/b?c=d",
	}
	got := map[string]string{}
	for k := range want {
		got[k] = seen[k]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("app saw (-want +got):\n%s", diff)
	}
	for _, h := range []string{"X-App-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if v := resp.Header.Peek(h); v != nil {
			t.Errorf("client received hop-by-hop %s: %q", h, v)
		}
	}
	if string(resp.Header.Peek("X-App-Keep")) != "yes" || string(resp.Header.Peek("X-Request-Id")) != "req-123" {
		t.Errorf("response headers: %s", resp.Header.String())
	}
	if string(resp.Body()) != "hello" {
		t.Errorf("body %q", resp.Body())
	}

	// Without a client id, one is generated, sent to the app and echoed.
	resp = get(t, p.addr, "/gen")
	id := string(resp.Header.Peek("X-Request-Id"))
	if len(id) != 32 || app.seen()["X-Request-Id"] != id {
		t.Errorf("generated id %q, app saw %q", id, app.seen()["X-Request-Id"])
	}
}

func TestUpstreamFailures(t *testing.T) {
	slow := startApp(t, func(ctx *fasthttp.RequestCtx) { time.Sleep(400 * time.Millisecond) })
	gone, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := gone.Addr().String()
	gone.Close()
	hold := make(chan struct{})
	var release sync.Once
	busy := startApp(t, func(ctx *fasthttp.RequestCtx) { <-hold })
	t.Cleanup(func() { release.Do(func() { close(hold) }) }) // runs before the app's shutdown

	tests := []struct {
		name       string
		addr       string
		limit      bool
		wantCode   int
		retryAfter string
	}{
		{"connect failure is 502", refused, false, 502, ""},
		{"timeout is 504", slow, false, 504, ""},
		{"limiter full is 503", busy, true, 503, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := simpleConfig(t, tt.addr)
			cfg.Routes[0].Timeout = 100 * time.Millisecond
			if tt.limit {
				cfg.Endpoints["app"].MaxConcurrency, cfg.Endpoints["app"].MaxPending = 1, 0
				cfg.Routes[0].Timeout = 5 * time.Second
			}
			p := startProxy(t, cfg, Deps{})
			if tt.limit {
				// The held request must finish before the proxy shuts down.
				t.Cleanup(func() { release.Do(func() { close(hold) }) })
				go func() {
					_ = (&fasthttp.Client{}).DoTimeout(reqFor(p.addr, "/hold"), &fasthttp.Response{}, 5*time.Second)
				}()
				time.Sleep(100 * time.Millisecond)
			}
			resp := get(t, p.addr, "/x", "X-Request-ID", "rid-1")
			if resp.StatusCode() != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode(), tt.wantCode, resp.Body())
			}
			var body map[string]string
			if err := json.Unmarshal(resp.Body(), &body); err != nil || body["request_id"] != "rid-1" || body["error"] == "" {
				t.Errorf("body %s (err %v)", resp.Body(), err)
			}
			if bytes.Contains(resp.Body(), []byte("127.0.0.1")) {
				t.Errorf("body leaks an internal address: %s", resp.Body())
			}
			if got := string(resp.Header.Peek("Retry-After")); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

func reqFor(addr, uri string) *fasthttp.Request {
	r := &fasthttp.Request{}
	r.SetRequestURI("http://" + addr + uri)
	return r
}

func TestInboundChecks(t *testing.T) {
	app := newEchoApp(t)
	cfg := simpleConfig(t, app.addr)
	cfg.Server.MaxBodySize = 1024
	cfg.Routes = []*config.Route{
		{Name: "bearer", Index: 0, Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/bearer"},
			ClientAuth: &config.ClientAuth{Type: config.AuthBearer, Tokens: []string{"t1", "t2"}}},
		{Name: "apikey", Index: 1, Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/key"},
			ClientAuth: &config.ClientAuth{Type: config.AuthAPIKey, Header: "X-Client-Key", Tokens: []string{"k1"}}},
		{Name: "limited", Index: 2, Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/limited"},
			RateLimit: &config.RateLimit{RequestsPerSecond: 0.5, Burst: 2}},
		{Name: "rest", Index: 3, Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/x"}},
	}
	p := startProxy(t, cfg, Deps{})

	type check struct {
		name    string
		method  string
		uri     string
		hdr     []string
		body    int
		want    int
		wantHdr map[string]string
	}
	tests := []check{
		{name: "bearer missing", uri: "/bearer", want: 401, wantHdr: map[string]string{"WWW-Authenticate": `Bearer realm="openhqm"`}},
		{name: "bearer wrong", uri: "/bearer", hdr: []string{"Authorization", "Bearer t3"}, want: 401},
		{name: "bearer ok", uri: "/bearer", hdr: []string{"Authorization", "Bearer t2"}, want: 200},
		{name: "api key wrong", uri: "/key", hdr: []string{"X-Client-Key", "nope"}, want: 401},
		{name: "api key ok", uri: "/key", hdr: []string{"X-Client-Key", "k1"}, want: 200},
		{name: "rate 1", uri: "/limited", want: 200},
		{name: "rate 2", uri: "/limited", want: 200},
		{name: "rate 3 refused", uri: "/limited", want: 429, wantHdr: map[string]string{"Retry-After": "2"}},
		{name: "body at limit", method: "POST", uri: "/x", body: 1024, want: 200},
		{name: "body over limit", method: "POST", uri: "/x", body: 1025, want: 413},
		{name: "no route", uri: "/-/nothing-here", want: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &fasthttp.Request{}
			req.SetRequestURI(tt.uri)
			if tt.method != "" {
				req.Header.SetMethod(tt.method)
			}
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			if tt.body > 0 {
				req.SetBody(bytes.Repeat([]byte("a"), tt.body))
			}
			resp := send(t, p.addr, req)
			if resp.StatusCode() != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode(), tt.want, resp.Body())
			}
			if tt.want >= 400 && !json.Valid(resp.Body()) {
				t.Errorf("error body is not JSON: %s", resp.Body())
			}
			for k, v := range tt.wantHdr {
				if got := string(resp.Header.Peek(k)); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	// The client's credential for openhqm does not reach the app.
	get(t, p.addr, "/bearer/y", "Authorization", "Bearer t1")
	if v, ok := app.seen()["Authorization"]; ok {
		t.Errorf("app received the client credential %q", v)
	}
}

func TestLargeBodiesBothWays(t *testing.T) {
	const size = 5 << 20
	big := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	app := startApp(t, func(ctx *fasthttp.RequestCtx) {
		if !bytes.Equal(ctx.Request.Body(), big) {
			ctx.SetStatusCode(400)
			return
		}
		ctx.SetBody(big)
	})
	p := startProxy(t, simpleConfig(t, app), Deps{})
	req := &fasthttp.Request{}
	req.Header.SetMethod("POST")
	req.SetRequestURI("/upload")
	req.SetBody(big)
	resp := send(t, p.addr, req)
	if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), big) {
		t.Fatalf("status %d, body %d bytes", resp.StatusCode(), len(resp.Body()))
	}
}

func TestSlowClientIsCutOff(t *testing.T) {
	app := newEchoApp(t)
	cfg := simpleConfig(t, app.addr)
	cfg.Server.ReadTimeout = 200 * time.Millisecond
	p := startProxy(t, cfg, Deps{})
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Headers trickle in and never finish.
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	for {
		if _, err := c.Read(buf); err != nil {
			break // the server closed the connection
		}
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Fatalf("slow client held the connection for %v", el)
	}
	// The server still answers others.
	if resp := get(t, p.addr, "/ok"); resp.StatusCode() != 200 {
		t.Fatalf("status %d", resp.StatusCode())
	}
}

func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{}, 4)
	app := startApp(t, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		ctx.SetBodyString("done")
	})
	cfg := simpleConfig(t, app)
	srv := newTestServer(t, nil, Deps{})
	if err := srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(cfg.Server, srv.Handler, nil)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	const n = 3
	results := make(chan *fasthttp.Response, n)
	for range n {
		go func() {
			resp := &fasthttp.Response{}
			if err := (&fasthttp.Client{}).DoTimeout(reqFor(ln.Addr().String(), "/slow"), resp, 5*time.Second); err != nil {
				resp.SetStatusCode(599)
			}
			results <- resp
		}()
	}
	for range n {
		<-entered
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.ShutdownWithContext(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for range n {
		if resp := <-results; resp.StatusCode() != 200 || string(resp.Body()) != "done" {
			t.Errorf("in-flight request: %d %q", resp.StatusCode(), resp.Body())
		}
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("listener still accepts after shutdown")
	}
}
