package config

import (
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
		if !json {
			checkNestingBound(t, src)
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
