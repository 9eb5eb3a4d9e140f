package config

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
)

func loadValid(t *testing.T, path string) *Config {
	t.Helper()
	cfg, files, diags, err := Load([]string{path}, Options{Mode: ModeRuntime, LookupEnv: lookupTestEnv})
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", render(files, diags))
	}
	return cfg
}

// ignoreCompiled skips compiled values (regexps, jq code, ranges) that cmp
// cannot compare; their sources are compared instead.
var ignoreCompiled = cmp.Options{
	cmpopts.IgnoreFields(HeaderMatch{}, "Regex"),
	cmpopts.IgnoreFields(JQ{}, "Code"),
	cmpopts.IgnoreTypes(hcl.Range{}),
}

func TestFullModel(t *testing.T) {
	cfg := loadValid(t, "testdata/valid/full.hcl")
	tests := []struct {
		name      string
		got, want any
	}{
		{"server", cfg.Server, Server{Listen: "0.0.0.0:8000", AdminListen: ":8001", MaxBodySize: 512000, ReadTimeout: 90 * time.Second, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}},
		{"legacy", *cfg.Endpoints["legacy"], Endpoint{
			Name: "legacy", URL: &url.URL{Scheme: "http", Host: "legacy.default.svc:8080", Path: "/v1"}, Timeout: 45 * time.Second,
			MaxConcurrency: 8, MaxPending: 32,
			Headers: []Header{{"X-Env", "prod"}, {"X-Service", "openhqm"}},
			Auth:    Auth{Type: AuthAPIKey, Token: "legacy-secret", Header: "X-Legacy-Key"},
		}},
		{"billing auth", cfg.Endpoints["billing"].Auth, Auth{Type: AuthHeader, Header: "X-Auth", Token: "dev-token"}},
		{"public auth", cfg.Endpoints["public"].Auth, Auth{Type: AuthNone}},
		{"events queue", *cfg.Queues["events"], Queue{
			Name: "events", Backend: BackendKafka, MaxDepth: 5000, Lease: 5 * time.Minute, DeadLetter: "openhqm-events-dlq", DeadLetterMax: 100,
			Kafka: &KafkaQueue{Brokers: []string{"kafka-0.kafka:9092", "kafka-1.kafka:9092"}, Topic: "openhqm-events", Group: "openhqm-events-workers",
				RetryTopic: "openhqm-events-later", Version: "3.6.0", KeyHeader: "X-Tenant", TLS: &TLS{InsecureSkipVerify: true},
				SASL: &SASL{Mechanism: "SCRAM-SHA-512", Username: "openhqm"}},
		}},
		{"mem queue", *cfg.Queues["mem"], Queue{Name: "mem", Backend: BackendMemory, MaxDepth: 100000, Lease: time.Minute, DeadLetter: "mem-dlq", DeadLetterMax: 10000}},
		{"results", cfg.Results, Results{Backend: BackendMemory, TTL: 30 * time.Minute, MaxEntries: 1000, Prefix: "ignored-for-memory:", MaxBodySize: 2 << 20, IdempotencyWindow: 2 * time.Hour}},
		{"user match", cfg.Routes[0].Match, Match{
			Methods: []string{"GET", "HEAD"}, Hosts: []string{"*.example.org", "api.example.com"}, Path: "/users/{id}",
			PathSegments: []Segment{{Literal: "users"}, {Param: "id"}},
			Headers:      []HeaderMatch{{Name: "Accept", Value: "application/json"}, {Name: "X-Tenant", Value: "acme|globex"}},
		}},
		{"user timeout from endpoint", cfg.Routes[0].Timeout, 45 * time.Second},
		{"events route", *cfg.Routes[1], Route{
			Name: "events", Index: 1, Match: Match{Methods: []string{"POST"}, PathPrefix: "/events", JQ: &JQ{Source: `.type == "order"`}},
			Mode: ModeAuto, OnOverload: OverloadReject, Endpoint: "billing", Queue: "events", Idempotent: true, Timeout: 4 * time.Minute,
			Retry:      Retry{Attempts: 10, Backoff: "constant", Initial: 500 * time.Millisecond, Max: 5 * time.Second, On: []RetryOn{Retry5xx}},
			ClientAuth: &ClientAuth{Type: AuthAPIKey, Header: "X-Client-Key", Tokens: []string{"k1", "orders-secret"}},
			RateLimit:  &RateLimit{RequestsPerSecond: 2.5, Burst: 3},
			Transform: &Transform{Body: &JQ{Source: "{order: .id, items: .items}"},
				Headers: map[string]*JQ{"X-Order": {Source: ".id | tostring"}}, Query: map[string]*JQ{"tenant": {Source: ".tenant"}}},
		}},
		{"submit", *cfg.SubmitAPI, SubmitAPI{Endpoint: "legacy", Queue: "events", Retry: Retry{Attempts: 1, Backoff: "exponential", Initial: time.Second, Max: time.Minute, On: defaultRetry().On},
			ClientAuth: &ClientAuth{Type: AuthBearer, Tokens: []string{"submitter"}}}},
		{"worker", cfg.Worker, Worker{Embedded: true, Concurrency: 4, BatchSize: 1, Listen: "127.0.0.1:9091", Queues: []string{"events", "mem"}}},
		{"telemetry", cfg.Telemetry, Telemetry{LogLevel: "debug", LogFormat: "text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got, ignoreCompiled); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if rx := cfg.Routes[0].Match.Headers[1].Regex; rx == nil || !rx.MatchString("globex") || rx.MatchString("xacme") {
		t.Errorf("header regex %v is not the anchored alternative", rx)
	}
	var names []string
	for _, r := range Precedence(cfg.Routes) {
		names = append(names, r.Name)
	}
	if diff := cmp.Diff([]string{"health", "user", "events", "other-events"}, names); diff != "" {
		t.Errorf("precedence (-want +got):\n%s", diff)
	}
}

func TestDefaultsFromMinimalFile(t *testing.T) {
	cfg, _, diags := Parse(map[string][]byte{"min.hcl": []byte(`
endpoint "app" { url = "http://127.0.0.1:8080" }
route "all" {
  match { path_prefix = "/" }
  endpoint = "app"
}`)}, Options{LookupEnv: lookupTestEnv})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// The language's defaults, written out: every other path to a
	// configuration (Default, FromEnv) goes through the same builder.
	want := &Config{
		Server:    Server{Listen: ":8000", MaxBodySize: 10 << 20, ReadTimeout: 30 * time.Second, IdleTimeout: 90 * time.Second},
		Endpoints: map[string]*Endpoint{},
		Queues:    map[string]*Queue{},
		Results:   Results{Backend: BackendMemory, TTL: time.Hour, MaxEntries: 100000, Prefix: "openhqm:", MaxBodySize: 10 << 20, IdempotencyWindow: 24 * time.Hour},
		Worker:    Worker{Embedded: true, Concurrency: 16, BatchSize: 10, Drain: 30 * time.Second, Listen: ":9090"},
		Telemetry: Telemetry{LogLevel: "info", LogFormat: "json", Metrics: true},
	}
	want.Endpoints["app"] = &Endpoint{Name: "app", URL: &url.URL{Scheme: "http", Host: "127.0.0.1:8080"}, Timeout: 30 * time.Second, Auth: Auth{Type: AuthNone}}
	want.Routes = []*Route{{Name: "all", Match: Match{PathPrefix: "/"}, Mode: ModeSync, OnOverload: OverloadReject, Endpoint: "app", Retry: defaultRetry(), Timeout: 30 * time.Second}}
	want.Digest, want.Files = cfg.Digest, []string{"min.hcl"}
	if diff := cmp.Diff(want, cfg, ignoreCompiled); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAdaptiveConcurrency: the block's defaults, and values as written.
func TestAdaptiveConcurrency(t *testing.T) {
	cfg, _, diags := Parse(map[string][]byte{"a.hcl": []byte(`
endpoint "plain" {
  url             = "http://127.0.0.1:8080"
  max_concurrency = 8
  adaptive_concurrency {}
}
endpoint "tuned" {
  url             = "http://127.0.0.1:8081"
  max_concurrency = 64
  adaptive_concurrency {
    min       = 4
    tolerance = 2.5
  }
}
endpoint "fixed" {
  url             = "http://127.0.0.1:8082"
  max_concurrency = 8
}`)}, Options{LookupEnv: lookupTestEnv})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := map[string]*AdaptiveConcurrency{}
	for name, e := range cfg.Endpoints {
		got[name] = e.Adaptive
	}
	want := map[string]*AdaptiveConcurrency{"plain": {Min: 1, Tolerance: 1.5}, "tuned": {Min: 4, Tolerance: 2.5}, "fixed": nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("adaptive settings (-want +got):\n%s", diff)
	}
}

// TestJSONSyntax checks that *.hcl.json is decoded and its problems are
// located on the JSON lines (JSON has no comments for markers).
func TestJSONSyntax(t *testing.T) {
	src := `{
  "endpoint": {
    "app": {
      "url": "ftp://nope",
      "timeot": "5s"
    }
  },
  "route": {
    "r": {
      "match": { "path": "/a" },
      "endpoint": "ap"
    }
  }
}`
	_, _, diags := Parse(map[string][]byte{"c.hcl.json": []byte(src)}, Options{})
	var got []diagLine
	for _, d := range diags {
		got = append(got, diagLine{d.Subject.Filename, d.Subject.Start.Line, "error", d.Summary})
	}
	sortDiags(got)
	want := []diagLine{
		{"c.hcl.json", 4, "error", "Invalid URL"},
		{"c.hcl.json", 5, "error", "Extraneous JSON object property"},
		{"c.hcl.json", 11, "error", "Unknown endpoint"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFunctions(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "token"), []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "c.hcl")
	src := `
endpoint "a" {
  url = env("A_URL")
  auth {
    type  = "bearer"
    token = file("secrets/token")
  }
}
endpoint "b" {
  url = env("B_URL", "http://default:1")
  auth {
    type  = "header"
    header = env("UNSET_HEADER", "X-Fallback")
    token = "${env("PREFIX")}-suffix"
  }
}`
	if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"A_URL": "http://a:8080", "EMPTY": "", "PREFIX": "p"}
	cfg, _, diags, err := Load([]string{dir}, Options{Mode: ModeRuntime, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil || diags.HasErrors() {
		t.Fatalf("err %v diags %v", err, diags)
	}
	got := map[string]string{
		"a.url": cfg.Endpoints["a"].URL.String(), "a.token": cfg.Endpoints["a"].Auth.Token,
		"b.url": cfg.Endpoints["b"].URL.String(), "b.token": cfg.Endpoints["b"].Auth.Token,
	}
	want := map[string]string{"a.url": "http://a:8080", "a.token": "from-file", "b.url": "http://default:1", "b.token": "p-suffix"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if h := cfg.Endpoints["b"].Auth.Header; h != "X-Fallback" {
		t.Errorf("header = %q, want the default X-Fallback", h)
	}
}

func TestLoadErrors(t *testing.T) {
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("x"), 0o600)
	tests := []struct {
		name  string
		paths []string
	}{
		{"no paths", nil},
		{"missing file", []string{"testdata/does-not-exist.hcl"}},
		{"directory without config", []string{empty}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, _, err := Load(tt.paths, Options{})
			if err == nil || cfg != nil {
				t.Fatalf("Load = %v, %v; want an error", cfg, err)
			}
		})
	}
}

func TestDigest(t *testing.T) {
	src := []byte("endpoint \"a\" {\n  url = \"http://a\"\n}\n")
	c1, _, _ := Parse(map[string][]byte{"a.hcl": src}, Options{})
	c2, _, _ := Parse(map[string][]byte{"a.hcl": src}, Options{})
	c3, _, _ := Parse(map[string][]byte{"b.hcl": src}, Options{})
	c4, _, _ := Parse(map[string][]byte{"a.hcl": append(src, '\n')}, Options{})
	if c1.Digest != c2.Digest || len(c1.Digest) != 64 {
		t.Errorf("same content, digests %q and %q", c1.Digest, c2.Digest)
	}
	if c1.Digest == c3.Digest || c1.Digest == c4.Digest {
		t.Error("different names or contents have the same digest")
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Server.Listen != ":8000" || c.Endpoints["app"].URL.String() != "http://127.0.0.1:8080" ||
		c.Queues["default"].Backend != BackendMemory || c.Results.Backend != BackendMemory ||
		c.SubmitAPI == nil || c.SubmitAPI.Queue != "default" || !c.Worker.Embedded || c.Digest == "" {
		t.Fatalf("unexpected default: %+v", c)
	}
	if len(c.Routes) != 1 || c.Routes[0].Mode != ModeAuto || c.Routes[0].Match.PathPrefix != "/" || c.Routes[0].Queue != "default" {
		t.Fatalf("unexpected default route: %+v", c.Routes)
	}
	if Default() == c || Default().Endpoints["app"] == c.Endpoints["app"] {
		t.Error("Default returns shared values")
	}
	// The default written as HCL loads into the same model.
	hclCfg, _, diags := Parse(map[string][]byte{"default.hcl": []byte(`
endpoint "app" { url = "http://127.0.0.1:8080" }
queue "default" {}
route "default" {
  match { path_prefix = "/" }
  mode     = "auto"
  endpoint = "app"
  queue    = "default"
}
submit_api {
  endpoint = "app"
  queue    = "default"
}`)}, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	hclCfg.Digest, hclCfg.Files = c.Digest, c.Files
	if diff := cmp.Diff(c, hclCfg, ignoreCompiled); diff != "" {
		t.Errorf("Default differs from its HCL form (-Default +HCL):\n%s", diff)
	}
}
