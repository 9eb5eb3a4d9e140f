package config

import (
	"slices"
	"strconv"
	"strings"
)

// coverBudget bounds the pairs of routes compared for shadowing in one load.
// The index below makes the usual cases (routes told apart by path, host,
// header or jq) cost a few lookups per route; only routes built to defeat it
// get near the budget, and then the rest goes unchecked with a warning
// rather than taking quadratic time.
const coverBudget = 1 << 20

// pathKey identifies a route's path condition: two routes with the same key
// select the same paths.
func pathKey(m *Match) string {
	switch pathKind(m) {
	case kindExact:
		return "=" + m.Path
	case kindTemplate:
		var sb strings.Builder
		sb.WriteString("T")
		for _, s := range m.PathSegments {
			sb.WriteByte('/')
			if s.Param != "" {
				sb.WriteString("{}")
			} else {
				sb.WriteString(s.Literal)
			}
		}
		return sb.String()
	case kindPrefix:
		return "P" + strings.TrimSuffix(m.PathPrefix, "/")
	}
	return "*"
}

// covers reports whether every request b matches is also matched by a,
// given that both have the same path condition.
func covers(a, b *Match) bool {
	if len(a.Methods) > 0 && (len(b.Methods) == 0 || !subset(b.Methods, a.Methods)) {
		return false
	}
	if len(a.Hosts) > 0 && (len(b.Hosts) == 0 || !subset(b.Hosts, a.Hosts)) {
		return false
	}
	for _, ha := range a.Headers {
		if !slices.ContainsFunc(b.Headers, func(hb HeaderMatch) bool { return sameHeader(ha, hb) }) {
			return false
		}
	}
	if a.JQ != nil && (b.JQ == nil || b.JQ.Source != a.JQ.Source) {
		return false
	}
	return true
}

func sameHeader(a, b HeaderMatch) bool {
	return a.Name == b.Name && a.Value == b.Value && (a.Regex == nil) == (b.Regex == nil)
}

// subset reports whether every element of xs is in of; both are sorted.
func subset(xs, of []string) bool {
	for _, x := range xs {
		if _, found := slices.BinarySearch(of, x); !found {
			return false
		}
	}
	return true
}

// checkOverlaps reports routes that can never win: identical conditions are
// an error, an earlier route (in precedence order) that takes every request
// a later one would is a warning. It runs in about linear time: identical
// routes are found by a key of their conditions, and covering ones through
// an index of the routes seen so far by what they require.
func (b *builder) checkOverlaps() {
	groups := map[string][]*Route{}
	for _, rt := range Precedence(b.cfg.Routes) {
		if b.badRt[rt.Index] {
			continue
		}
		k := pathKey(&rt.Match)
		groups[k] = append(groups[k], rt)
	}
	for _, k := range sortedNames(groups) {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		first := map[string]*Route{} // by matchKey
		idx := coverIndex{buckets: map[string]*coverBucket{}}
		for _, later := range g {
			at := b.rawRt[later.Index].def()
			mk := matchKey(&later.Match)
			if earlier := first[mk]; earlier != nil {
				b.errorf(at, "Routes match the same requests", "Route %q matches exactly the requests of route %q (%s), which comes first, so it can never be used. Remove one, or make their match blocks differ.", later.Name, earlier.Name, where(earlier.Range))
				continue
			}
			first[mk] = later
			if b.coverChecks > coverBudget {
				if !b.coverSkipped {
					b.coverSkipped = true
					b.warnf(at, "Shadowing not checked", "openhqm compared %d pairs of routes with the same path and stopped: this route and the ones after it with the same path were not checked for shadowing. Tell routes apart by host, header or jq, or check the precedence by hand.", b.coverChecks)
				}
				continue
			}
			if earlier := idx.find(later, &b.coverChecks); earlier != nil {
				b.warnf(at, "Shadowed route", "Route %q is never used: route %q (%s) comes first in precedence and takes every request it would. Give this route a higher priority, or narrow the other one.", later.Name, earlier.Name, where(earlier.Range))
				// Whatever it would cover, the route that covers it covers
				// too, and comes first: it need not be indexed.
				continue
			}
			idx.add(later)
		}
	}
}

// matchKey identifies a route's conditions: routes with the same key match
// the same requests.
func matchKey(m *Match) string {
	var sb strings.Builder
	field := func(s string) {
		sb.WriteString(strconv.Itoa(len(s)))
		sb.WriteByte(':')
		sb.WriteString(s)
	}
	field(pathKey(m))
	sb.WriteString("|M")
	for _, x := range m.Methods {
		field(x)
	}
	sb.WriteString("|H")
	for _, x := range m.Hosts {
		field(x)
	}
	sb.WriteString("|X")
	sb.WriteString(headersKey(m.Headers))
	sb.WriteString("|J")
	sb.WriteString(jqSourceKey(m.JQ))
	return sb.String()
}

// headersKey identifies a set of header conditions, in any order.
func headersKey(hs []HeaderMatch) string {
	keys := make([]string, len(hs))
	for i, h := range hs {
		kind := "="
		if h.Regex != nil {
			kind = "~"
		}
		keys[i] = strconv.Itoa(len(h.Name)) + ":" + h.Name + kind + strconv.Itoa(len(h.Value)) + ":" + h.Value
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

func jqSourceKey(jq *JQ) string {
	if jq == nil {
		return ""
	}
	return "q" + jq.Source
}

// coverIndex holds the routes of one path group seen so far, by what a
// request must carry for them to match (headers and jq), and within that by
// host.
type coverIndex struct {
	buckets map[string]*coverBucket // by requirementKey
	all     []*Route                // in precedence order, for routes with many headers
}

type coverBucket struct {
	anyHost []*Route            // routes without a hosts condition
	byHost  map[string][]*Route // routes listing the host
}

// maxSubsetHeaders bounds the header conditions whose subsets find looks up
// (2^n lookups); a route with more is compared with every route instead.
const maxSubsetHeaders = 6

func requirementKey(hs []HeaderMatch, jq *JQ) string {
	return headersKey(hs) + "|" + jqSourceKey(jq)
}

func (x *coverIndex) add(rt *Route) {
	x.all = append(x.all, rt)
	k := requirementKey(rt.Match.Headers, rt.Match.JQ)
	bk := x.buckets[k]
	if bk == nil {
		bk = &coverBucket{byHost: map[string][]*Route{}}
		x.buckets[k] = bk
	}
	if len(rt.Match.Hosts) == 0 {
		bk.anyHost = append(bk.anyHost, rt)
	}
	for _, h := range rt.Match.Hosts {
		bk.byHost[h] = append(bk.byHost[h], rt)
	}
}

// find returns the first route in precedence order that covers rt, or nil,
// counting the comparisons in checks. A covering route requires a subset of
// rt's headers and rt's jq or none, and lists no host or every host of rt
// (so its first host among them).
func (x *coverIndex) find(rt *Route, checks *int) *Route {
	var best *Route
	consider := func(list []*Route) {
		for _, c := range list {
			if best != nil && comparePrecedence(c, best) >= 0 {
				return // the lists are in precedence order
			}
			*checks++
			if covers(&c.Match, &rt.Match) {
				best = c
				return
			}
		}
	}
	m := &rt.Match
	if len(m.Headers) > maxSubsetHeaders {
		consider(x.all)
		return best
	}
	jqs := []*JQ{nil}
	if m.JQ != nil {
		jqs = append(jqs, m.JQ)
	}
	sub := make([]HeaderMatch, 0, len(m.Headers))
	for bits := 0; bits < 1<<len(m.Headers); bits++ {
		sub = sub[:0]
		for i, h := range m.Headers {
			if bits&(1<<i) != 0 {
				sub = append(sub, h)
			}
		}
		for _, jq := range jqs {
			bk := x.buckets[requirementKey(sub, jq)]
			if bk == nil {
				continue
			}
			consider(bk.anyHost)
			if len(m.Hosts) > 0 {
				consider(bk.byHost[m.Hosts[0]])
			}
		}
	}
	return best
}
