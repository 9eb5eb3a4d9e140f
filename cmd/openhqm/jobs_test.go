package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeJobsConfig(t *testing.T, queueBackend string) string {
	t.Helper()
	q := `queue "jobs" { backend = "memory" }`
	results := ""
	if queueBackend == "redis" {
		// Nothing listens on port 1: the backends cannot be reached.
		q = `queue "jobs" {
  backend = "redis"
  redis { url = "redis://127.0.0.1:1" }
}`
		results = `results {
  backend = "redis"
  redis { url = "redis://127.0.0.1:1" }
}`
	}
	text := `endpoint "app" { url = "http://127.0.0.1:8080" }
` + q + "\n" + results + `
route "work" {
  match { path_prefix = "/" }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
}
`
	path := filepath.Join(t.TempDir(), "openhqm.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestJobsCommand(t *testing.T) {
	memory, redis := writeJobsConfig(t, "memory"), writeJobsConfig(t, "redis")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"usage", []string{"jobs"}, exitUsage, "stats|ls|show|cancel|redrive|purge", ""},
		{"help", []string{"help", "jobs"}, exitOK, "redrive --queue Q", ""},
		{"unknown subcommand", []string{"jobs", "list"}, exitUsage, "", `unknown subcommand "list"`},
		{"bad format", []string{"jobs", "stats", "-c", redis, "--format", "yaml"}, exitUsage, "", "--format"},
		{"show without id", []string{"jobs", "show", "-c", redis}, exitUsage, "", "give one job id"},
		{"redrive without selection", []string{"jobs", "redrive", "-c", redis, "--queue", "jobs"}, exitUsage, "", "--all or one or more job ids"},
		{"redrive with both", []string{"jobs", "redrive", "-c", redis, "--queue", "jobs", "--all", "abc"}, exitUsage, "", "--all or one or more job ids"},
		{"redrive without queue", []string{"jobs", "redrive", "-c", redis, "--all"}, exitUsage, "", "--queue is required"},
		{"purge without --dead", []string{"jobs", "purge", "-c", redis, "--queue", "jobs"}, exitUsage, "", "--dead is required"},
		{"unknown queue", []string{"jobs", "ls", "-c", redis, "--queue", "nope"}, exitUsage, "", `no such queue "nope"`},
		{"memory backend", []string{"jobs", "stats", "-c", memory}, exitFailure, "", "GET /-/queues"},
		{"unreachable redis", []string{"jobs", "stats", "-c", redis}, exitFailure, "", "unavailable"},
		{"missing config", []string{"jobs", "stats", "-c", filepath.Join(t.TempDir(), "none.hcl")}, exitUsage, "", "openhqm jobs:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errs, tc.stderr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
		})
	}
}
