package redis

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/wire"
)

// legacyMeta is the m field that the stream's own codec wrote for
// legacyJob before the codec moved to package wire, byte for byte.
const legacyMeta = "\x01 0123456789abcdef0123456789abcdef\x06orders\x06legacy\x04jobs\x04POST\x0e/api/orders/ü" +
	"\ta=1&b=%20\nsha256:abc\btenant-1\xaa\xb4\xae\xd8ǿΗ/\x02\fContent-Type\ntext/plain\bX-Latin1\x04caf\xe9"

func legacyJob() *backends.Job {
	return &backends.Job{
		ID: "0123456789abcdef0123456789abcdef", Route: "orders", Endpoint: "legacy", Queue: "jobs",
		Method: "POST", Path: "/api/orders/ü", Query: "a=1&b=%20", Principal: "sha256:abc", Key: "tenant-1",
		Headers: []backends.Header{{Name: "Content-Type", Value: "text/plain"}, {Name: "X-Latin1", Value: "caf\xe9"}},
		Body:    []byte("\x00\xffraw"), CreatedAt: time.Unix(1700000000, 123456789),
	}
}

// Entries written before the codec was shared still decode, and new entries
// are the same bytes, so old processes read them too during a rolling upgrade.
func TestLegacyEntry(t *testing.T) {
	job, before, err := decodeEntry(map[string]any{fieldMeta: legacyMeta, fieldBody: "\x00\xffraw", fieldAttempts: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(legacyJob(), job); d != "" {
		t.Errorf("decoded (-want +got):\n%s", d)
	}
	if before != 2 {
		t.Errorf("attempts before = %d, want 2", before)
	}
	if got := string(wire.AppendFields(nil, legacyJob())); got != legacyMeta {
		t.Errorf("m written now = %q\nwritten before   %q", got, legacyMeta)
	}
}

func TestDecodeEntryRejects(t *testing.T) {
	good := string(wire.AppendFields(nil, &backends.Job{ID: "x"}))
	tests := []struct {
		name   string
		values map[string]any
		want   error
	}{
		{"no m", map[string]any{fieldBody: "x"}, wire.ErrMalformed},
		{"m with the body inside", map[string]any{fieldMeta: good + "body"}, wire.ErrMalformed},
		{"attempts not a number", map[string]any{fieldMeta: good, fieldAttempts: "x"}, errBadEntry},
		{"negative attempts", map[string]any{fieldMeta: good, fieldAttempts: "-1"}, errBadEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := decodeEntry(tt.values); !errors.Is(err, tt.want) {
				t.Errorf("decodeEntry = %v, want %v", err, tt.want)
			}
		})
	}
}
