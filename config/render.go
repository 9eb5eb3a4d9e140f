package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Output formats of diagnostics.
const (
	FormatText   = "text"
	FormatJSON   = "json"
	FormatGitHub = "github"
)

// CountDiagnostics returns the number of errors and warnings in diags, counting
// those the configuration loader left out.
func CountDiagnostics(diags hcl.Diagnostics) (errs, warns int) {
	for _, d := range diags {
		if lo, ok := d.Extra.(LeftOut); ok {
			errs += lo.Errors
			warns += lo.Warnings
			continue
		}
		switch d.Severity {
		case hcl.DiagError:
			errs++
		case hcl.DiagWarning:
			warns++
		}
	}
	return errs, warns
}

// WriteText renders diags like Terraform: severity and summary, the
// file, line and enclosing block, the source lines with a caret under the
// subject, then the detail. files supplies the source for snippets; a
// diagnostic whose file is missing is rendered without one. With color, the
// subject is highlighted with VT100 escapes instead of a caret line.
//
// It renders what hcl's text writer renders, but finds a diagnostic's lines
// through an index of each file's line starts instead of rescanning the
// whole file for each diagnostic, which took minutes for a hundred
// diagnostics at the end of a large file.
func WriteText(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	bw := bufio.NewWriter(w)
	index := lineIndex{}
	var hclBuf bytes.Buffer
	hw := hcl.NewDiagnosticTextWriter(&hclBuf, files, 0, color)
	for _, d := range diags {
		if d.Expression != nil && d.EvalContext != nil {
			// hcl adds the values of the expression's variables: rare
			// enough to leave to it.
			hclBuf.Reset()
			if err := hw.WriteDiagnostic(d); err != nil {
				return err
			}
			bw.Write(hclBuf.Bytes())
			continue
		}
		writeDiagnostic(bw, files, index, d, color)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}

func writeDiagnostic(w *bufio.Writer, files map[string]*hcl.File, index lineIndex, d *hcl.Diagnostic, color bool) {
	severity, colorCode, highlight, reset := "Error", "", "", ""
	if d.Severity == hcl.DiagWarning {
		severity = "Warning"
	}
	if color {
		colorCode, highlight, reset = "\x1b[31m", "\x1b[1;4m", "\x1b[0m"
		if d.Severity == hcl.DiagWarning {
			colorCode = "\x1b[33m"
		}
	}
	fmt.Fprintf(w, "%s%s%s: %s\n\n", colorCode, severity, reset, d.Summary)
	if subj := d.Subject; subj != nil {
		f := files[subj.Filename]
		if f == nil || f.Bytes == nil {
			fmt.Fprintf(w, "  on %s line %d:\n  (source code not available)\n\n", subj.Filename, subj.Start.Line)
		} else {
			context := ""
			if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
				if c := cs.ContextString(subj.Start.Byte); c != "" {
					context = ", in " + c
				}
			}
			fmt.Fprintf(w, "  on %s line %d%s:\n", subj.Filename, subj.Start.Line, context)
			writeSnippet(w, f.Bytes, index.starts(subj.Filename, f.Bytes), d, color, highlight, reset)
			w.WriteByte('\n')
		}
	}
	if d.Detail != "" {
		fmt.Fprintf(w, "%s\n\n", d.Detail)
	}
}

// lineIndex holds the line starts of each file rendered, computed once, so
// that finding a diagnostic's lines costs a binary search instead of a scan
// of the file from its beginning (which took minutes for a hundred
// diagnostics at the end of a large file).
type lineIndex map[string][]int

func (x lineIndex) starts(name string, src []byte) []int {
	if s, ok := x[name]; ok {
		return s
	}
	s := []int{0}
	for i, c := range src {
		if c == '\n' && i+1 < len(src) {
			s = append(s, i+1)
		}
	}
	x[name] = s
	return s
}

// span is one source line: its number, and its bytes without the line break.
type span struct{ line, start, end int }

// snippetLines returns the source lines that overlap the subject and the
// context of d. A line overlaps a range when either holds a bound of the
// other; empty lines and empty ranges overlap nothing, and an empty subject
// is shown as one character (hcl's rules, so the output is the same).
func snippetLines(src []byte, starts []int, d *hcl.Diagnostic) []span {
	snipStart, snipEnd := d.Subject.Start.Byte, max(d.Subject.End.Byte, d.Subject.Start.Byte)
	if c := d.Context; c != nil {
		snipStart, snipEnd = min(snipStart, c.Start.Byte), max(snipEnd, c.End.Byte)
	}
	if snipEnd <= snipStart {
		snipEnd = snipStart + 1
	}
	contains := func(s, e, o int) bool { return o >= s && o < e }
	first, _ := slices.BinarySearch(starts, snipStart+1)
	var out []span
	for i := max(first-1, 0); i < len(starts) && starts[i] <= snipEnd; i++ {
		s, e := starts[i], len(src)
		if i+1 < len(starts) {
			e = starts[i+1] - 1
		}
		if e > s && src[e-1] == '\r' {
			e--
		}
		if e > s && (contains(s, e, snipStart) || contains(s, e, snipEnd) || contains(snipStart, snipEnd, s) || contains(snipStart, snipEnd, e)) {
			out = append(out, span{i + 1, s, e})
		}
	}
	return out
}

// writeSnippet writes each line of the snippet as "%4d: line", with the
// subject highlighted with color, or without color a line of carets under
// the subject's first line.
func writeSnippet(w *bufio.Writer, src []byte, starts []int, d *hcl.Diagnostic, color bool, highlight, reset string) {
	hlStart := d.Subject.Start.Byte
	hlEnd := max(d.Subject.End.Byte, hlStart+1)
	caretDone := color
	for _, l := range snippetLines(src, starts, d) {
		if hs, he := max(l.start, hlStart), min(l.end, hlEnd); color && hs < he {
			fmt.Fprintf(w, "%4d: %s%s%s%s%s\n", l.line, src[l.start:hs], highlight, src[hs:he], reset, src[he:l.end])
		} else {
			fmt.Fprintf(w, "%4d: %s\n", l.line, src[l.start:l.end])
		}
		if !caretDone && l.line == d.Subject.Start.Line {
			writeCaret(w, src, l.start, l.end, d.Subject.Start.Byte, d.Subject.End.Byte)
			caretDone = true
		}
	}
}

// writeCaret writes carets under the subject on its first line, which hcl's
// writer marks with colors only.
func writeCaret(w *bufio.Writer, src []byte, lineStart, lineEnd, start, end int) {
	if start < lineStart || start > lineEnd {
		return
	}
	w.WriteString("      ") // the width of the "%4d: " line prefix
	for _, r := range string(src[lineStart:start]) {
		if r == '\t' {
			w.WriteByte('\t')
		} else {
			w.WriteByte(' ')
		}
	}
	end = min(max(end, start), lineEnd)
	w.WriteString(strings.Repeat("^", max(utf8.RuneCount(src[start:end]), 1)))
	w.WriteByte('\n')
}

// Report is the output of `openhqm validate --format json`, in the shape
// of Terraform's `terraform validate -json` so that existing tooling reads it.
type Report struct {
	FormatVersion string             `json:"format_version"`
	Valid         bool               `json:"valid"`
	ErrorCount    int                `json:"error_count"`
	WarningCount  int                `json:"warning_count"`
	Diagnostics   []ReportDiagnostic `json:"diagnostics"`
}

type ReportDiagnostic struct {
	Severity string         `json:"severity"` // error | warning
	Summary  string         `json:"summary"`
	Detail   string         `json:"detail"`
	Range    *ReportRange   `json:"range,omitempty"`
	Snippet  *ReportSnippet `json:"snippet,omitempty"`
}

type ReportRange struct {
	Filename string    `json:"filename"`
	Start    ReportPos `json:"start"`
	End      ReportPos `json:"end"`
}

type ReportPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

type ReportSnippet struct {
	Context              *string       `json:"context"`
	Code                 string        `json:"code"`
	StartLine            int           `json:"start_line"`
	HighlightStartOffset int           `json:"highlight_start_offset"`
	HighlightEndOffset   int           `json:"highlight_end_offset"`
	Values               []ReportValue `json:"values"`
}

// ReportValue is Terraform's expression value; openhqm never fills it, the
// array is present so consumers need not special-case null.
type ReportValue struct {
	Traversal string `json:"traversal"`
	Statement string `json:"statement"`
}

// NewReport builds the JSON form of diags. valid is false when there are
// errors, or warnings and strict is set.
func NewReport(files map[string]*hcl.File, diags hcl.Diagnostics, strict bool) Report {
	errs, warns := CountDiagnostics(diags)
	r := Report{
		FormatVersion: "1.0",
		Valid:         errs == 0 && !(strict && warns > 0),
		ErrorCount:    errs,
		WarningCount:  warns,
		Diagnostics:   make([]ReportDiagnostic, 0, len(diags)),
	}
	index := lineIndex{}
	for _, d := range diags {
		r.Diagnostics = append(r.Diagnostics, newJSONDiagnostic(files, index, d))
	}
	return r
}

func newJSONDiagnostic(files map[string]*hcl.File, index lineIndex, d *hcl.Diagnostic) ReportDiagnostic {
	jd := ReportDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
	if d.Severity == hcl.DiagWarning {
		jd.Severity = "warning"
	}
	if d.Subject == nil {
		return jd
	}
	s := *d.Subject
	jd.Range = &ReportRange{
		Filename: s.Filename,
		Start:    ReportPos{Line: s.Start.Line, Column: s.Start.Column, Byte: s.Start.Byte},
		End:      ReportPos{Line: s.End.Line, Column: s.End.Column, Byte: s.End.Byte},
	}
	if f := files[s.Filename]; f != nil && f.Bytes != nil {
		jd.Snippet = newJSONSnippet(f, index.starts(s.Filename, f.Bytes), d)
	}
	return jd
}

// newJSONSnippet follows Terraform's rendering: the whole source lines that
// the subject (and context) overlap, the enclosing block as context, and the
// subject as byte offsets into the code; an empty subject is widened to one
// character.
func newJSONSnippet(f *hcl.File, starts []int, d *hcl.Diagnostic) *ReportSnippet {
	src := f.Bytes
	highlight := *d.Subject
	if highlight.End == (hcl.Pos{}) {
		highlight.End = highlight.Start
	}
	dd := *d
	dd.Subject = &highlight
	sn := &ReportSnippet{StartLine: highlight.Start.Line, Values: []ReportValue{}}
	if d.Context != nil {
		sn.StartLine = min(sn.StartLine, d.Context.Start.Line)
	}
	if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
		if c := cs.ContextString(highlight.Start.Byte - 1); c != "" {
			sn.Context = &c
		}
	}
	var code strings.Builder
	codeStart := 0
	for i, l := range snippetLines(src, starts, &dd) {
		if i == 0 {
			codeStart, sn.StartLine = l.start, l.line
		}
		code.Write(src[l.start:l.end])
		code.WriteByte('\n')
	}
	sn.Code = strings.TrimSuffix(code.String(), "\n")
	start := highlight.Start.Byte - codeStart
	end := start + (highlight.End.Byte - highlight.Start.Byte)
	sn.HighlightStartOffset = min(max(start, 0), len(sn.Code))
	sn.HighlightEndOffset = min(max(end, 0), len(sn.Code))
	return sn
}

// WriteJSON writes the JSON report of diags, indented, with a
// trailing newline.
func WriteJSON(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, strict bool) error {
	b, err := json.MarshalIndent(NewReport(files, diags, strict), "", "  ")
	if err != nil {
		return fmt.Errorf("encode diagnostics: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}

// WriteGitHub writes one GitHub Actions workflow command per
// diagnostic (::error or ::warning), so the problems appear as annotations on
// the pull request's files.
func WriteGitHub(w io.Writer, diags hcl.Diagnostics) error {
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

// WriteDiagnostics renders diags in format (text, json or github); strict
// only affects the JSON verdict, color only the text.
func WriteDiagnostics(w io.Writer, format string, files map[string]*hcl.File, diags hcl.Diagnostics, strict, color bool) error {
	switch format {
	case FormatJSON:
		return WriteJSON(w, files, diags, strict)
	case FormatGitHub:
		return WriteGitHub(w, diags)
	default:
		return WriteText(w, files, diags, color)
	}
}
