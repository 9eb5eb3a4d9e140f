package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/openhqm/openhqm/config"
)

const fmtSynopsis = `fmt [--check] [PATH...]

Rewrites configuration files in the canonical HCL style (hclwrite). A
directory means every *.hcl file in it; "-" reads standard input and writes
the result to standard output. Without PATH, the current directory.
The names of the files that changed (or, with --check, that would change)
are printed.

Exit status: 0 formatted, 1 files differ under --check or a file has syntax
errors, 2 usage or I/O error.`

// fmtMain runs `openhqm fmt` and returns the exit code.
func fmtMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var usage strings.Builder
	fs := newFlagSet("fmt", fmtSynopsis, &usage)
	check := fs.Bool("check", false, "do not write; exit 1 and list the files that are not formatted")
	paths, err := parseInterspersed(fs, args)
	if isHelp(err) {
		io.WriteString(stdout, usage.String())
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "openhqm fmt: %v\nRun 'openhqm fmt -h' for usage.\n", err)
		return exitUsage
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}

	code := exitOK
	worse := func(c int) {
		code = max(code, c)
	}
	for _, p := range paths {
		if p == "-" {
			worse(fmtStdin(stdin, *check, stdout, stderr))
			continue
		}
		files, err := fmtTargets(p)
		if err != nil {
			fmt.Fprintf(stderr, "openhqm fmt: %v\n", err)
			worse(exitUsage)
			continue
		}
		for _, f := range files {
			worse(fmtFile(f, *check, stdout, stderr))
		}
	}
	return code
}

// fmtTargets expands a PATH argument into the files to format.
func fmtTargets(p string) ([]string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if strings.HasSuffix(p, ".json") {
			return nil, fmt.Errorf("%s: fmt formats the native HCL syntax, not JSON", p)
		}
		return []string{p}, nil
	}
	matches, err := filepath.Glob(filepath.Join(p, "*.hcl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	return matches, nil
}

// formatSource returns the canonical form of src, or the syntax errors that
// prevent formatting it (hclwrite itself would format broken input).
func formatSource(src []byte, filename string) ([]byte, *hcl.File, hcl.Diagnostics) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, f, diags
	}
	return hclwrite.Format(src), f, nil
}

func fmtFile(name string, check bool, stdout, stderr io.Writer) int {
	src, err := os.ReadFile(name)
	if err != nil {
		fmt.Fprintf(stderr, "openhqm fmt: %v\n", err)
		return exitUsage
	}
	out, f, diags := formatSource(src, name)
	if diags.HasErrors() {
		config.WriteText(stderr, map[string]*hcl.File{name: f}, diags, false)
		return exitFailure
	}
	if bytes.Equal(src, out) {
		return exitOK
	}
	fmt.Fprintln(stdout, name)
	if check {
		return exitFailure
	}
	fi, err := os.Stat(name)
	if err != nil {
		fmt.Fprintf(stderr, "openhqm fmt: %v\n", err)
		return exitUsage
	}
	if err := os.WriteFile(name, out, fi.Mode().Perm()); err != nil {
		fmt.Fprintf(stderr, "openhqm fmt: %v\n", err)
		return exitUsage
	}
	return exitOK
}

func fmtStdin(stdin io.Reader, check bool, stdout, stderr io.Writer) int {
	src, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "openhqm fmt: read standard input: %v\n", err)
		return exitUsage
	}
	out, f, diags := formatSource(src, "<stdin>")
	if diags.HasErrors() {
		config.WriteText(stderr, map[string]*hcl.File{"<stdin>": f}, diags, false)
		return exitFailure
	}
	if check {
		if bytes.Equal(src, out) {
			return exitOK
		}
		fmt.Fprintln(stdout, "<stdin>")
		return exitFailure
	}
	if _, err := stdout.Write(out); err != nil {
		return exitUsage
	}
	return exitOK
}
