package router

import (
	"net"
	"testing"
	"time"

	"github.com/openhqm/openhqm/internal/upstream"
	"github.com/valyala/fasthttp"
)

// cannedConn is an app connection that answers every request with the same
// bytes, synchronously: it lets a benchmark measure openhqm's own work on
// the forward path without the kernel's and the app's.
type cannedConn struct {
	answer []byte
	unread []byte
}

func (c *cannedConn) Write(p []byte) (int, error) {
	c.unread = c.answer // one request in, one answer out
	return len(p), nil
}

func (c *cannedConn) Read(p []byte) (int, error) {
	n := copy(p, c.unread)
	c.unread = c.unread[n:]
	return n, nil
}

func (c *cannedConn) Close() error                     { return nil }
func (c *cannedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *cannedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *cannedConn) SetDeadline(time.Time) error      { return nil }
func (c *cannedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cannedConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkForwardNoIO is BenchmarkForward with the app replaced by a
// canned answer on an in-memory connection: openhqm's share of a proxied
// request (route match, limiter, headers, metrics, the upstream client's
// write and parse) without system calls, which dominate and blur the other.
func BenchmarkForwardNoIO(b *testing.B) {
	srv := newTestServer(b, nil, Deps{})
	srv.ups = upstream.NewPool(upstream.PoolOptions{Dial: func(string) (net.Conn, error) {
		return &cannedConn{answer: []byte(cannedAnswer)}, nil
	}})
	b.Cleanup(srv.ups.Close)
	if err := srv.Apply(simpleConfig(b, "app.invalid:80")); err != nil {
		b.Fatal(err)
	}
	benchNoIO(b, srv.Handler)
}

// cannedAnswer is what bench/upstream answers.
const cannedAnswer = "HTTP/1.1 200 OK\r\nServer: app\r\nDate: Thu, 03 Dec 2026 05:54:21 GMT\r\n" +
	"Content-Type: application/json\r\nContent-Length: 101\r\n\r\n" +
	`{"status":"ok","service":"bench-upstream","payload":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"}`

// benchNoIO runs h on the request wrk sends.
func benchNoIO(b *testing.B, h fasthttp.RequestHandler) {
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}, nil)
	do := func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI("/")
		ctx.Request.Header.SetHost("127.0.0.1:18000")
		h(ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	for range 20 {
		do()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		do()
	}
}

// BenchmarkThinProxyNoIO is the yardstick for BenchmarkForwardNoIO: the
// handler of the thinnest fasthttp proxy make bench compares openhqm with
// (../shared/bench/fhproxy: the request copied, hop-by-hop fields deleted
// both ways, HostClient.Do), on the same canned connection.
func BenchmarkThinProxyNoIO(b *testing.B) {
	hop := []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}
	client := &fasthttp.HostClient{
		Addr: "app.invalid:80", MaxConns: 512, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		NoDefaultUserAgentHeader: true, DisablePathNormalizing: true,
		Dial: func(string) (net.Conn, error) { return &cannedConn{answer: []byte(cannedAnswer)}, nil },
	}
	handler := func(ctx *fasthttp.RequestCtx) {
		wantClose := ctx.Request.Header.ConnectionClose()
		out := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(out)
		ctx.Request.CopyTo(out)
		for _, h := range hop {
			out.Header.Del(h)
		}
		out.SetHost("app.invalid:80")
		if err := client.Do(out, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			return
		}
		for _, h := range hop {
			ctx.Response.Header.Del(h)
		}
		if wantClose {
			ctx.SetConnectionClose()
		}
	}
	benchNoIO(b, handler)
}
