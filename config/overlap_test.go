package config

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

// overlapBuilder is a builder holding routes, as buildRoute leaves them, for
// checkOverlaps alone.
func overlapBuilder(routes []*Route) *builder {
	b := &builder{sink: &diagSink{}, cfg: &Config{Routes: routes}, badRt: map[int]bool{}}
	for i, rt := range routes {
		rt.Index = i
		rt.Range = hcl.Range{Filename: "r.hcl", Start: hcl.Pos{Line: i + 1}}
		b.rawRt = append(b.rawRt, &rawRoute{rawMeta: rawMeta{defRange: rt.Range}, Name: rt.Name})
	}
	return b
}

type overlapFinding struct {
	Route, Summary, Earlier string
}

var earlierName = regexp.MustCompile(`route "([^"]+)" \(`)

func findings(diags hcl.Diagnostics, routes []*Route) []overlapFinding {
	var out []overlapFinding
	for _, d := range diags {
		f := overlapFinding{Route: routes[d.Subject.Start.Line-1].Name, Summary: d.Summary}
		if m := earlierName.FindStringSubmatch(d.Detail); m != nil {
			f.Earlier = m[1]
		}
		out = append(out, f)
	}
	return out
}

// bruteOverlaps is the definition checkOverlaps implements, compared pair by
// pair: a route with the conditions of an earlier one (in precedence order)
// is an error naming the first such; otherwise a route every request of
// which an earlier one takes is shadowed by the first such.
func bruteOverlaps(routes []*Route) []overlapFinding {
	var out []overlapFinding
	order := Precedence(routes)
	for j, later := range order {
		var same, cover *Route
		for _, earlier := range order[:j] {
			if pathKey(&earlier.Match) != pathKey(&later.Match) {
				continue
			}
			if same == nil && matchKey(&earlier.Match) == matchKey(&later.Match) {
				same = earlier
			}
			if cover == nil && covers(&earlier.Match, &later.Match) {
				cover = earlier
			}
		}
		switch {
		case same != nil:
			out = append(out, overlapFinding{later.Name, "Routes match the same requests", same.Name})
		case cover != nil:
			out = append(out, overlapFinding{later.Name, "Shadowed route", cover.Name})
		}
	}
	return out
}

// randomRoutes draws routes from small sets of conditions, so that many
// share a path and cover one another.
func randomRoutes(rnd *rand.Rand, n int) []*Route {
	pick := func(xs []string) []string {
		var out []string
		for _, x := range xs {
			if rnd.IntN(3) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	var routes []*Route
	for i := range n {
		m := Match{PathPrefix: []string{"/", "/a", "/b"}[rnd.IntN(3)]}
		m.Methods = pick([]string{"GET", "POST", "PUT"})
		m.Hosts = pick([]string{"a.example", "b.example"})
		for _, h := range pick([]string{"X-A", "X-B", "X-C"}) {
			m.Headers = append(m.Headers, HeaderMatch{Name: h, Value: []string{"1", "2"}[rnd.IntN(2)]})
		}
		if rnd.IntN(4) == 0 {
			m.JQ = &JQ{Source: []string{".a", ".b"}[rnd.IntN(2)]}
		}
		routes = append(routes, &Route{Name: fmt.Sprint("r", i), Priority: rnd.IntN(2), Match: m})
	}
	return routes
}

// TestOverlapsMatchTheDefinition: the indexed check finds, for random route
// sets, exactly what comparing every pair finds.
func TestOverlapsMatchTheDefinition(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		routes := randomRoutes(rnd, 2+rnd.IntN(30))
		want := bruteOverlaps(routes)
		b := overlapBuilder(routes)
		b.checkOverlaps()
		got := findings(b.sink.kept, routes)
		sortFindings := func(fs []overlapFinding) {
			slices.SortFunc(fs, func(a, b overlapFinding) int { return strings.Compare(a.Route, b.Route) })
		}
		sortFindings(want)
		sortFindings(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("set %d: (-pairwise +indexed):\n%s", i, diff)
		}
	}
}

// TestOverlapChecksAreLinear: routes that share a path and differ by a
// header, a host or a jq expression (a tenant per route, say) are checked
// with a few comparisons each. Comparing every pair made 100,000 routes take
// 40 s to validate.
func TestOverlapChecksAreLinear(t *testing.T) {
	const n = 20000
	kinds := map[string]func(i int) Match{
		"headers": func(i int) Match {
			return Match{PathPrefix: "/api", Headers: []HeaderMatch{{Name: "X-Tenant", Value: fmt.Sprint("t", i)}}}
		},
		"hosts": func(i int) Match {
			return Match{PathPrefix: "/api", Methods: []string{"GET"}, Hosts: []string{fmt.Sprintf("t%d.example.com", i)}}
		},
		"jq": func(i int) Match { return Match{Path: "/submit", JQ: &JQ{Source: fmt.Sprintf(".tenant == %d", i)}} },
	}
	for name, match := range kinds {
		t.Run(name, func(t *testing.T) {
			routes := make([]*Route, n)
			for i := range routes {
				routes[i] = &Route{Name: fmt.Sprint("r", i), Match: match(i)}
			}
			b := overlapBuilder(routes)
			b.checkOverlaps()
			if len(b.sink.kept) > 0 {
				t.Fatalf("diagnostics: %v", b.sink.kept[0])
			}
			if b.coverChecks > 2*n {
				t.Errorf("%d comparisons for %d routes", b.coverChecks, n)
			}
		})
	}
}

// TestOverlapBudget: routes built to defeat the index are compared up to
// coverBudget, and then the rest is left with one warning.
func TestOverlapBudget(t *testing.T) {
	// Each lists the host of the next one's and one of its own: none covers
	// another, but all share their first host.
	var routes []*Route
	for i := range 3000 {
		routes = append(routes, &Route{Name: fmt.Sprint("r", i), Match: Match{PathPrefix: "/", Hosts: []string{"a.example", fmt.Sprintf("h%05d.example", i)}}})
	}
	b := overlapBuilder(routes)
	b.checkOverlaps()
	if b.coverChecks > coverBudget+len(routes) {
		t.Errorf("%d comparisons, over the budget", b.coverChecks)
	}
	if len(b.sink.kept) != 1 || b.sink.kept[0].Summary != "Shadowing not checked" {
		t.Errorf("diagnostics %v, want one saying the check stopped", b.sink.kept)
	}
}
