package httpheader

import (
	"bufio"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/valyala/fasthttp"
)

func TestNameRules(t *testing.T) {
	for _, tc := range []struct {
		name              string
		hop, token, frame bool
	}{
		{"Connection", true, true, false},
		{"connection", true, true, false},
		{"TE", true, true, false},
		{"Transfer-Encoding", true, true, false},
		{"proxy-authorization", true, true, false},
		{"Keep-Alive", true, true, false},
		{"Upgrade", true, true, false},
		{"Host", false, true, true},
		{"content-length", false, true, true},
		{"X-Request-Id", false, true, false},
		{"X Bad", false, false, false},
		{"X-Bad:", false, false, false},
		{"", false, false, false},
		{"Transfer-Encodings", false, true, false},
		{"Ä", false, false, false},
	} {
		if got := IsHopByHop(tc.name); got != tc.hop {
			t.Errorf("IsHopByHop(%q) = %v", tc.name, got)
		}
		if got := IsHopByHop([]byte(tc.name)); got != tc.hop {
			t.Errorf("IsHopByHop([]byte(%q)) = %v", tc.name, got)
		}
		if got := IsToken(tc.name); got != tc.token {
			t.Errorf("IsToken(%q) = %v", tc.name, got)
		}
		if got := Framing(tc.name); got != tc.frame {
			t.Errorf("Framing(%q) = %v", tc.name, got)
		}
	}
}

func TestValidValue(t *testing.T) {
	for v, want := range map[string]bool{
		"plain": true, "tab\there": true, "": true, "obs-text \xff": true,
		"cr\r": false, "lf\nX-Evil: 1": false, "nul\x00": false, "del\x7f": false,
	} {
		if got := ValidValue(v); got != want {
			t.Errorf("ValidValue(%q) = %v", v, got)
		}
	}
}

// TestCanonicalMatchesTextproto: stored header names take the same form
// whether openhqm or net/textproto wrote them.
func TestCanonicalMatchesTextproto(t *testing.T) {
	for _, n := range []string{"x-request-id", "X-REQUEST-ID", "content-type", "Etag", "a", "-x-", "x--y", "X Bad", "already-Canonical", "Already-Canonical", "x_y"} {
		if got, want := Canonical(n), textproto.CanonicalMIMEHeaderKey(n); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", n, got, want)
		}
		if got, want := string(AppendCanonical([]byte("x"), []byte(n))), "x"+textproto.CanonicalMIMEHeaderKey(n); got != want {
			t.Errorf("AppendCanonical(%q) = %q, want %q", n, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Canonical("X-Request-Id") }); n != 0 {
		t.Errorf("Canonical of a canonical name allocates %v times", n)
	}
}

func TestListed(t *testing.T) {
	conn := []byte("keep-alive, X-Secret ,Foo")
	for name, want := range map[string]bool{"x-secret": true, "foo": true, "keep-alive": true, "bar": false, "": false} {
		if got := Listed(conn, []byte(name)); got != want {
			t.Errorf("Listed(%q) = %v", name, got)
		}
	}
}

func headerLines(all func(func([]byte, []byte) bool)) []string {
	var out []string
	for k, v := range all {
		out = append(out, string(k)+": "+string(v))
	}
	slices.Sort(out)
	return out
}

func TestStrip(t *testing.T) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	raw := "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret-Hop\r\nConnection: Foo\r\nKeep-Alive: 5\r\n" +
		"TE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: x\r\nX-Secret-Hop: 1\r\nFoo: 2\r\nX-Keep: 3\r\n\r\n"
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	StripRequest(&req.Header)
	if diff := cmp.Diff([]string{"Host: h", "X-Keep: 3"}, headerLines(req.Header.All())); diff != "" {
		t.Errorf("request headers (-want +got):\n%s", diff)
	}

	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	rawResp := "HTTP/1.1 200 OK\r\nConnection: close, X-Internal\r\nX-Internal: 1\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nProxy-Authenticate: Basic\r\nX-Keep: 1\r\n\r\n2\r\nok\r\n0\r\n\r\n"
	if err := resp.Read(bufio.NewReader(strings.NewReader(rawResp))); err != nil {
		t.Fatal(err)
	}
	StripResponse(&resp.Header)
	for _, l := range headerLines(resp.Header.All()) {
		switch name, _, _ := strings.Cut(l, ":"); name {
		case "Connection", "X-Internal", "Transfer-Encoding", "Trailer", "Proxy-Authenticate":
			t.Errorf("response still has %q", l)
		}
	}
	if resp.ConnectionClose() {
		t.Error("response still asks to close")
	}
	if string(resp.Body()) != "ok" {
		t.Errorf("body %q", resp.Body())
	}
}

func TestConnectionDrops(t *testing.T) {
	c := AcquireConnection()
	defer ReleaseConnection(c)
	c.Add([]byte("close, X-Internal"))
	c.Add([]byte("Foo"))
	for name, want := range map[string]bool{"x-internal": true, "FOO": true, "Te": true, "close": false, "X-Keep": false} {
		if got := c.Drops([]byte(name)); got != want {
			t.Errorf("Drops(%q) = %v", name, got)
		}
	}
}

func TestStripAllocs(t *testing.T) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	allocs := testing.AllocsPerRun(200, func() {
		req.Header.Set("Connection", "keep-alive, X-Hop")
		req.Header.Set("X-Hop", "1")
		req.Header.Set("Te", "trailers")
		StripRequest(&req.Header)
	})
	if allocs != 0 {
		t.Errorf("StripRequest allocates %v times per run", allocs)
	}
}

func TestSetForwarded(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		peer net.IP
		tls  bool
		want []string
	}{
		{
			name: "fresh",
			raw:  "GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n",
			peer: net.ParseIP("10.0.0.7"),
			want: []string{"Host: shop.example", "X-Forwarded-For: 10.0.0.7", "X-Forwarded-Host: shop.example", "X-Forwarded-Proto: http"},
		},
		{
			name: "repeated client fields are one list and the peer goes last; client host and proto are replaced",
			raw: "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n" +
				"X-Forwarded-Host: evil\r\nX-Forwarded-Host: evil2\r\nX-Forwarded-Proto: gopher\r\n\r\n",
			peer: net.ParseIP("::ffff:10.0.0.7"),
			tls:  true,
			want: []string{"Host: h", "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.7", "X-Forwarded-Host: h", "X-Forwarded-Proto: https"},
		},
		{
			name: "no peer address keeps the client's list without a dangling comma",
			raw:  "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n",
			want: []string{"Host: h", "X-Forwarded-For: 1.1.1.1", "X-Forwarded-Host: h", "X-Forwarded-Proto: http"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req fasthttp.Request
			if err := req.Read(bufio.NewReader(strings.NewReader(tc.raw))); err != nil {
				t.Fatal(err)
			}
			SetForwarded(&req.Header, tc.peer, req.Header.Host(), tc.tls, nil)
			if diff := cmp.Diff(tc.want, headerLines(req.Header.All())); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppendForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		prior string
		peer  net.IP
		want  string
	}{
		{"", net.ParseIP("127.0.0.1"), "127.0.0.1"},
		{"1.1.1.1", net.ParseIP("::1"), "1.1.1.1, ::1"},
		{"1.1.1.1", nil, "1.1.1.1"},
	} {
		if got := string(AppendForwardedFor(nil, []byte(tc.prior), tc.peer)); got != tc.want {
			t.Errorf("AppendForwardedFor(%q, %v) = %q, want %q", tc.prior, tc.peer, got, tc.want)
		}
	}
}

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"BEARER abc", "abc", true},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	} {
		got, ok := Bearer([]byte(tc.in))
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("Bearer(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
