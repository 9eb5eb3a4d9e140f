package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	unformatted = "route \"a\" {\nendpoint=\"x\"\n  mode =   \"sync\"\n}\n"
	formatted   = "route \"a\" {\n  endpoint = \"x\"\n  mode     = \"sync\"\n}\n"
)

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	bad := write("bad.hcl", unformatted)
	good := write("good.hcl", formatted)
	other := write("notes.txt", unformatted) // not *.hcl: left alone in a directory

	code, stdout, stderr := runCmd(t, "", "fmt", "--check", dir)
	if code != exitFailure || strings.TrimSpace(stdout) != bad {
		t.Errorf("fmt --check: exit %d, stdout %q, stderr %q; want 1 and %s", code, stdout, stderr, bad)
	}
	if read(bad) != unformatted {
		t.Error("fmt --check rewrote a file")
	}

	code, stdout, _ = runCmd(t, "", "fmt", dir)
	if code != exitOK || strings.TrimSpace(stdout) != bad {
		t.Errorf("fmt: exit %d, stdout %q; want 0 and %s", code, stdout, bad)
	}
	if got := read(bad); got != formatted {
		t.Errorf("fmt wrote %q, want %q", got, formatted)
	}
	if read(good) != formatted || read(other) != unformatted {
		t.Error("fmt touched a formatted file or a non-HCL file")
	}
	if code, stdout, _ := runCmd(t, "", "fmt", "--check", dir); code != exitOK || stdout != "" {
		t.Errorf("fmt --check after fmt: exit %d, stdout %q", code, stdout)
	}

	broken := write("broken.hcl", "route \"a\" {\n  endpoint = \n")
	code, _, stderr = runCmd(t, "", "fmt", broken)
	if code != exitFailure || !strings.Contains(stderr, "Error: ") || !strings.Contains(stderr, "broken.hcl line") {
		t.Errorf("fmt on a syntax error: exit %d, stderr %q", code, stderr)
	}
	if read(broken) != "route \"a\" {\n  endpoint = \n" {
		t.Error("fmt rewrote a file with syntax errors")
	}

	if code, _, stderr := runCmd(t, "", "fmt", filepath.Join(dir, "missing.hcl")); code != exitUsage || stderr == "" {
		t.Errorf("fmt on a missing file: exit %d, stderr %q", code, stderr)
	}
}

func TestFmtStdin(t *testing.T) {
	code, stdout, _ := runCmd(t, unformatted, "fmt", "-")
	if code != exitOK || stdout != formatted {
		t.Errorf("fmt -: exit %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCmd(t, unformatted, "fmt", "--check", "-")
	if code != exitFailure || strings.TrimSpace(stdout) != "<stdin>" {
		t.Errorf("fmt --check -: exit %d, stdout %q", code, stdout)
	}
}
