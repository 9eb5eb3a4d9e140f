package schema_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/schema"
	"github.com/openhqm/openhqm/schema/internal/gen"
)

// TestCommittedSchemaIsFresh regenerates the schema in memory from the config
// package and compares it with the committed, embedded copies.
func TestCommittedSchemaIsFresh(t *testing.T) {
	js, md, err := gen.Generate(config.RawRoot())
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	for _, c := range []struct {
		file      string
		got, want []byte
	}{
		{gen.JSONFile, schema.JSON, js},
		{gen.MarkdownFile, schema.Markdown, md},
	} {
		if diff := cmp.Diff(string(c.want), string(c.got)); diff != "" {
			t.Errorf("schema/%s is stale; run `go generate ./schema` and commit the result (-want +got):\n%s", c.file, diff)
		}
	}
}

// TestSchemaCoversTheLanguage checks that the documented language is all in
// the schema, so a block cannot vanish from the reference unnoticed.
func TestSchemaCoversTheLanguage(t *testing.T) {
	var doc struct {
		Properties map[string]any `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schema.JSON, &doc); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	for _, name := range []string{"server", "endpoint", "queue", "results", "route", "submit_api", "worker", "telemetry"} {
		if _, ok := doc.Properties[name]; !ok {
			t.Errorf("top-level block %q missing from the JSON schema", name)
		}
		if !strings.Contains(string(schema.Markdown), "\n## "+name+"\n") {
			t.Errorf("block %q has no section in reference.md", name)
		}
	}
	for def, attrs := range map[string][]string{
		"server":      {"listen", "admin_listen", "max_body_size", "read_timeout"},
		"endpoint":    {"url", "timeout", "max_concurrency", "max_pending", "headers", "auth"},
		"auth":        {"type", "token"},
		"queue":       {"backend", "redis", "max_depth", "lease", "dead_letter"},
		"redis_queue": {"url", "stream", "group"},
		"results":     {"backend", "ttl", "redis"},
		"route":       {"match", "mode", "endpoint", "queue", "retry", "idempotent", "timeout", "client_auth", "rate_limit"},
		"match":       {"methods", "path_prefix", "path", "headers"},
		"retry":       {"attempts", "backoff", "on"},
		"client_auth": {"type", "tokens"},
		"rate_limit":  {"requests_per_second", "burst"},
		"submit_api":  {"endpoint", "queue"},
		"worker":      {"embedded", "concurrency", "batch_size", "drain", "listen"},
		"telemetry":   {"log_level", "log_format", "metrics"},
	} {
		d, ok := doc.Defs[def]
		if !ok {
			t.Errorf("$defs/%s missing", def)
			continue
		}
		for _, a := range attrs {
			if _, ok := d.Properties[a]; !ok {
				t.Errorf("$defs/%s has no %q", def, a)
			}
		}
	}
}

// TestReferenceStatesTheLimits: the limits the reference states are the
// config package's.
func TestReferenceStatesTheLimits(t *testing.T) {
	for _, want := range []string{
		fmt.Sprintf("at most %d KiB;", config.MaxSecretSize>>10),
		fmt.Sprintf("at most %d MiB over all its", config.MaxConfigSize>>20),
		fmt.Sprintf("nests at most %d levels", config.MaxNesting),
	} {
		if !strings.Contains(strings.Join(strings.Fields(string(schema.Markdown)), " "), want) {
			t.Errorf("reference.md does not say %q", want)
		}
	}
}
