package config

import (
	"slices"
	"strings"
)

// Precedence returns the routes in the order they are tried, most specific
// path condition first; the first route whose every condition matches wins.
//
// The order is deterministic and documented in the README:
//  1. an exact path before a path template before a prefix before no path;
//  2. among templates, more literal segments first, then more segments;
//     among prefixes, the longer prefix first;
//  3. a higher priority first;
//  4. declaration order (file order; files of a directory sorted by name).
func Precedence(routes []*Route) []*Route {
	out := slices.Clone(routes)
	slices.SortStableFunc(out, comparePrecedence)
	return out
}

func comparePrecedence(a, b *Route) int {
	ka, kb := pathKind(&a.Match), pathKind(&b.Match)
	if ka != kb {
		return ka - kb
	}
	switch ka {
	case kindTemplate:
		la, lb := literalSegments(a.Match.PathSegments), literalSegments(b.Match.PathSegments)
		if la != lb {
			return lb - la
		}
		if na, nb := len(a.Match.PathSegments), len(b.Match.PathSegments); na != nb {
			return nb - na
		}
	case kindPrefix:
		if la, lb := len(strings.TrimSuffix(a.Match.PathPrefix, "/")), len(strings.TrimSuffix(b.Match.PathPrefix, "/")); la != lb {
			return lb - la
		}
	}
	if a.Priority != b.Priority {
		return b.Priority - a.Priority
	}
	return a.Index - b.Index
}

const (
	kindExact = iota
	kindTemplate
	kindPrefix
	kindAny
)

func pathKind(m *Match) int {
	switch {
	case m.PathSegments != nil:
		return kindTemplate
	case m.Path != "":
		return kindExact
	case m.PathPrefix != "" && m.PathPrefix != "/":
		return kindPrefix
	default:
		return kindAny
	}
}

func literalSegments(segs []Segment) int {
	n := 0
	for _, s := range segs {
		if s.Param == "" {
			n++
		}
	}
	return n
}
