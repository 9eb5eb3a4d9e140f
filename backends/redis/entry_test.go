package redis

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openhqm/openhqm/backends"
)

func TestCodecRoundTrip(t *testing.T) {
	full := &backends.Job{
		ID: "0123456789abcdef0123456789abcdef", Route: "orders", Endpoint: "legacy", Queue: "jobs",
		Method: "POST", Path: "/api/orders/ü", Query: "a=1&b=%20",
		Headers:   []backends.Header{{Name: "X-Latin1", Value: "caf\xe9"}, {Name: "Content-Type", Value: "text/plain"}},
		Body:      []byte("\x00\xffraw"),
		Principal: "sha256:abc", Key: "tenant-1", CreatedAt: time.Unix(1700000000, 123456789),
	}
	tests := []struct {
		name string
		job  *backends.Job
	}{
		{"full, with non-UTF-8 header bytes", full},
		{"only an id", &backends.Job{ID: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeJob(string(encodeMeta(tt.job)), string(tt.job.Body))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.job, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("round trip (-sent +decoded):\n%s", d)
			}
		})
	}
}

func TestCodecRejects(t *testing.T) {
	good := string(encodeMeta(&backends.Job{ID: "x", Headers: []backends.Header{{Name: "a", Value: "b"}}}))
	tests := []struct{ name, meta string }{
		{"empty", ""},
		{"JSON of another version", `{"id":"x"}`},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", good + "x"},
		{"no id", string(encodeMeta(&backends.Job{}))},
		{"huge header count", "\x01\x01x\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\x0f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeJob(tt.meta, ""); !errors.Is(err, errBadEntry) {
				t.Errorf("decodeJob = %v, want errBadEntry", err)
			}
		})
	}
}
