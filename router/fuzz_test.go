package router

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/itchyny/gojq"
	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

// fuzzConfig has routes with every kind of matcher, overlapping so that
// precedence decides: exact paths, templates of different literal counts and
// lengths, nested prefixes, catch-alls, and methods, hosts (plain and
// wildcard), headers (exact, ~regex, a header fasthttp stores specially) and
// jq conditions on several of them, with priorities and file-order ties.
// Templates of one length that match the same paths through literals and
// placeholders make the matcher compare candidates across trie nodes.
const fuzzConfig = `
endpoint "a" { url = "http://127.0.0.1:1" }
route "catch-all" {
  match { path_prefix = "/" }
  endpoint = "a"
}
route "any-delete" {
  match { methods = ["DELETE"] }
  priority = 1
  endpoint = "a"
}
route "api" {
  match { path_prefix = "/api" }
  endpoint = "a"
}
route "api-v2" {
  match {
    path_prefix = "/api/v2/"
    methods     = ["GET", "HEAD"]
  }
  endpoint = "a"
}
route "api-v2-tenant" {
  match {
    path_prefix = "/api/v2"
    headers     = { "X-Tenant" = "acme", "X-Plan" = "~gold|silver" }
  }
  endpoint = "a"
}
route "api-v2-json" {
  match {
    path_prefix = "/api/v2"
    headers     = { "Content-Type" = "application/json" }
    jq          = ".amount > 100"
  }
  priority = 2
  endpoint = "a"
}
route "vhost" {
  match {
    hosts       = ["admin.example", "*.shop.example", "kk.example"]
    path_prefix = "/api"
  }
  priority = 3
  endpoint = "a"
}
route "t-generic" {
  match { path = "/api/{x}/{y}" }
  endpoint = "a"
}
route "t-specific" {
  match { path = "/api/v2/{id}" }
  endpoint = "a"
}
route "t-longer" {
  match { path = "/api/{x}/{y}/{z}" }
  endpoint = "a"
}
route "t-user" {
  match {
    path    = "/users/{id}/profile"
    methods = ["GET"]
    headers = { "User-Agent" = "~.*bot.*" }
  }
  endpoint = "a"
}
route "t-user-any" {
  match { path = "/users/{id}/{section}" }
  endpoint = "a"
}
route "t-any-first" {
  match {
    path    = "/{a}/v2/{b}"
    methods = ["PATCH"]
  }
  priority = 5
  endpoint = "a"
}
route "t-trailing" {
  match { path = "/users/{id}/" }
  endpoint = "a"
}
route "double-slash" {
  match { path_prefix = "/api/v2//" }
  endpoint = "a"
}
route "exact" {
  match { path = "/api/v2/status" }
  endpoint = "a"
}
route "exact-post" {
  match {
    path    = "/api/v2/status"
    methods = ["POST"]
    jq      = ".flag"
  }
  priority = 1
  endpoint = "a"
}
route "same-first" {
  match {
    path_prefix = "/same"
    methods     = ["GET"]
  }
  endpoint = "a"
}
route "same-second" {
  match {
    path_prefix = "/same"
    headers     = { "X-Second" = "1" }
  }
  endpoint = "a"
}
route "same-host" {
  match {
    path_prefix = "/same"
    hosts       = ["same.example"]
  }
  endpoint = "a"
}
`

// FuzzMatch matches arbitrary requests against a fixed table and checks the
// result with refMatch, a slow matcher written from the configuration's
// documented semantics: the route returned must satisfy every condition, and
// no route before it in config.Precedence order may also satisfy them. A nil
// result means no route matches. Without -fuzz it runs the seed corpus only,
// which includes every request of testdata/routes.
func FuzzMatch(f *testing.F) {
	cfg := parseTestConfig(f, fuzzConfig)
	tab := compile(cfg, nil)
	ref := newRefMatcher(f, cfg)

	files, _ := filepath.Glob("testdata/routes/*.txtar")
	for _, file := range files {
		for _, c := range readRouteFile(f, file).cases {
			ctx := parseRaw(f, rawRequest(c.request))
			var hdrs []string
			for k, v := range ctx.Request.Header.All() {
				if n := string(k); n != "Host" && n != "Content-Length" {
					hdrs = append(hdrs, n+": "+string(v))
				}
			}
			f.Add(string(ctx.Method()), string(ctx.Host()), string(ctx.RequestURI()), strings.Join(hdrs, "\n"), ctx.Request.Body())
		}
	}
	for _, s := range []struct{ method, host, uri, hdrs, body string }{
		{"GET", "x", "/api/v2/status", "", ""},
		{"POST", "x", "/api/v2/status", "", `{"flag": true}`},
		{"POST", "x", "/api/v2/status", "", `{"flag": 1}`},
		{"POST", "x", "/api/v2/x/y", "Content-Type: application/json", `{"amount": 101}`},
		{"PUT", "x", "/api/v2/x", "X-Tenant: acme\nX-Plan: gold", ""},
		{"PUT", "x", "/api/v2", "x-tenant: acme\nx-plan: silver\nX-Tenant: other", ""},
		{"GET", "a.shop.example:80", "/api/q", "", ""},
		{"GET", "shop.example", "/api/q", "", ""},
		{"GET", "ADMIN.EXAMPLE.", "/api", "", ""},
		{"GET", "\u212a\u212a.example", "/api", "", ""},
		{"GET", "[::1]:8000", "/api", "", ""},
		{"GET", "x", "/users/7/profile", "User-Agent: googlebot/2", ""},
		{"GET", "x", "/users/7/profile", "", ""},
		{"DELETE", "x", "/users//profile/", "", ""},
		{"GET", "same.example", "/same/x", "X-Second: 1", ""},
		{"POST", "same.example", "/same", "", ""},
		{"get", "x", "/same%2Fx/../api/./v2/%7Bid%7D?q#f", "", ""},
	} {
		f.Add(s.method, s.host, s.uri, s.hdrs, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, method, host, uri, hdrs string, body []byte) {
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.SetHost(host)
		for _, line := range strings.Split(hdrs, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && name != "" {
				ctx.Request.Header.Add(name, strings.TrimSpace(value))
			}
		}
		ctx.Request.SetBody(body)

		got := tab.Match(ctx)
		want := ref.match(ctx)
		if got == nil && want == nil {
			return
		}
		desc := func() string {
			return "method " + quote(ctx.Method()) + " host " + quote(ctx.Host()) + " path " + quote(ctx.Path()) +
				"\n" + ctx.Request.Header.String() + "body " + quote(ctx.Request.Body())
		}
		switch {
		case got == nil:
			t.Fatalf("no route matched, but %q does\n%s", want.Name, desc())
		case !ref.satisfies(got.Config, ctx):
			t.Fatalf("matched %q, whose conditions do not hold\n%s", got.Name, desc())
		case got.Config != want:
			t.Fatalf("matched %q, but %q comes first in precedence and also matches\n%s", got.Name, want.Name, desc())
		}
	})
}

func quote(b []byte) string { return "\"" + strings.ToValidUTF8(string(b), "\uFFFD") + "\"" }

// refMatcher is the reference: clear rather than fast.
type refMatcher struct {
	routes []*config.Route // in config.Precedence order
	jq     map[*config.Route]*gojq.Code
}

func newRefMatcher(t testing.TB, cfg *config.Config) *refMatcher {
	m := &refMatcher{routes: config.Precedence(cfg.Routes), jq: map[*config.Route]*gojq.Code{}}
	for _, r := range m.routes {
		if r.Match.JQ == nil {
			continue
		}
		q, err := gojq.Parse(r.Match.JQ.Source)
		if err != nil {
			t.Fatal(err)
		}
		code, err := gojq.Compile(q)
		if err != nil {
			t.Fatal(err)
		}
		m.jq[r] = code
	}
	return m
}

func (m *refMatcher) match(ctx *fasthttp.RequestCtx) *config.Route {
	for _, r := range m.routes {
		if m.satisfies(r, ctx) {
			return r
		}
	}
	return nil
}

func (m *refMatcher) satisfies(r *config.Route, ctx *fasthttp.RequestCtx) bool {
	mt := &r.Match
	if len(mt.Methods) > 0 && !contains(mt.Methods, string(ctx.Method())) {
		return false
	}
	if len(mt.Hosts) > 0 && !refHostMatches(mt.Hosts, string(ctx.Host())) {
		return false
	}
	if !refPathMatches(mt, string(ctx.Path())) {
		return false
	}
	for _, h := range mt.Headers {
		v := refHeader(ctx, h.Name)
		if h.Regex != nil && !h.Regex.MatchString(v) || h.Regex == nil && v != h.Value {
			return false
		}
	}
	if code := m.jq[r]; code != nil {
		var doc any
		if json.Unmarshal(ctx.Request.Body(), &doc) != nil {
			return false
		}
		v, ok := code.Run(doc).Next()
		return ok && v == true
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// refHostMatches: hosts are compared without port and trailing dot, ASCII
// case-insensitively; "*.example.com" matches any name below example.com.
func refHostMatches(patterns []string, host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(lowerASCII(host), ".")
	for _, p := range patterns {
		if rest, ok := strings.CutPrefix(p, "*."); ok {
			if label, ok := strings.CutSuffix(host, "."+rest); ok && label != "" {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func refPathMatches(mt *config.Match, path string) bool {
	switch {
	case mt.PathSegments != nil:
		parts := strings.Split(path, "/")
		if parts[0] != "" || len(parts)-1 != len(mt.PathSegments) {
			return false
		}
		for i, s := range mt.PathSegments {
			p := parts[i+1]
			if s.Param == "" && p != s.Literal || s.Param != "" && p == "" {
				return false
			}
		}
		return true
	case mt.Path != "":
		return path == mt.Path
	default:
		pre := strings.TrimSuffix(mt.PathPrefix, "/")
		return pre == "" || path == pre || strings.HasPrefix(path, pre+"/")
	}
}

// refHeader returns the first value of the named header, "" when absent.
func refHeader(ctx *fasthttp.RequestCtx, name string) string {
	for k, v := range ctx.Request.Header.All() {
		if lowerASCII(string(k)) == lowerASCII(name) {
			return string(v)
		}
	}
	return ""
}
