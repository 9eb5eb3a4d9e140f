package process

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestNoSecretAfterFailedReload: tokens written literally in the file and
// read with env() and file() never appear in the admin pages, the metrics,
// the log or the error body of a reload, after reloads that fail on (or
// near) the very attributes that hold them.
func TestNoSecretAfterFailedReload(t *testing.T) {
	a := startApp(t, "one")
	dir := t.TempDir()
	secretDir := t.TempDir()
	const (
		literal  = "lit-s3cret-0a1b2c"
		admin    = "env-s3cret-admin-3d4e"
		fromFile = "file-s3cret-5f6a"
		urlPass  = "url-s3cret-7b8c"
	)
	if err := os.WriteFile(filepath.Join(secretDir, "key"), []byte(fromFile), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ADMIN_TOKEN": admin, "BAD_HEADER": "x\n" + admin}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }

	good := fmt.Sprintf(`server {
  listen      = "127.0.0.1:0"
  admin_token = env("ADMIN_TOKEN")
}
endpoint "app" {
  url     = "http://%s"
  headers = { "X-Key" = file(%q) }
  auth {
    type  = "bearer"
    token = %q
  }
}
route "default" {
  match {
    path_prefix = "/"
  }
  endpoint = "app"
}
`, a.addr, filepath.Join(secretDir, "key"), literal)
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "openhqm.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(good)
	r := startProcessEnv(t, dir, lookup)

	ask := func(method, path string) (int, string) {
		t.Helper()
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(method)
		req.SetRequestURI("http://" + r.addr + path)
		req.Header.Set("Authorization", "Bearer "+admin)
		if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp.StatusCode(), string(resp.Body())
	}

	broken := []struct{ name, src string }{
		// A syntax error right after the secrets: a snippet would show them.
		{"syntax error", strings.Replace(good, "route \"default\" {", "route \"default\" {{", 1)},
		// The literal token itself is what is wrong (a list, not a string).
		{"literal token of the wrong type", strings.Replace(good, fmt.Sprintf("token = %q", literal), fmt.Sprintf("token = [%q]", literal), 1)},
		// The literal token, with an unknown attribute beside it.
		{"unknown attribute beside a token", strings.Replace(good, "type  = \"bearer\"", "type  = \"bearer\"\n    secret = 1", 1)},
		// Credentials in a URL.
		{"credentials in a url", strings.Replace(good, "url     = \"http://", "url     = \"http://user:"+urlPass+"@", 1)},
		// An env() value that cannot be a header value.
		{"env value not a header value", strings.Replace(good, fmt.Sprintf("file(%q)", filepath.Join(secretDir, "key")), "env(\"BAD_HEADER\")", 1)},
		// file() content in a map of the wrong type.
		{"file content of the wrong type", strings.Replace(good, fmt.Sprintf("{ \"X-Key\" = file(%q) }", filepath.Join(secretDir, "key")), fmt.Sprintf("{ \"X-Key\" = [file(%q)] }", filepath.Join(secretDir, "key")), 1)},
		// An admin token that is not a valid bearer.
		{"bad admin token", strings.Replace(good, "env(\"ADMIN_TOKEN\")", fmt.Sprintf("%q", literal+" x"), 1)},
		// A reference to nothing next to the secrets.
		{"unknown endpoint", strings.Replace(good, "endpoint = \"app\"", "endpoint = \"appp\"", 1)},
	}
	var bodies []string
	for _, b := range broken {
		name := b.name
		write(b.src)
		code, body := ask("POST", "/-/reload")
		if code == 200 {
			t.Errorf("%s: the reload succeeded", name)
		}
		bodies = append(bodies, name+": "+body)
		_, cfg := ask("GET", "/-/config")
		bodies = append(bodies, name+" /-/config: "+cfg)
		if !strings.Contains(cfg, "last_reload_error") {
			t.Errorf("%s: /-/config shows no reload error: %s", name, cfg)
		}
	}
	_, routes := ask("GET", "/-/routes")
	_, metrics := ask("GET", "/metrics")
	pages := map[string]string{
		"error bodies and /-/config": strings.Join(bodies, "\n"),
		"/-/routes":                  routes,
		"/metrics":                   metrics,
		"log":                        r.logs.String(),
	}
	for what, text := range pages {
		for _, secret := range []string{literal, admin, fromFile, urlPass} {
			if strings.Contains(text, secret) {
				t.Errorf("%s quotes the secret %q:\n%s", what, secret, text)
			}
		}
	}
	// The process still serves the good generation, with its secrets in use.
	if testing.Verbose() {
		t.Log(r.logs.String())
	}
	if code, body := ask("GET", "/hello"); code != 200 || body != "one" {
		t.Errorf("after the failed reloads: %d %q", code, body)
	}
}
