package kafka

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/wire"
)

// legacyValue is the record value that the topic's own codec wrote for
// legacyJob before the codec moved to package wire, byte for byte.
const legacyValue = "OHQ1 0123456789abcdef0123456789abcdef\x06orders\x06legacy\x04jobs\x04POST\x0e/api/orders/ü" +
	"\ta=1&b=%20\nsha256:abc\btenant-1\xaa\xb4\xae\xd8ǿΗ/\x02\fContent-Type\ntext/plain\bX-Latin1\x04caf\xe9" +
	"\x00\xffraw"

func legacyJob() *backends.Job {
	return &backends.Job{
		ID: "0123456789abcdef0123456789abcdef", Route: "orders", Endpoint: "legacy", Queue: "jobs",
		Method: "POST", Path: "/api/orders/ü", Query: "a=1&b=%20", Principal: "sha256:abc", Key: "tenant-1",
		Headers: []backends.Header{{Name: "Content-Type", Value: "text/plain"}, {Name: "X-Latin1", Value: "caf\xe9"}},
		Body:    []byte("\x00\xffraw"), CreatedAt: time.Unix(1700000000, 123456789),
	}
}

// Records written before the codec was shared still decode, and new records
// are the same bytes, so old processes read them too during a rolling upgrade.
func TestLegacyRecord(t *testing.T) {
	job, err := decodeJob([]byte(legacyValue))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(legacyJob(), job); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	if got := string(encodeJob(legacyJob())); got != legacyValue {
		t.Errorf("value written now = %q\nwritten before     %q", got, legacyValue)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"foreign", []byte(`{"id":"x"}`)},
		{"tag only", []byte(tag)},
		{"version byte instead of digit", append([]byte(tag), wire.AppendJob(nil, legacyJob())...)},
		{"unknown version", []byte("OHQ2" + legacyValue[4:])},
		{"truncated", []byte(legacyValue[:12])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if j, err := decodeJob(tc.in); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("decodeJob = %+v, %v; want wire.ErrMalformed", j, err)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	for _, tc := range []struct {
		meta string
		base int64
		want map[int64]int
	}{
		{"", 5, nil},
		{"ohq1;", 5, nil},
		{"ohq1;0:1,1,2,3", 10, map[int64]int{10: 1, 11: finishedMark, 12: finishedMark, 13: finishedMark}},
		{"ohq1;x", 0, nil},
		{"ohq1;-1", 0, nil},
		{"ohq1;1:-2", 0, nil},
		{"other", 0, nil},
	} {
		t.Run(tc.meta, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, parseMetadata(tc.meta, tc.base)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	// A record fetched again but not yet delivered keeps the attempts the
	// earlier owners made, so a hand-over before its delivery does not
	// reset its attempt number.
	c := &claim{base: 10, prior: parseMetadata("ohq1;0:2,1,3:1", 10)}
	c.add(10, nil, 1, time.Time{}, time.Time{})
	c.add(11, nil, 1, time.Time{}, time.Time{})
	if got, want := c.metadata(), "ohq1;0:2,1,3:1"; got != want {
		t.Errorf("after fetching 10 and 11: metadata %q, want %q", got, want)
	}
	if got := c.entries[0].attempt; got != 3 {
		t.Errorf("attempt of the next delivery: %d, want 3", got)
	}

	// The encoder writes what the decoder reads, and stays bounded.
	c = &claim{base: 100}
	for i := range int64(2000) {
		e := c.add(100+1+i, nil, 1, time.Time{}, time.Time{})
		e.done = i%2 == 0
		e.delivered = true
	}
	meta := c.metadata()
	if len(meta) > maxMeta {
		t.Fatalf("metadata is %d bytes, limit %d", len(meta), maxMeta)
	}
	got := parseMetadata(meta, 100)
	if got[101] != finishedMark || got[102] != 1 {
		t.Errorf("parsed %v", got)
	}
}
