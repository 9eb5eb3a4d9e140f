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
	const answer = "HTTP/1.1 200 OK\r\nServer: app\r\nDate: Thu, 03 Dec 2026 05:54:21 GMT\r\n" +
		"Content-Type: application/json\r\nContent-Length: 101\r\n\r\n" +
		`{"status":"ok","service":"bench-upstream","payload":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"}`
	srv := newTestServer(b, nil, Deps{})
	srv.ups = upstream.NewPool(upstream.PoolOptions{Dial: func(string) (net.Conn, error) {
		return &cannedConn{answer: []byte(answer)}, nil
	}})
	b.Cleanup(srv.ups.Close)
	cfg := simpleConfig(b, "app.invalid:80")
	if err := srv.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}, nil)
	do := func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		// What wrk sends.
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI("/")
		ctx.Request.Header.SetHost("127.0.0.1:18000")
		srv.Handler(ctx)
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
