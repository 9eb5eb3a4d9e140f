package httpheader

import (
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"
)

// maxConnectionTokens bounds how many names listed in Connection are
// honoured; more than this is not a real client.
const maxConnectionTokens = 16

// Connection holds copies of the field names a message's Connection fields
// list. The copies are needed because peeked values alias header storage
// that deleting rewrites. The zero value is empty and ready to use.
type Connection struct {
	buf   []byte
	spans [maxConnectionTokens][2]int
	n     int
}

var connectionPool = sync.Pool{New: func() any { return &Connection{buf: make([]byte, 0, 256)} }}

// AcquireConnection returns an empty Connection from a pool; give it back
// with ReleaseConnection.
func AcquireConnection() *Connection { return connectionPool.Get().(*Connection) }

// ReleaseConnection empties c and returns it to the pool.
func ReleaseConnection(c *Connection) {
	c.buf, c.n = c.buf[:0], 0
	connectionPool.Put(c)
}

// Add records the names listed in one Connection field value.
func (c *Connection) Add(v []byte) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		// close and keep-alive are connection options, not field names
		// (Keep-Alive is hop-by-hop anyway).
		if len(tok) == 0 || c.n == maxConnectionTokens ||
			bytes.EqualFold(tok, []byte("close")) || bytes.EqualFold(tok, []byte("keep-alive")) {
			continue
		}
		start := len(c.buf)
		c.buf = append(c.buf, tok...)
		c.spans[c.n] = [2]int{start, len(c.buf)}
		c.n++
	}
}

func (c *Connection) token(i int) []byte { return c.buf[c.spans[i][0]:c.spans[i][1]] }

// Drops reports whether a field named name must not cross: it is hop-by-hop
// or listed in the message's Connection fields.
func (c *Connection) Drops(name []byte) bool {
	if IsHopByHop(name) {
		return true
	}
	for i := range c.n {
		if bytes.EqualFold(c.token(i), name) {
			return true
		}
	}
	return false
}

// StripRequest removes the hop-by-hop fields from a request header,
// including every field named in Connection. It also clears fasthttp's
// Connection: close flag, so a caller that must honour the client's wish to
// close records h.ConnectionClose() first. It allocates nothing in steady
// state and must not be called concurrently on the same header.
func StripRequest(h *fasthttp.RequestHeader) {
	// Written out for each header type: through an interface, the
	// iterator would escape and allocate on every request.
	found := false
	for k := range h.All() {
		if IsHopByHop(k) {
			found = true
			break
		}
	}
	if !found {
		return // the common case: deleting absent fields still costs a scan each
	}
	c := AcquireConnection()
	for k, v := range h.All() {
		if len(v) > 0 && equalFold(k, "Connection") {
			c.Add(v)
		}
	}
	for i := range c.n {
		h.DelBytes(c.token(i))
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	ReleaseConnection(c)
}

// StripResponse is StripRequest for an answer. fasthttp writes the answer
// with a Content-Length (or chunks it itself) once Transfer-Encoding is
// removed, so the body's framing stays correct.
func StripResponse(h *fasthttp.ResponseHeader) {
	found := false
	for k := range h.All() {
		if IsHopByHop(k) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	c := AcquireConnection()
	for k, v := range h.All() {
		if len(v) > 0 && equalFold(k, "Connection") {
			c.Add(v)
		}
	}
	for i := range c.n {
		h.DelBytes(c.token(i))
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	ReleaseConnection(c)
}
