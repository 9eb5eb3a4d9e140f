package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// deepValues are values nested n levels in each way the HCL and JSON parsers
// (or HCL's evaluator) recurse, as `listen = <value>`.
func deepValues(n int) map[string]string {
	r := strings.Repeat
	return map[string]string{
		"parentheses":     r("(", n) + `":80"` + r(")", n),
		"lists":           r("[", n) + r("]", n),
		"objects":         r("{a=", n) + "1" + r("}", n),
		"tuple of tuples": r("[[", n) + r("]]", n),
		"templates":       r(`"${`, n) + `":80"` + r(`}"`, n),
		"heredocs":        r("<<EOT\n${", n) + `":80"` + r("}\nEOT\n", n),
		"directives":      `"` + r("%{ if true }", n) + ":80" + r("%{ endif }", n) + `"`,
		"negation":        r("-", n) + "1",
		"not":             r("!", n) + "true",
		"conditionals":    r("true ? ", n) + `":80"` + r(` : ""`, n),
		"additions":       "1" + r(" + 1", n),
		"indexes":         r("[", n) + "1" + r("][0", n) + "]",
		"splats":          "[1]" + r("[*]", n),
		"function calls":  r("env(", n) + `"X"` + r(")", n),
	}
}

// TestDeepNesting: a value nested 100,000 levels (which overflowed the
// goroutine stack inside the HCL parser, killing the process) is a located
// error, in native and JSON syntax; so are nested blocks.
func TestDeepNesting(t *testing.T) {
	const n = 100000
	srcs := map[string]string{}
	for name, v := range deepValues(n) {
		srcs[name+".hcl"] = "server {\n  listen = " + v + "\n}\n"
	}
	srcs["blocks.hcl"] = strings.Repeat("b {\n", n) + strings.Repeat("}\n", n)
	srcs["arrays.hcl.json"] = `{"server": {"listen": ` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`
	srcs["objects.hcl.json"] = `{"server": {"listen": ` + strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + `}}`
	srcs["template.hcl.json"] = `{"server": {"listen": "` + strings.Repeat("${(", n) + "1" + strings.Repeat(")}", n) + `"}}`
	for name, src := range srcs {
		t.Run(name, func(t *testing.T) {
			_, _, diags := Parse(map[string][]byte{name: []byte(src)}, Options{Mode: ModeValidate})
			want := fmt.Sprintf("Nesting deeper than %d levels", MaxNesting)
			if len(diags) != 1 || diags[0].Summary != want || diags[0].Subject == nil || diags[0].Subject.Filename != name {
				t.Fatalf("diagnostics %v, want one located %q", diags, want)
			}
			if s := diags[0].Subject; s.Start.Byte < 0 || s.Start.Byte >= len(src) || s.End.Byte > len(src) {
				t.Errorf("subject %v is outside the source", s)
			}
		})
	}
}

// TestNestingLocation: the error points at the bracket that goes one level
// too deep.
func TestNestingLocation(t *testing.T) {
	src := "server {\n  listen = " + strings.Repeat("(", 200) + `":80"` + strings.Repeat(")", 200) + "\n}\n"
	_, _, diags := Parse(map[string][]byte{"c.hcl": []byte(src)}, Options{})
	// The block is one level and the attribute's value starts at column 12.
	want := hcl.Range{Filename: "c.hcl", Start: hcl.Pos{Line: 2, Column: 12 + MaxNesting - 1, Byte: 20 + MaxNesting - 1}, End: hcl.Pos{Line: 2, Column: 12 + MaxNesting, Byte: 20 + MaxNesting}}
	if len(diags) != 1 || diags[0].Subject == nil {
		t.Fatalf("diagnostics %v", diags)
	}
	if diff := cmp.Diff(want, *diags[0].Subject); diff != "" {
		t.Errorf("subject (-want +got):\n%s", diff)
	}
}

// TestShallowNestingIsFine: values nested well within MaxNesting parse as
// before (the checks that follow may reject them, but not for nesting).
func TestShallowNestingIsFine(t *testing.T) {
	for name, v := range deepValues(MaxNesting / 5) {
		t.Run(name, func(t *testing.T) {
			_, _, diags := Parse(map[string][]byte{"c.hcl": []byte("server {\n  listen = " + v + "\n}\n")}, Options{Mode: ModeValidate})
			for _, d := range diags {
				if strings.HasPrefix(d.Summary, "Nesting deeper") {
					t.Fatalf("%v", d)
				}
			}
		})
	}
}

// TestLoadRecoversFromPanics: a panic while loading (made here by a test
// hook where hcl or cty would panic) is an error diagnostic at the attribute
// being evaluated, not a crash, and does not quote the panic's value.
func TestLoadRecoversFromPanics(t *testing.T) {
	testHookDecodeAttr = func(a *hcl.Attribute) {
		if a.Name == "url" {
			panic(errors.New("s3cret"))
		}
	}
	defer func() { testHookDecodeAttr = nil }()
	src := "endpoint \"app\" {\n  url = \"http://127.0.0.1:8080\"\n}\n"
	cfg, _, diags := Parse(map[string][]byte{"c.hcl": []byte(src)}, Options{})
	if cfg != nil || len(diags) != 1 || diags[0].Summary != "Internal error" || diags[0].Subject == nil || diags[0].Subject.Start.Line != 2 {
		t.Fatalf("cfg %v diagnostics %v, want one internal error on line 2", cfg, diags)
	}
	if strings.Contains(diags[0].Detail, "s3cret") || !strings.Contains(diags[0].Detail, "TestLoadRecoversFromPanics") {
		t.Errorf("the detail should name where the panic happened but not its value: %s", diags[0].Detail)
	}
}

// TestSplitTopLevel: a file is cut only after newlines that end a top-level
// item, never inside a string, heredoc, template, comment or bracket.
func TestSplitTopLevel(t *testing.T) {
	src := `# a { comment
a = "x { y" # }
b = <<EOT
  } ${ "{" } "
  EOTX
EOT
c = <<-EOT
  %{ if true }{ %{ endif }
  EOT
/* a
{ block comment
*/
d = "${ { a = "}" }.a }"
e { f = "$${" }
g = [
  1,
]
`
	if _, diags := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos); diags.HasErrors() {
		t.Fatalf("the test's source is not valid HCL: %v", diags)
	}
	var got []string
	prev := 0
	ends, _, deep := splitTopLevel([]byte(src), 1)
	if deep >= 0 {
		t.Fatalf("too deep at %d", deep)
	}
	for _, end := range ends {
		got = append(got, src[prev:end])
		prev = end
	}
	want := []string{
		"# a { comment\n",
		"a = \"x { y\" # }\n",
		"b = <<EOT\n  } ${ \"{\" } \"\n  EOTX\nEOT\n",
		"c = <<-EOT\n  %{ if true }{ %{ endif }\n  EOT\n",
		"/* a\n{ block comment\n*/\n",
		"d = \"${ { a = \"}\" }.a }\"\n",
		"e { f = \"$${\" }\n",
		"g = [\n  1,\n]\n",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pieces (-want +got):\n%s", diff)
	}
}

// TestPiecesParseAsWhole: every testdata configuration, cut into its
// top-level items, loads to the same configuration and diagnostics as in
// one piece.
func TestPiecesParseAsWhole(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*/*")
	if len(paths) < 60 {
		t.Fatalf("only %d testdata paths", len(paths))
	}
	type diag struct {
		Severity        hcl.DiagnosticSeverity
		Summary, Detail string
		Subject         hcl.Range
	}
	load := func(p string, size int) (*Config, []diag) {
		defer func(old int) { chunkSize = old }(chunkSize)
		chunkSize = size
		cfg, _, diags, err := Load([]string{p}, Options{Mode: ModeValidate, LookupEnv: lookupTestEnv})
		if err != nil {
			t.Fatal(err)
		}
		var out []diag
		for _, d := range diags {
			out = append(out, diag{d.Severity, d.Summary, d.Detail, *d.Subject})
		}
		return cfg, out
	}
	for _, p := range paths {
		if filepath.Base(p) == "secrets" {
			continue
		}
		whole, wholeDiags := load(p, 1<<30)
		pieces, piecesDiags := load(p, 1)
		if diff := cmp.Diff(wholeDiags, piecesDiags); diff != "" {
			t.Errorf("%s: diagnostics (-whole +pieces):\n%s", p, diff)
		}
		if diff := cmp.Diff(whole, pieces, ignoreCompiled); diff != "" {
			t.Errorf("%s: configuration (-whole +pieces):\n%s", p, diff)
		}
	}
}

// TestDeepJQ: a jq expression nested or sized to overflow the stack of
// gojq's parser or compiler (3,000,000 parentheses did) is an error.
func TestDeepJQ(t *testing.T) {
	for name, jq := range map[string]string{
		"parentheses": strings.Repeat("(", 3000000) + "1" + strings.Repeat(")", 3000000),
		"additions":   "1" + strings.Repeat("+1", 3000000),
	} {
		t.Run(name, func(t *testing.T) {
			src := "endpoint \"app\" {\n  url = \"http://127.0.0.1:8080\"\n}\nroute \"r\" {\n  endpoint = \"app\"\n  match {\n    path_prefix = \"/\"\n    jq = \"" + jq + "\"\n  }\n}\n"
			_, _, diags := Parse(map[string][]byte{"c.hcl": []byte(src)}, Options{})
			if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Start.Line != 8 {
				t.Fatalf("diagnostics %v, want one on the jq line", diags)
			}
		})
	}
}

// TestBlockTooLarge: one top-level item, or a JSON file, beyond maxPieceSize
// is refused before the parser holds its tokens.
func TestBlockTooLarge(t *testing.T) {
	src := "server {\n  listen = \"" + strings.Repeat("x", maxPieceSize) + "\"\n}\n"
	_, _, diags := Parse(map[string][]byte{"c.hcl": []byte(src)}, Options{})
	if len(diags) != 1 || diags[0].Summary != "Block too large" || diags[0].Subject == nil || diags[0].Subject.Start.Line != 1 {
		t.Fatalf("diagnostics %v, want one on line 1", diags)
	}
	// A JSON file is one piece.
	_, _, diags = Parse(map[string][]byte{"c.hcl.json": []byte(`{"server": {"listen": "` + strings.Repeat("x", maxPieceSize) + `"}}`)}, Options{})
	if len(diags) != 1 || diags[0].Summary != "File too large" || diags[0].Subject == nil {
		t.Fatalf("diagnostics %v, want one saying the JSON file is too large", diags)
	}
}

// checkNestingBound fails when a piece the scan spared from the exact count
// would have failed it: the scan's bound must never be below the truth.
func checkNestingBound(t *testing.T, src []byte) {
	t.Helper()
	ends, exact, deep := splitTopLevel(src, 1)
	if deep >= 0 {
		return
	}
	pos := hcl.InitialPos
	for i, end := range ends {
		piece := src[pos.Byte:end]
		if d := hclNesting(piece, "t.hcl", pos); d != nil && !exact[i] {
			t.Fatalf("piece %q nests too deep (%v) but the scan spared it", piece, d)
		}
		pos = advance(pos, piece)
	}
}

// TestNestingBoundIsConservative: around MaxNesting, every construct that
// the exact count rejects is also flagged by the scan.
func TestNestingBoundIsConservative(t *testing.T) {
	for n := MaxNesting / 4; n <= 2*MaxNesting; n += 3 {
		for name, v := range deepValues(n) {
			t.Run(fmt.Sprint(name, n), func(t *testing.T) {
				checkNestingBound(t, []byte("server {\n  listen = "+v+"\n}\nx = 1\n"))
			})
		}
	}
}
