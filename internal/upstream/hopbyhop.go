package upstream

import (
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"
)

// hopByHop lists the RFC 9110 §7.6.1 connection-specific header fields plus
// the legacy Keep-Alive and Proxy-Connection.
var hopByHop = [...]string{
	"Connection",
	"Keep-Alive",
	"Proxy-Connection",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// maxConnectionTokens bounds how many names listed in Connection are honoured;
// more than this is not a real client.
const maxConnectionTokens = 16

// connTokens holds copies of the names listed in Connection headers. The
// copies are needed because the peeked values alias header storage that
// deleting rewrites.
type connTokens struct {
	buf   []byte
	spans [maxConnectionTokens][2]int
	n     int
}

var connTokensPool = sync.Pool{New: func() any { return &connTokens{buf: make([]byte, 0, 256)} }}

func (t *connTokens) add(v []byte) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) == 0 || t.n == maxConnectionTokens || isCloseOrKeepAlive(tok) {
			continue
		}
		start := len(t.buf)
		t.buf = append(t.buf, tok...)
		t.spans[t.n] = [2]int{start, len(t.buf)}
		t.n++
	}
}

// isCloseOrKeepAlive skips the two common values that are not header names
// (keep-alive is in the fixed list anyway).
func isCloseOrKeepAlive(tok []byte) bool {
	return bytes.EqualFold(tok, []byte("close")) || bytes.EqualFold(tok, []byte("keep-alive"))
}

func (t *connTokens) reset() { t.buf, t.n = t.buf[:0], 0 }

// StripHopByHop removes the hop-by-hop headers of RFC 9110 §7.6.1 from a
// request header, including every header named in Connection. It also
// clears fasthttp's Connection: close flag, so a caller that must honour the
// client's wish to close records h.ConnectionClose() before calling it. It
// allocates nothing in steady state and must not be called concurrently on
// the same header.
func StripHopByHop(h *fasthttp.RequestHeader) {
	t := connTokensPool.Get().(*connTokens)
	for k, v := range h.All() {
		if len(v) > 0 && bytes.EqualFold(k, []byte("Connection")) {
			t.add(v)
		}
	}
	for i := range t.n {
		h.DelBytes(t.buf[t.spans[i][0]:t.spans[i][1]])
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	t.reset()
	connTokensPool.Put(t)
}

// StripHopByHopResponse is StripHopByHop for a response header. fasthttp
// writes the response with a Content-Length (or chunks it itself) after
// Transfer-Encoding is removed, so the body framing stays correct.
func StripHopByHopResponse(h *fasthttp.ResponseHeader) {
	t := connTokensPool.Get().(*connTokens)
	for k, v := range h.All() {
		if len(v) > 0 && bytes.EqualFold(k, []byte("Connection")) {
			t.add(v)
		}
	}
	for i := range t.n {
		h.DelBytes(t.buf[t.spans[i][0]:t.spans[i][1]])
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	t.reset()
	connTokensPool.Put(t)
}
