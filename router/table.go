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
type Table struct {
	exact  map[string][]*Route // exact path → candidates in precedence order
	others []*Route            // templates, prefixes and catch-alls in precedence order
	all    []*Route            // every route in precedence order
	log    *slog.Logger        // where failed jq conditions are reported
}

// Route is a compiled route: the configuration plus what the sync path
// needs, resolved once per generation.
type Route struct {
	Config *config.Route
	Name   string

	prefix  string // trimmed of its trailing slash; "" with anyPath
	anyPath bool   // no path condition, or prefix "/"
	segs    []config.Segment
	methods []string
	hosts   []string // lower case; "*.example.com" matches names below it
	headers []config.HeaderMatch
	jq      *config.JQ

	state    *routeState // per-generation runtime state (client, limiter, metrics)
	jqReport jqReport    // failures of the route's jq condition and transform
}

// compile builds the table from cfg's routes in config.Precedence order.
// log receives rate-limited reports of jq conditions that failed (nil: not
// logged).
func compile(cfg *config.Config, log *slog.Logger) *Table {
	t := &Table{exact: map[string][]*Route{}, log: log}
	for _, rc := range config.Precedence(cfg.Routes) {
		r := &Route{
			Config:  rc,
			Name:    rc.Name,
			methods: rc.Match.Methods,
			hosts:   rc.Match.Hosts,
			headers: rc.Match.Headers,
			jq:      rc.Match.JQ,
		}
		m := &rc.Match
		switch {
		case m.PathSegments != nil:
			r.segs = m.PathSegments
			t.others = append(t.others, r)
		case m.Path != "":
			t.exact[m.Path] = append(t.exact[m.Path], r)
		default:
			r.prefix = strings.TrimSuffix(m.PathPrefix, "/")
			r.anyPath = r.prefix == ""
			t.others = append(t.others, r)
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

func (t *Table) match(req *request, ctx *fasthttp.RequestCtx) *Route {
	for _, r := range t.exact[string(req.path)] {
		if r.matchRest(req, ctx) {
			return r
		}
	}
	for _, r := range t.others {
		if r.matchPath(req.path) && r.matchRest(req, ctx) {
			return r
		}
	}
	return nil
}

func (r *Route) matchPath(path []byte) bool {
	switch {
	case r.anyPath:
		return true
	case r.segs != nil:
		return matchTemplate(r.segs, path)
	default:
		p := r.prefix
		return len(path) >= len(p) && string(path[:len(p)]) == p &&
			(len(path) == len(p) || path[len(p)] == '/')
	}
}

// matchTemplate reports whether path has exactly the template's segments;
// a placeholder matches one non-empty segment.
func matchTemplate(segs []config.Segment, path []byte) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	rest := path[1:]
	for i, s := range segs {
		var seg []byte
		if j := bytes.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
			if i == len(segs)-1 {
				return false // more segments than the template
			}
		} else {
			seg, rest = rest, nil
			if i != len(segs)-1 {
				return false
			}
		}
		if s.Param != "" {
			if len(seg) == 0 {
				return false
			}
		} else if string(seg) != s.Literal {
			return false
		}
	}
	return true
}

func (r *Route) matchRest(req *request, ctx *fasthttp.RequestCtx) bool {
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
