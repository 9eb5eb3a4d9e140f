package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/backendtest"
	"github.com/openhqm/openhqm/internal/batch"
	"github.com/openhqm/openhqm/internal/testredis"
)

// resultEnqueuer is the method a submitter looks for, by type assertion on
// the queue it is given, to store a job and its pending record in one round
// trip (the router declares the same interface). A signature that drifted
// would make that assertion fail silently and fall back to two calls, so it
// is pinned here; a ResultsQueue also stays a complete backends.Queue.
type resultEnqueuer interface {
	EnqueueWithResult(ctx context.Context, job *backends.Job, pending *backends.Result) error
}

var (
	_ resultEnqueuer = (*ResultsQueue)(nil)
	_ backends.Queue = (*ResultsQueue)(nil)
)

var prefixSeq atomic.Int64

// resultsPair returns a queue built with the layout of a result store on the
// same server, and the store, each with names of its own.
func resultsPair(t testing.TB, url string, o Options, ro ResultsOptions) (*ResultsQueue, *Results) {
	t.Helper()
	if ro.Prefix == "" {
		ro.Prefix = fmt.Sprintf("rq%d-%d:", time.Now().UnixNano(), prefixSeq.Add(1))
	}
	ro.URL = url
	store, err := NewResults(context.Background(), ro)
	if err != nil {
		t.Fatalf("NewResults: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	l := store.Layout()
	o.Results = &l
	q, ok := newQueue(t, url, o).WithResults()
	if !ok {
		t.Fatal("WithResults: false for a queue built with Options.Results")
	}
	return q, store
}

func pendingOf(job *backends.Job) *backends.Result {
	return &backends.Result{
		ID: job.ID, Route: job.Route, Principal: job.Principal, Status: backends.StatusPending,
		SubmittedAt: job.CreatedAt, UpdatedAt: job.CreatedAt,
	}
}

var batchModes = []struct {
	name  string
	batch BatchOptions
}{
	{"batched", BatchOptions{}},
	{"unbatched", BatchOptions{Disabled: true}},
}

// Without Options.Results the queue has no EnqueueWithResult at all, so a
// submitter keeps using Create then Enqueue; with it, the ResultsQueue
// handed over as a backends.Queue has it.
func TestResultsQueueOnlyWithOptions(t *testing.T) {
	var plain backends.Queue = newQueue(t, srv.URL(), Options{Stream: stream(t)})
	if _, ok := plain.(resultEnqueuer); ok {
		t.Error("a *Queue has EnqueueWithResult")
	}
	if rq, ok := plain.(*Queue).WithResults(); ok || rq != nil {
		t.Errorf("WithResults on a queue without Options.Results = %v, %v; want nil, false", rq, ok)
	}
	rq, _ := resultsPair(t, srv.URL(), Options{Stream: stream(t)}, ResultsOptions{})
	var q backends.Queue = rq
	if _, ok := q.(resultEnqueuer); !ok {
		t.Error("a ResultsQueue handed over as a backends.Queue has no EnqueueWithResult")
	}
}

// EnqueueWithResult writes the same hash, fields and TTL as Results.Create,
// the store reads it back as pending, and the job is received as usual.
func TestEnqueueWithResult(t *testing.T) {
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	for _, bm := range batchModes {
		t.Run(bm.name, func(t *testing.T) {
			pendingTTL := 90 * time.Minute
			q, store := resultsPair(t, srv.URL(), Options{Stream: stream(t), Group: "g", Batch: bm.batch},
				ResultsOptions{PendingTTL: pendingTTL})
			job := backendtest.NewJob("q", 1)
			job.Headers = append(job.Headers, backends.Header{Name: "X-Latin1", Value: "caf\xe9"})
			pending := pendingOf(job)
			if err := q.EnqueueWithResult(ctx, job, pending); err != nil {
				t.Fatalf("EnqueueWithResult: %v", err)
			}

			got, err := store.Get(ctx, job.ID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if d := cmp.Diff(pending, got); d != "" {
				t.Errorf("record (-want +got):\n%s", d)
			}

			// Byte for byte what Create writes for the same result.
			twin := *pending
			twin.ID = job.ID + "-twin"
			if err := store.Create(ctx, &twin); err != nil {
				t.Fatal(err)
			}
			l := store.Layout()
			want, err := rdb.Get(ctx, l.key(twin.ID)).Result()
			if err != nil {
				t.Fatal(err)
			}
			have, err := rdb.Get(ctx, l.key(job.ID)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, have); d != "" {
				t.Errorf("record (-Create +EnqueueWithResult):\n%s", d)
			}
			for _, id := range []string{twin.ID, job.ID} {
				ttl, err := rdb.PTTL(ctx, l.key(id)).Result()
				if err != nil || ttl > pendingTTL || ttl < pendingTTL-time.Minute {
					t.Errorf("TTL of %s = %v, %v; want about %v", id, ttl, err, pendingTTL)
				}
			}

			ds := receive(t, q.Queue, "w", 1, 5*time.Second)
			if len(ds) != 1 {
				t.Fatalf("received %d jobs, want 1", len(ds))
			}
			if d := cmp.Diff(job, ds[0].Job, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("job (-sent +received):\n%s", d)
			}
			if ds[0].Attempt != 1 {
				t.Errorf("attempt %d, want 1", ds[0].Attempt)
			}
			if err := q.Ack(ctx, ds[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A refused job leaves no record: at MaxDepth nothing is written, and a
// record that is not the job's pending record is refused before Redis.
func TestEnqueueWithResultWritesNothingWhenRefused(t *testing.T) {
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	for _, bm := range batchModes {
		t.Run(bm.name, func(t *testing.T) {
			name := stream(t)
			q, store := resultsPair(t, srv.URL(), Options{Stream: name, MaxDepth: 1, Batch: bm.batch}, ResultsOptions{})
			if err := q.EnqueueWithResult(ctx, backendtest.NewJob("q", 0), pendingOf(backendtest.NewJob("q", 0))); !errors.Is(err, errRecordMismatch) {
				t.Errorf("record of another job: err %v, want %v", err, errRecordMismatch)
			}
			done := backendtest.NewJob("q", 0)
			finished := pendingOf(done)
			finished.Status = backends.StatusCompleted
			if err := q.EnqueueWithResult(ctx, done, finished); !errors.Is(err, errRecordMismatch) {
				t.Errorf("completed record: err %v, want %v", err, errRecordMismatch)
			}
			if err := q.Enqueue(ctx, backendtest.NewJob("q", 1)); err != nil {
				t.Fatal(err)
			}
			job := backendtest.NewJob("q", 2)
			if err := q.EnqueueWithResult(ctx, job, pendingOf(job)); !errors.Is(err, backends.ErrFull) {
				t.Fatalf("at MaxDepth: err %v, want ErrFull", err)
			}
			if _, err := store.Get(ctx, job.ID); !errors.Is(err, backends.ErrNotFound) {
				t.Errorf("record of a refused job: Get err %v, want ErrNotFound", err)
			}
			if _, err := store.Get(ctx, done.ID); !errors.Is(err, backends.ErrNotFound) {
				t.Errorf("record of a mismatched job: Get err %v, want ErrNotFound", err)
			}
			if n, err := rdb.XLen(ctx, name).Result(); err != nil || n != 1 {
				t.Errorf("stream length %d, %v; want 1", n, err)
			}
		})
	}
}

// Concurrent plain and combined enqueues share grouped round trips; each
// caller gets its own answer, the bound stays exact, and exactly the accepted
// combined jobs have records.
func TestEnqueueWithResultGrouped(t *testing.T) {
	ctx := context.Background()
	const callers, depth = 120, 50
	name := stream(t)
	q, store := resultsPair(t, srv.URL(), Options{Stream: name, Group: "g", MaxDepth: depth,
		Batch: BatchOptions{MaxJobs: 16, Linger: time.Millisecond}}, ResultsOptions{})
	type outcome struct {
		job      *backends.Job
		combined bool
		err      error
	}
	out := make([]outcome, callers)
	var wg sync.WaitGroup
	for i := range out {
		out[i] = outcome{job: backendtest.NewJob("q", i), combined: i%3 != 0}
		wg.Go(func() {
			o := &out[i]
			if o.combined {
				o.err = q.EnqueueWithResult(ctx, o.job, pendingOf(o.job))
			} else {
				o.err = q.Enqueue(ctx, o.job)
			}
		})
	}
	wg.Wait()
	accepted := map[string]bool{}
	for _, o := range out {
		switch {
		case o.err == nil:
			accepted[o.job.ID] = true
		case !errors.Is(o.err, backends.ErrFull):
			t.Fatalf("job %s: %v", o.job.ID, o.err)
		}
		_, err := store.Get(ctx, o.job.ID)
		if hasRecord := err == nil; hasRecord != (o.combined && o.err == nil) {
			t.Errorf("job %s (combined %v, err %v): Get err %v", o.job.ID, o.combined, o.err, err)
		}
	}
	if len(accepted) != depth {
		t.Fatalf("accepted %d jobs, want exactly MaxDepth %d", len(accepted), depth)
	}
	ds := receive(t, q.Queue, "w", depth, 10*time.Second)
	got := map[string]bool{}
	for _, d := range ds {
		got[d.Job.ID] = true
	}
	if d := cmp.Diff(accepted, got); d != "" {
		t.Errorf("received jobs (-accepted +received):\n%s", d)
	}
}

// An unreachable Redis answers ErrUnavailable, a closed queue ErrClosed.
func TestEnqueueWithResultErrors(t *testing.T) {
	s := testredis.Start(t)
	q, _ := resultsPair(t, s.URL(), Options{Stream: "jobs"}, ResultsOptions{})
	s.Kill()
	job := backendtest.NewJob("q", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.EnqueueWithResult(ctx, job, pendingOf(job)); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Redis down: err %v, want ErrUnavailable", err)
	}
	q.Close()
	if err := q.EnqueueWithResult(ctx, job, pendingOf(job)); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("after Close: err %v, want ErrClosed", err)
	}
}

// A ResultsQueue is still a complete queue.
func TestResultsQueueConformance(t *testing.T) {
	backendtest.RunQueue(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		q, _ := resultsPair(t, srv.URL(), Options{Stream: cfg.Name, Group: "g", MaxDepth: cfg.MaxDepth, Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax}, ResultsOptions{})
		return q
	}, backendtest.Ordered, backendtest.ExactDepth, backendtest.DetectsLeaseLoss, backendtest.Durable)
}

func TestResultAckerConformance(t *testing.T) {
	for _, bm := range batchModes {
		t.Run(bm.name, func(t *testing.T) {
			backendtest.RunResultAcker(t, func(t *testing.T, cfg backendtest.QueueConfig) (backendtest.ResultAcker, backends.ResultStore) {
				return resultsPair(t, srv.URL(), Options{Stream: cfg.Name, Group: "g", Lease: cfg.Lease, DeadLetterMax: cfg.DeadLetterMax, Batch: bm.batch},
					ResultsOptions{Batch: bm.batch})
			})
		})
	}
}

// AckWithResult writes the record byte for byte as Update does.
func TestAckWithResultWritesWhatUpdateWrites(t *testing.T) {
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	q, store := resultsPair(t, srv.URL(), Options{Stream: stream(t), Group: "g"}, ResultsOptions{})
	job := backendtest.NewJob("q", 1)
	if err := q.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	ds := receive(t, q.Queue, "w", 1, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("received %d jobs, want 1", len(ds))
	}
	now := time.Now()
	r := &backends.Result{ID: job.ID, Route: "orders", Status: backends.StatusCompleted, Attempts: 1,
		StartedAt: now, UpdatedAt: now, CompletedAt: now, StatusCode: 201, Body: []byte("done\x00")}
	if err := q.AckWithResult(ctx, ds[0], r, time.Hour); err != nil {
		t.Fatal(err)
	}
	twin := *r
	twin.ID = job.ID + "-twin"
	if err := store.Update(ctx, &twin, time.Hour); err != nil {
		t.Fatal(err)
	}
	l := store.Layout()
	for _, k := range []func(string) string{l.key, l.tomb} {
		want, err := rdb.Get(ctx, k(twin.ID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		have, err := rdb.Get(ctx, k(job.ID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want != have {
			t.Errorf("%s = %q, want %q as Update writes", k(job.ID), have, want)
		}
		wantTTL, _ := rdb.PExpireTime(ctx, k(twin.ID)).Result()
		haveTTL, _ := rdb.PExpireTime(ctx, k(job.ID)).Result()
		if wantTTL != haveTTL || haveTTL <= 0 {
			t.Errorf("%s expires at %v, want %v as Update sets", k(job.ID), haveTTL, wantTTL)
		}
	}
}

// A consumer's range of pending entries may hold more of its deliveries
// than the settle script reads at once: it then checks the rest one by one.
func TestAckBeyondTheReadRange(t *testing.T) {
	defer func(n int) { pendingSlack = n }(pendingSlack)
	pendingSlack = 0
	ctx := context.Background()
	q := newQueue(t, srv.URL(), Options{Stream: stream(t), Group: "g"})
	for i := range 6 {
		if err := q.Enqueue(ctx, backendtest.NewJob("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	ds := receive(t, q, "w", 6, 5*time.Second)
	if len(ds) != 6 {
		t.Fatalf("received %d jobs, want 6", len(ds))
	}
	// One round trip acks the second and the fifth: reading w's pending
	// entries between them finds the third and the fourth first.
	var reqs []*batch.Call[settleItem]
	for _, d := range []*backends.Delivery{ds[1], ds[4]} {
		id, count, _, consumer, err := q.parseReceipt(d.Receipt)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, &batch.Call[settleItem]{Ctx: ctx, Item: settleItem{entry: id, count: count, consumer: consumer}})
	}
	q.settleBatch(ctx, q.shards[0], reqs)
	for i, r := range reqs {
		if r.Err != nil {
			t.Errorf("ack %d: %v", i, r.Err)
		}
	}
	if st, err := q.Stats(ctx); err != nil || st.Depth != 4 || st.Pending != 4 {
		t.Fatalf("after two acks: %+v, %v; want 4 left, all leased", st, err)
	}
	for _, d := range []*backends.Delivery{ds[0], ds[2], ds[3], ds[5]} {
		if err := q.Ack(ctx, d); err != nil {
			t.Errorf("Ack: %v", err)
		}
	}
	if st, err := q.Stats(ctx); err != nil || st.Depth != 0 {
		t.Fatalf("after every ack: %+v, %v; want empty", st, err)
	}
}

// Only a store on the same Redis with the queue's layout takes records
// written by AckWithResult.
func TestWritesResults(t *testing.T) {
	q, store := resultsPair(t, srv.URL(), Options{Stream: stream(t)}, ResultsOptions{})
	if !q.WritesResults(store) {
		t.Error("WritesResults(its own store) = false")
	}
	other, err := NewResults(context.Background(), ResultsOptions{URL: srv.URL(), Prefix: store.Layout().Prefix + "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	elsewhere := testredis.Start(t)
	far, err := NewResults(context.Background(), ResultsOptions{URL: elsewhere.URL(), Prefix: store.Layout().Prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	for name, s := range map[string]any{"another prefix": other, "another server": far, "not a Redis store": struct{}{}, "nil": nil} {
		if q.WritesResults(s) {
			t.Errorf("WritesResults(%s) = true", name)
		}
	}
}
