package config

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

const diagSrc = `route "orders" {
  endpoint = "legcy"
}
`

func diagFixture(t *testing.T) (map[string]*hcl.File, hcl.Diagnostics) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(diagSrc), "a.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// `"legcy"` on line 2, columns 14-21, bytes 30-37.
	subj := hcl.Range{Filename: "a.hcl", Start: hcl.Pos{Line: 2, Column: 14, Byte: 30}, End: hcl.Pos{Line: 2, Column: 21, Byte: 37}}
	return map[string]*hcl.File{"a.hcl": f}, hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "Unknown endpoint", Detail: `No endpoint "legcy" is defined; did you mean "legacy"?`, Subject: &subj},
		{Severity: hcl.DiagWarning, Summary: "Odd: value, 100%", Detail: "line one\nline two"},
	}
}

func TestWriteDiagnosticsText(t *testing.T) {
	files, diags := diagFixture(t)
	var b bytes.Buffer
	if err := WriteDiagnostics(&b, FormatText, files, diags, false, false); err != nil {
		t.Fatal(err)
	}
	want := `Error: Unknown endpoint

  on a.hcl line 2, in route "orders":
   2:   endpoint = "legcy"
                   ^^^^^^^

No endpoint "legcy" is defined; did you mean "legacy"?

Warning: Odd: value, 100%

line one
line two

`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
}

func TestWriteDiagnosticsJSON(t *testing.T) {
	files, diags := diagFixture(t)
	var b bytes.Buffer
	if err := WriteJSON(&b, files, diags, false); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	ctx := `route "orders"`
	want := Report{
		FormatVersion: "1.0", Valid: false, ErrorCount: 1, WarningCount: 1,
		Diagnostics: []ReportDiagnostic{
			{
				Severity: "error", Summary: "Unknown endpoint", Detail: `No endpoint "legcy" is defined; did you mean "legacy"?`,
				Range: &ReportRange{Filename: "a.hcl", Start: ReportPos{2, 14, 30}, End: ReportPos{2, 21, 37}},
				Snippet: &ReportSnippet{
					Context: &ctx, Code: `  endpoint = "legcy"`, StartLine: 2,
					HighlightStartOffset: 13, HighlightEndOffset: 20, Values: []ReportValue{},
				},
			},
			{Severity: "warning", Summary: "Odd: value, 100%", Detail: "line one\nline two"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}
	// Consumers rely on these keys being present even when empty.
	for _, key := range []string{`"values": []`, `"format_version": "1.0"`} {
		if !strings.Contains(b.String(), key) {
			t.Errorf("JSON lacks %s:\n%s", key, b.String())
		}
	}
}

func TestWriteDiagnosticsJSONEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"diagnostics": []`) || !strings.Contains(b.String(), `"valid": true`) {
		t.Errorf("empty report:\n%s", b.String())
	}
}

func TestWriteDiagnosticsGitHub(t *testing.T) {
	files, diags := diagFixture(t)
	var b bytes.Buffer
	if err := WriteDiagnostics(&b, FormatGitHub, files, diags, false, false); err != nil {
		t.Fatal(err)
	}
	want := `::error file=a.hcl,line=2,col=14,endLine=2,endColumn=21,title=Unknown endpoint::No endpoint "legcy" is defined; did you mean "legacy"?
::warning title=Odd%3A value%2C 100%25::line one%0Aline two
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("github (-want +got):\n%s", diff)
	}
}

func TestStrictVerdict(t *testing.T) {
	warn := hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "w"}}
	if r := NewReport(nil, warn, false); !r.Valid {
		t.Error("warnings alone make the configuration invalid")
	}
	if r := NewReport(nil, warn, true); r.Valid {
		t.Error("--strict: warnings leave the configuration valid")
	}
}

func TestCaretWithTabsAndUnicode(t *testing.T) {
	src := "a {\n\tb = \"é\" # x\n}\n"
	f, _ := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos)
	// `"é"` starts at byte 9 (column 6) and is 4 bytes, 3 characters long.
	subj := hcl.Range{Filename: "t.hcl", Start: hcl.Pos{Line: 2, Column: 6, Byte: 9}, End: hcl.Pos{Line: 2, Column: 9, Byte: 13}}
	var b bytes.Buffer
	WriteText(&b, map[string]*hcl.File{"t.hcl": f}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "s", Subject: &subj}}, false)
	if want := "   2: \tb = \"é\" # x\n      \t    ^^^\n"; !strings.Contains(b.String(), want) {
		t.Errorf("caret line missing; want %q in:\n%s", want, b.String())
	}
}
