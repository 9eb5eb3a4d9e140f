package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openhqm/openhqm/config"
)

// TestValidateDoesNotPrintSecrets: what env() and file() read never appears
// in validate's output, in any format, wherever the configuration misuses
// it: `listen = file("/proc/self/environ")` printed the whole environment.
// The source snippets show the calls, not what they return.
func TestValidateDoesNotPrintSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An environment as /proc/self/environ holds it.
	environ := write("environ", "PATH=/usr/bin\x00DB_PASSWORD=hunter2\x00API_TOKEN=tok-5f9a1c\x00")
	write("token", "tok-5f9a1c\n")
	cfg := write("c.hcl", `server {
  listen       = file("`+environ+`")
  admin_listen = env("API_TOKEN")
  read_timeout = "${env("DB_PASSWORD")}s"
}
endpoint "app" {
  url     = "http://app:8080/${file("token")}#x"
  headers = { (env("API_TOKEN")) = "v", "X-A" = "${env("DB_PASSWORD")}\n" }
  auth {
    type  = env("DB_PASSWORD")
    token = file("token")
  }
}
route "r" {
  match {
    path    = env("DB_PASSWORD")
    methods = [env("API_TOKEN")]
    jq      = file("token")
  }
  endpoint = env("DB_PASSWORD")
}
`)
	env := map[string]string{"DB_PASSWORD": "hunter2", "API_TOKEN": "tok-5f9a1c"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, format := range []string{config.FormatText, config.FormatJSON, config.FormatGitHub} {
		t.Run(format, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := validate([]string{"--format", format, cfg}, &stdout, &stderr, lookup); code != exitFailure {
				t.Fatalf("exit %d, want %d\n%s%s", code, exitFailure, stdout.String(), stderr.String())
			}
			out := stdout.String() + stderr.String()
			if n := strings.Count(out, "Invalid") + strings.Count(out, "invalid"); n < 8 {
				t.Errorf("only %d problems reported: the test no longer exercises the checks\n%s", n, out)
			}
			for _, secret := range []string{"hunter2", "tok-5f9a1c", "DB_PASSWORD=", "/usr/bin"} {
				if strings.Contains(out, secret) {
					t.Errorf("the output shows %q:\n%s", secret, out)
				}
			}
		})
	}
}
