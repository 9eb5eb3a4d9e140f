package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzLoad checks that no input panics (a recovered panic would show as an
// "Internal error"), that every input yields either a configuration or at
// least one error diagnostic, that the diagnostics stay within their limits,
// and that the scan that spares ordinary pieces the exact nesting count
// never underestimates it. Besides testdata it starts from inputs built
// around the limits: deep nesting of every kind, long strings, many blocks.
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
	for _, n := range []int{MaxNesting / 4, MaxNesting - 1, MaxNesting + 1, 4 * MaxNesting} {
		for _, v := range deepValues(n) {
			f.Add([]byte("server {\n  listen = "+v+"\n}\n"), false)
		}
		r := strings.Repeat
		f.Add([]byte(`{"server": {"listen": `+r("[", n)+r("]", n)+`}}`), true)
		f.Add([]byte(`{"server": {"listen": "`+r("${(", n)+"1"+r(")}", n)+`"}}`), true)
		f.Add([]byte(r("b {\n", n)+r("}\n", n)), false)
	}
	long := strings.Repeat("x", 100<<10)
	f.Add([]byte("endpoint \"a\" {\n  url = \"http://"+long+"\"\n}\n"), false)
	f.Add([]byte("server {\n  listen = <<EOT\n"+long+"\nEOT\n}\n"), false)
	f.Add([]byte(`{"endpoint": {"a": {"url": "`+long+`"}}}`), true)
	f.Add(generateRoutes(300), false)
	f.Add(generateTenantRoutes(300), false)
	f.Add(generateEndpoints(300), false)
	f.Fuzz(func(t *testing.T, src []byte, json bool) {
		name := "fuzz.hcl"
		if json {
			name = "fuzz.hcl.json"
		}
		if !json {
			checkNestingBound(t, src)
		}
		cfg, _, diags := Parse(map[string][]byte{name: src}, Options{Mode: ModeValidate, LookupEnv: lookupTestEnv})
		if (cfg == nil) != diags.HasErrors() {
			t.Fatalf("cfg %v with diagnostics %v", cfg != nil, diags)
		}
		if len(diags) > maxErrors+maxWarnings+1 {
			t.Fatalf("%d diagnostics", len(diags))
		}
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Summary == "" {
				t.Fatalf("error without summary: %v", d)
			}
			if d.Summary == "Internal error" {
				t.Fatalf("a panic: %v", d)
			}
		}
	})
}
