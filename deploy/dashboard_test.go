package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboard is the part of a Grafana dashboard JSON the test reads.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // rows
}

// The original OpenHQM dashboard's queries; its users' panels keep working.
var originalQueries = []string{
	"rate(openhqm_worker_processing_duration_seconds_count[5m])",
	"rate(openhqm_worker_errors_total[5m])",
	"sum(openhqm_worker_active)",
}

// histograms may be queried through their _bucket, _count and _sum series.
var histograms = []string{
	"openhqm_worker_processing_duration_seconds",
	"openhqm_http_request_duration_seconds",
}

// promqlFunctions are the functions with an underscore in their name that the
// dashboard may call; any other identifier with one must be a metric.
var promqlFunctions = []string{"histogram_quantile", "label_values"}

var (
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	identifier = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// metricsIn returns the metric names an expression references.
func metricsIn(t *testing.T, expr string) []string {
	t.Helper()
	var out []string
	for _, id := range identifier.FindAllString(quoted.ReplaceAllString(expr, `""`), -1) {
		if !strings.Contains(id, "_") || slices.Contains(promqlFunctions, id) {
			continue
		}
		name := id
		for _, h := range histograms {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if id == h+suffix {
					name = h
				}
			}
		}
		if !slices.Contains(metricNames, name) {
			t.Errorf("expression %q: %q is not a metric openhqm exports", expr, id)
			continue
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		t.Errorf("expression %q references no openhqm metric", expr)
	}
	return out
}

func TestDashboard(t *testing.T) {
	src, err := os.ReadFile("grafana/openhqm-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(src, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard needs a uid and a title")
	}

	used := map[string]bool{}
	var exprs []string
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
			}
			ids[p.ID] = p.Title
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource must be the ${datasource} variable", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q: no queries", p.Title)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
				for _, m := range metricsIn(t, tg.Expr) {
					used[m] = true
				}
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			metricsIn(t, v.Definition)
		}
	}

	for _, q := range originalQueries {
		if !slices.Contains(exprs, q) {
			t.Errorf("no panel queries %q, as the original dashboard does", q)
		}
	}
	for _, m := range metricNames {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}
