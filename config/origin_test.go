package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// secretEnv holds values no diagnostic may quote: each is invalid wherever
// the configuration of TestSecretsAreNotQuoted puts it.
var secretEnv = map[string]string{
	"S":     "Zq s3cr3t/VALUE",
	"N":     "987654",
	"D":     "7h13m",
	"T":     "9m7s",
	"R":     "~(s3cr3tregex",
	"NAME":  "SECRETVARNAME",
	"PATHS": "/nonexistent/s3cr3tpath",
	"TYPE":  "s3cr3ttype",
}

// secretFragments are what must not appear: the values, and the forms the
// checks would render them in.
var secretFragments = []string{"s3cr3t", "987654", "7h13m", "9m7s", "SECRETVARNAME", "Zq s", "VALUE"}

const secretsHCL = `
server {
  listen        = env("S")
  admin_listen  = env("S")
  max_body_size = file("secret")
  read_timeout  = env("S")
  idle_timeout  = env("D")
}
endpoint "a" {
  url             = env("S")
  timeout         = env("S")
  max_concurrency = env("S")
  max_pending     = -1 * env("N")
  headers         = { (env("S")) = "v", "X-Ctl" = file("multiline"), "X-Ok" = "${env("S")}" }
  auth {
    type   = "api_key"
    token  = env("S")
    header = env("S")
  }
}
endpoint "b" {
  url = "http://127.0.0.1:1"
  auth { type = env("TYPE") }
}
endpoint "c" {
  url     = "http://127.0.0.1:1/${file("secret")}#frag"
  timeout = env("T")
}
queue "q" {
  backend     = "kafka"
  lease       = env("S")
  max_depth   = env("S")
  kafka {
    brokers    = [env("S"), "ok:1"]
    version    = env("S")
    key_header = env("S")
    topic      = env("TYPE")
    tls { ca_file = env("PATHS") }
  }
}
queue "r" {
  backend = env("TYPE")
  lease   = "1m"
}
queue "s" {
  backend = "redis"
  redis { url = env("S") }
}
results {
  ttl         = env("S")
  max_entries = env("N") * -1
}
route "x" {
  match {
    methods     = [env("S")]
    hosts       = [env("S")]
    path        = env("S")
    path_prefix = env("S")
    headers     = { "X-R" = env("R"), (env("S")) = "v" }
    jq          = env("S")
  }
  mode     = env("TYPE")
  endpoint = env("TYPE")
  queue    = env("TYPE")
  timeout  = env("S")
  priority = env("S")
  retry {
    attempts = env("N")
    backoff  = env("TYPE")
    initial  = env("D")
    on       = [env("TYPE")]
  }
  client_auth {
    type   = "api_key"
    header = env("S")
  }
  rate_limit { requests_per_second = -1 * env("N") }
  transform {
    body    = env("S")
    headers = { (env("S")) = "." }
  }
}
route "y" {
  match { path = "/y" }
  mode     = "async"
  endpoint = "c"
  queue    = "r"
}
route "z" {
  match { path = "/z" }
  mode     = "async"
  endpoint = "a"
  queue    = "r"
  timeout  = env("T")
  retry {
    initial = env("D")
    max     = "1m"
  }
}
worker {
  queues = [env("TYPE")]
  listen = env("S")
  drain  = env("S")
}
telemetry {
  log_level  = env("TYPE")
  log_format = env("TYPE")
}
`

// TestSecretsAreNotQuoted: a value that env() or file() produced is never
// quoted in a diagnostic, wherever it is used (attributes of every kind,
// list elements, map keys and values, templates, references, cross-block
// checks), and a name or path computed from one is not either.
func TestSecretsAreNotQuoted(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("secret", "Zq s3cr3t/VALUE\n")
	write("multiline", "s3cr3t\nVALUE")
	write("varname", "SECRETVARNAME")
	write("a.hcl", secretsHCL)
	write("b.hcl", "telemetry {\n  metrics = env(file(\"varname\"))\n}\nworker {\n  drain = file(env(\"PATHS\"))\n}\n")
	for _, mode := range []LoadMode{ModeValidate, ModeRuntime} {
		_, files, diags, err := Load([]string{dir}, Options{Mode: mode, LookupEnv: mapLookup(secretEnv)})
		if err != nil {
			t.Fatal(err)
		}
		if len(diags) < 50 {
			t.Errorf("only %d diagnostics: the test no longer exercises the checks", len(diags))
		}
		for _, d := range diags {
			for _, f := range secretFragments {
				if strings.Contains(d.Summary, f) || strings.Contains(d.Detail, f) {
					t.Errorf("%s: %s: %s\n  quotes %q", d.Subject, d.Summary, d.Detail, f)
					break
				}
			}
		}
		_ = files
	}
}

// TestOriginIsNamed: where a value is not quoted, the diagnostic says where
// it came from.
func TestOriginIsNamed(t *testing.T) {
	src := "server {\n  listen = env(\"S\")\n  admin_listen = \"127.0.0.1:9090\"\n}\n"
	_, _, diags := Parse(map[string][]byte{"c.hcl": []byte(src)}, Options{LookupEnv: mapLookup(secretEnv)})
	want := `The value of listen: the value of env("S") is not host:port`
	if len(diags) != 1 || !strings.HasPrefix(diags[0].Detail, want) || diags[0].Severity != hcl.DiagError {
		t.Fatalf("diagnostics %v, want one starting %q", diags, want)
	}
}
