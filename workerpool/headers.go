package workerpool

import (
	"net/textproto"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/backends"
)

// hopByHop are the connection-specific fields of RFC 9110 §7.6.1, plus the
// legacy Keep-Alive and Proxy-Connection. They describe one connection and
// must not be stored or replayed.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

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
	var drop map[string]bool
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		for _, name := range strings.Split(string(v), ",") {
			if name = strings.TrimSpace(name); name != "" {
				if drop == nil {
					drop = make(map[string]bool)
				}
				drop[textproto.CanonicalMIMEHeaderKey(name)] = true
			}
		}
	}
	var out []backends.Header
	for k, v := range h.All() {
		name := textproto.CanonicalMIMEHeaderKey(string(k))
		if hopByHop[name] || drop[name] || name == "Content-Length" {
			continue
		}
		out = append(out, backends.Header{Name: name, Value: string(v)})
	}
	return out
}
