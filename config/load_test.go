package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

// testEnv is the environment every testdata file is loaded with.
var testEnv = map[string]string{
	"LEGACY_APP_TOKEN":    "legacy-secret",
	"ORDERS_CLIENT_TOKEN": "orders-secret",
	"PRESENT":             "value",
	"OPENHQM_ADMIN_TOKEN": "admin-secret",
}

func lookupTestEnv(n string) (string, bool) { v, ok := testEnv[n]; return v, ok }

func TestValidTestdata(t *testing.T) {
	paths, _ := filepath.Glob("testdata/valid/*")
	if len(paths) == 0 {
		t.Fatal("no valid testdata")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			cfg, files, diags, err := Load([]string{p}, Options{Mode: ModeRuntime, LookupEnv: lookupTestEnv})
			if err != nil {
				t.Fatal(err)
			}
			if len(diags) > 0 {
				t.Fatalf("unexpected diagnostics:\n%s", render(files, diags))
			}
			if cfg == nil || cfg.Digest == "" || len(cfg.Files) == 0 {
				t.Fatalf("config %v without digest or files", cfg)
			}
			for i, r := range cfg.Routes {
				if r.Index != i {
					t.Errorf("route %q has Index %d at position %d", r.Name, r.Index, i)
				}
			}
		})
	}
}

var marker = regexp.MustCompile(`#\s*(ERROR|WARNING):\s*(.+?)\s*$`)

type diagLine struct {
	File     string
	Line     int
	Severity string
	Summary  string
}

// expectedDiags reads the `# ERROR: <Summary>` / `# WARNING: <Summary>`
// markers of a file; several markers on one line are separated by " # ".
func expectedDiags(t *testing.T, path string) []diagLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []diagLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		idx := strings.Index(line, "# ERROR:")
		if w := strings.Index(line, "# WARNING:"); w >= 0 && (idx < 0 || w < idx) {
			idx = w
		}
		if idx < 0 {
			continue
		}
		for _, part := range strings.Split(line[idx:], " # ") {
			m := marker.FindStringSubmatch("#" + strings.TrimPrefix(part, "#"))
			if m == nil {
				t.Fatalf("%s:%d: malformed marker %q", path, n, part)
			}
			out = append(out, diagLine{path, n, strings.ToLower(m[1]), m[2]})
		}
	}
	return out
}

func sortDiags(ds []diagLine) {
	sort.Slice(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Severity != b.Severity {
			return a.Severity < b.Severity
		}
		return a.Summary < b.Summary
	})
}

// TestInvalidTestdata loads every file (or subdirectory, for merge cases) of
// testdata/invalid and compares the diagnostics with the file's markers:
// every marker must be reported on its line, and nothing else. Names
// containing "runtime" load in ModeRuntime, others in ModeValidate.
func TestInvalidTestdata(t *testing.T) {
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, e := range entries {
		p := filepath.Join("testdata/invalid", e.Name())
		var srcFiles []string
		if e.IsDir() {
			srcFiles, _ = ConfigFiles(p)
			count++
		} else if isConfigName(e.Name()) {
			srcFiles = []string{p}
			count++
		} else {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			mode := ModeValidate
			if strings.Contains(e.Name(), "runtime") {
				mode = ModeRuntime
			}
			_, files, diags, err := Load([]string{p}, Options{Mode: mode, LookupEnv: lookupTestEnv})
			if err != nil {
				t.Fatal(err)
			}
			var want []diagLine
			for _, f := range srcFiles {
				want = append(want, expectedDiags(t, f)...)
			}
			if len(want) == 0 {
				t.Fatal("file has no # ERROR: or # WARNING: marker")
			}
			var got []diagLine
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without subject: %s: %s", d.Summary, d.Detail)
					continue
				}
				if d.Detail == "" {
					t.Errorf("diagnostic %q has no detail", d.Summary)
				}
				sev := "error"
				if d.Severity == hcl.DiagWarning {
					sev = "warning"
				}
				got = append(got, diagLine{d.Subject.Filename, d.Subject.Start.Line, sev, d.Summary})
			}
			sortDiags(want)
			sortDiags(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s\nrendered:\n%s", diff, render(files, diags))
			}
		})
	}
	if count < 60 {
		t.Errorf("testdata/invalid holds %d cases, want at least 60", count)
	}
}

func render(files map[string]*hcl.File, diags hcl.Diagnostics) string {
	var buf bytes.Buffer
	w := hcl.NewDiagnosticTextWriter(&buf, files, 100, false)
	if err := w.WriteDiagnostics(diags); err != nil {
		return fmt.Sprint(diags)
	}
	return buf.String()
}
