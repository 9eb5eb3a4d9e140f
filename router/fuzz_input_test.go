package router

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// FuzzAmbiguousPath checks ambiguousPath against a plain reading of its
// rule: the path of the target (after "scheme://authority" in absolute
// form, before "?" or "#") holds an encoded slash, backslash or dot, a raw
// backslash, or a "." or ".." segment.
func FuzzAmbiguousPath(f *testing.F) {
	for _, s := range []string{"/a/b", "/a/../b", "/a/%2e%2e/b", "/a%2Fb", "/a%5cb", "/a\\b", "/.", "/a/..?x", "/a?x=/../",
		"http://h/a/./b", "HTTPS://h:1/%2E", "http://h", "/a#/../", "/%2", "/%", "//", "/...", "/a/.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if got, want := ambiguousPath([]byte(uri)), refAmbiguous(uri); got != want {
			t.Fatalf("ambiguousPath(%q) = %v, want %v", uri, got, want)
		}
	})
}

func refAmbiguous(uri string) bool {
	lower := strings.ToLower(uri)
	for _, s := range []string{"http://", "https://"} {
		if strings.HasPrefix(lower, s) {
			rest := uri[len(s):]
			if i := strings.IndexAny(rest, "/?"); i >= 0 {
				uri = rest[i:]
			} else {
				uri = ""
			}
			break
		}
	}
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	l := strings.ToLower(uri)
	if strings.Contains(uri, "\\") || strings.Contains(l, "%2f") || strings.Contains(l, "%2e") || strings.Contains(l, "%5c") {
		return true
	}
	for _, seg := range strings.Split(uri, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

var (
	jobIDShape     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	requestIDShape = regexp.MustCompile(`^[A-Za-z0-9_.:+=/@-]{1,128}$`)
)

// FuzzIDs checks the parsers of client-supplied ids against their grammar:
// a job id is 32 lowercase hex digits (anything else is 404 before a store
// is asked), an X-Request-ID is 1 to 128 characters safe in logs and JSON.
func FuzzIDs(f *testing.F) {
	for _, s := range []string{"0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789abcdef", "", "../../etc/passwd",
		"0123456789abcdef0123456789abcde\n", "req-1:a/b@c", "a\"b", strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := validJobID([]byte(id)), jobIDShape.MatchString(id); got != want {
			t.Errorf("validJobID(%q) = %v, want %v", id, got, want)
		}
		if got, want := validRequestID([]byte(id)), requestIDShape.MatchString(id); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", id, got, want)
		}
	})
}

// FuzzPreferWait: whatever the Prefer header holds, the wait is within the
// cap, and one is applied only when it is positive.
func FuzzPreferWait(f *testing.F) {
	for _, s := range []string{"wait=5", "respond-async, wait=10", "wait=\"3\"", "wait=-1", "wait=99999999999", "WAIT=1;x", "wait=", ",;,"} {
		f.Add(s, int64(30))
	}
	f.Fuzz(func(t *testing.T, v string, capSec int64) {
		limit := time.Duration(uint64(capSec)%3600+1) * time.Second // the cap is positive
		d, ok := preferWait([]byte(v), limit)
		if d < 0 || d > limit || (ok && d <= 0) {
			t.Fatalf("preferWait(%q, %v) = %v, %v", v, limit, d, ok)
		}
	})
}

// FuzzIdempotencyKey submits async requests with arbitrary Idempotency-Key
// values and bodies through the handler: a key the header can carry and no
// longer than 255 gets 202, and the same key with the same request the same
// job id, with another body 422; a longer key gets 400. No key ever creates
// a second job for the same request.
func FuzzIdempotencyKey(f *testing.F) {
	env := startAsync(f, asyncConfig(f), nil, nil)
	for _, s := range []string{"k", "order-42", strings.Repeat("x", 255), strings.Repeat("y", 256), "a b", "ü", "k\tv"} {
		f.Add(s, []byte("body"))
	}
	client := &fasthttp.HostClient{Addr: env.addr, MaxResponseBodySize: 1 << 20, ReadTimeout: 5 * time.Second}
	do := func(t *testing.T, key string, body []byte) (int, map[string]any) {
		req := newReq("POST", "/orders", body, "Idempotency-Key", key)
		req.Header.SetHost(env.addr)
		resp := &fasthttp.Response{}
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(resp.Body(), &m)
		return resp.StatusCode(), m
	}
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		// Keys are per fuzz input: a prefix keeps earlier inputs' keys
		// from answering for this one.
		key = "fz" + key
		if !httpValue(key) {
			return // a client cannot send it; the guard refuses it first
		}
		key = strings.TrimSpace(key)
		code, first := do(t, key, body)
		if len(key) > maxIdempotencyKey {
			if code != 400 {
				t.Fatalf("key of %d bytes: %d, want 400", len(key), code)
			}
			return
		}
		if code != 202 {
			// An earlier input may have used the key with another body.
			if code == 422 {
				return
			}
			t.Fatalf("key %q: %d %v", key, code, first)
		}
		code, again := do(t, key, body)
		if code != 202 || again["id"] != first["id"] {
			t.Fatalf("key %q again: %d %v, want 202 with id %v", key, code, again, first["id"])
		}
		if code, _ := do(t, key, append([]byte("other"), body...)); code != 422 {
			t.Fatalf("key %q with another body: %d, want 422", key, code)
		}
	})
}

// httpValue reports whether s can travel as a header value.
func httpValue(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
