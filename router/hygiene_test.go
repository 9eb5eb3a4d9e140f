package router

import (
	"strings"
	"testing"
	"time"
)

// hygieneProxy is a proxy in front of a wireApp, with a read timeout far
// longer than any test waits: a request left waiting shows as a hang.
func hygieneProxy(t *testing.T) (*proxy, *wireApp) {
	t.Helper()
	rec := startWireApp(t)
	cfg := simpleConfig(t, rec.addr)
	cfg.Server.ReadTimeout = time.Minute
	cfg.Server.IdleTimeout = time.Minute
	return startProxy(t, cfg, Deps{}), rec
}

// TestHeaderHygiene: a request whose header block is malformed (a field name
// that is not a token, whitespace before the colon, a control character, a
// bare LF line ending) is answered 400 with a JSON body at once, and the app
// never sees it.
func TestHeaderHygiene(t *testing.T) {
	p, rec := hygieneProxy(t)
	cases := []struct{ name, raw string }{
		{"space inside name", "GET /a HTTP/1.1\r\nHost: x\r\nX Bad: v\r\n\r\n"},
		{"space before colon", "GET /a HTTP/1.1\r\nHost: x\r\nX-Bad : v\r\n\r\n"},
		{"tab before colon", "GET /a HTTP/1.1\r\nHost: x\r\nX-Bad\t: v\r\n\r\n"},
		{"control char in name", "GET /a HTTP/1.1\r\nHost: x\r\nX\x01Bad: v\r\n\r\n"},
		{"separator in name", "GET /a HTTP/1.1\r\nHost: x\r\nX(Bad): v\r\n\r\n"},
		{"non-ascii name", "GET /a HTTP/1.1\r\nHost: x\r\nX-B\xc3\xa4d: v\r\n\r\n"},
		{"empty name", "GET /a HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"},
		{"control char in value", "GET /a HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n"},
		{"DEL in value", "GET /a HTTP/1.1\r\nHost: x\r\nX-Bad: a\x7fb\r\n\r\n"},
		{"bare CR in value", "GET /a HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n"},
		{"obs-fold", "GET /a HTTP/1.1\r\nHost: x\r\nX-Bad: a\r\n b\r\n\r\n"},
		{"whitespace before first field", "GET /a HTTP/1.1\r\n Host: x\r\n\r\n"},
		{"bare LF everywhere", "GET /a HTTP/1.1\nHost: x\nX-A: b\n\n"},
		{"bare LF request line", "GET /a HTTP/1.1\nHost: x\r\n\r\n"},
		{"bare LF one field", "GET /a HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n"},
		{"bare LF end of head", "GET /a HTTP/1.1\r\nHost: x\r\n\n"},
		{"CR LF LF end of head", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: b\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.received())
			ex := wire(t, p.addr, []byte(tc.raw), false, 3*time.Second)
			if ex.open && len(ex.codes) == 0 {
				t.Fatalf("no answer: the request waits for the read timeout")
			}
			if len(ex.codes) != 1 || ex.codes[0] != 400 {
				t.Fatalf("answers %v %q, want one 400", ex.codes, ex.bodies)
			}
			if !strings.HasPrefix(ex.bodies[0], `{"error":`) {
				t.Errorf("body %q is not a JSON error", ex.bodies[0])
			}
			if ex.open {
				t.Errorf("connection left open after a malformed request")
			}
			if got := rec.received()[before:]; len(got) != 0 {
				t.Errorf("the app received %+v", got)
			}
		})
	}
}

// TestHeaderHygieneAccepts: well-formed requests still pass, with their
// fields, and a pipelined request after them too.
func TestHeaderHygieneAccepts(t *testing.T) {
	p, rec := hygieneProxy(t)
	raw := "\r\nGET /a HTTP/1.1\r\nHost: x\r\nX-Token_1.2!#$%&'*+^`|~: v\t\r\nX-Empty:\r\nX-Utf8: caf\xc3\xa9\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
	ex := wire(t, p.addr, []byte(raw), false, 3*time.Second)
	if len(ex.codes) != 2 || ex.codes[0] != 200 || ex.codes[1] != 200 {
		t.Fatalf("answers %v %q, want two 200", ex.codes, ex.bodies)
	}
	got := rec.received()
	if len(got) != 2 || got[0].uri != "/a" || got[1].uri != "/b" || got[1].body != "hello" {
		t.Fatalf("the app received %+v", got)
	}
	for _, want := range []string{"X-Token_1.2!#$%&'*+^`|~: v", "X-Utf8: caf\xc3\xa9"} {
		if !strings.Contains(got[0].headers, want) {
			t.Errorf("the app's header block %q lacks %q", got[0].headers, want)
		}
	}
}
