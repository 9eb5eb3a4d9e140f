package router

import (
	"bytes"

	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

// segmentNode is a node of the trie of path templates: the segments of a
// template are the edges from the root to the node that holds it. A
// placeholder is one edge that takes any non-empty segment.
type segmentNode struct {
	literal map[string]*segmentNode
	param   *segmentNode
	routes  []*Route // templates ending here, in precedence order
}

func (n *segmentNode) insert(segs []config.Segment, r *Route) {
	for _, s := range segs {
		if s.Param != "" {
			if n.param == nil {
				n.param = &segmentNode{}
			}
			n = n.param
			continue
		}
		if n.literal == nil {
			n.literal = map[string]*segmentNode{}
		}
		c := n.literal[s.Literal]
		if c == nil {
			c = &segmentNode{}
			n.literal[s.Literal] = c
		}
		n = c
	}
	n.routes = append(n.routes, r)
}

// maxTemplateLeaves is how many trie nodes matching a path Match keeps on
// its stack; a configuration where more templates of different shapes
// match one path costs an allocation.
const maxTemplateLeaves = 8

// matchTemplates returns the first template route in precedence order whose
// every condition matches. The templates whose segments match the path may
// sit at several nodes (a literal and a placeholder both match "users");
// their routes are tried by rank across the nodes.
func (t *Table) matchTemplates(req *request, ctx *fasthttp.RequestCtx) *Route {
	path := req.path
	if t.templates == nil || len(path) == 0 || path[0] != '/' {
		return nil
	}
	var buf [maxTemplateLeaves]*segmentNode
	leaves := t.templates.collect(req, path[1:], buf[:0])
	var posBuf [maxTemplateLeaves]int
	pos := posBuf[:0]
	if len(leaves) > len(posBuf) {
		pos = make([]int, 0, len(leaves))
	}
	pos = pos[:len(leaves)]
	for {
		best := -1
		for i, l := range leaves {
			if pos[i] < len(l.routes) && (best < 0 || l.routes[pos[i]].rank < leaves[best].routes[pos[best]].rank) {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		r := leaves[best].routes[pos[best]]
		pos[best]++
		if r.matchRest(req, ctx) {
			return r
		}
	}
}

// collect appends to leaves the nodes where templates matching rest (a path
// without its leading slash) end. Each node is visited at most once.
func (n *segmentNode) collect(req *request, rest []byte, leaves []*segmentNode) []*segmentNode {
	req.probes++
	seg, more := rest, false
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		seg, rest, more = rest[:i], rest[i+1:], true
	}
	if c := n.literal[string(seg)]; c != nil {
		leaves = c.next(req, rest, more, leaves)
	}
	if n.param != nil && len(seg) > 0 {
		leaves = n.param.next(req, rest, more, leaves)
	}
	return leaves
}

func (n *segmentNode) next(req *request, rest []byte, more bool, leaves []*segmentNode) []*segmentNode {
	if more {
		return n.collect(req, rest, leaves)
	}
	if len(n.routes) > 0 {
		leaves = append(leaves, n)
	}
	return leaves
}

// prefixIndex holds the prefix routes by prefix, trimmed of its trailing
// slash. A prefix p matches a path equal to p or starting with p + "/", so
// the candidates of a path are the path itself and each part of it before a
// slash, and probing them longest first follows precedence (a longer prefix
// first, then priority and declaration order within one prefix).
type prefixIndex struct {
	routes  map[string][]*Route
	lengths []bool // lengths[n]: some prefix has n bytes
}

func (x *prefixIndex) add(prefix string, r *Route) {
	x.routes[prefix] = append(x.routes[prefix], r)
	for len(x.lengths) <= len(prefix) {
		x.lengths = append(x.lengths, false)
	}
	x.lengths[len(prefix)] = true
}

// match probes only the lengths some prefix has, so a long path costs no
// more than the configuration's longest prefix.
func (x *prefixIndex) match(req *request, ctx *fasthttp.RequestCtx) *Route {
	p := req.path
	end := len(p)
	if end >= len(x.lengths) {
		// The longest candidate that fits: a cut before a slash.
		end = bytes.LastIndexByte(p[:len(x.lengths)], '/')
	}
	for end > 0 {
		if x.lengths[end] {
			req.probes++
			for _, r := range x.routes[string(p[:end])] {
				if r.matchRest(req, ctx) {
					return r
				}
			}
		}
		end = bytes.LastIndexByte(p[:end], '/')
	}
	return nil
}
