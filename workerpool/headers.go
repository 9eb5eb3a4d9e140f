package workerpool

import (
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
// The returned slice owns its memory; nothing points into resp.
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
	var out []backends.Header
	for k, v := range h.All() {
		if conn.Drops(k) || httpheader.Framing(k) {
			continue
		}
		out = append(out, backends.Header{Name: httpheader.Canonical(string(k)), Value: string(v)})
	}
	return out
}
