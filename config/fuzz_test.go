package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzLoad checks that no input panics and that every input yields either a
// configuration or at least one error diagnostic.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.hcl")
	more, _ := filepath.Glob("testdata/*/*/*.hcl*")
	for _, p := range append(seeds, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, strings.HasSuffix(p, ".json"))
	}
	f.Fuzz(func(t *testing.T, src []byte, json bool) {
		name := "fuzz.hcl"
		if json {
			name = "fuzz.hcl.json"
		}
		cfg, _, diags := Parse(map[string][]byte{name: src}, Options{Mode: ModeValidate, LookupEnv: lookupTestEnv})
		if (cfg == nil) != diags.HasErrors() {
			t.Fatalf("cfg %v with diagnostics %v", cfg != nil, diags)
		}
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Summary == "" {
				t.Fatalf("error without summary: %v", d)
			}
		}
	})
}

// generate200Routes writes a valid configuration with n routes spread over
// prefixes, templates and exact paths, with header and method conditions.
func generateRoutes(n int) []byte {
	var b strings.Builder
	b.WriteString("endpoint \"app\" {\n  url = \"http://127.0.0.1:8080\"\n  timeout = \"10s\"\n}\n")
	b.WriteString("queue \"jobs\" {\n  lease = \"60s\"\n}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "route \"r%d\" {\n  match {\n", i)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "    path_prefix = \"/api/v%d/items\"\n    methods = [\"GET\", \"POST\"]\n", i)
		case 1:
			fmt.Fprintf(&b, "    path = \"/users/%d/{id}/orders/{order}\"\n", i)
		case 2:
			fmt.Fprintf(&b, "    path = \"/exact/%d\"\n    headers = { \"X-Tenant\" = \"~t%d-.*\" }\n", i, i)
		case 3:
			fmt.Fprintf(&b, "    path_prefix = \"/jobs/%d\"\n    jq = \".kind == \\\"k%d\\\"\"\n", i, i)
		}
		b.WriteString("  }\n  endpoint = \"app\"\n")
		if i%2 == 1 {
			b.WriteString("  mode = \"async\"\n  queue = \"jobs\"\n  retry {\n    attempts = 5\n  }\n")
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// BenchmarkLoad200Routes measures validating a 200-route configuration from
// disk, as `openhqm validate` does.
func BenchmarkLoad200Routes(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "routes.hcl")
	if err := os.WriteFile(p, generateRoutes(200), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		cfg, _, diags, err := Load([]string{p}, Options{Mode: ModeValidate})
		if err != nil || len(diags) > 0 || len(cfg.Routes) != 200 {
			b.Fatalf("err %v diags %v", err, diags)
		}
	}
}
