package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnvUnset(t *testing.T) {
	cfg, ok, err := FromEnv(mapLookup(map[string]string{"PATH": "/bin", "OPENHQM_CONFIG": "/etc/openhqm"}))
	if cfg != nil || ok || err != nil {
		t.Fatalf("FromEnv = %v, %v, %v; want nothing", cfg, ok, err)
	}
}

func TestFromEnvSeedManifest(t *testing.T) {
	// The variables of the original's sidecar manifest.
	env := map[string]string{
		"OPENHQM_PROXY__ENABLED":          "true",
		"OPENHQM_PROXY__DEFAULT_ENDPOINT": "legacy-api",
		"OPENHQM_PROXY__ENDPOINTS": `{"legacy-api": {"url": "http://localhost:8080", "method": "POST", "timeout": 300,
			"auth_type": "bearer", "auth_token": "tok", "headers": {"x-source": "openhqm"}},
			"keyed": {"url": "https://k.example.com/v2", "auth_type": "api_key", "auth_token": "k", "auth_header_name": "x-key"},
			"custom": {"url": "http://c:1", "auth_type": "custom", "auth_token": "c", "auth_header_name": "X-Custom"},
			"basic": {"url": "http://b:1", "auth_type": "basic", "auth_username": "u", "auth_password": "p"}}`,
		"OPENHQM_QUEUE__TYPE":                 "redis",
		"OPENHQM_QUEUE__REDIS_URL":            "redis://redis:6379",
		"OPENHQM_CACHE__TYPE":                 "redis",
		"OPENHQM_CACHE__REDIS_URL":            "redis://redis:6379/1",
		"OPENHQM_WORKER__BATCH_SIZE":          "20",
		"OPENHQM_WORKER__TIMEOUT_SECONDS":     "60",
		"OPENHQM_WORKER__MAX_RETRIES":         "4",
		"OPENHQM_MONITORING__LOG_LEVEL":       "WARNING",
		"OPENHQM_MONITORING__METRICS_ENABLED": "false",
		"OPENHQM_SERVER__HOST":                "0.0.0.0",
		"OPENHQM_SERVER__PORT":                "8000",
	}
	cfg, ok, err := FromEnv(mapLookup(env))
	if err != nil || !ok {
		t.Fatalf("FromEnv: %v %v", ok, err)
	}
	type summary struct {
		Listen, WorkerListen, Default, QueueBackend, Stream, Group, DLQ, Results, ResultsURL, LogLevel string
		Metrics, Embedded                                                                              bool
		Batch, Attempts                                                                                int
		LegacyTimeout, Lease                                                                           time.Duration
		Auth                                                                                           map[string]Auth
		Routes                                                                                         []string
	}
	got := summary{
		Listen: cfg.Server.Listen, WorkerListen: cfg.Worker.Listen, Default: cfg.SubmitAPI.Endpoint, QueueBackend: string(cfg.Queues["requests"].Backend),
		Stream: cfg.Queues["requests"].Redis.Stream, Group: cfg.Queues["requests"].Redis.Group, DLQ: cfg.Queues["requests"].DeadLetter,
		Results: string(cfg.Results.Backend), ResultsURL: cfg.Results.RedisURL, LogLevel: cfg.Telemetry.LogLevel,
		Metrics: cfg.Telemetry.Metrics, Embedded: cfg.Worker.Embedded, Batch: cfg.Worker.BatchSize, Attempts: cfg.SubmitAPI.Retry.Attempts,
		LegacyTimeout: cfg.Endpoints["legacy-api"].Timeout, Lease: cfg.Queues["requests"].Lease, Auth: map[string]Auth{},
	}
	for n, e := range cfg.Endpoints {
		got.Auth[n] = e.Auth
	}
	for _, r := range cfg.Routes {
		got.Routes = append(got.Routes, r.Name+" "+r.Match.PathPrefix+" "+string(r.Mode)+" "+r.Endpoint)
	}
	want := summary{
		Listen: ":8000", WorkerListen: ":8000", Default: "legacy-api", QueueBackend: "redis", Stream: "openhqm-requests", Group: "openhqm-workers", DLQ: "openhqm-dlq",
		Results: "redis", ResultsURL: "redis://redis:6379/1", LogLevel: "warn", Metrics: false, Embedded: false, Batch: 20, Attempts: 5,
		LegacyTimeout: 300 * time.Second, Lease: 330 * time.Second,
		Auth: map[string]Auth{
			"legacy-api": {Type: AuthBearer, Token: "tok"},
			"keyed":      {Type: AuthAPIKey, Token: "k", Header: "X-Key"},
			"custom":     {Type: AuthHeader, Token: "c", Header: "X-Custom"},
			"basic":      {Type: AuthBasic, Username: "u", Password: "p"},
		},
		Routes: []string{"proxy / sync legacy-api"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if h := cfg.Endpoints["legacy-api"].Headers; len(h) != 1 || h[0] != (Header{"X-Source", "openhqm"}) {
		t.Errorf("headers = %v", h)
	}
	if cfg.Endpoints["keyed"].Timeout != 60*time.Second {
		t.Errorf("endpoint without timeout got %v, want the worker timeout 60s", cfg.Endpoints["keyed"].Timeout)
	}
}

func TestFromEnvMinimal(t *testing.T) {
	cfg, ok, err := FromEnv(mapLookup(map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://app:8080"}))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if cfg.Endpoints["default"].URL.String() != "http://app:8080" || len(cfg.Routes) != 0 || cfg.Queues["requests"].Backend != BackendMemory ||
		!cfg.Worker.Embedded || cfg.SubmitAPI.Endpoint != "default" || cfg.Digest == "" {
		t.Errorf("unexpected config %+v", cfg)
	}
}

func TestFromEnvErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string // the variable the error must name
	}{
		{map[string]string{"OPENHQM_PROXY__ENABLED": "maybe", "OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a"}, "OPENHQM_PROXY__ENABLED"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "legacy"}, "OPENHQM_PROXY__DEFAULT_ENDPOINT"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "ftp://a"}, "OPENHQM_PROXY__DEFAULT_ENDPOINT"},
		{map[string]string{"OPENHQM_PROXY__ENDPOINTS": "[1,2]"}, "OPENHQM_PROXY__ENDPOINTS"},
		{map[string]string{"OPENHQM_PROXY__ENDPOINTS": `{"a": {"url": "http://a", "auth_type": "oauth"}}`}, "OPENHQM_PROXY__ENDPOINTS"},
		{map[string]string{"OPENHQM_PROXY__ENDPOINTS": `{"a": {"url": "http://a", "auth_type": "bearer"}}`}, "OPENHQM_PROXY__ENDPOINTS"},
		{map[string]string{"OPENHQM_PROXY__ENDPOINTS": `{"a": {"url": "http://a"}, "b": {"url": "http://b"}}`}, "OPENHQM_PROXY__DEFAULT_ENDPOINT"},
		{map[string]string{"OPENHQM_QUEUE__TYPE": "redis"}, "OPENHQM_PROXY__DEFAULT_ENDPOINT"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_QUEUE__TYPE": "sqs"}, "OPENHQM_QUEUE__TYPE"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_QUEUE__TYPE": "redis", "OPENHQM_QUEUE__REDIS_URL": "localhost:6379"}, "OPENHQM_QUEUE__REDIS_URL"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_CACHE__TYPE": "memcached"}, "OPENHQM_CACHE__TYPE"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_WORKER__BATCH_SIZE": "0"}, "OPENHQM_WORKER__BATCH_SIZE"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_WORKER__TIMEOUT_SECONDS": "soon"}, "OPENHQM_WORKER__TIMEOUT_SECONDS"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_WORKER__MAX_RETRIES": "-1"}, "OPENHQM_WORKER__MAX_RETRIES"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_MONITORING__LOG_LEVEL": "loud"}, "OPENHQM_MONITORING__LOG_LEVEL"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_MONITORING__METRICS_ENABLED": "2"}, "OPENHQM_MONITORING__METRICS_ENABLED"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_SERVER__PORT": "http"}, "OPENHQM_SERVER__PORT"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_SERVER__HOST": "a b"}, "OPENHQM_SERVER__HOST"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_WORKER__TIMEOUT_SECONDS": "1e300"}, "OPENHQM_WORKER__TIMEOUT_SECONDS"},
		{map[string]string{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_WORKER__BATCH_SIZE": "2.5"}, "OPENHQM_WORKER__BATCH_SIZE"},
		// Checks of the builder, which HCL files get too.
		{map[string]string{"OPENHQM_PROXY__ENDPOINTS": `{"a": {"url": "http://a", "headers": {"x-a": "1", "X-A": "2"}}}`}, `OPENHQM_PROXY__ENDPOINTS: endpoint "a": Header names are case-insensitive`},
		{map[string]string{"OPENHQM_PROXY__ENDPOINTS": `{"a": {"url": "http://a:99999"}}`}, `OPENHQM_PROXY__ENDPOINTS: endpoint "a": The endpoint url (a value from OPENHQM_PROXY__ENDPOINTS) has an invalid port`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			cfg, ok, err := FromEnv(mapLookup(tt.env))
			if err == nil || cfg != nil || !ok {
				t.Fatalf("FromEnv = %v, %v, %v; want an error", cfg, ok, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

// TestFromEnvIsHCL: the variables load through the same builder as a file,
// so the configuration equals the one written in HCL.
func TestFromEnvIsHCL(t *testing.T) {
	env := map[string]string{
		"OPENHQM_PROXY__ENABLED":          "true",
		"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://app:8080",
		"OPENHQM_QUEUE__TYPE":             "redis",
		"OPENHQM_QUEUE__REDIS_URL":        "redis://redis:6379",
		"OPENHQM_WORKER__MAX_RETRIES":     "1",
		"OPENHQM_SERVER__PORT":            "9000",
	}
	cfg, _, err := FromEnv(mapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	want, _, diags := Parse(map[string][]byte{"env.hcl": []byte(`
server { listen = ":9000" }
endpoint "default" { url = "http://app:8080" }
queue "requests" {
  backend = "redis"
  redis {
    url    = "redis://redis:6379"
    stream = "openhqm-requests"
    group  = "openhqm-workers"
  }
  dead_letter = "openhqm-dlq"
}
worker {
  listen   = ":9000"
  embedded = false
}
submit_api {
  endpoint = "default"
  queue    = "requests"
  retry { attempts = 2 }
}
route "proxy" {
  match { path_prefix = "/" }
  endpoint = "default"
}`)}, Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want.Digest, want.Files = cfg.Digest, nil
	if diff := cmp.Diff(want, cfg, ignoreCompiled); diff != "" {
		t.Errorf("(-HCL +FromEnv):\n%s", diff)
	}
}

// TestFromEnvDoesNotQuoteValues: an error about a variable names it but
// never quotes its value, which may hold a credential.
func TestFromEnvDoesNotQuoteValues(t *testing.T) {
	for _, env := range []map[string]string{
		{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://user:hunter2@app"},
		{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_QUEUE__TYPE": "redis", "OPENHQM_QUEUE__REDIS_URL": "redis://:hunter2@"},
		{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_CACHE__TYPE": "redis", "OPENHQM_CACHE__REDIS_URL": "hunter2"},
		{"OPENHQM_PROXY__ENDPOINTS": `{"a": {"url": "http://a", "headers": {"hunter2 x": "1"}}}`},
		{"OPENHQM_PROXY__ENDPOINTS": `{"a": {"url": "http://a", "auth_type": "api_key", "auth_token": "t", "auth_header_name": "hunter2 x"}}`},
		{"OPENHQM_PROXY__ENDPOINTS": `{"a": {"url": "hunter2"}}`},
		{"OPENHQM_PROXY__ENDPOINTS": `{"a": hunter2}`},
		{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "hunter2"},
		{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_WORKER__BATCH_SIZE": "-2222"},
		{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_MONITORING__LOG_LEVEL": "hunter2"},
		{"OPENHQM_PROXY__DEFAULT_ENDPOINT": "http://a", "OPENHQM_SERVER__HOST": "hunter2 x"},
	} {
		_, _, err := FromEnv(mapLookup(env))
		if err == nil {
			t.Errorf("%v: no error", env)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "2222") {
			t.Errorf("the error quotes a value: %v", err)
		}
	}
}
