package router

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/httpheader"
	"github.com/valyala/fasthttp"
)

// clientAuth checks the credential a client presents to a route. Tokens are
// compared as SHA-256 digests in constant time, so neither a token's content
// nor its length leaks through timing.
type clientAuth struct {
	header    string // Authorization for bearer, else the api_key header
	bearer    bool
	digests   [][sha256.Size]byte
	challenge string // WWW-Authenticate value of a 401
}

func newClientAuth(ca *config.ClientAuth) *clientAuth {
	if ca == nil || ca.Type == config.AuthNone || ca.Type == "" {
		return nil
	}
	a := &clientAuth{}
	switch ca.Type {
	case config.AuthBearer:
		a.header, a.bearer = "Authorization", true
		a.challenge = `Bearer realm="openhqm"`
	default: // api_key
		a.header = ca.Header
		if a.header == "" {
			a.header = "X-API-Key"
		}
		a.challenge = `ApiKey realm="openhqm", header="` + a.header + `"`
	}
	for _, t := range ca.Tokens {
		a.digests = append(a.digests, sha256.Sum256([]byte(t)))
	}
	return a
}

// principal returns the index of the token the request presents, or -1. The
// index identifies the caller (for example to scope who may read a job's
// result). Every configured token is compared, whatever matched first.
func (a *clientAuth) principal(h *fasthttp.RequestHeader) int {
	v := h.Peek(a.header)
	if a.bearer {
		cred, ok := httpheader.Bearer(v)
		if !ok {
			return -1
		}
		v = cred
	}
	if len(v) == 0 {
		return -1
	}
	d := sha256.Sum256(v)
	found := -1
	for i := range a.digests {
		if subtle.ConstantTimeCompare(d[:], a.digests[i][:]) == 1 {
			found = i
		}
	}
	return found
}
