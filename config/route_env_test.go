package config

import (
	"context"
	"strings"
	"testing"
)

// TestJQSeesNoEnvironment: a jq expression in a route cannot read the
// process environment, where the secrets of env() live.
func TestJQSeesNoEnvironment(t *testing.T) {
	t.Setenv("OPENHQM_TEST_SECRET", "s3cret")
	src := `
endpoint "app" {
  url = "http://127.0.0.1:8080"
}

route "r" {
  match {
    path_prefix = "/"
  }
  endpoint = "app"
  transform {
    body = "$ENV.OPENHQM_TEST_SECRET // env.OPENHQM_TEST_SECRET // \"none\""
  }
}
`
	cfg, _, diags := Parse(map[string][]byte{"t.hcl": []byte(src)}, Options{Mode: ModeValidate})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	iter := cfg.Routes[0].Transform.Body.Run(context.Background(), nil, &testMeter{left: 1 << 20})
	v, _ := iter.Next()
	if v != "none" {
		t.Fatalf("the expression read %v from the environment, want \"none\"", v)
	}
}

// TestLogLevelNames: levels are case-insensitive and take Python's names, as
// configurations ported from the original OpenHQM write them.
func TestLogLevelNames(t *testing.T) {
	for in, want := range map[string]string{"INFO": "info", "Debug": "debug", "WARNING": "warn", "warn": "warn", "CRITICAL": "error", "error": "error"} {
		src := "endpoint \"app\" {\n  url = \"http://127.0.0.1:8080\"\n}\ntelemetry {\n  log_level = \"" + in + "\"\n}\n"
		cfg, _, diags := Parse(map[string][]byte{"t.hcl": []byte(src)}, Options{Mode: ModeValidate})
		if diags.HasErrors() {
			t.Errorf("log_level %q: %v", in, diags)
			continue
		}
		if cfg.Telemetry.LogLevel != want {
			t.Errorf("log_level %q became %q, want %q", in, cfg.Telemetry.LogLevel, want)
		}
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "10MiB": 10 << 20, "10Mi": 10 << 20, "10mib": 10 << 20, "512KB": 512000,
		"10mb": 10000000, "512k": 512000, "1GiB": 1 << 30, "2 GB": 2000000000, "100B": 100,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ten MB", "-1", "1.5MiB", "10 XB", "MB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// TestURLWithoutScheme: a host:port where a URL belongs says what is missing.
func TestURLWithoutScheme(t *testing.T) {
	if _, err := parseHTTPURL("127.0.0.1:8080"); err == nil || !strings.Contains(err.Error(), "must start with http://") {
		t.Errorf("parseHTTPURL: %v", err)
	}
	if err := parseRedisURL("127.0.0.1:6379"); err == nil || !strings.Contains(err.Error(), "must start with redis://") {
		t.Errorf("parseRedisURL: %v", err)
	}
	if err := parseRedisURL("unix:///run/redis.sock"); err != nil {
		t.Errorf("unix socket URL: %v", err)
	}
}
