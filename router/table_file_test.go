package router

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
	"golang.org/x/tools/txtar"
)

// Each file in testdata/routes is one configuration and the requests sent
// through it, in txtar form:
//
//	A comment saying what the file shows.
//	-- config.hcl --
//	endpoint "a" { url = "http://APP_A" }
//	...
//	-- request 1 --
//	GET /path?query HTTP/1.1
//	Host: shop.example
//	Header: value
//
//	optional body (a Content-Length is added)
//	-- want 1 --
//	route: name
//	...
//
// config.hcl is parsed with config.Parse; any error diagnostic fails the
// test. In it (and in want values), APP_A, APP_B and APP_C stand for the
// host:port of three real apps on 127.0.0.1, and APP_DOWN for an address
// where nothing listens. Each app records the request it receives and answers
// 200 "from a" (or b, c). A request header X-Test-Sleep: 300ms makes the app
// sleep first; X-Test-Respond: Name: value makes it add that response header.
//
// A "want N" section lists what must hold for "request N", one per line:
//
//	route: NAME                  the route the table matches, or "none"
//	endpoint: a                  the app that received the request (a, b, c), or "none"
//	method: GET                  the method the app saw
//	uri: /base/path?query        the request URI the app saw (path and query)
//	host: APP_A                  the Host header the app saw
//	header: Name: value          a header the app saw (repeated fields joined by ", ")
//	no-header: Name              a header the app did not see
//	status: 200                  the client's status
//	response-header: Name: value a header of the client's response
//	no-response-header: Name     a header absent from the client's response
//	body: text                   the client's body, exactly (trailing newline ignored)
//	body~: text                  a substring of the client's body
//	no-body~: text               text the client's body must not contain
//
// A value written "~regex" must match the whole value instead.
func TestRouteFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/routes/*.txtar")
	if len(files) == 0 {
		t.Fatal("no testdata/routes/*.txtar files")
	}
	rec := &recorder{}
	vars := map[string]string{"APP_DOWN": downAddr(t)}
	for _, name := range []string{"a", "b", "c"} {
		vars["APP_"+strings.ToUpper(name)] = startApp(t, rec.handler(name))
	}
	subst := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			rf := readRouteFile(t, file)
			cfg := parseTestConfig(t, subst(rf.config))
			p := startProxy(t, cfg, Deps{})
			for _, c := range rf.cases {
				t.Run(c.name, func(t *testing.T) {
					rec.reset()
					raw := rawRequest(c.request)
					resp := roundTrip(t, p.addr, raw)
					seen := rec.last()
					route := matchRaw(t, p.srv.Current().Table, raw)
					want := strings.Split(subst(c.want), "\n")
					var got []string
					for _, line := range want {
						got = append(got, check(t, line, route, seen, resp))
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s (-want +got):\n%s", firstLine(c.request), diff)
					}
				})
			}
		})
	}
}

// check returns line when it holds, else the line as it is.
func check(t *testing.T, line, route string, seen *seenRequest, resp *fasthttp.Response) string {
	key, val, _ := strings.Cut(line, ": ")
	key = strings.TrimSuffix(key, ":")
	appHeader := func(name string) (string, bool) {
		if seen == nil {
			return "", false
		}
		v, ok := seen.header[strings.ToLower(name)]
		return v, ok
	}
	is := func(got string) string {
		if valueMatches(val, got) {
			return line
		}
		return key + ": " + got
	}
	switch key {
	case "route":
		return is(route)
	case "endpoint", "method", "uri", "host":
		if seen == nil {
			return is("none")
		}
		return is(map[string]string{"endpoint": seen.app, "method": seen.method, "uri": seen.uri, "host": seen.host}[key])
	case "header":
		name, v, _ := strings.Cut(val, ": ")
		got, ok := appHeader(name)
		if ok && valueMatches(v, got) {
			return line
		}
		if !ok {
			got = "(absent)"
		}
		return "header: " + name + ": " + got
	case "no-header":
		if got, ok := appHeader(val); ok {
			return "header: " + val + ": " + got
		}
		return line
	case "status":
		return is(fmt.Sprint(resp.StatusCode()))
	case "response-header":
		name, v, _ := strings.Cut(val, ": ")
		got := resp.Header.Peek(name)
		if got != nil && valueMatches(v, string(got)) {
			return line
		}
		return "response-header: " + name + ": " + string(got)
	case "no-response-header":
		if got := resp.Header.Peek(val); got != nil {
			return "response-header: " + val + ": " + string(got)
		}
		return line
	case "body":
		return is(strings.TrimSuffix(string(resp.Body()), "\n"))
	case "body~":
		if strings.Contains(string(resp.Body()), val) {
			return line
		}
		return "body: " + string(resp.Body())
	case "no-body~":
		if strings.Contains(string(resp.Body()), val) {
			return "body: " + string(resp.Body())
		}
		return line
	}
	t.Fatalf("unknown want line %q", line)
	return ""
}

// valueMatches compares got with want, a literal or "~regex" (anchored).
func valueMatches(want, got string) bool {
	if re, ok := strings.CutPrefix(want, "~"); ok {
		return regexp.MustCompile("^(?:" + re + ")$").MatchString(got)
	}
	return want == got
}

// routeFile is one parsed testdata/routes file.
type routeFile struct {
	config string
	cases  []routeCase
}

type routeCase struct {
	name    string // "1", "2", ...
	request string // as written in the file
	want    string // trimmed
}

func readRouteFile(t testing.TB, file string) routeFile {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, f := range ar.Files {
		if _, dup := sections[f.Name]; dup {
			t.Fatalf("%s: section %q appears twice", file, f.Name)
		}
		sections[f.Name] = string(f.Data)
	}
	rf := routeFile{config: sections["config.hcl"]}
	if rf.config == "" {
		t.Fatalf("%s: no config.hcl section", file)
	}
	for i := 1; ; i++ {
		req, ok := sections[fmt.Sprintf("request %d", i)]
		if !ok {
			break
		}
		want := strings.TrimSpace(sections[fmt.Sprintf("want %d", i)])
		if want == "" {
			t.Fatalf("%s: request %d has no want %d", file, i, i)
		}
		rf.cases = append(rf.cases, routeCase{name: fmt.Sprint(i), request: req, want: want})
	}
	if len(rf.cases) == 0 || len(rf.cases)*2+1 != len(ar.Files) {
		t.Fatalf("%s: want config.hcl and numbered request/want pairs from 1, got %d sections", file, len(ar.Files))
	}
	return rf
}

// parseTestConfig parses src as the configuration language and fails on any
// error diagnostic.
func parseTestConfig(t testing.TB, src string) *config.Config {
	t.Helper()
	cfg, files, diags := config.Parse(map[string][]byte{"config.hcl": []byte(src)}, config.Options{Mode: config.ModeValidate})
	if diags.HasErrors() {
		var b strings.Builder
		w := hcl.NewDiagnosticTextWriter(&b, files, 100, false)
		_ = w.WriteDiagnostics(diags)
		t.Fatalf("config.hcl:\n%s", b.String())
	}
	return cfg
}

// rawRequest turns a request section into wire form: CRLF line ends, and a
// Content-Length when there is a body.
func rawRequest(s string) string {
	head, body, _ := strings.Cut(strings.TrimLeft(s, "\n"), "\n\n")
	head = strings.ReplaceAll(strings.TrimRight(head, "\n"), "\n", "\r\n")
	body = strings.TrimRight(body, "\n")
	if body != "" {
		head += fmt.Sprintf("\r\nContent-Length: %d", len(body))
	}
	return head + "\r\n\r\n" + body
}

// parseRaw reads a wire-form request into a RequestCtx as the server would.
func parseRaw(t testing.TB, raw string) *fasthttp.RequestCtx {
	t.Helper()
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("request %q: %v", firstLine(raw), err)
	}
	return ctx
}

// matchRaw names the route tab matches for raw, or "none".
func matchRaw(t testing.TB, tab *Table, raw string) string {
	if r := tab.Match(parseRaw(t, raw)); r != nil {
		return r.Name
	}
	return "none"
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimLeft(s, "\n"), "\n")
	return strings.TrimSpace(l)
}

// downAddr returns a 127.0.0.1 address where nothing listens.
func downAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// seenRequest is what an app received.
type seenRequest struct {
	app, method, uri, host string
	header                 map[string]string // lower-case name → values joined by ", "
}

// recorder keeps the last request any of the test apps received; the cases
// of a file run one after another.
type recorder struct {
	mu   sync.Mutex
	seen *seenRequest
}

func (r *recorder) reset() { r.mu.Lock(); r.seen = nil; r.mu.Unlock() }

func (r *recorder) last() *seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen
}

func (r *recorder) handler(name string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		s := &seenRequest{app: name, method: string(ctx.Method()), uri: string(ctx.RequestURI()),
			host: string(ctx.Request.Header.Host()), header: map[string]string{}}
		for k, v := range ctx.Request.Header.All() {
			n := strings.ToLower(string(k))
			if prev, ok := s.header[n]; ok {
				s.header[n] = prev + ", " + string(v)
			} else {
				s.header[n] = string(v)
			}
		}
		r.mu.Lock()
		r.seen = s
		r.mu.Unlock()
		if d, err := time.ParseDuration(string(ctx.Request.Header.Peek("X-Test-Sleep"))); err == nil {
			time.Sleep(d)
		}
		for _, v := range ctx.Request.Header.PeekAll("X-Test-Respond") {
			if n, val, ok := strings.Cut(string(v), ": "); ok {
				ctx.Response.Header.Add(n, val)
			}
		}
		ctx.SetBodyString("from " + name)
	}
}

// Configurations are validated before Build sees them, but Build must still
// refuse a route whose endpoint has no client, name both, and leave the
// generation being served alone.
func TestBuildUnknownEndpoint(t *testing.T) {
	srv := newTestServer(t, nil, Deps{})
	good := simpleConfig(t, "127.0.0.1:1")
	if err := srv.Apply(good); err != nil {
		t.Fatal(err)
	}
	bad := simpleConfig(t, "127.0.0.1:1")
	bad.Routes = append(bad.Routes, &config.Route{Name: "orders", Index: 1, Mode: config.ModeSync,
		Endpoint: "ordres", Match: config.Match{PathPrefix: "/api/orders"}})
	err := srv.Apply(bad)
	if err == nil {
		t.Fatal("Build accepted a route with an unknown endpoint")
	}
	if want := `route "orders": endpoint "ordres" has no client`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if g := srv.Current(); g == nil || g.Config != good {
		t.Errorf("the previous generation is no longer current")
	}
}
