package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/openhqm/openhqm/config"
)

const validateSynopsis = `validate [--format text|json|github] [--strict] [PATH...]

Checks the configuration offline, without touching the network, and reports
every problem with its file, line and column. A missing env() variable or
file() file is a warning here (CI has no production secrets).

Each PATH is a configuration of its own: a file, or a directory whose *.hcl
and *.hcl.json files are merged. Without PATH, $OPENHQM_CONFIG, then
/etc/openhqm.

Exit status: 0 valid (warnings allowed), 1 invalid (or warnings with
--strict), 2 usage or I/O error.`

// validateMain runs `openhqm validate` with the process environment.
func validateMain(args []string, stdout, stderr io.Writer) int {
	return validate(args, stdout, stderr, os.LookupEnv)
}

// validate runs `openhqm validate` with args (without the command name) and
// returns the exit code. lookupEnv resolves env() and $OPENHQM_CONFIG.
func validate(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	var usage strings.Builder
	fs := newFlagSet("validate", validateSynopsis, &usage)
	format := fs.String("format", config.FormatText, "output `format`: text, json or github")
	strict := fs.Bool("strict", false, "treat warnings as errors (exit 1)")
	noColor := fs.Bool("no-color", false, "never color the text output")
	paths, err := parseInterspersed(fs, args)
	if isHelp(err) {
		io.WriteString(stdout, usage.String())
		return exitOK
	}
	if err == nil {
		err = oneOf("format", *format, config.FormatText, config.FormatJSON, config.FormatGitHub)
		if err != nil {
			*format = config.FormatText // the requested format is unknown
		}
	} else {
		*format = sniffFormat(args)
	}
	if err != nil {
		return reportCommandError(*format, stdout, stderr, "Invalid command line", err.Error()+"\nRun 'openhqm validate -h' for usage.", exitUsage)
	}

	paths = configPaths(paths, lookupEnv)
	opts := config.Options{Mode: config.ModeValidate, LookupEnv: lookupEnv}
	files := map[string]*hcl.File{}
	var diags, ioDiags hcl.Diagnostics
	for _, p := range paths {
		_, f, d, err := config.Load([]string{p}, opts)
		if err != nil {
			ioDiags = append(ioDiags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read the configuration", Detail: err.Error()})
			continue
		}
		maps.Copy(files, f)
		diags = append(diags, d...)
	}
	sortDiagnostics(diags)

	var err2 error
	switch {
	case *format != config.FormatText:
		err2 = config.WriteDiagnostics(stdout, *format, files, append(ioDiags, diags...), *strict, false)
	case len(ioDiags) > 0:
		// No verdict: part of the configuration could not be read.
		if err2 = config.WriteText(stdout, files, diags, false); err2 == nil {
			err2 = config.WriteText(stderr, nil, ioDiags, false)
		}
	default:
		color := !*noColor && isTerminal(stdout, lookupEnv)
		if err2 = config.WriteText(stdout, files, diags, color); err2 == nil {
			errs, warns := config.CountDiagnostics(diags)
			_, err2 = io.WriteString(stdout, textSummary(errs, warns, *strict))
		}
	}
	if err2 != nil {
		fmt.Fprintf(stderr, "openhqm validate: %v\n", err2)
		return exitUsage
	}
	errs, warns := config.CountDiagnostics(diags)
	switch {
	case len(ioDiags) > 0:
		return exitUsage
	case errs > 0 || (*strict && warns > 0):
		return exitFailure
	}
	return exitOK
}

// sortDiagnostics orders diagnostics by file and position, those without a
// location first, so that output reads top to bottom whatever order the
// checks ran in.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
}

// reportCommandError reports a usage or I/O error, which has no source range,
// in the requested format: JSON and GitHub consumers read stdout and expect
// their format even then; text goes to stderr.
func reportCommandError(format string, stdout, stderr io.Writer, summary, detail string, code int) int {
	diags := hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail}}
	switch format {
	case config.FormatJSON:
		config.WriteJSON(stdout, nil, diags, false)
	case config.FormatGitHub:
		config.WriteGitHub(stdout, diags)
	default:
		config.WriteText(stderr, nil, diags, false)
	}
	return code
}

// sniffFormat finds the --format value in args that failed to parse, so that
// even a usage error is reported in the format the caller reads.
func sniffFormat(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "format" {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				break
			}
			value = args[i+1]
		}
		if value == config.FormatJSON || value == config.FormatGitHub {
			return value
		}
	}
	return config.FormatText
}

// isTerminal reports whether w is a terminal that accepts colors ($NO_COLOR
// and TERM=dumb turn them off).
func isTerminal(w io.Writer, lookupEnv func(string) (string, bool)) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	if _, ok := lookupEnv("NO_COLOR"); ok {
		return false
	}
	if t, _ := lookupEnv("TERM"); t == "dumb" || t == "" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
