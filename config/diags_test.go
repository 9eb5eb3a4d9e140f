package config

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// TestDiagnosticsAreBounded: a configuration with a problem on every line
// yields at most maxErrors errors and maxWarnings warnings, and one more
// diagnostic that counts the rest (thousands came out before).
func TestDiagnosticsAreBounded(t *testing.T) {
	var many strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&many, "endpoint \"e%d\" {\n  url = \"ftp://e%d\"\n  headers = { Connection = \"close\" }\n}\n", i, i)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 0, 64<<10)
	for len(garbage) < cap(garbage) {
		// Random bytes without brackets and quotes, which would stop the
		// load at once for nesting too deep.
		if c := byte(rnd.IntN(256)); !strings.ContainsRune("{[(\"<$%", rune(c)) {
			garbage = append(garbage, c)
		}
	}
	tests := []struct {
		name        string
		src         []byte
		errs, warns int // left out
	}{
		{"every block wrong", []byte(many.String()), 900, 900},
		{"random bytes", garbage, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, diags := Parse(map[string][]byte{"c.hcl": tt.src}, Options{Mode: ModeValidate})
			if cfg != nil {
				t.Fatal("a configuration came back")
			}
			errs, warns := 0, 0
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs++
				} else {
					warns++
				}
			}
			last := diags[len(diags)-1]
			if errs != maxErrors+1 || warns > maxWarnings || last.Summary != "Too many problems" || last.Subject == nil {
				t.Fatalf("%d errors, %d warnings, last %v; want %d errors and the count of the rest", errs, warns, last, maxErrors)
			}
			if tt.errs >= 0 {
				want := fmt.Sprintf("%d more errors and %d more warnings were left out", tt.errs, tt.warns)
				if !strings.Contains(last.Detail, want) {
					t.Errorf("detail %q does not say %q", last.Detail, want)
				}
			}
		})
	}
}
