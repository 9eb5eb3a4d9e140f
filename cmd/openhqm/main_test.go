package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/schema"
)

func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		noOutput bool
	}{
		{name: "no command", args: nil, code: exitUsage, stderr: "Usage: openhqm"},
		{name: "help", args: []string{"help"}, code: exitOK, stdout: "validate"},
		{name: "--help", args: []string{"--help"}, code: exitOK, stdout: "Commands:"},
		{name: "help validate", args: []string{"help", "validate"}, code: exitOK, stdout: "--strict"},
		{name: "validate -h", args: []string{"validate", "-h"}, code: exitOK, stdout: "Exit status"},
		{name: "unknown command", args: []string{"valdate"}, code: exitUsage, stderr: `did you mean "validate"`},
		{name: "help unknown", args: []string{"help", "nope"}, code: exitUsage, stderr: "unknown command"},
		{name: "version", args: []string{"version"}, code: exitOK, stdout: runtime.Version()},
		{name: "--version", args: []string{"--version"}, code: exitOK, stdout: "commit "},
		{name: "version extra", args: []string{"version", "x"}, code: exitUsage, stderr: "unexpected argument"},
		{name: "schema bad format", args: []string{"schema", "--format", "yaml"}, code: exitUsage, stderr: "must be one of"},
		{name: "fmt bad flag", args: []string{"fmt", "--nope"}, code: exitUsage, stderr: "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr)
			}
		})
	}
}

func TestSchemaCommand(t *testing.T) {
	for format, want := range map[string][]byte{"json": schema.JSON, "markdown": schema.Markdown} {
		code, stdout, _ := runCmd(t, "", "schema", "--format", format)
		if code != exitOK || stdout != string(want) {
			t.Errorf("schema --format %s: exit %d, output differs from the embedded schema", format, code)
		}
	}
	if code, stdout, _ := runCmd(t, "", "schema"); code != exitOK || stdout != string(schema.JSON) {
		t.Errorf("schema: exit %d, default output is not the JSON schema", code)
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		positional []string
		strict     bool
		format     string
	}{
		{[]string{"a", "--strict", "b"}, []string{"a", "b"}, true, "text"},
		{[]string{"--format=json", "a"}, []string{"a"}, false, "json"},
		{[]string{"a", "--format", "github"}, []string{"a"}, false, "github"},
		{[]string{"a", "--", "--strict"}, []string{"a", "--strict"}, false, "text"},
		{[]string{}, nil, false, "text"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		strict := fs.Bool("strict", false, "")
		format := fs.String("format", "text", "")
		got, err := parseInterspersed(fs, tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if diff := cmp.Diff(tc.positional, got); diff != "" || *strict != tc.strict || *format != tc.format {
			t.Errorf("%q: positional diff %s, strict %v, format %q", tc.args, diff, *strict, *format)
		}
	}
}

func TestSniffFormat(t *testing.T) {
	for args, want := range map[string]string{
		"--bogus --format json": "json",
		"-format=github --x":    "github",
		"--format":              "text",
		"-- --format json":      "text",
		"x --format yaml":       "text",
	} {
		if got := sniffFormat(strings.Fields(args)); got != want {
			t.Errorf("sniffFormat(%q) = %q, want %q", args, got, want)
		}
	}
}

func TestConfigPaths(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"a.hcl"}, map[string]string{"OPENHQM_CONFIG": "/x"}, []string{"a.hcl"}},
		{nil, map[string]string{"OPENHQM_CONFIG": "/x"}, []string{"/x"}},
		{nil, nil, []string{"/etc/openhqm"}},
	} {
		if diff := cmp.Diff(tc.want, configPaths(tc.args, env(tc.env))); diff != "" {
			t.Errorf("configPaths(%q, %v): %s", tc.args, tc.env, diff)
		}
	}
}
