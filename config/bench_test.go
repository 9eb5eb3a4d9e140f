package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// generateRoutes writes a valid configuration with n routes spread over
// prefixes, templates and exact paths, with header, method and jq
// conditions, half of them async.
func generateRoutes(n int) []byte {
	var b strings.Builder
	b.WriteString("endpoint \"app\" {\n  url = \"http://127.0.0.1:8080\"\n  timeout = \"10s\"\n}\n")
	b.WriteString("queue \"jobs\" {\n  lease = \"60s\"\n}\n")
	for i := range n {
		fmt.Fprintf(&b, "route \"r%d\" {\n  match {\n", i)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "    path_prefix = \"/api/v%d/items\"\n    methods = [\"GET\", \"POST\"]\n", i)
		case 1:
			fmt.Fprintf(&b, "    path = \"/users/%d/{id}/orders/{order}\"\n", i)
		case 2:
			fmt.Fprintf(&b, "    path = \"/exact/%d\"\n    headers = { \"X-Tenant\" = \"~t%d-.*\" }\n", i, i)
		case 3:
			fmt.Fprintf(&b, "    path_prefix = \"/jobs/%d\"\n    jq = \".kind == \\\"k%d\\\"\"\n", i, i)
		}
		b.WriteString("  }\n  endpoint = \"app\"\n")
		if i%2 == 1 {
			b.WriteString("  mode = \"async\"\n  queue = \"jobs\"\n  retry {\n    attempts = 5\n  }\n")
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// generateTenantRoutes writes n routes on one path told apart by a header,
// the case that compared every pair of routes.
func generateTenantRoutes(n int) []byte {
	var b strings.Builder
	b.WriteString("endpoint \"app\" {\n  url = \"http://127.0.0.1:8080\"\n}\n")
	for i := range n {
		fmt.Fprintf(&b, "route \"t%d\" {\n  match {\n    path_prefix = \"/api\"\n    headers = { \"X-Tenant\" = \"t%d\" }\n  }\n  endpoint = \"app\"\n}\n", i, i)
	}
	return []byte(b.String())
}

// generateEndpoints writes n endpoint blocks of about 250 bytes each (200,000
// make 50 MB).
func generateEndpoints(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "endpoint \"app-%d\" {\n  url             = \"http://app-%d.apps.svc.cluster.local:8080/v1\"\n  timeout         = \"30s\"\n  max_concurrency = 64\n  headers         = { \"X-Service\" = \"openhqm\" }\n  auth {\n    type  = \"bearer\"\n    token = \"token-%d\"\n  }\n}\n", i, i, i)
	}
	return []byte(b.String())
}

func benchmarkLoad(b *testing.B, src []byte) {
	dir := b.TempDir()
	p := filepath.Join(dir, "c.hcl")
	if err := os.WriteFile(p, src, 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		_, _, diags, err := Load([]string{p}, Options{Mode: ModeValidate})
		if err != nil || diags.HasErrors() {
			b.Fatalf("err %v diags %v", err, diags)
		}
	}
}

// BenchmarkLoadRoutes measures validating n routes from disk, as `openhqm
// validate` does; the time per route should not grow with n.
func BenchmarkLoadRoutes(b *testing.B) {
	for _, n := range []int{200, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchmarkLoad(b, generateRoutes(n)) })
	}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint("tenants-", n), func(b *testing.B) { benchmarkLoad(b, generateTenantRoutes(n)) })
	}
}

// BenchmarkLoadEndpoints measures validating n endpoint blocks; B/op is what
// a load allocates in all, the peak it holds is measured with
// TestWriteLargeConfigs and /usr/bin/time.
func BenchmarkLoadEndpoints(b *testing.B) {
	for _, n := range []int{20000, 200000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchmarkLoad(b, generateEndpoints(n)) })
	}
}

var largeDir = flag.String("large-dir", "", "write the large generated configurations into this directory (see TestWriteLargeConfigs)")

// TestWriteLargeConfigs writes the generated configurations of the
// benchmarks into -large-dir, one directory each, to measure a whole
// `openhqm validate` run:
//
//	go test ./config -run TestWriteLargeConfigs -large-dir /tmp/big
//	/usr/bin/time -v go run ./cmd/openhqm validate /tmp/big/routes-100000
func TestWriteLargeConfigs(t *testing.T) {
	if *largeDir == "" {
		t.Skip("no -large-dir")
	}
	for name, src := range map[string][]byte{
		"routes-100000":    generateRoutes(100000),
		"routes-10000":     generateRoutes(10000),
		"tenants-100000":   generateTenantRoutes(100000),
		"endpoints-200000": generateEndpoints(200000),
	} {
		dir := filepath.Join(*largeDir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.hcl"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", dir, len(src))
	}
}
