package config

import (
	"strings"
	"testing"
)

// TestLeaseAdvice: the diagnostic of a timeout that is not shorter than the
// lease says which lease would do and what else to change.
func TestLeaseAdvice(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"route timeout", `
endpoint "app" { url = "http://127.0.0.1:8080" }
queue "jobs" { lease = "60s" }
route "a" {
  match { path = "/a" }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
  timeout  = "120s"
}`, []string{`not shorter than the lease`, `Raise the queue's lease above the timeout, e.g. lease = "5m"`, `lower the route's timeout below 1m0s`}},
		{"endpoint timeout", `
endpoint "app" {
  url     = "http://127.0.0.1:8080"
  timeout = "10m"
}
queue "jobs" {}
route "a" {
  match { path = "/a" }
  mode     = "auto"
  endpoint = "app"
  queue    = "jobs"
}`, []string{`e.g. lease = "15m"`, `give the route a timeout below 1m0s`}},
		{"submit_api", `
endpoint "app" {
  url     = "http://127.0.0.1:8080"
  timeout = "1m"
}
queue "jobs" {}
submit_api {
  endpoint = "app"
  queue    = "jobs"
}`, []string{`e.g. lease = "2m"`, `lower the endpoint's timeout below 1m0s`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, diags := Parse(map[string][]byte{"c.hcl": []byte(tt.src)}, Options{Mode: ModeValidate})
			if len(diags) != 1 || diags[0].Summary != "Timeout longer than lease" {
				t.Fatalf("diagnostics %v, want one about the lease", diags)
			}
			for _, w := range tt.want {
				if !strings.Contains(diags[0].Detail, w) {
					t.Errorf("detail %q does not say %q", diags[0].Detail, w)
				}
			}
		})
	}
}

func TestLeaseFor(t *testing.T) {
	for in, want := range map[string]string{"1s": "1m", "30s": "1m", "31s": "2m", "120s": "5m", "10m": "15m", "23h": "24h", "30h": "31h"} {
		d, _ := parseDuration(in)
		if got := leaseFor(d); got != want {
			t.Errorf("leaseFor(%s) = %q, want %q", in, got, want)
		}
	}
}
