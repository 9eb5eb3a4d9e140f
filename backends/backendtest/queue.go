// Package backendtest is the conformance suite every queue and result-store
// backend passes. It knows nothing about any particular technology: behaviour a
// backend cannot offer is declared with Capabilities, never assumed.
//
// A backend's test runs it like this:
//
//	func TestQueueConformance(t *testing.T) {
//		backendtest.RunQueue(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
//			q, err := mybackend.New(mybackend.Options{Topic: cfg.Name, Lease: cfg.Lease, MaxDepth: cfg.MaxDepth})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return q
//		}, backendtest.Ordered, backendtest.ExactDepth)
//	}
//
// The suite uses leases of a few hundred milliseconds and TTLs under a second,
// so it runs in seconds; each subtest uses its own queue name. Receive must
// honour the contract's poll interval (≤ 1s), or the suite becomes slow.
package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openhqm/openhqm/backends"
)

// QueueConfig is what the suite asks of a queue. Each distinct Name is an
// isolated queue; calling newQueue again with the same Name opens the same
// queue again (for Durable backends, with the jobs a closed instance left).
type QueueConfig struct {
	Name          string
	MaxDepth      int           // 0: the suite does not rely on a bound
	Lease         time.Duration // always set, a few hundred ms
	DeadLetterMax int
}

// Capabilities declare what a backend guarantees beyond the common contract.
type Capabilities uint

const (
	// Ordered: one consumer receives jobs in the order they were enqueued.
	Ordered Capabilities = 1 << iota
	// ExactDepth: Stats counts are exact at every step (not estimates).
	ExactDepth
	// DetectsLeaseLoss: Ack/Nack of a delivery whose lease another consumer
	// took answers ErrLeaseLost.
	DetectsLeaseLoss
	// Durable: jobs outlive the Queue value; a new instance with the same name
	// delivers what a closed one left unacknowledged.
	Durable
)

// DeadLetterLister is implemented by queues whose dead-letter entries the
// suite can read back (newest first). Without it only Stats.DeadLetters is checked.
type DeadLetterLister interface {
	DeadLetters(ctx context.Context, max int) ([]backends.DeadLetter, error)
}

// NewQueueFunc opens a queue for cfg; the suite closes it (closing twice must be safe).
type NewQueueFunc func(t *testing.T, cfg QueueConfig) backends.Queue

const lease = 300 * time.Millisecond

var seq atomic.Int64

func uniqueName(t *testing.T) string {
	s := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	return fmt.Sprintf("bt-%s-%d-%d", s, time.Now().UnixNano()%1e6, seq.Add(1))
}

// NewJob returns a job with a random id and a distinct body; exported so that
// backend-specific tests build jobs the same way.
func NewJob(queue string, n int) *backends.Job {
	var b [16]byte
	rand.Read(b[:])
	return &backends.Job{
		ID:        hex.EncodeToString(b[:]),
		Route:     "orders",
		Endpoint:  "legacy",
		Queue:     queue,
		Method:    "POST",
		Path:      "/api/orders",
		Query:     fmt.Sprintf("n=%d&x=%%20", n),
		Headers:   []backends.Header{{Name: "Content-Type", Value: "application/octet-stream"}, {Name: "X-N", Value: fmt.Sprint(n)}},
		Body:      append([]byte{0, 1, 2, 0xff, '\n'}, []byte(fmt.Sprintf(`{"n":%d}`, n))...),
		Principal: "p1",
		CreatedAt: time.Now().Truncate(time.Microsecond),
	}
}

var jobCmp = []cmp.Option{cmpopts.EquateEmpty()}

type harness struct {
	t    *testing.T
	caps Capabilities
	newQ NewQueueFunc
}

func (h harness) open(t *testing.T, cfg QueueConfig) backends.Queue {
	if cfg.Name == "" {
		cfg.Name = uniqueName(t)
	}
	if cfg.Lease == 0 {
		cfg.Lease = lease
	}
	if cfg.DeadLetterMax == 0 {
		cfg.DeadLetterMax = 100
	}
	q := h.newQ(t, cfg)
	t.Cleanup(func() { q.Close() })
	return q
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// receiveN receives until n deliveries arrived or within expires.
func receiveN(t *testing.T, q backends.Queue, consumer string, n int, within time.Duration) []*backends.Delivery {
	t.Helper()
	ctx := ctxT(t)
	var out []*backends.Delivery
	deadline := time.Now().Add(within)
	for len(out) < n && time.Now().Before(deadline) {
		rctx, cancel := context.WithDeadline(ctx, deadline)
		ds, err := q.Receive(rctx, consumer, n-len(out))
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive: %v", err)
		}
		out = append(out, ds...)
	}
	return out
}

// receiveNone asserts nothing is delivered to consumer for d.
func receiveNone(t *testing.T, q backends.Queue, consumer string, d time.Duration) {
	t.Helper()
	if ds := receiveN(t, q, consumer, 1, d); len(ds) > 0 {
		t.Fatalf("received %d unexpected deliveries (job %s attempt %d)", len(ds), ds[0].Job.ID, ds[0].Attempt)
	}
}

func enqueue(t *testing.T, q backends.Queue, jobs ...*backends.Job) {
	t.Helper()
	for _, j := range jobs {
		if err := q.Enqueue(ctxT(t), j); err != nil {
			t.Fatalf("Enqueue(%s): %v", j.ID, err)
		}
	}
}

func stats(t *testing.T, q backends.Queue) backends.Stats {
	t.Helper()
	s, err := q.Stats(ctxT(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func (h harness) wantStats(t *testing.T, q backends.Queue, want backends.Stats) {
	t.Helper()
	if h.caps&ExactDepth == 0 {
		return
	}
	got := stats(t, q)
	if (want.OldestAge > 0) != (got.OldestAge > 0) {
		t.Errorf("Stats.OldestAge = %v, want %s", got.OldestAge, map[bool]string{true: "> 0", false: "0"}[want.OldestAge > 0])
	}
	got.OldestAge, want.OldestAge = 0, 0
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Stats (-want +got):\n%s", d)
	}
}

// RunQueue runs the queue conformance suite. caps declares what the backend
// guarantees beyond the common contract.
func RunQueue(t *testing.T, newQueue NewQueueFunc, caps ...Capabilities) {
	var c Capabilities
	for _, x := range caps {
		c |= x
	}
	h := harness{t: t, caps: c, newQ: newQueue}
	tests := []struct {
		name string
		run  func(*testing.T, harness)
	}{
		{"RoundTripAndOrder", testOrder},
		{"ReceiveEmptyReturns", testReceiveEmpty},
		{"Ack", testAck},
		{"NackWithDelay", testNack},
		{"LeaseExpiryRedelivers", testLeaseExpiry},
		{"ExtendKeepsLease", testExtend},
		{"DeadLetter", testDeadLetter},
		{"Stats", testStats},
		{"Full", testFull},
		{"Close", testClose},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, h) })
	}
}

func testOrder(t *testing.T, h harness) {
	q := h.open(t, QueueConfig{})
	var jobs []*backends.Job
	for i := range 5 {
		jobs = append(jobs, NewJob("q", i))
	}
	empty := NewJob("q", 99)
	empty.Body, empty.Headers, empty.Query = nil, nil, ""
	jobs = append(jobs, empty)
	enqueue(t, q, jobs...)
	ds := receiveN(t, q, "c1", len(jobs), 5*time.Second)
	if len(ds) != len(jobs) {
		t.Fatalf("received %d jobs, want %d", len(ds), len(jobs))
	}
	got := make(map[string]*backends.Job)
	for i, d := range ds {
		if d.Attempt != 1 {
			t.Errorf("job %s Attempt = %d, want 1", d.Job.ID, d.Attempt)
		}
		if d.Receipt == "" || d.LeaseUntil.IsZero() {
			t.Errorf("delivery %d lacks Receipt or LeaseUntil: %+v", i, d)
		}
		if h.caps&Ordered != 0 && d.Job.ID != jobs[i].ID {
			t.Errorf("delivery %d is job %s, want %s (FIFO)", i, d.Job.ID, jobs[i].ID)
		}
		got[d.Job.ID] = d.Job
	}
	for _, j := range jobs {
		if d := cmp.Diff(j, got[j.ID], jobCmp...); d != "" {
			t.Errorf("job %s round trip (-sent +received):\n%s", j.ID, d)
		}
	}
}

func testReceiveEmpty(t *testing.T, h harness) {
	q := h.open(t, QueueConfig{})
	start := time.Now()
	ds, err := q.Receive(ctxT(t), "c1", 10)
	if err != nil || len(ds) != 0 {
		t.Fatalf("Receive on empty = %d deliveries, %v; want none, nil", len(ds), err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Receive on an empty queue blocked %v; the contract is a poll interval ≤ 1s", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ds, err := q.Receive(ctx, "c1", 10); len(ds) != 0 || (err != nil && !errors.Is(err, context.Canceled)) {
		t.Fatalf("Receive with a cancelled ctx = %d deliveries, %v", len(ds), err)
	}
}

func testAck(t *testing.T, h harness) {
	q := h.open(t, QueueConfig{})
	j := NewJob("q", 1)
	enqueue(t, q, j)
	ds := receiveN(t, q, "c1", 1, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("received %d, want 1", len(ds))
	}
	if err := q.Ack(ctxT(t), ds[0]); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	h.wantStats(t, q, backends.Stats{})
	receiveNone(t, q, "c2", 3*lease)
}

func testNack(t *testing.T, h harness) {
	q := h.open(t, QueueConfig{})
	j := NewJob("q", 1)
	enqueue(t, q, j)
	ds := receiveN(t, q, "c1", 1, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("received %d, want 1", len(ds))
	}
	const delay = 700 * time.Millisecond
	nacked := time.Now()
	if err := q.Nack(ctxT(t), ds[0], delay); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	h.wantStats(t, q, backends.Stats{Depth: 1, Delayed: 1, OldestAge: 1})
	ds = receiveN(t, q, "c1", 1, 10*time.Second)
	if len(ds) != 1 {
		t.Fatalf("nacked job not delivered again")
	}
	if el := time.Since(nacked); el < delay {
		t.Errorf("nacked job delivered after %v, before its delay %v", el, delay)
	}
	if ds[0].Attempt != 2 || ds[0].Job.ID != j.ID {
		t.Errorf("redelivery = job %s attempt %d, want %s attempt 2", ds[0].Job.ID, ds[0].Attempt, j.ID)
	}
	if d := cmp.Diff(j, ds[0].Job, jobCmp...); d != "" {
		t.Errorf("job after nack (-sent +received):\n%s", d)
	}
	// A nack without delay makes it available again at once, attempt 3.
	if err := q.Nack(ctxT(t), ds[0], 0); err != nil {
		t.Fatalf("Nack(0): %v", err)
	}
	ds = receiveN(t, q, "c2", 1, 5*time.Second)
	if len(ds) != 1 || ds[0].Attempt != 3 {
		t.Fatalf("after Nack(0): %d deliveries (want 1 with attempt 3)", len(ds))
	}
	if err := q.Ack(ctxT(t), ds[0]); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	h.wantStats(t, q, backends.Stats{})
}

func testLeaseExpiry(t *testing.T, h harness) {
	q := h.open(t, QueueConfig{})
	j := NewJob("q", 1)
	enqueue(t, q, j)
	first := receiveN(t, q, "c1", 1, 5*time.Second)
	if len(first) != 1 {
		t.Fatalf("received %d, want 1", len(first))
	}
	h.wantStats(t, q, backends.Stats{Depth: 1, Pending: 1, OldestAge: 1})
	// c1 dies: it never acks. c2 gets the job once the lease has expired.
	ds := receiveN(t, q, "c2", 1, 10*time.Second)
	if len(ds) != 1 {
		t.Fatalf("job not redelivered after the lease expired")
	}
	if time.Now().Before(first[0].LeaseUntil) {
		t.Errorf("redelivered before the first lease ended (%v)", first[0].LeaseUntil)
	}
	if ds[0].Job.ID != j.ID || ds[0].Attempt != 2 {
		t.Errorf("redelivery = job %s attempt %d, want %s attempt 2", ds[0].Job.ID, ds[0].Attempt, j.ID)
	}
	err := q.Ack(ctxT(t), first[0])
	if h.caps&DetectsLeaseLoss != 0 && !errors.Is(err, backends.ErrLeaseLost) {
		t.Errorf("Ack after the lease was taken over = %v, want ErrLeaseLost", err)
	}
	if h.caps&DetectsLeaseLoss != 0 {
		if err := q.Nack(ctxT(t), first[0], 0); !errors.Is(err, backends.ErrLeaseLost) {
			t.Errorf("Nack after the lease was taken over = %v, want ErrLeaseLost", err)
		}
	}
	if err := q.Ack(ctxT(t), ds[0]); err != nil {
		t.Fatalf("Ack by the new holder: %v", err)
	}
	h.wantStats(t, q, backends.Stats{})
	receiveNone(t, q, "c1", 3*lease)
}

func testExtend(t *testing.T, h harness) {
	const lease = time.Second // extended every 167ms: six extensions may come late on a loaded machine
	q := h.open(t, QueueConfig{Lease: lease})
	enqueue(t, q, NewJob("q", 1))
	ds := receiveN(t, q, "c1", 1, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("received %d, want 1", len(ds))
	}
	d := ds[0]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var extendErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(lease / 6)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				before := d.LeaseUntil
				if err := q.Extend(context.Background(), d, lease); err != nil {
					extendErr.Store(err)
					return
				}
				if d.LeaseUntil.Before(before) {
					extendErr.Store(fmt.Errorf("LeaseUntil moved back from %v to %v", before, d.LeaseUntil))
				}
			}
		}
	}()
	got := receiveN(t, q, "c2", 1, 3*lease)
	close(stop)
	wg.Wait()
	if err := extendErr.Load(); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("an extended job was redelivered to c2 (attempt %d)", got[0].Attempt)
	}
	if err := q.Ack(ctxT(t), d); err != nil {
		t.Fatalf("Ack after extending: %v", err)
	}
}

func testDeadLetter(t *testing.T, h harness) {
	q := h.open(t, QueueConfig{})
	j := NewJob("q", 1)
	enqueue(t, q, j, NewJob("q", 2))
	ds := receiveN(t, q, "c1", 1, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("received %d, want 1", len(ds))
	}
	dl := backends.DeadLetter{Reason: "upstream answered 500", Attempts: 5, LastStatus: 500, LastBody: []byte("boom\x00")}
	if err := q.DeadLetter(ctxT(t), ds[0], dl); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	h.wantStats(t, q, backends.Stats{Depth: 1, DeadLetters: 1, OldestAge: 1})
	if s := stats(t, q); s.DeadLetters != 1 {
		t.Errorf("Stats.DeadLetters = %d, want 1", s.DeadLetters)
	}
	if l, ok := q.(DeadLetterLister); ok {
		got, err := l.DeadLetters(ctxT(t), 10)
		if err != nil {
			t.Fatalf("DeadLetters: %v", err)
		}
		if len(got) != 1 {
			t.Fatalf("DeadLetters = %d entries, want 1", len(got))
		}
		if got[0].At.IsZero() {
			t.Errorf("dead letter has no time")
		}
		want := dl
		want.Job, want.At = ds[0].Job, got[0].At
		if d := cmp.Diff(want, got[0], jobCmp...); d != "" {
			t.Errorf("dead letter (-want +got):\n%s", d)
		}
	}
	// The dead-lettered job is acknowledged: only job 2 remains.
	rest := receiveN(t, q, "c2", 1, 5*time.Second)
	if len(rest) != 1 || rest[0].Job.ID == j.ID {
		t.Fatalf("after dead-lettering, received %d jobs (want only the other one)", len(rest))
	}
	if err := q.Ack(ctxT(t), rest[0]); err != nil {
		t.Fatal(err)
	}
	receiveNone(t, q, "c2", 3*lease)
}

func testStats(t *testing.T, h harness) {
	q := h.open(t, QueueConfig{})
	h.wantStats(t, q, backends.Stats{})
	enqueue(t, q, NewJob("q", 1), NewJob("q", 2), NewJob("q", 3))
	h.wantStats(t, q, backends.Stats{Depth: 3, OldestAge: 1})
	time.Sleep(20 * time.Millisecond)
	if s := stats(t, q); s.OldestAge <= 0 || s.Depth < 1 {
		t.Errorf("Stats = %+v, want a depth and an oldest age", s)
	}
	ds := receiveN(t, q, "c1", 2, 5*time.Second)
	if len(ds) != 2 {
		t.Fatalf("received %d, want 2", len(ds))
	}
	h.wantStats(t, q, backends.Stats{Depth: 3, Pending: 2, OldestAge: 1})
	if err := q.Nack(ctxT(t), ds[0], time.Hour); err != nil {
		t.Fatal(err)
	}
	h.wantStats(t, q, backends.Stats{Depth: 3, Pending: 1, Delayed: 1, OldestAge: 1})
	if err := q.Ack(ctxT(t), ds[1]); err != nil {
		t.Fatal(err)
	}
	h.wantStats(t, q, backends.Stats{Depth: 2, Delayed: 1, OldestAge: 1})
}

func testFull(t *testing.T, h harness) {
	q := h.open(t, QueueConfig{MaxDepth: 3})
	enqueue(t, q, NewJob("q", 1), NewJob("q", 2), NewJob("q", 3))
	if err := q.Enqueue(ctxT(t), NewJob("q", 4)); !errors.Is(err, backends.ErrFull) {
		t.Fatalf("Enqueue at max depth = %v, want ErrFull", err)
	}
	ds := receiveN(t, q, "c1", 2, 5*time.Second)
	if len(ds) != 2 {
		t.Fatalf("received %d, want 2", len(ds))
	}
	// Leased and delayed jobs still count towards the depth.
	if err := q.Nack(ctxT(t), ds[0], time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctxT(t), NewJob("q", 5)); !errors.Is(err, backends.ErrFull) {
		t.Fatalf("Enqueue with leased and delayed jobs at max depth = %v, want ErrFull", err)
	}
	if err := q.Ack(ctxT(t), ds[1]); err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, NewJob("q", 6))
}

func testClose(t *testing.T, h harness) {
	name := uniqueName(t)
	q := h.open(t, QueueConfig{Name: name})
	a, b := NewJob("q", 1), NewJob("q", 2)
	enqueue(t, q, a, b)
	ds := receiveN(t, q, "c1", 1, 5*time.Second)
	if len(ds) != 1 {
		t.Fatalf("received %d, want 1", len(ds))
	}
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := q.Receive(ctxT(t), "c1", 1); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Receive after Close = %v, want ErrClosed", err)
	}
	if err := q.Enqueue(ctxT(t), NewJob("q", 3)); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if h.caps&Durable == 0 {
		return
	}
	q2 := h.open(t, QueueConfig{Name: name})
	got := receiveN(t, q2, "c2", 2, 10*time.Second)
	attempts := map[string]int{}
	for _, d := range got {
		attempts[d.Job.ID] = d.Attempt
		if err := q2.Ack(ctxT(t), d); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	want := map[string]int{a.ID: 2, b.ID: 1}
	if ds[0].Job.ID == b.ID {
		want = map[string]int{a.ID: 1, b.ID: 2}
	}
	if d := cmp.Diff(want, attempts); d != "" {
		t.Errorf("jobs (id → attempt) delivered by a new instance (-want +got):\n%s", d)
	}
}

func testConcurrent(t *testing.T, h harness) {
	q := h.open(t, QueueConfig{Lease: 5 * time.Second})
	const producers, per = 8, 50
	sent := make(map[string]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, producers+2)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				j := NewJob("q", p*per+i)
				if err := q.Enqueue(context.Background(), j); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				sent[j.ID] = true
				mu.Unlock()
			}
		}()
	}
	got := make(map[string]int)
	var cwg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for c := range 2 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for ctx.Err() == nil {
				ds, err := q.Receive(ctx, fmt.Sprintf("c%d", c), 16)
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
				for _, d := range ds {
					if err := q.Ack(ctx, d); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					got[d.Job.ID]++
					done := len(got) == producers*per
					mu.Unlock()
					if done {
						cancel()
					}
				}
			}
		}()
	}
	wg.Wait()
	cwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent use: %v", err)
	}
	if len(got) != producers*per {
		t.Fatalf("received %d distinct jobs, want %d", len(got), producers*per)
	}
	for id := range sent {
		if got[id] != 1 {
			t.Errorf("job %s delivered %d times", id, got[id])
		}
	}
}
