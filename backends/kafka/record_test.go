package kafka

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
)

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  *backends.Job
	}{
		{"empty", &backends.Job{}},
		{"full", newJob("key", `{"order":1}`)},
		{"binary body and repeated headers", &backends.Job{
			ID: "00112233445566778899aabbccddeeff", Method: "PUT", Path: "/x",
			Headers: []backends.Header{{Name: "X-A", Value: "1"}, {Name: "X-A", Value: ""}, {Name: "", Value: "v"}},
			Body:    []byte{0, 1, 2, 0xff, 'O', 'H', 'Q', '1'},
		}},
		{"unicode", &backends.Job{Route: "bestellungen", Path: "/größe", Principal: "p", CreatedAt: time.Unix(1, 5).UTC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeJob(encodeJob(tc.job))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.job, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	full := encodeJob(newJob("k", "body"))
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"foreign", []byte(`{"id":"x"}`)},
		{"magic only", []byte(magic)},
		{"truncated", full[:12]},
		{"huge length", append([]byte(magic), 0xff, 0xff, 0xff, 0xff, 0x0f)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if j, err := decodeJob(tc.in); err == nil {
				t.Fatalf("decoded %+v, want an error", j)
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

func FuzzDecodeJob(f *testing.F) {
	f.Add(encodeJob(newJob("k", "body")))
	f.Add(encodeJob(&backends.Job{}))
	f.Add([]byte(magic))
	f.Add([]byte("OHQ1\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := decodeJob(b)
		if err != nil {
			return
		}
		again, err := decodeJob(encodeJob(j))
		if err != nil {
			t.Fatalf("re-encoded job does not decode: %v", err)
		}
		if diff := cmp.Diff(j, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
