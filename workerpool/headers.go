package workerpool

import (
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/internal/httpheader"
)

// responseHeaders copies the app's response headers for storage, in the order
// the app sent them, without hop-by-hop fields (including those named in
// Connection) and without Content-Length, which describes the framing of this
// exchange and is recomputed from the stored body when the result is served.
//
// Set-Cookie is kept: a result is the app's answer verbatim, and only the
// principal who submitted the job can read it.
//
// The returned slice owns its memory; nothing points into resp. Its names
// and values share one string: two allocations for all of them.
func responseHeaders(resp *fasthttp.Response) []backends.Header {
	h := &resp.Header
	// Report Content-Type only when the app sent one (fasthttp otherwise
	// invents text/plain).
	h.SetNoDefaultContentType(true)
	conn := httpheader.AcquireConnection()
	defer httpheader.ReleaseConnection(conn)
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		conn.Add(v)
	}
	sc := headerScratch.Get().(*headerSpans)
	defer headerScratch.Put(sc)
	buf, spans := sc.buf[:0], sc.spans[:0]
	for k, v := range h.All() {
		if conn.Drops(k) || httpheader.Framing(k) {
			continue
		}
		start := len(buf)
		buf = httpheader.AppendCanonical(buf, k)
		mid := len(buf)
		buf = append(buf, v...)
		spans = append(spans, [3]int{start, mid, len(buf)})
	}
	sc.buf, sc.spans = buf, spans
	if len(spans) == 0 {
		return nil
	}
	all := string(buf)
	out := make([]backends.Header, len(spans))
	for i, sp := range spans {
		out[i] = backends.Header{Name: all[sp[0]:sp[1]], Value: all[sp[1]:sp[2]]}
	}
	return out
}

// headerSpans is responseHeaders' scratch space: the names and values back
// to back, and where each starts and ends.
type headerSpans struct {
	buf   []byte
	spans [][3]int
}

var headerScratch = sync.Pool{New: func() any { return new(headerSpans) }}
