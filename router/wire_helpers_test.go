package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// wireApp is an upstream on 127.0.0.1 that keeps every request it parses
// (method, target, header block as received, body) and answers 200 "ok".
type wireApp struct {
	addr string
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, uri, headers, body string
}

func startWireApp(t testing.TB) *wireApp {
	t.Helper()
	r := &wireApp{}
	r.addr = startApp(t, func(ctx *fasthttp.RequestCtx) {
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{
			method:  string(ctx.Method()),
			uri:     string(ctx.RequestURI()),
			headers: string(ctx.Request.Header.RawHeaders()),
			body:    string(ctx.Request.Body()),
		})
		r.mu.Unlock()
		ctx.SetBodyString("ok")
	})
	return r
}

func (r *wireApp) received() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// exchange is what a client saw on one raw connection.
type wireExchange struct {
	codes  []int // status codes of the answers, in order
	bodies []string
	open   bool // the connection was still open when the client stopped reading
}

// wire writes raw to a new connection to addr, shuts the connection's write
// side down when halfClose is set, then reads answers until the server
// closes the connection or wait passes without a byte (a hang: the
// connection is reported open). wait is far below the server's read
// timeout, so a server that waits for it shows as a hang.
func wire(t testing.TB, addr string, raw []byte, halfClose bool, wait time.Duration) wireExchange {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	var ex wireExchange
	br := bufio.NewReader(&deadlineReader{c: c, wait: wait})
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				ex.open = true
			}
			return ex
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ex.codes = append(ex.codes, resp.StatusCode)
		ex.bodies = append(ex.bodies, string(bytes.TrimSpace(body)))
		if resp.Close {
			// The server said it closes: what follows must be EOF.
			if _, err := br.Peek(1); err == nil {
				t.Errorf("bytes after an answer with Connection: close")
			}
			return ex
		}
	}
}

// deadlineReader reads from c with a fresh deadline of wait per read.
type deadlineReader struct {
	c    net.Conn
	wait time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	_ = d.c.SetReadDeadline(time.Now().Add(d.wait))
	return d.c.Read(p)
}
