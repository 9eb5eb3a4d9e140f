// Package examples_test loads every example configuration the way
// `openhqm validate` does and requires it to be clean, so the examples the
// README points to always work.
package examples_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/openhqm/openhqm/config"
)

// exampleEnv is what the examples read with env(); production takes it from
// Kubernetes Secrets.
var exampleEnv = map[string]string{
	"REDIS_URL":           "redis://127.0.0.1:6379",
	"LEGACY_APP_TOKEN":    "legacy-token",
	"BILLING_API_KEY":     "billing-key",
	"REPORTS_PASSWORD":    "reports-password",
	"ORDERS_CLIENT_TOKEN": "orders-token",
}

func TestExamplesAreValid(t *testing.T) {
	paths, err := filepath.Glob("*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 3 {
		t.Fatalf("found %d examples, want at least quickstart, sidecar and worker", len(paths))
	}
	lookup := func(name string) (string, bool) {
		v, ok := exampleEnv[name]
		return v, ok
	}
	for _, p := range paths {
		t.Run(strings.TrimSuffix(p, ".hcl"), func(t *testing.T) {
			cfg, files, diags, err := config.Load([]string{p}, config.Options{Mode: config.ModeValidate, LookupEnv: lookup})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if len(diags) > 0 {
				var b strings.Builder
				hcl.NewDiagnosticTextWriter(&b, files, 0, false).WriteDiagnostics(diags)
				t.Fatalf("%d diagnostics, want none:\n%s", len(diags), b.String())
			}
			if cfg == nil || len(cfg.Routes) == 0 {
				t.Fatal("no routes loaded")
			}
		})
	}
}

// TestExamplesCoverTheirPurpose checks what each example is meant to show.
func TestExamplesCoverTheirPurpose(t *testing.T) {
	lookup := func(name string) (string, bool) {
		v, ok := exampleEnv[name]
		return v, ok
	}
	load := func(t *testing.T, name string) *config.Config {
		t.Helper()
		cfg, _, diags, err := config.Load([]string{name}, config.Options{Mode: config.ModeValidate, LookupEnv: lookup})
		if err != nil || diags.HasErrors() {
			t.Fatalf("load %s: %v %v", name, err, diags)
		}
		return cfg
	}
	modes := func(cfg *config.Config) map[config.Mode]int {
		m := map[config.Mode]int{}
		for _, r := range cfg.Routes {
			m[r.Mode]++
		}
		return m
	}

	t.Run("quickstart", func(t *testing.T) {
		cfg := load(t, "quickstart.hcl")
		if m := modes(cfg); m[config.ModeSync] == 0 || m[config.ModeAsync] == 0 {
			t.Errorf("route modes %v, want a sync and an async route", m)
		}
		for name, q := range cfg.Queues {
			if q.Backend != config.BackendMemory {
				t.Errorf("queue %s uses %s, want memory", name, q.Backend)
			}
		}
		if !cfg.Worker.Embedded {
			t.Error("worker is not embedded")
		}
		if u := cfg.Endpoints["legacy"].URL.String(); u != "http://127.0.0.1:8080" {
			t.Errorf("legacy endpoint is %s, want the example app", u)
		}
	})
	t.Run("sidecar", func(t *testing.T) {
		cfg := load(t, "sidecar.hcl")
		auths := map[config.AuthType]bool{}
		for _, e := range cfg.Endpoints {
			auths[e.Auth.Type] = true
		}
		if len(auths) < 3 {
			t.Errorf("endpoint auth types %v, want at least three kinds", auths)
		}
		for name, q := range cfg.Queues {
			if q.Backend != config.BackendRedis {
				t.Errorf("queue %s uses %s, want redis", name, q.Backend)
			}
		}
		if cfg.Results.Backend != config.BackendRedis {
			t.Errorf("results use %s, want redis", cfg.Results.Backend)
		}
		prefixes := map[string]int{}
		var clientAuth, rateLimit, retry bool
		for _, r := range cfg.Routes {
			prefixes[r.Match.PathPrefix]++
			clientAuth = clientAuth || r.ClientAuth != nil
			rateLimit = rateLimit || r.RateLimit != nil
			retry = retry || r.Retry.Attempts > 3
		}
		if prefixes["/api/orders"] < 2 {
			t.Errorf("routes per prefix %v, want several on /api/orders", prefixes)
		}
		if !clientAuth || !rateLimit || !retry || cfg.SubmitAPI == nil {
			t.Errorf("client_auth %v, rate_limit %v, retry %v, submit_api %v; want all", clientAuth, rateLimit, retry, cfg.SubmitAPI != nil)
		}
	})
	t.Run("sqs", func(t *testing.T) {
		cfg := load(t, "sqs.hcl")
		q := cfg.Queues["jobs"]
		if q == nil || q.Backend != config.BackendSQS || q.SQS == nil || q.SQS.Region == "" {
			t.Fatalf("queue jobs is %+v, want an SQS queue with its region", q)
		}
		if cfg.Worker.Embedded || cfg.Results.Backend != config.BackendRedis {
			t.Errorf("embedded %v, results %s; want separate workers and results they can reach", cfg.Worker.Embedded, cfg.Results.Backend)
		}
	})
	t.Run("redis-sentinel", func(t *testing.T) {
		cfg := load(t, "redis-sentinel.hcl")
		q := cfg.Queues["jobs"]
		if q == nil || q.Redis == nil || q.Redis.Sentinel == nil || len(q.Redis.Sentinel.Addrs) < 3 || q.Redis.MinReplicas != 1 {
			t.Fatalf("queue jobs is %+v, want a Redis queue through three sentinels with min_replicas 1", q)
		}
		if r := cfg.Results.Redis; r == nil || r.Sentinel == nil || r.MinReplicas != 1 {
			t.Errorf("results redis is %+v, want the same sentinels with min_replicas 1", r)
		}
	})
	t.Run("redis-cluster", func(t *testing.T) {
		cfg := load(t, "redis-cluster.hcl")
		q := cfg.Queues["jobs"]
		if q == nil || q.Redis == nil || q.Redis.Cluster == nil || q.Redis.Shards < 2 || q.Redis.TLS == nil {
			t.Fatalf("queue jobs is %+v, want a sharded Redis Cluster queue over TLS", q)
		}
		if r := cfg.Results.Redis; r == nil || r.Cluster == nil {
			t.Errorf("results redis is %+v, want the cluster", r)
		}
	})
	t.Run("worker", func(t *testing.T) {
		cfg := load(t, "worker.hcl")
		if cfg.Worker.Embedded {
			t.Error("worker.embedded is true, want a standalone worker")
		}
		for name, q := range cfg.Queues {
			if q.Backend == config.BackendMemory {
				t.Errorf("queue %s is in memory, invisible to a separate worker", name)
			}
		}
	})
}
