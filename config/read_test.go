//go:build unix

package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// secretsDir makes a directory holding one file of each kind file() may be
// pointed at.
func secretsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("token", []byte("s3cret\n"))
	write("limit", []byte(strings.Repeat("x", MaxSecretSize)))
	write("over", []byte(strings.Repeat("x", MaxSecretSize+1)))
	sparse, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	sparse.Close()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A Kubernetes secret volume: the file is a symlink through ..data.
	if err := os.MkdirAll(filepath.Join(dir, "..2026_01_01"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("..2026_01_01/password", []byte("from-volume"))
	for link, target := range map[string]string{"..data": "..2026_01_01", "password": "..data/password"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestFileReadsOnlySmallRegularFiles: file() of a device, a FIFO, a socket,
// a directory or a file larger than a secret is an error, even in validate,
// and returns at once instead of hanging or reading gigabytes.
func TestFileReadsOnlySmallRegularFiles(t *testing.T) {
	dir := secretsDir(t)
	tests := []struct {
		path    string
		summary string // "" for success
		detail  string
	}{
		{"token", "", ""},
		{"password", "", ""},
		{"limit", "", ""},
		{"over", "File too large", "file() reads at most 64 KiB"},
		{"sparse", "File too large", "is 2 GiB, but file() reads at most 64 KiB"},
		{"fifo", "Not a regular file", "is a named pipe (FIFO), but file() reads only regular files"},
		{"sock", "Not a regular file", "is a socket"},
		{"subdir", "Not a regular file", "is a directory"},
		{"/dev/zero", "Not a regular file", "is a character device"},
		{"/dev/urandom", "Not a regular file", "is a character device"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			src := `endpoint "app" {
  url = "http://127.0.0.1:8080"
  auth {
    type  = "bearer"
    token = file("` + tt.path + `")
  }
}`
			if err := os.WriteFile(filepath.Join(dir, "c.hcl"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, _, diags, err := Load([]string{filepath.Join(dir, "c.hcl")}, Options{Mode: ModeValidate})
			if err != nil {
				t.Fatal(err)
			}
			if tt.summary == "" {
				if len(diags) > 0 {
					t.Fatalf("diagnostics: %v", diags)
				}
				if cfg.Endpoints["app"].Auth.Token == "" {
					t.Error("empty token")
				}
				return
			}
			if len(diags) != 1 || diags[0].Severity != hcl.DiagError || diags[0].Summary != tt.summary || !strings.Contains(diags[0].Detail, tt.detail) {
				t.Fatalf("diagnostics %v, want one error %q saying %q", diags, tt.summary, tt.detail)
			}
		})
	}
}

// TestLoadReadsOnlyRegularFiles: a FIFO named *.hcl in a configuration
// directory, a device given as the path, or a file beyond MaxConfigSize is
// an I/O error, not a hang or an unbounded read.
func TestLoadReadsOnlyRegularFiles(t *testing.T) {
	valid := []byte("endpoint \"app\" {\n  url = \"http://127.0.0.1:8080\"\n}\n")
	fifoDir := t.TempDir()
	os.WriteFile(filepath.Join(fifoDir, "a.hcl"), valid, 0o600)
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "b.hcl"), 0o600); err != nil {
		t.Fatal(err)
	}
	bigDir := t.TempDir()
	big, err := os.Create(filepath.Join(bigDir, "big.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(MaxConfigSize + 1)
	big.Close()
	splitDir := t.TempDir()
	for _, n := range []string{"a.hcl", "b.hcl"} {
		f, _ := os.Create(filepath.Join(splitDir, n))
		f.Truncate(MaxConfigSize/2 + 1)
		f.Close()
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"fifo in directory", fifoDir, ErrNotRegular},
		{"fifo", filepath.Join(fifoDir, "b.hcl"), ErrNotRegular},
		{"device", "/dev/zero", ErrNotRegular},
		{"large file", bigDir, ErrTooLarge},
		{"large files together", splitDir, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := Load([]string{tt.path}, Options{Mode: ModeValidate})
			if !errors.Is(err, tt.want) {
				t.Errorf("Load: %v, want %v", err, tt.want)
			}
			if _, err := SourceDigest([]string{tt.path}); !errors.Is(err, tt.want) {
				t.Errorf("SourceDigest: %v, want %v", err, tt.want)
			}
		})
	}
}
