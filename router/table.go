package router

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

// Table is an immutable compiled route table. Match is safe for concurrent
// use and allocates nothing unless a candidate route matches on its JSON body.
//
// Routes are indexed by their path condition, one index per kind of
// config.Precedence, so that matching looks only at the routes whose path
// matches and costs about the number of segments of the path, whatever the
// number of routes: exact paths by a map, templates by a trie of segments,
// prefixes by a map probed with each prefix of the request path, longest
// first (which is the precedence among prefixes).
type Table struct {
	exact     map[string][]*Route // exact path → candidates in precedence order
	templates *segmentNode        // path templates; nil without any
	prefixes  prefixIndex
	any       []*Route     // no path condition (or prefix "/"), in precedence order
	all       []*Route     // every route in precedence order
	log       *slog.Logger // where failed jq conditions are reported
}

// Route is a compiled route: the configuration plus what the sync path
// needs, resolved once per generation.
type Route struct {
	Config *config.Route
	Name   string

	rank    int // position in precedence order
	methods []string
	hosts   []string // lower case; "*.example.com" matches names below it
	headers []config.HeaderMatch
	jq      *config.JQ

	state    *routeState // per-generation runtime state (client, limiter, metrics)
	jqReport jqReport    // failures of the route's jq condition and transform
}

// compile builds the table from cfg's routes in config.Precedence order, in
// O(n log n) for n routes. log receives rate-limited reports of jq
// conditions that failed (nil: not logged).
func compile(cfg *config.Config, log *slog.Logger) *Table {
	t := &Table{exact: map[string][]*Route{}, prefixes: prefixIndex{routes: map[string][]*Route{}}, log: log}
	for i, rc := range config.Precedence(cfg.Routes) {
		r := &Route{
			Config:  rc,
			Name:    rc.Name,
			rank:    i,
			methods: rc.Match.Methods,
			hosts:   rc.Match.Hosts,
			headers: rc.Match.Headers,
			jq:      rc.Match.JQ,
		}
		m := &rc.Match
		switch prefix := strings.TrimSuffix(m.PathPrefix, "/"); {
		case m.PathSegments != nil:
			if t.templates == nil {
				t.templates = &segmentNode{}
			}
			t.templates.insert(m.PathSegments, r)
		case m.Path != "":
			t.exact[m.Path] = append(t.exact[m.Path], r)
		case prefix != "":
			t.prefixes.add(prefix, r)
		default:
			t.any = append(t.any, r)
		}
		t.all = append(t.all, r)
	}
	return t
}

// request is what matching looks at. body is parsed as JSON at most once,
// and only when a candidate route has a jq condition.
type request struct {
	method []byte
	host   []byte // without port
	path   []byte // normalized, decoded
	header *fasthttp.RequestHeader
	body   []byte

	json *jsonBody // decoded on first use; allocated only then
	log  *slog.Logger

	probes int // index lookups and routes tried, which tests bound
}

type jsonBody struct {
	val any
	ok  bool
}

// Match returns the first route in precedence order whose every condition
// matches, or nil.
func (t *Table) Match(ctx *fasthttp.RequestCtx) *Route {
	req := request{
		method: ctx.Method(),
		host:   stripPort(ctx.Host()),
		path:   ctx.Path(),
		header: &ctx.Request.Header,
		log:    t.log,
	}
	return t.match(&req, ctx)
}

// match tries the candidates of each kind in precedence order: exact, then
// templates, then prefixes, then routes without a path.
func (t *Table) match(req *request, ctx *fasthttp.RequestCtx) *Route {
	for _, r := range t.exact[string(req.path)] {
		if r.matchRest(req, ctx) {
			return r
		}
	}
	if r := t.matchTemplates(req, ctx); r != nil {
		return r
	}
	if r := t.prefixes.match(req, ctx); r != nil {
		return r
	}
	for _, r := range t.any {
		if r.matchRest(req, ctx) {
			return r
		}
	}
	return nil
}

func (r *Route) matchRest(req *request, ctx *fasthttp.RequestCtx) bool {
	req.probes++
	if len(r.methods) > 0 {
		ok := false
		for _, m := range r.methods {
			if string(req.method) == m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.hosts) > 0 {
		ok := false
		for _, h := range r.hosts {
			if matchHost(h, req.host) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range r.headers {
		hm := &r.headers[i]
		v := req.header.Peek(hm.Name)
		if hm.Regex != nil {
			if !hm.Regex.Match(v) {
				return false
			}
		} else if string(v) != hm.Value {
			return false
		}
	}
	if r.jq != nil {
		return r.matchJQ(req, ctx)
	}
	return true
}

// matchJQ evaluates the route's jq condition on the JSON body, within
// jqTimeout and jqEvalMemory. It allocates (decoding the body, the
// evaluation), which is why only routes with a jq condition pay it. A
// condition that fails (an error, the time or memory limit) does not match,
// and is reported.
func (r *Route) matchJQ(req *request, ctx *fasthttp.RequestCtx) bool {
	if req.json == nil {
		body := req.body
		if body == nil && ctx != nil {
			body = ctx.Request.Body()
		}
		jb := &jsonBody{}
		jb.ok = json.Unmarshal(body, &jb.val) == nil
		req.json = jb
	}
	if !req.json.ok {
		return false
	}
	c, cancel := context.WithTimeout(context.Background(), jqTimeout)
	m := newJQMeter()
	v, ok, err := jqFirst(c, r.jq, req.json.val, m)
	m.release()
	cancel()
	if err != nil {
		r.jqReport.failed(req.log, r, "match", err)
		return false
	}
	return ok && v == true
}

// matchHost reports whether host (a request's, without port) is pattern, a
// lower-case configured host: "api.example.com" matches that name in any
// case, "*.example.com" any name below example.com (not example.com itself).
// A trailing dot (a fully qualified name) is ignored. Only ASCII letters
// fold: host names are ASCII, and Unicode folding would let "ſ" pass for "s".
func matchHost(pattern string, host []byte) bool {
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(host) > len(suffix) && equalFoldASCII(host[len(host)-len(suffix):], suffix)
	}
	return equalFoldASCII(host, pattern)
}

// equalFoldASCII compares b with s, which is lower case, folding ASCII
// letters of b only.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func stripPort(host []byte) []byte {
	if len(host) > 0 && host[0] == '[' { // [v6]:port
		if i := bytes.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// Routes returns the compiled routes in precedence order. The slice must not
// be modified.
func (t *Table) Routes() []*Route { return t.all }
