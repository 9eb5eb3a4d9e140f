package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Output formats of diagnostics.
const (
	formatText   = "text"
	formatJSON   = "json"
	formatGitHub = "github"
)

// diagCounts returns the number of errors and warnings in diags.
func diagCounts(diags hcl.Diagnostics) (errs, warns int) {
	for _, d := range diags {
		switch d.Severity {
		case hcl.DiagError:
			errs++
		case hcl.DiagWarning:
			warns++
		}
	}
	return errs, warns
}

// writeDiagnosticsText renders diags like Terraform: severity and summary, the
// file, line and enclosing block, the source lines with a caret under the
// subject, then the detail. files supplies the source for snippets; a
// diagnostic whose file is missing is rendered without one. With color, the
// subject is highlighted with VT100 escapes instead of a caret line.
func writeDiagnosticsText(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	var buf bytes.Buffer
	tw := hcl.NewDiagnosticTextWriter(&buf, files, 0, color)
	for _, d := range diags {
		buf.Reset()
		if err := tw.WriteDiagnostic(d); err != nil {
			return err
		}
		out := buf.Bytes()
		if !color {
			out = addCaret(out, files, d)
		}
		if _, err := w.Write(out); err != nil {
			return fmt.Errorf("write diagnostics: %w", err)
		}
	}
	return nil
}

// addCaret inserts a line of carets under the subject's first source line in
// the rendering of one diagnostic by hcl's text writer, which marks the
// subject only with colors.
func addCaret(rendered []byte, files map[string]*hcl.File, d *hcl.Diagnostic) []byte {
	if d.Subject == nil {
		return rendered
	}
	f := files[d.Subject.Filename]
	if f == nil || f.Bytes == nil {
		return rendered
	}
	subj := *d.Subject
	src := f.Bytes
	if subj.Start.Byte < 0 || subj.Start.Byte > len(src) {
		return rendered
	}
	lineStart := bytes.LastIndexByte(src[:subj.Start.Byte], '\n') + 1
	lineEnd := len(src)
	if i := bytes.IndexByte(src[subj.Start.Byte:], '\n'); i >= 0 {
		lineEnd = subj.Start.Byte + i
	}
	end := min(max(subj.End.Byte, subj.Start.Byte), lineEnd)
	var caret strings.Builder
	caret.WriteString("      ") // the width of the "%4d: " line prefix
	for _, r := range strings.TrimSuffix(string(src[lineStart:subj.Start.Byte]), "\r") {
		if r == '\t' {
			caret.WriteByte('\t')
		} else {
			caret.WriteByte(' ')
		}
	}
	n := max(utf8.RuneCount(bytes.TrimRight(src[subj.Start.Byte:end], "\r")), 1)
	caret.WriteString(strings.Repeat("^", n))
	caret.WriteByte('\n')

	prefix := []byte(fmt.Sprintf("%4d: ", subj.Start.Line))
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(rendered))
	sc.Buffer(nil, len(rendered)+1)
	inserted := false
	for sc.Scan() {
		line := sc.Bytes()
		out.Write(line)
		out.WriteByte('\n')
		if !inserted && bytes.HasPrefix(line, prefix) {
			out.WriteString(caret.String())
			inserted = true
		}
	}
	return out.Bytes()
}

// textSummary is the last line of validate's text output.
func textSummary(errs, warns int, strict bool) string {
	switch {
	case errs == 0 && warns == 0:
		return "Success! The configuration is valid.\n"
	case errs == 0 && strict:
		return fmt.Sprintf("The configuration is invalid under --strict: %s.\n", plural(warns, "warning"))
	case errs == 0:
		return fmt.Sprintf("Success! The configuration is valid, with %s.\n", plural(warns, "warning"))
	default:
		return fmt.Sprintf("The configuration is invalid: %s, %s.\n", plural(errs, "error"), plural(warns, "warning"))
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// jsonReport is the output of `openhqm validate --format json`, in the shape
// of Terraform's `terraform validate -json` so that existing tooling reads it.
type jsonReport struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []jsonDiagnostic `json:"diagnostics"`
}

type jsonDiagnostic struct {
	Severity string       `json:"severity"` // error | warning
	Summary  string       `json:"summary"`
	Detail   string       `json:"detail"`
	Range    *jsonRange   `json:"range,omitempty"`
	Snippet  *jsonSnippet `json:"snippet,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

type jsonSnippet struct {
	Context              *string     `json:"context"`
	Code                 string      `json:"code"`
	StartLine            int         `json:"start_line"`
	HighlightStartOffset int         `json:"highlight_start_offset"`
	HighlightEndOffset   int         `json:"highlight_end_offset"`
	Values               []jsonValue `json:"values"`
}

// jsonValue is Terraform's expression value; openhqm never fills it, the
// array is present so consumers need not special-case null.
type jsonValue struct {
	Traversal string `json:"traversal"`
	Statement string `json:"statement"`
}

// newJSONReport builds the JSON form of diags. valid is false when there are
// errors, or warnings and strict is set.
func newJSONReport(files map[string]*hcl.File, diags hcl.Diagnostics, strict bool) jsonReport {
	errs, warns := diagCounts(diags)
	r := jsonReport{
		FormatVersion: "1.0",
		Valid:         errs == 0 && !(strict && warns > 0),
		ErrorCount:    errs,
		WarningCount:  warns,
		Diagnostics:   make([]jsonDiagnostic, 0, len(diags)),
	}
	for _, d := range diags {
		r.Diagnostics = append(r.Diagnostics, newJSONDiagnostic(files, d))
	}
	return r
}

func newJSONDiagnostic(files map[string]*hcl.File, d *hcl.Diagnostic) jsonDiagnostic {
	jd := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
	if d.Severity == hcl.DiagWarning {
		jd.Severity = "warning"
	}
	if d.Subject == nil {
		return jd
	}
	s := *d.Subject
	jd.Range = &jsonRange{
		Filename: s.Filename,
		Start:    jsonPos{Line: s.Start.Line, Column: s.Start.Column, Byte: s.Start.Byte},
		End:      jsonPos{Line: s.End.Line, Column: s.End.Column, Byte: s.End.Byte},
	}
	if f := files[s.Filename]; f != nil && f.Bytes != nil {
		jd.Snippet = newJSONSnippet(f, d)
	}
	return jd
}

// newJSONSnippet follows Terraform's rendering: the whole source lines that
// the subject (and context) overlap, the enclosing block as context, and the
// subject as byte offsets into the code; an empty subject is widened to one
// character.
func newJSONSnippet(f *hcl.File, d *hcl.Diagnostic) *jsonSnippet {
	src := f.Bytes
	highlight := *d.Subject
	if highlight.End == (hcl.Pos{}) {
		highlight.End = highlight.Start
	}
	snipRange := highlight
	if d.Context != nil {
		snipRange = hcl.RangeOver(*d.Context, highlight)
	}
	if snipRange.Empty() {
		snipRange.End.Byte++
		snipRange.End.Column++
	}
	if highlight.Empty() {
		highlight.End.Byte++
		highlight.End.Column++
	}
	sn := &jsonSnippet{StartLine: snipRange.Start.Line, Values: []jsonValue{}}
	if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
		if c := cs.ContextString(highlight.Start.Byte - 1); c != "" {
			sn.Context = &c
		}
	}
	var code strings.Builder
	codeStart, first := 0, true
	sc := hcl.NewRangeScanner(src, highlight.Filename, bufio.ScanLines)
	for sc.Scan() {
		lr := sc.Range()
		if !lr.Overlaps(snipRange) {
			continue
		}
		if first {
			codeStart, first = lr.Start.Byte, false
			sn.StartLine = lr.Start.Line
		}
		code.Write(lr.SliceBytes(src))
		code.WriteByte('\n')
	}
	sn.Code = strings.TrimSuffix(code.String(), "\n")
	start := highlight.Start.Byte - codeStart
	end := start + (highlight.End.Byte - highlight.Start.Byte)
	sn.HighlightStartOffset = min(max(start, 0), len(sn.Code))
	sn.HighlightEndOffset = min(max(end, 0), len(sn.Code))
	return sn
}

// writeDiagnosticsJSON writes the JSON report of diags, indented, with a
// trailing newline.
func writeDiagnosticsJSON(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, strict bool) error {
	b, err := json.MarshalIndent(newJSONReport(files, diags, strict), "", "  ")
	if err != nil {
		return fmt.Errorf("encode diagnostics: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}

// writeDiagnosticsGitHub writes one GitHub Actions workflow command per
// diagnostic (::error or ::warning), so the problems appear as annotations on
// the pull request's files.
func writeDiagnosticsGitHub(w io.Writer, diags hcl.Diagnostics) error {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString("::")
		if d.Severity == hcl.DiagWarning {
			b.WriteString("warning")
		} else {
			b.WriteString("error")
		}
		var props []string
		if s := d.Subject; s != nil {
			props = append(props,
				"file="+escapeGitHubProperty(s.Filename),
				fmt.Sprintf("line=%d", s.Start.Line),
				fmt.Sprintf("col=%d", s.Start.Column),
				fmt.Sprintf("endLine=%d", max(s.End.Line, s.Start.Line)),
				fmt.Sprintf("endColumn=%d", max(s.End.Column, 1)))
		}
		props = append(props, "title="+escapeGitHubProperty(d.Summary))
		b.WriteByte(' ')
		b.WriteString(strings.Join(props, ","))
		b.WriteString("::")
		msg := d.Detail
		if msg == "" {
			msg = d.Summary
		}
		b.WriteString(escapeGitHubData(msg))
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}

// escapeGitHubData escapes the message of a workflow command.
func escapeGitHubData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeGitHubProperty escapes a property value of a workflow command, where
// ':' and ',' are delimiters too.
func escapeGitHubProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// writeDiagnostics renders diags in format (text, json or github). For text
// it appends the summary line; strict only affects the verdict.
func writeDiagnostics(w io.Writer, format string, files map[string]*hcl.File, diags hcl.Diagnostics, strict, color bool) error {
	switch format {
	case formatJSON:
		return writeDiagnosticsJSON(w, files, diags, strict)
	case formatGitHub:
		return writeDiagnosticsGitHub(w, diags)
	default:
		if err := writeDiagnosticsText(w, files, diags, color); err != nil {
			return err
		}
		errs, warns := diagCounts(diags)
		_, err := io.WriteString(w, textSummary(errs, warns, strict))
		return err
	}
}
