package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/backendtest"
	"github.com/openhqm/openhqm/internal/testredis"
)

func TestResultsConformanceUnbatched(t *testing.T) {
	n := 0
	backendtest.RunResultStore(t, func(t *testing.T) backends.ResultStore {
		n++
		s, err := NewResults(context.Background(), ResultsOptions{URL: srv.URL(), Prefix: fmt.Sprintf("ru%d-%d:", time.Now().UnixNano(), n),
			Batch: BatchOptions{Disabled: true}})
		if err != nil {
			t.Fatalf("NewResults: %v", err)
		}
		return s
	})
}

func newResults(t *testing.T, url string) *Results {
	t.Helper()
	s, err := NewResults(context.Background(), ResultsOptions{URL: url, Prefix: fmt.Sprintf("rr%d-%d:", time.Now().UnixNano(), prefixSeq.Add(1))})
	if err != nil {
		t.Fatalf("NewResults: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// legacyHash writes r in the layout of earlier releases: a hash with the
// JSON in field r and the body in field b, and for a finished record its
// tombstone, as their putScript did.
func legacyHash(t *testing.T, rdb *goredis.Client, l ResultsLayout, r *backends.Result) {
	t.Helper()
	ctx := context.Background()
	w := resultWire{Route: r.Route, Principal: r.Principal, Status: string(r.Status), Attempts: r.Attempts,
		SubmittedAt: r.SubmittedAt, StartedAt: r.StartedAt, UpdatedAt: r.UpdatedAt, CompletedAt: r.CompletedAt,
		Error: r.Error, StatusCode: r.StatusCode}
	for _, h := range r.Headers {
		w.Headers = append(w.Headers, [2]string{h.Name, h.Value})
	}
	meta, err := json.Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, l.key(r.ID), recordMeta, meta, recordBody, r.Body).Err(); err != nil {
		t.Fatal(err)
	}
	if finished(r.Status) {
		if err := rdb.Set(ctx, l.tomb(r.ID), "1", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// Records written by an earlier release (a hash per job) are read, a write
// replaces a pending one, and a finished one stays final: a rolling upgrade
// meets them.
func TestLegacyRecords(t *testing.T) {
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	s := newResults(t, srv.URL())
	now := time.Now().Truncate(time.Millisecond)

	pending := &backends.Result{ID: "legacy-pending", Route: "orders", Principal: "p", Status: backends.StatusPending, SubmittedAt: now, UpdatedAt: now}
	legacyHash(t, rdb, s.Layout(), pending)
	got, err := s.Get(ctx, pending.ID)
	if err != nil {
		t.Fatalf("Get of a legacy pending record: %v", err)
	}
	if d := cmp.Diff(pending, got); d != "" {
		t.Errorf("legacy pending record (-written +read):\n%s", d)
	}
	done := *pending
	done.Status, done.Attempts, done.CompletedAt, done.StatusCode, done.Body = backends.StatusCompleted, 1, now, 200, []byte("ok")
	if err := s.Update(ctx, &done, time.Hour); err != nil {
		t.Fatalf("Update over a legacy pending record: %v", err)
	}
	if got, err := s.Get(ctx, pending.ID); err != nil || got.Status != backends.StatusCompleted || string(got.Body) != "ok" {
		t.Errorf("after Update: %+v, %v", got, err)
	}

	final := &backends.Result{ID: "legacy-done", Route: "orders", Status: backends.StatusFailed, Attempts: 3,
		CompletedAt: now, UpdatedAt: now, Error: "upstream answered 500", StatusCode: 500,
		Headers: []backends.Header{{Name: "X-A", Value: "1"}}, Body: []byte("boom\x00")}
	legacyHash(t, rdb, s.Layout(), final)
	got, err = s.Get(ctx, final.ID)
	if err != nil {
		t.Fatalf("Get of a legacy finished record: %v", err)
	}
	if d := cmp.Diff(final, got); d != "" {
		t.Errorf("legacy finished record (-written +read):\n%s", d)
	}
	late := *final
	late.Status, late.Body = backends.StatusCompleted, []byte("late")
	for _, st := range []backends.Status{backends.StatusProcessing, backends.StatusCompleted} {
		late.Status = st
		if err := s.Update(ctx, &late, time.Hour); !errors.Is(err, backends.ErrFinished) {
			t.Errorf("Update(%s) over a legacy finished record: %v, want ErrFinished", st, err)
		}
	}
	if got, err := s.Get(ctx, final.ID); err != nil || string(got.Body) != "boom\x00" {
		t.Errorf("legacy finished record after late writes: %+v, %v", got, err)
	}
}

func TestRecordValue(t *testing.T) {
	now := time.Unix(1700000000, 123000000).UTC()
	for _, r := range []*backends.Result{
		{ID: "a", Status: backends.StatusPending},
		{ID: "b", Route: "orders", Principal: "sha256:x", Status: backends.StatusCompleted, Attempts: 2,
			SubmittedAt: now, StartedAt: now, UpdatedAt: now, CompletedAt: now, StatusCode: 201,
			Headers: []backends.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "Set-Cookie", Value: "a=b"}},
			Body:    []byte("{}\x00\xff\n")},
		{ID: "c", Status: backends.StatusPending, Attempts: 2, Error: "attempt 2: upstream answered 503",
			History: []backends.Attempt{
				{Number: 1, At: now, StatusCode: 502, Error: "upstream answered 502 Bad Gateway"},
				{Number: 2, At: now.Add(time.Second), Error: "dial tcp: connection refused"},
				{Number: 2, At: now.Add(2 * time.Second), StatusCode: 503, Error: "asked to wait", Uncounted: true},
			}},
	} {
		v := appendValue([]byte("junk"), r)
		got, err := decodeValue(r.ID, v[len("junk"):])
		if err != nil {
			t.Fatalf("decodeValue: %v", err)
		}
		if d := cmp.Diff(r, got); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
	}
	// A record without history keeps format 1, which earlier releases read.
	if v := appendValue(nil, &backends.Result{ID: "a", Status: backends.StatusCompleted}); v[0] != recordFormat {
		t.Errorf("a record without history is written in format %d, want %d", v[0], recordFormat)
	}
	for _, bad := range []string{"", "\x02", "\x01", "\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00\x00\x00\x07\x00", "\x01\x05abc", "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05"} {
		if _, err := decodeValue("x", []byte(bad)); !errors.Is(err, errBadRecord) {
			t.Errorf("decodeValue(%q) = %v, want errBadRecord", bad, err)
		}
	}
}

func FuzzDecodeRecordValue(f *testing.F) {
	v := appendValue(nil, &backends.Result{ID: "x", Status: backends.StatusCompleted, StatusCode: 200,
		Headers: []backends.Header{{Name: "A", Value: "b"}}, Body: []byte("body")})
	f.Add(v)
	f.Add(appendValue(nil, &backends.Result{ID: "x", Status: backends.StatusFailed, Attempts: 2,
		History: []backends.Attempt{{Number: 1, StatusCode: 500, Error: "e"}, {Number: 2, Uncounted: true}}}))
	f.Add([]byte("\x01\x00"))
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeValue("x", v)
		if err != nil {
			return
		}
		again, err := decodeValue("x", appendValue(nil, r))
		if err != nil {
			t.Fatalf("a re-encoded record does not decode: %v", err)
		}
		if d := cmp.Diff(r, again); d != "" {
			t.Fatalf("decode, encode, decode changed the record (-first +second):\n%s", d)
		}
	})
}

// Concurrent writes share round trips: far fewer script calls than writes.
func TestConcurrentWritesShareRoundTrips(t *testing.T) {
	own := testredis.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: own.Addr()})
	defer rdb.Close()
	s := newResults(t, own.URL())
	ctx := context.Background()
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 400
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := &backends.Result{ID: fmt.Sprint("job-", i), Status: backends.StatusCompleted, CompletedAt: time.Now(), Body: []byte("x")}
			if err := s.Update(ctx, r, time.Hour); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for line := range strings.SplitSeq(info, "\n") {
		for _, c := range []string{"cmdstat_evalsha:", "cmdstat_eval:"} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), c); ok {
				var k int
				fmt.Sscanf(rest, "calls=%d", &k)
				calls += k
			}
		}
	}
	if calls == 0 || calls >= n {
		t.Errorf("%d concurrent updates made %d script calls; want them grouped", n, calls)
	}
	for i := range n {
		if r, err := s.Get(ctx, fmt.Sprint("job-", i)); err != nil || r.Status != backends.StatusCompleted {
			t.Fatalf("job-%d: %+v, %v", i, r, err)
		}
	}
}
