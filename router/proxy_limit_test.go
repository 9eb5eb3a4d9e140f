package router

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestOversizeUploadGets413: a request body over max_body_size gets a 413
// with a JSON error that the client can read, whether the size is declared
// up front (answered before the body is read) or found out mid-way through
// chunks. The client is still uploading when the answer comes: the
// connection must not be reset under it before it reads the answer.
func TestOversizeUploadGets413(t *testing.T) {
	app := newEchoApp(t)
	cfg := simpleConfig(t, app.addr)
	cfg.Server.MaxBodySize = 1 << 20
	p := startProxy(t, cfg, Deps{})

	const upload = 16 << 20 // far more than the socket buffers hold
	chunk := make([]byte, 64<<10)
	for _, tc := range []struct {
		name, head string
		chunked    bool
	}{
		{"content-length", fmt.Sprintf("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", upload), false},
		{"chunked", "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write([]byte(tc.head)); err != nil {
				t.Fatal(err)
			}
			// Upload as simple clients do: the whole body, and only then
			// read the answer. The server drops what it does not want
			// rather than resetting the connection under the client.
			for sent := 0; sent < upload; sent += len(chunk) {
				var err error
				if tc.chunked {
					_, err = fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk)
				} else {
					_, err = c.Write(chunk)
				}
				if err != nil {
					t.Fatalf("the upload was cut after %d bytes: %v", sent, err)
				}
			}
			resp := &fasthttp.Response{}
			if err := resp.Read(bufio.NewReader(c)); err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if resp.StatusCode() != fasthttp.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413", resp.StatusCode())
			}
			var body struct{ Error string }
			if err := json.Unmarshal(resp.Body(), &body); err != nil || body.Error == "" {
				t.Errorf("body %q: not a JSON error (%v)", resp.Body(), err)
			}
			if !resp.ConnectionClose() {
				t.Error("the answer does not say Connection: close")
			}
		})
	}
	// The app never saw the oversize requests.
	if n := len(app.seen()); n != 0 {
		t.Errorf("the app received %d requests", n)
	}
}
