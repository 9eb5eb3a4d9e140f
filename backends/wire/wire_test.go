package wire

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
)

// fullJob sets every field, with a header value that is not UTF-8 and a
// binary body.
func fullJob() *backends.Job {
	return &backends.Job{
		ID: "0123456789abcdef0123456789abcdef", Route: "orders", Endpoint: "legacy", Queue: "jobs",
		Method: "POST", Path: "/api/orders/ü", Query: "a=1&b=%20", Principal: "sha256:abc", Key: "tenant-1",
		Headers: []backends.Header{{Name: "Content-Type", Value: "text/plain"}, {Name: "X-Latin1", Value: "caf\xe9"}},
		Body:    []byte("\x00\xffraw"), CreatedAt: time.Unix(1700000000, 123456789),
	}
}

// fullJobV1 is AppendJob(nil, fullJob()) as version 1 lays it out. Version 1
// is in queues and read by other releases: if this test fails, the change
// needs a new version byte, not a new golden value.
const fullJobV1 = "\x01 0123456789abcdef0123456789abcdef\x06orders\x06legacy\x04jobs\x04POST\x0e/api/orders/ü" +
	"\ta=1&b=%20\nsha256:abc\btenant-1\xaa\xb4\xae\xd8ǿΗ/\x02\fContent-Type\ntext/plain\bX-Latin1\x04caf\xe9" +
	"\x00\xffraw"

var roundTrips = []struct {
	name string
	job  *backends.Job
}{
	{"every field, non-UTF-8 header bytes, binary body", fullJob()},
	{"only an id", &backends.Job{ID: "x"}},
	{"repeated and empty headers", &backends.Job{
		ID: "x", Method: "PUT", Path: "/x",
		Headers: []backends.Header{{Name: "X-A", Value: "1"}, {Name: "X-A", Value: ""}, {Name: "", Value: "v"}},
	}},
	{"a body that looks like an encoding", &backends.Job{ID: "x", Body: []byte("\x01\x01x\x00OHQ1")}},
	{"created before 1970", &backends.Job{ID: "x", CreatedAt: time.Unix(-5, 7)}},
	{"long fields", &backends.Job{ID: strings.Repeat("i", 300), Path: strings.Repeat("/p", 70000), Body: make([]byte, 1<<17)}},
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range roundTrips {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendJob([]byte("prefix"), tt.job)
			if !bytes.HasPrefix(b, []byte("prefix")) || len(b) != len("prefix")+Size(tt.job) {
				t.Fatalf("AppendJob wrote %d bytes after the prefix, Size says %d", len(b)-len("prefix"), Size(tt.job))
			}
			got, err := DecodeJob(b[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.job, got); d != "" {
				t.Errorf("DecodeJob (-sent +decoded):\n%s", d)
			}

			fields := AppendFields(nil, tt.job)
			if !bytes.Equal(append(fields, tt.job.Body...), b[len("prefix"):]) {
				t.Errorf("AppendFields + body differs from AppendJob")
			}
			got, err = DecodeFields(string(fields), string(tt.job.Body))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.job, got); d != "" {
				t.Errorf("DecodeFields (-sent +decoded):\n%s", d)
			}
		})
	}
}

func TestVersion1Layout(t *testing.T) {
	if got := string(AppendJob(nil, fullJob())); got != fullJobV1 {
		t.Errorf("AppendJob = %q\nwant       %q", got, fullJobV1)
	}
	got, err := DecodeJob([]byte(fullJobV1))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(fullJob(), got); d != "" {
		t.Errorf("DecodeJob (-want +got):\n%s", d)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	b := AppendJob(nil, fullJob())
	j, err := DecodeJob(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if d := cmp.Diff(fullJob(), j); d != "" {
		t.Errorf("job changed with the input (-want +got):\n%s", d)
	}
}

var good = AppendJob(nil, &backends.Job{ID: "x", Headers: []backends.Header{{Name: "a", Value: "b"}}})

var rejects = []struct {
	name string
	in   []byte
}{
	{"empty", nil},
	{"JSON", []byte(`{"id":"x"}`)},
	{"another version", append([]byte{2}, good[1:]...)},
	{"the old Kafka tag", []byte("OHQ1" + fullJobV1[1:])},
	{"version only", []byte{Version}},
	{"truncated", good[:len(good)-1]},
	{"no id", AppendJob(nil, &backends.Job{Route: "r"})},
	{"string longer than the input", []byte("\x01\xff\xff\xff\xff\x0fx")},
	{"varint longer than 64 bits", []byte("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02")},
	{"header count beyond the input", []byte("\x01\x01x\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00")},
	{"huge header count", []byte("\x01\x01x\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\x0f")},
	{"header count beyond MaxHeaders", append([]byte("\x01\x01x\x00\x00\x00\x00\x00\x00\x00\x00\x00\x81\x80\x04"), make([]byte, 2*MaxHeaders+2)...)},
}

func TestDecodeRejects(t *testing.T) {
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			if j, err := DecodeJob(tt.in); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeJob = %+v, %v; want ErrMalformed", j, err)
			}
			// The same bytes stored as fields, with the body apart.
			if j, err := DecodeFields(string(tt.in), ""); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeFields = %+v, %v; want ErrMalformed", j, err)
			}
		})
	}
	if _, err := DecodeFields(string(good)+"x", ""); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeFields with trailing bytes = %v, want ErrMalformed", err)
	}
}

// A refused input costs no more than its error, however large the sizes it
// claims: the header count is checked against the input before the headers
// are allocated.
func TestRejectAllocatesOnlyTheError(t *testing.T) {
	in := rejects[len(rejects)-2].in
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := DecodeJob(in); err == nil {
			t.Fatal("huge header count decoded")
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 100; per > 512 {
		t.Errorf("DecodeJob of a huge header count allocated %d bytes per call", per)
	}
}

func FuzzDecodeJob(f *testing.F) {
	for _, tt := range roundTrips {
		if len(tt.job.Path) < 1000 {
			f.Add(AppendJob(nil, tt.job))
		}
	}
	for _, tt := range rejects {
		if len(tt.in) < 1000 {
			f.Add(tt.in)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if j, err := DecodeFields(string(b), ""); err == nil {
			if again, err := DecodeFields(string(AppendFields(nil, j)), ""); err != nil {
				t.Fatalf("fields re-encoded do not decode: %v", err)
			} else if d := cmp.Diff(j, again); d != "" {
				t.Fatalf("fields round trip (-first +second):\n%s", d)
			}
		}
		j, err := DecodeJob(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc := AppendJob(nil, j)
		if len(enc) != Size(j) {
			t.Fatalf("AppendJob wrote %d bytes, Size says %d", len(enc), Size(j))
		}
		again, err := DecodeJob(enc)
		if err != nil {
			t.Fatalf("re-encoded job does not decode: %v", err)
		}
		if d := cmp.Diff(j, again); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}

// benchJob is a typical job: a few headers and a 1 KiB body.
func benchJob() *backends.Job {
	return &backends.Job{
		ID: "0123456789abcdef0123456789abcdef", Route: "orders", Endpoint: "legacy", Queue: "jobs",
		Method: "POST", Path: "/api/orders", Query: "a=1&b=2", Principal: "sha256:abcdef", Key: "tenant-1",
		Headers: []backends.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "Accept", Value: "*/*"},
			{Name: "X-Request-Id", Value: "0123456789abcdef"}, {Name: "User-Agent", Value: "curl/8.0"}},
		Body: make([]byte, 1024), CreatedAt: time.Unix(1700000000, 123456789),
	}
}

func BenchmarkAppendJob(b *testing.B) {
	j := benchJob()
	b.ReportAllocs()
	for b.Loop() {
		AppendJob(nil, j)
	}
}

func BenchmarkAppendFields(b *testing.B) {
	j := benchJob()
	b.ReportAllocs()
	for b.Loop() {
		AppendFields(nil, j)
	}
}

func BenchmarkDecodeJob(b *testing.B) {
	enc := AppendJob(nil, benchJob())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeJob(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFields(b *testing.B) {
	j := benchJob()
	fields, body := string(AppendFields(nil, j)), string(j.Body)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFields(fields, body); err != nil {
			b.Fatal(err)
		}
	}
}
