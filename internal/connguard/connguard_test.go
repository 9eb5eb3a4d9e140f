package connguard

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serve runs a fasthttp server answering "ok" behind a guarded listener.
func serve(t *testing.T, opts Options) (string, *Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := Wrap(ln, opts)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(g) }()
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return ln.Addr().String(), g
}

// get sends one request on c and returns the answer's status and body.
func get(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMaxConns: with two connections open, a third is answered 503 with a
// JSON body and closed, and counted; once one closes, a new one is served.
func TestMaxConns(t *testing.T) {
	var rejected atomic.Int64
	addr, g := serve(t, Options{MaxConns: 2, OnReject: func() { rejected.Add(1) }})
	a, b := dial(t, addr), dial(t, addr)
	for _, c := range []net.Conn{a, b} {
		if code, body := get(t, c); code != 200 || body != "ok" {
			t.Fatalf("within the bound: %d %q", code, body)
		}
	}
	third := dial(t, addr)
	code, body := get(t, third)
	if code != 503 || !strings.HasPrefix(body, `{"error":`) {
		t.Fatalf("above the bound: %d %q, want 503 with a JSON error", code, body)
	}
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := third.Read(make([]byte, 1)); err == nil {
		t.Fatalf("refused connection still open (read %d bytes)", n)
	}
	if rejected.Load() != 1 {
		t.Errorf("rejections counted: %d, want 1", rejected.Load())
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for g.Open() > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := get(t, dial(t, addr)); code != 200 || body != "ok" {
		t.Errorf("after one closed: %d %q", code, body)
	}
	if code, _ := get(t, b); code != 200 {
		t.Errorf("a connection within the bound stopped being served: %d", code)
	}
}

func TestMaxConnsFor(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, 64}, {256, 64}, {384, 64}, {1024, 384}, {4096, 1920}, {20000, 9872}, {20256, 10000}, {1 << 20, 10000},
	} {
		if got := maxConnsFor(tc.nofile); got != tc.want {
			t.Errorf("maxConnsFor(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}
