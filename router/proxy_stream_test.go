package router

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// payload is n reproducible pseudo-random bytes named by seed.
func payload(seed uint64, n int64) io.Reader {
	var s [32]byte
	copy(s[:], strconv.FormatUint(seed, 10))
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func digest(t testing.TB, r io.Reader) (int64, [32]byte) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum
}

// bigApp serves GET /big?n=N&seed=S: N bytes of payload(S), with a
// Content-Length, or chunked when chunked=1.
func bigApp(t testing.TB) string {
	return startApp(t, func(ctx *fasthttp.RequestCtx) {
		args := ctx.QueryArgs()
		n, _ := strconv.ParseInt(string(args.Peek("n")), 10, 64)
		seed, _ := strconv.ParseUint(string(args.Peek("seed")), 10, 64)
		ctx.SetContentType("application/octet-stream")
		if string(args.Peek("chunked")) == "1" {
			// Hidden from fasthttp, which would send a LimitedReader's
			// length instead of chunks.
			ctx.SetBodyStream(struct{ io.Reader }{payload(seed, n)}, -1)
			return
		}
		ctx.SetBodyStream(payload(seed, n), int(n))
	})
}

// streamGet sends GET uri on c and returns the answer with its body left
// streaming.
func streamGet(t testing.TB, c net.Conn, br *bufio.Reader, uri string) *fasthttp.Response {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", uri); err != nil {
		t.Fatal(err)
	}
	resp := &fasthttp.Response{StreamBody: true}
	if err := resp.Read(br); err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestStreamsLargeAnswersIntact: answers far over the buffering threshold,
// with a length and chunked, arrive byte for byte; while one streams it
// holds the endpoint's only slot, and once written the slot and the
// keep-alive connection to the app are free again.
func TestStreamsLargeAnswersIntact(t *testing.T) {
	const size = 200 << 20
	cfg := simpleConfig(t, bigApp(t))
	ep := cfg.Endpoints["app"]
	ep.MaxConcurrency, ep.MaxPending = 1, 0
	p := startProxy(t, cfg, Deps{})

	for _, chunked := range []string{"0", "1"} {
		t.Run("chunked="+chunked, func(t *testing.T) {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
			br := bufio.NewReader(c)
			resp := streamGet(t, c, br, fmt.Sprintf("/big?n=%d&seed=7&chunked=%s", size, chunked))
			if resp.StatusCode() != 200 {
				t.Fatalf("status %d", resp.StatusCode())
			}
			if want := map[string]int{"0": size, "1": -1}[chunked]; resp.Header.ContentLength() != want {
				t.Errorf("Content-Length %d, want %d", resp.Header.ContentLength(), want)
			}
			body := resp.BodyStream()
			// Mid-stream, the slot is still taken: the app is still sending.
			head := make([]byte, 1<<20)
			if _, err := io.ReadFull(body, head); err != nil {
				t.Fatal(err)
			}
			if other := get(t, p.addr, "/big?n=10&seed=1"); other.StatusCode() != 503 {
				t.Errorf("a second request while the answer streams: status %d, want 503 (max_concurrency = 1)", other.StatusCode())
			}
			n, sum := digest(t, io.MultiReader(strings.NewReader(string(head)), body))
			_ = resp.CloseBodyStream()
			wantN, want := digest(t, payload(7, size))
			if n != wantN || sum != want {
				t.Fatalf("got %d bytes sha256 %x, want %d bytes %x", n, sum, wantN, want)
			}
			// Written: the same connection's next request gets the slot.
			next := streamGet(t, c, br, "/big?n=10&seed=1")
			if next.StatusCode() != 200 {
				t.Fatalf("next request: status %d", next.StatusCode())
			}
			_ = next.CloseBodyStream()
		})
	}
}

// TestStreamReleasesOnClientAbort: a client that goes away mid-download
// frees the endpoint's slot (the app's connection is closed, not reused).
func TestStreamReleasesOnClientAbort(t *testing.T) {
	cfg := simpleConfig(t, bigApp(t))
	ep := cfg.Endpoints["app"]
	ep.MaxConcurrency, ep.MaxPending = 1, 0
	p := startProxy(t, cfg, Deps{})

	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	resp := streamGet(t, c, bufio.NewReader(c), "/big?n=1073741824&seed=3")
	if _, err := io.ReadFull(resp.BodyStream(), make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	waitStatus(t, p.addr, "/big?n=10&seed=1", 200)
}

// TestStreamStalledAppEnds: an app that stops sending mid-body ends the
// answer after the route's timeout (the client sees it truncated) and frees
// the slot, rather than holding both forever.
func TestStreamStalledAppEnds(t *testing.T) {
	stop := make(chan struct{})
	app := startApp(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/stall" {
			ctx.SetBodyString("ok")
			return
		}
		ctx.Response.SetBodyStreamWriter(func(w *bufio.Writer) {
			_, _ = w.Write(make([]byte, 1<<20))
			_ = w.Flush()
			<-stop
		})
	})
	t.Cleanup(func() { close(stop) })
	cfg := simpleConfig(t, app)
	ep := cfg.Endpoints["app"]
	ep.MaxConcurrency, ep.MaxPending = 1, 0
	ep.Timeout = 300 * time.Millisecond
	p := startProxy(t, cfg, Deps{})

	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	resp := streamGet(t, c, bufio.NewReader(c), "/stall")
	n, err := io.Copy(io.Discard, resp.BodyStream())
	if err == nil {
		t.Fatalf("the stalled answer ended cleanly after %d bytes; want it cut short", n)
	}
	if n != 1<<20 {
		t.Errorf("got %d bytes before the cut, want the %d the app sent", n, 1<<20)
	}
	waitStatus(t, p.addr, "/ok", 200)
}

// waitStatus polls uri until it answers want, for at most 10 seconds.
func waitStatus(t testing.TB, addr, uri string, want int) {
	t.Helper()
	var got int
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		resp := get(t, addr, uri)
		if got = resp.StatusCode(); got == want {
			return
		}
	}
	t.Fatalf("%s: status %d, want %d", uri, got, want)
}

// TestHeadOfLargeAnswer: a HEAD of a large resource carries its length and
// no body, and the connection stays usable.
func TestHeadOfLargeAnswer(t *testing.T) {
	p := startProxy(t, simpleConfig(t, bigApp(t)), Deps{})
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	if _, err := fmt.Fprintf(c, "HEAD /big?n=%d&seed=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200<<20); err != nil {
		t.Fatal(err)
	}
	head := &fasthttp.Response{SkipBody: true}
	if err := head.Read(br); err != nil {
		t.Fatal(err)
	}
	if head.StatusCode() != 200 || head.Header.ContentLength() != 200<<20 {
		t.Fatalf("HEAD: status %d, Content-Length %d", head.StatusCode(), head.Header.ContentLength())
	}
	next := streamGet(t, c, br, "/big?n=10&seed=1")
	n, sum := digest(t, next.BodyStream())
	if wantN, want := digest(t, payload(1, 10)); next.StatusCode() != 200 || n != wantN || sum != want {
		t.Fatalf("the request after HEAD: status %d, %d bytes", next.StatusCode(), n)
	}
}

// TestHTTP10ClientGetsLength: an HTTP/1.0 client cannot read chunks, so an
// answer of unknown length reaches it whole, with a Content-Length.
func TestHTTP10ClientGetsLength(t *testing.T) {
	const size = 1 << 20
	p := startProxy(t, simpleConfig(t, bigApp(t)), Deps{})
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /big?n=%d&seed=5&chunked=1 HTTP/1.0\r\nHost: x\r\n\r\n", size); err != nil {
		t.Fatal(err)
	}
	resp := &fasthttp.Response{}
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	if te := resp.Header.Peek("Transfer-Encoding"); len(te) > 0 || resp.Header.ContentLength() != size {
		t.Fatalf("Transfer-Encoding %q, Content-Length %d; want no chunks and %d", te, resp.Header.ContentLength(), size)
	}
	n, sum := digest(t, strings.NewReader(string(resp.Body())))
	if wantN, want := digest(t, payload(5, size)); n != wantN || sum != want {
		t.Fatalf("got %d bytes, not the app's answer", n)
	}
}
