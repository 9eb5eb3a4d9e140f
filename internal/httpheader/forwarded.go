package httpheader

import (
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// The forwarding fields openhqm sets toward the app.
const (
	ForwardedFor   = "X-Forwarded-For"
	ForwardedHost  = "X-Forwarded-Host"
	ForwardedProto = "X-Forwarded-Proto"
)

// IsForwarded reports whether name, in any case, is X-Forwarded-Host or
// X-Forwarded-Proto: fields openhqm replaces, so a client's copy never
// reaches the app. X-Forwarded-For is extended instead (AppendForwardedFor).
func IsForwarded[T ~string | ~[]byte](name T) bool {
	return equalFold(name, ForwardedHost) || equalFold(name, ForwardedProto)
}

// AppendForwardedFor appends the X-Forwarded-For value openhqm sends: the
// client's own list (prior, the joined values of its X-Forwarded-For fields,
// which RFC 9110 section 5.3 makes one list) followed by the address of the
// peer, last, where apps that trust their nearest proxy look.
func AppendForwardedFor(dst, prior []byte, peer net.IP) []byte {
	dst = append(dst, prior...)
	if ip, ok := netip.AddrFromSlice(peer); ok {
		if len(prior) > 0 {
			dst = append(dst, ", "...)
		}
		dst = ip.Unmap().AppendTo(dst)
	}
	return dst
}

// Proto is the X-Forwarded-Proto value of a connection.
func Proto(tls bool) string {
	if tls {
		return "https"
	}
	return "http"
}

// SetForwarded replaces the X-Forwarded-For, -Host and -Proto fields of a
// request being proxied in place: every copy the client sent is removed
// (Set alone would replace only the first). host is the Host the client
// asked for. buf is scratch space; SetForwarded returns it for reuse, and it
// allocates nothing in steady state.
func SetForwarded(h *fasthttp.RequestHeader, peer net.IP, host []byte, tls bool, buf []byte) []byte {
	buf = append(buf[:0], host...)
	hostEnd := len(buf)
	var hasFor, hasHost, hasProto bool
	for k, v := range h.All() {
		switch {
		case equalFold(k, ForwardedFor):
			hasFor = true
			if len(v) == 0 {
				continue
			}
			if len(buf) > hostEnd {
				buf = append(buf, ", "...)
			}
			buf = append(buf, v...)
		case equalFold(k, ForwardedHost):
			hasHost = true
		case equalFold(k, ForwardedProto):
			hasProto = true
		}
	}
	if ip, ok := netip.AddrFromSlice(peer); ok {
		if len(buf) > hostEnd {
			buf = append(buf, ", "...)
		}
		buf = ip.Unmap().AppendTo(buf)
	}
	// Deleting costs a scan of the fields each, so only fields the
	// client sent are deleted; the names are canonical already.
	if hasFor {
		h.Del(ForwardedFor)
	}
	h.SetCanonical(forwardedFor, buf[hostEnd:])
	if hasHost {
		h.Del(ForwardedHost)
	}
	h.SetCanonical(forwardedHost, buf[:hostEnd])
	if hasProto {
		h.Del(ForwardedProto)
	}
	if tls {
		h.SetCanonical(forwardedProto, https)
	} else {
		h.SetCanonical(forwardedProto, http)
	}
	return buf
}

var (
	forwardedFor   = []byte(ForwardedFor)
	forwardedHost  = []byte(ForwardedHost)
	forwardedProto = []byte(ForwardedProto)
	http, https    = []byte("http"), []byte("https")
)
