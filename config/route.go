package config

import (
	"fmt"
	"math"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"time"
)

var (
	modes      = []string{"sync", "async", "auto"}
	onOverload = []string{"reject", "queue"}
)

func (b *builder) buildRoute(r *rawRoute) {
	m := &r.rawMeta
	if i, dup := b.routeByName[r.Name]; dup {
		b.errorf(m.def(), "Duplicate route", "A route named %q is already defined at %s; rename one of them.", r.Name, where(b.rawRt[i].defRange))
		return
	}
	if b.routeByName == nil {
		b.routeByName = map[string]int{}
	}
	b.routeByName[r.Name] = len(b.rawRt)
	rt := &Route{Name: r.Name, Index: len(b.cfg.Routes), Priority: r.Priority, Endpoint: r.Endpoint, Queue: r.Queue, Idempotent: r.Idempotent, Range: r.defRange}
	b.cfg.Routes = append(b.cfg.Routes, rt)
	b.rawRt = append(b.rawRt, r)
	rt.Mode = Mode(b.oneOf(m, "mode", r.Mode, "sync", "Invalid mode", modes))
	rt.OnOverload = OnOverload(b.oneOf(m, "on_overload", r.OnOverload, "reject", "Invalid on_overload", onOverload))
	if rt.Mode == ModeAsync && rt.OnOverload == OverloadQueue {
		b.warnf(m.at("on_overload"), "on_overload on an async route", "An async route queues every request already, so on_overload has no effect; remove it, or use mode = \"sync\" or \"auto\".")
	}
	if r.Match == nil {
		b.errorf(m.def(), "Missing match block", "Every route needs a match block, such as match { path_prefix = \"/\" } to take every request.")
		b.badRt[rt.Index] = true
	} else if !b.buildMatch(r.Match, &rt.Match) {
		b.badRt[rt.Index] = true
	}
	if m.known("timeout") {
		rt.Timeout = b.positiveDur(m, "timeout", r.Timeout, 0, "Invalid timeout")
	}
	rt.Retry = b.buildRetry(r.Retry)
	if rt.Mode == ModeSync {
		if m.known("queue") && rt.OnOverload != OverloadQueue {
			b.warnf(m.at("queue"), "Queue on a sync route", "A sync route never queues, so queue has no effect; set mode = \"async\" or \"auto\", or on_overload = \"queue\", or remove queue.")
		}
		if r.Retry != nil {
			b.warnf(r.Retry.def(), "Retry on a sync route", "retry applies to jobs, and a sync route makes none; set mode = \"async\" or \"auto\", or remove the retry block.")
		}
	}
	rt.ClientAuth = b.buildClientAuth(r.ClientAuth)
	if rl := r.RateLimit; rl != nil {
		rm := &rl.rawMeta
		rt.RateLimit = &RateLimit{RequestsPerSecond: rl.RequestsPerSecond, Burst: rl.Burst}
		if rm.known("requests_per_second") && rl.RequestsPerSecond <= 0 {
			b.errorf(rm.valueAt("requests_per_second"), "Invalid rate limit", "requests_per_second must be more than 0; remove the rate_limit block for no limit.")
		}
		if rm.known("burst") && rl.Burst < 1 {
			b.errorf(rm.valueAt("burst"), "Invalid rate limit", "burst must be at least 1; remove it for the default (requests_per_second rounded up).")
		}
		if !rm.has("burst") || rl.Burst < 1 {
			rt.RateLimit.Burst = int(math.Max(1, math.Ceil(rl.RequestsPerSecond)))
		}
	}
	if t := r.Transform; t != nil {
		tm := &t.rawMeta
		tr := &Transform{}
		if tm.known("body") {
			tr.Body = b.jq(tm, "body", "", t.Body)
		}
		if tm.known("headers") {
			tr.Headers = map[string]*JQ{}
			for _, k := range sortedKeys(t.Headers) {
				if !IsToken(k) {
					b.errorf(tm.keyAt("headers", k), "Invalid header name", "%s is not a valid header name.", tm.quotePart("headers", k))
					continue
				}
				tr.Headers[textproto.CanonicalMIMEHeaderKey(k)] = b.jq(tm, "headers", k, t.Headers[k])
			}
		}
		if tm.known("query") {
			tr.Query = map[string]*JQ{}
			for _, k := range sortedKeys(t.Query) {
				if k == "" {
					b.errorf(tm.keyAt("query", k), "Empty name", "A query parameter name is empty.")
					continue
				}
				tr.Query[k] = b.jq(tm, "query", k, t.Query[k])
			}
		}
		rt.Transform = tr
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jq compiles a jq expression written in attribute attr (at map key key when
// not empty).
func (b *builder) jq(m *rawMeta, attr, key, src string) *JQ {
	at := m.valueAt(attr)
	if key != "" {
		at = m.keyAt(attr, key)
	}
	if strings.TrimSpace(src) == "" {
		b.errorf(at, "Invalid jq expression", "The jq expression is empty; write one such as \".tenant == \\\"acme\\\"\".")
		return nil
	}
	// Bound the input before gojq's recursive parser sees it.
	if len(src) > maxJQSize {
		b.errorf(at, "Invalid jq expression", "The jq expression is %s long; at most %s is allowed, far more than matching or reshaping a request needs.", byteSize(int64(len(src))), byteSize(maxJQSize))
		return nil
	}
	q, err := CompileJQ(src)
	if err == nil {
		return q
	}
	if o := m.originOf(attr); o != "" { // gojq's errors quote the expression
		b.errorf(at, "Invalid jq expression", "%s does not compile as jq.", o)
		return nil
	}
	b.errorf(at, "Invalid jq expression", "%q does not compile: %s.", src, err)
	return nil
}

// maxJQSize bounds the source of one jq expression. gojq parses
// recursively, and CompileJQ's own nesting limit applies after parsing:
// 3,000,000 nested parentheses overflowed the stack in the parser, and
// 64 KiB cannot nest deep enough to.
const maxJQSize = 64 << 10

var hostPattern = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$`)

// buildMatch fills mt and reports whether its conditions are usable for the
// overlap checks.
func (b *builder) buildMatch(r *rawMatch, mt *Match) bool {
	m := &r.rawMeta
	ok := m.placeholders == 0
	n := b.sink.count()
	for i, meth := range r.Methods {
		up := strings.ToUpper(meth)
		if !slices.Contains(knownMethods, up) {
			hint := ""
			if m.originOf("methods") == "" {
				hint = didYouMean(up, knownMethods)
			}
			b.errorf(m.elemAt("methods", i), "Invalid HTTP method", "%s is not an HTTP method; use one of %s.%s", m.quotePart("methods", meth), strings.Join(knownMethods, ", "), hint)
			continue
		}
		if !slices.Contains(mt.Methods, up) {
			mt.Methods = append(mt.Methods, up)
		}
	}
	if m.known("methods") && len(r.Methods) == 0 {
		b.errorf(m.valueAt("methods"), "Empty methods", "methods = [] matches no request; list methods, or remove the attribute to match any.")
	}
	slices.Sort(mt.Methods)
	for i, h := range r.Hosts {
		lh := strings.ToLower(h)
		if !hostPattern.MatchString(lh) {
			b.errorf(m.elemAt("hosts", i), "Invalid host", "%s is not a host name; write it without scheme, port or path, such as \"api.example.com\" or \"*.example.com\".", m.quotePart("hosts", h))
			continue
		}
		mt.Hosts = append(mt.Hosts, strings.TrimSuffix(lh, "."))
	}
	slices.Sort(mt.Hosts)
	mt.Hosts = slices.Compact(mt.Hosts)
	if m.known("hosts") && len(r.Hosts) == 0 {
		b.errorf(m.valueAt("hosts"), "Empty hosts", "hosts = [] matches no request; list host names, or remove the attribute to match any.")
	}
	if m.has("path") && m.has("path_prefix") {
		b.errorf(m.at("path_prefix"), "Conflicting path conditions", "A match has either path or path_prefix, not both; path matches one path (or template), path_prefix a subtree.")
	}
	if m.known("path") {
		switch {
		case !strings.HasPrefix(r.Path, "/"):
			b.errorf(m.valueAt("path"), "Invalid path", "%s must start with \"/\".", m.quote("path", r.Path))
		case strings.ContainsAny(r.Path, "?#"):
			b.errorf(m.valueAt("path"), "Invalid path", "%s contains a query or fragment; match the path only.", m.quote("path", r.Path))
		case strings.ContainsAny(r.Path, "{}"):
			segs, err := parseTemplate(r.Path)
			if err != nil && m.originOf("path") != "" { // the error quotes segments
				b.errorf(m.valueAt("path"), "Invalid path template", "%s is not a valid path template.", m.originOf("path"))
			} else if err != nil {
				b.errorf(m.valueAt("path"), "Invalid path template", "%q: %s.", r.Path, err)
			} else {
				mt.Path, mt.PathSegments = r.Path, segs
			}
		default:
			mt.Path = r.Path
		}
	}
	if m.known("path_prefix") {
		switch {
		case !strings.HasPrefix(r.PathPrefix, "/"):
			b.errorf(m.valueAt("path_prefix"), "Invalid path", "%s must start with \"/\".", m.quote("path_prefix", r.PathPrefix))
		case strings.ContainsAny(r.PathPrefix, "?#"):
			b.errorf(m.valueAt("path_prefix"), "Invalid path", "%s contains a query or fragment; match the path only.", m.quote("path_prefix", r.PathPrefix))
		case strings.ContainsAny(r.PathPrefix, "{}"):
			b.errorf(m.valueAt("path_prefix"), "Invalid path", "%s: templates are supported in path, not in path_prefix.", m.quote("path_prefix", r.PathPrefix))
		case !m.has("path"):
			mt.PathPrefix = r.PathPrefix
		}
	}
	if m.known("headers") {
		seen := map[string]bool{}
		for _, k := range sortedKeys(r.Headers) {
			v := r.Headers[k]
			if !IsToken(k) {
				b.errorf(m.keyAt("headers", k), "Invalid header name", "%s is not a valid header name; use letters, digits and - only.", m.quotePart("headers", k))
				continue
			}
			hm := HeaderMatch{Name: textproto.CanonicalMIMEHeaderKey(k), Value: v}
			if re, isRe := strings.CutPrefix(v, "~"); isRe {
				rx, err := regexp.Compile("^(?:" + re + ")$")
				if err != nil {
					reason := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
					if m.originOf("headers") != "" { // the reason quotes the expression
						reason = "it does not compile"
					}
					b.errorf(m.keyAt("headers", k), "Invalid regular expression", "The value of header %s starts with \"~\", so it is a regular expression, but %s.", m.quotePart("headers", k), reason)
					continue
				}
				hm.Value, hm.Regex = re, rx
			} else if !ValidHeaderValue(v) {
				b.errorf(m.keyAt("headers", k), "Invalid header value", "The value of header %s contains a control character; remove it.", m.quotePart("headers", k))
				continue
			}
			if seen[hm.Name] {
				b.errorf(m.keyAt("headers", k), "Duplicate header", "Header names are case-insensitive: %s is listed twice; keep one.", m.quotePart("headers", hm.Name))
			}
			seen[hm.Name] = true
			mt.Headers = append(mt.Headers, hm)
		}
	}
	if m.known("jq") {
		mt.JQ = b.jq(m, "jq", "", r.JQ)
	}
	return ok && b.sink.count() == n
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseTemplate splits "/users/{id}/orders" into segments; a placeholder is a
// whole segment.
func parseTemplate(p string) ([]Segment, error) {
	var segs []Segment
	seen := map[string]bool{}
	for _, s := range strings.Split(p[1:], "/") {
		if !strings.ContainsAny(s, "{}") {
			segs = append(segs, Segment{Literal: s})
			continue
		}
		if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") || strings.Count(s, "{") != 1 || strings.Count(s, "}") != 1 {
			if strings.Count(s, "{") != strings.Count(s, "}") {
				return nil, fmt.Errorf("unbalanced braces in segment %q", s)
			}
			return nil, fmt.Errorf("segment %q mixes text and a placeholder; a placeholder must be a whole segment such as \"{id}\"", s)
		}
		name := s[1 : len(s)-1]
		if !paramName.MatchString(name) {
			return nil, fmt.Errorf("placeholder %q must be a name of letters, digits and _", s)
		}
		if seen[name] {
			return nil, fmt.Errorf("placeholder {%s} is used twice; give each a unique name", name)
		}
		seen[name] = true
		segs = append(segs, Segment{Param: name})
	}
	return segs, nil
}

var retryOn = []string{"connect", "timeout", "5xx", "429"}

// defaultRetry is the policy of a route or submit_api without a retry block.
func defaultRetry() Retry {
	return Retry{Attempts: 3, Backoff: "exponential", Initial: time.Second, Max: time.Minute, On: []RetryOn{RetryConnect, RetryTimeout, Retry5xx, Retry429}}
}

func (b *builder) buildRetry(r *rawRetry) Retry {
	rt := defaultRetry()
	if r == nil {
		return rt
	}
	m := &r.rawMeta
	if m.known("attempts") {
		if r.Attempts < 1 || r.Attempts > 100 {
			b.errorf(m.valueAt("attempts"), "Invalid retry attempts", "attempts counts every try including the first and must be from 1 (no retries) to 100, got %s.", m.show("attempts", r.Attempts))
		} else {
			rt.Attempts = r.Attempts
		}
	}
	if bo := b.oneOf(m, "backoff", r.Backoff, "exponential", "Invalid backoff", []string{"exponential", "constant"}); bo != "" {
		rt.Backoff = bo
	}
	ini, okI := b.dur(m, "initial", r.Initial, time.Second)
	if okI && (ini < time.Millisecond || ini > time.Hour) {
		b.errorf(m.valueAt("initial"), "Invalid retry delay", "initial must be from 1ms to 1h, got %s.", m.show("initial", ini))
		okI = false
	} else {
		rt.Initial = ini
	}
	mx, okM := b.dur(m, "max", r.Max, time.Minute)
	if okM && (mx < time.Millisecond || mx > 24*time.Hour) {
		b.errorf(m.valueAt("max"), "Invalid retry delay", "max must be from 1ms to 24h, got %s.", m.show("max", mx))
		okM = false
	} else {
		rt.Max = mx
	}
	if rt.Initial > rt.Max && (okI || okM) {
		at := m.valueAt("max")
		if !m.has("max") {
			at = m.valueAt("initial")
		}
		b.errorf(at, "Invalid retry delay", "initial (%s) is longer than max (%s); max bounds every delay, so raise max or lower initial.", m.show("initial", rt.Initial), m.show("max", rt.Max))
	}
	if m.known("on") {
		rt.On = nil
		for i, o := range r.On {
			if !slices.Contains(retryOn, o) {
				hint := ""
				if m.originOf("on") == "" {
					hint = didYouMean(o, retryOn)
				}
				b.errorf(m.elemAt("on", i), "Invalid retry condition", "%s is not a retry condition; use %s.%s", m.quotePart("on", o), quoteList(retryOn), hint)
				continue
			}
			if !slices.Contains(rt.On, RetryOn(o)) {
				rt.On = append(rt.On, RetryOn(o))
			}
		}
		if len(r.On) == 0 && rt.Attempts > 1 {
			b.warnf(m.valueAt("on"), "Retry never happens", "on = [] retries nothing, so attempts > 1 has no effect; list conditions or set attempts = 1.")
		}
	}
	return rt
}

func (b *builder) buildClientAuth(r *rawClientAuth) *ClientAuth {
	if r == nil {
		return nil
	}
	m := &r.rawMeta
	t := b.oneOf(m, "type", r.Type, "", "Invalid client auth type", []string{"bearer", "api_key", "none"})
	ca := &ClientAuth{Type: AuthType(t), Header: r.Header, Tokens: r.Tokens}
	switch ca.Type {
	case AuthNone:
		for _, n := range []string{"tokens", "header"} {
			if m.has(n) {
				b.warnf(m.at(n), "Unused attribute", "%s has no effect with type = \"none\"; remove it or change the type.", n)
			}
		}
		return nil
	case AuthBearer, AuthAPIKey:
		if !m.has("tokens") || (m.known("tokens") && len(r.Tokens) == 0) {
			b.errorf(m.at("tokens"), "Missing client tokens", "client_auth of type %s needs tokens = [...] listing the accepted credentials; without them nobody can call the route.", m.quote("type", t))
		}
		for i, tok := range r.Tokens {
			if tok == "" && m.known("tokens") {
				b.errorf(m.elemAt("tokens", i), "Empty credential", "An empty token would let a request without credentials in; remove it.")
			}
		}
		if ca.Type == AuthBearer && m.has("header") {
			b.warnf(m.at("header"), "Unused attribute", "header has no effect with type = \"bearer\" (the token is read from Authorization); remove it.")
		}
		if ca.Type == AuthAPIKey {
			if !m.has("header") {
				ca.Header = "X-API-Key"
			} else if m.known("header") && !IsToken(r.Header) {
				b.errorf(m.valueAt("header"), "Invalid header name", "%s is not a valid header name.", m.quote("header", r.Header))
			}
			ca.Header = textproto.CanonicalMIMEHeaderKey(ca.Header)
		} else {
			ca.Header = ""
		}
	}
	return ca
}
