package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// noEnv is the environment of the golden tests: no variable is set, so every
// env() without a default is missing.
func noEnv(string) (string, bool) { return "", false }

// TestValidateGolden renders the diagnostics of a few configurations in every
// format and compares them with testdata/golden/<case>.<format>.golden;
// `go test ./cmd/openhqm -update` rewrites them.
func TestValidateGolden(t *testing.T) {
	const dir = "testdata/golden"
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"valid", []string{dir + "/valid.hcl"}, exitOK},
		{"unknown-attribute", []string{dir + "/unknown-attribute.hcl"}, exitFailure},
		{"bad-reference", []string{dir + "/bad-reference.hcl"}, exitFailure},
		{"bad-values", []string{dir + "/bad-values.hcl"}, exitFailure},
		{"syntax-error", []string{dir + "/syntax-error.hcl"}, exitFailure},
		{"duplicate", []string{dir + "/duplicate"}, exitFailure},
		{"missing-env", []string{dir + "/missing-env.hcl"}, exitOK},
		{"missing-env-strict", []string{"--strict", dir + "/missing-env.hcl"}, exitFailure},
		{"missing-path", []string{dir + "/does-not-exist.hcl"}, exitUsage},
		// Each PATH is a configuration of its own: both define endpoint
		// "legacy" without a duplicate error.
		{"separate-paths", []string{dir + "/valid.hcl", dir + "/bad-reference.hcl"}, exitFailure},
		{"some-paths-missing", []string{dir + "/bad-reference.hcl", dir + "/does-not-exist.hcl"}, exitUsage},
		{"usage", []string{"--bogus", dir + "/valid.hcl"}, exitUsage},
	} {
		for _, format := range []string{config.FormatText, config.FormatJSON, config.FormatGitHub} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				args := append([]string{"--format", format}, tc.args...)
				code := validate(args, &stdout, &stderr, noEnv)
				if code != tc.code {
					t.Errorf("exit %d, want %d", code, tc.code)
				}
				got := stdout.String()
				if stderr.Len() > 0 {
					got += "--- stderr ---\n" + stderr.String()
				}
				if format == config.FormatJSON && !json.Valid(stdout.Bytes()) {
					t.Errorf("stdout is not JSON:\n%s", stdout.String())
				}
				golden := filepath.Join(dir, tc.name+"."+format+".golden")
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run `go test ./cmd/openhqm -update` to create it)", err)
				}
				if diff := cmp.Diff(string(want), got); diff != "" {
					t.Errorf("%s differs (-want +got); run `go test ./cmd/openhqm -update` if the change is intended:\n%s", golden, diff)
				}
			})
		}
	}
}

// TestValidateLocatesErrors checks, independently of the golden files, that
// every format points at the offending line.
func TestValidateLocatesErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		line int
	}{
		{"testdata/golden/unknown-attribute.hcl", 8},
		{"testdata/golden/bad-reference.hcl", 15},
	} {
		var text, js, gh bytes.Buffer
		validate([]string{tc.file}, &text, io.Discard, noEnv)
		validate([]string{"--format=json", tc.file}, &js, io.Discard, noEnv)
		validate([]string{"--format=github", tc.file}, &gh, io.Discard, noEnv)
		if want := fmt.Sprintf("on %s line %d", tc.file, tc.line); !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
		var rep config.Report
		if err := json.Unmarshal(js.Bytes(), &rep); err != nil || rep.Valid || len(rep.Diagnostics) == 0 ||
			rep.Diagnostics[0].Range == nil || rep.Diagnostics[0].Range.Start.Line != tc.line {
			t.Errorf("json output does not locate line %d:\n%s", tc.line, js.String())
		}
		if want := fmt.Sprintf("::error file=%s,line=%d,", tc.file, tc.line); !strings.HasPrefix(gh.String(), want) {
			t.Errorf("github output lacks %q:\n%s", want, gh.String())
		}
	}
}

// TestBinaryExitCodes builds the real binary and checks its exit codes.
func TestBinaryExitCodes(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH (install Go 1.26 from https://go.dev/dl/): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "openhqm")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPENHQM_CONFIG=") && !strings.HasPrefix(kv, "LEGACY_APP_TOKEN=") {
			env = append(env, kv)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"validate", "../../examples/quickstart.hcl"}, 0},
		{[]string{"validate", "testdata/golden/missing-env.hcl"}, 0},
		{[]string{"validate", "--strict", "testdata/golden/missing-env.hcl"}, 1},
		{[]string{"validate", "--format", "github", "testdata/golden/bad-reference.hcl"}, 1},
		{[]string{"validate", "--format", "json", "testdata/golden/does-not-exist.hcl"}, 2},
		{[]string{"validate", "--format", "yaml", "testdata/golden/valid.hcl"}, 2},
		{[]string{"validate", "--bogus"}, 2},
		{[]string{"fmt", "--check", "testdata/golden/valid.hcl"}, 0},
		{[]string{"schema", "--format", "markdown"}, 0},
		{[]string{"version"}, 0},
		{[]string{"no-such-command"}, 2},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run %q: %v", tc.args, err)
		}
		if code != tc.code {
			t.Errorf("openhqm %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, out)
		}
	}
}

// BenchmarkValidate200Routes runs `openhqm validate` in-process on a valid
// configuration of 200 routes.
func BenchmarkValidate200Routes(b *testing.B) {
	path := filepath.Join(b.TempDir(), "openhqm.hcl")
	if err := os.WriteFile(path, routesConfig(200), 0o644); err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	if code := validate([]string{"--strict", path}, &out, &out, noEnv); code != exitOK {
		b.Fatalf("the generated configuration is not clean (exit %d):\n%s", code, out.String())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if code := validate([]string{path}, io.Discard, io.Discard, noEnv); code != exitOK {
			b.Fatalf("exit %d", code)
		}
	}
}

// routesConfig returns a valid configuration with n routes over four
// endpoints and two queues, mixing modes, methods, templates and blocks.
func routesConfig(n int) []byte {
	var b strings.Builder
	for i := range 4 {
		fmt.Fprintf(&b, "endpoint \"app%d\" {\n  url             = \"http://127.0.0.1:%d\"\n  timeout         = \"30s\"\n  max_concurrency = 32\n  headers         = { \"X-Service\" = \"openhqm\" }\n}\n\n", i, 8080+i)
	}
	b.WriteString("queue \"jobs\" {\n  backend = \"memory\"\n  lease   = \"60s\"\n}\n\nqueue \"bulk\" {\n  backend = \"memory\"\n}\n\n")
	for i := range n {
		fmt.Fprintf(&b, "route \"r%d\" {\n  match {\n", i)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "    methods     = [\"POST\", \"PUT\"]\n    path_prefix = \"/api/v1/svc%d\"\n", i)
		case 1:
			fmt.Fprintf(&b, "    path = \"/api/v1/items%d/{id}\"\n", i)
		case 2:
			fmt.Fprintf(&b, "    methods     = [\"GET\"]\n    path_prefix = \"/api/v2/res%d\"\n    headers     = { \"X-Tenant\" = \"t%d\" }\n", i, i)
		default:
			fmt.Fprintf(&b, "    path = \"/exact/%d\"\n", i)
		}
		b.WriteString("  }\n")
		fmt.Fprintf(&b, "  endpoint = \"app%d\"\n", i%4)
		if i%2 == 0 {
			fmt.Fprintf(&b, "  mode     = \"async\"\n  queue    = \"%s\"\n  retry {\n    attempts = 5\n    backoff  = \"exponential\"\n    on       = [\"connect\", \"5xx\"]\n  }\n", []string{"jobs", "bulk"}[i%4/2])
		} else {
			b.WriteString("  mode     = \"sync\"\n  timeout  = \"10s\"\n  rate_limit {\n    requests_per_second = 100\n  }\n")
		}
		b.WriteString("}\n\n")
	}
	b.WriteString("route \"default\" {\n  match {\n    path_prefix = \"/\"\n  }\n  endpoint = \"app0\"\n}\n")
	return []byte(b.String())
}
