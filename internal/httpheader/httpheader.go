// Package httpheader holds the header rules that apply wherever a request or
// an answer crosses openhqm: the field-name and field-value grammar, the
// hop-by-hop fields that describe one connection and never cross a proxy
// (RFC 9110 section 7.6.1, with those a message names in its Connection
// fields), and the X-Forwarded-* fields openhqm sets. The sync proxy, the
// async submit, the submit API and the worker's replay all use these
// functions, so that the three paths to the app cannot drift apart.
package httpheader

import (
	"bytes"
	"strings"
)

// hopByHop are the connection-specific fields of RFC 9110 section 7.6.1 plus
// the legacy Keep-Alive and Proxy-Connection, in canonical form.
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

// IsHopByHop reports whether name, in any case, is a hop-by-hop field.
func IsHopByHop[T ~string | ~[]byte](name T) bool {
	for _, h := range hopByHop {
		if len(name) == len(h) && equalFold(name, h) {
			return true
		}
	}
	return false
}

// Framing reports whether name, in any case, is a field that describes the
// message's framing or addressing on one connection and is recomputed by
// whoever sends it next: Host and Content-Length. Neither is stored in a job
// nor replayed from one.
func Framing[T ~string | ~[]byte](name T) bool {
	return equalFold(name, "Host") || equalFold(name, "Content-Length")
}

func equalFold[T ~string | ~[]byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(b) {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Listed reports whether name is one of the comma-separated tokens of a
// Connection field value.
func Listed(connection, name []byte) bool {
	for len(connection) > 0 {
		var tok []byte
		if i := bytes.IndexByte(connection, ','); i >= 0 {
			tok, connection = connection[:i], connection[i+1:]
		} else {
			tok, connection = connection, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(tok), name) {
			return true
		}
	}
	return false
}

// IsToken reports whether s is an RFC 9110 token: the grammar of field names
// and methods.
func IsToken[T ~string | ~[]byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := range len(s) {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// TokenChar reports whether c may appear in a token.
func TokenChar(c byte) bool { return tokenChar[c] }

var tokenChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// ValidValue reports whether s may be a field value: no control character
// but horizontal tab (a CR or LF would split the header block).
func ValidValue[T ~string | ~[]byte](s T) bool {
	for i := range len(s) {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Canonical returns the canonical form of a token field name
// ("x-request-id" → "X-Request-Id"), as net/textproto writes it; a name that
// is not a token is returned unchanged.
func Canonical(name string) string {
	if !IsToken(name) {
		return name
	}
	upper := true
	for i := range len(name) {
		c := name[i]
		if (upper && 'a' <= c && c <= 'z') || (!upper && 'A' <= c && c <= 'Z') {
			return canonicalSlow(name)
		}
		upper = c == '-'
	}
	return name
}

// AppendCanonical appends the canonical form of name (see Canonical) to dst.
func AppendCanonical(dst, name []byte) []byte {
	if !IsToken(name) {
		return append(dst, name...)
	}
	upper := true
	for _, c := range name {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

func canonicalSlow(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	upper := true
	for i := range len(name) {
		c := name[i]
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b.WriteByte(c)
		upper = c == '-'
	}
	return b.String()
}

// Bearer returns the credential of an Authorization value of the Bearer
// scheme (the scheme's name in any case, surrounding spaces dropped), and
// false for any other value.
func Bearer(v []byte) ([]byte, bool) {
	const scheme = "bearer "
	if len(v) <= len(scheme) || !bytes.EqualFold(v[:len(scheme)], []byte(scheme)) {
		return nil, false
	}
	return bytes.TrimSpace(v[len(scheme):]), true
}
