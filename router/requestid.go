package router

import (
	"math/rand/v2"
	"sync"
)

const headerRequestID = "X-Request-Id"

const maxRequestIDLen = 128

// validRequestID accepts a client's X-Request-ID when it is short and made
// of characters that are safe in logs and in JSON without escaping;
// otherwise a new id is generated.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '=', c == '/', c == '@':
		default:
			return false
		}
	}
	return true
}

// appendNewRequestID appends 32 hex digits of randomness (not a secret: a
// correlation id, so the runtime's fast generator is enough).
func appendNewRequestID(dst []byte) []byte {
	const hex = "0123456789abcdef"
	for range 2 {
		v := rand.Uint64()
		for range 16 {
			dst = append(dst, hex[v&0xf])
			v >>= 4
		}
	}
	return dst
}

// exchange is per-request scratch space, pooled so the forward path does not
// allocate. Nothing in it may be kept after the handler returns.
type exchange struct {
	id        []byte
	buf       []byte
	principal int // index of the client_auth token presented; -1: none
}

var exchangePool = sync.Pool{New: func() any {
	return &exchange{id: make([]byte, 0, maxRequestIDLen), buf: make([]byte, 0, 256)}
}}

func acquireExchange() *exchange { return exchangePool.Get().(*exchange) }

func releaseExchange(ex *exchange) {
	ex.id, ex.buf, ex.principal = ex.id[:0], ex.buf[:0], -1
	exchangePool.Put(ex)
}
