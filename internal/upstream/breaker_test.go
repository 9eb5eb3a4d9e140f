package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/config"
)

// clock is a settable now for a breaker; its timers still run on real time,
// so tests use short open_for values and wait on channels, never on sleeps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBreakerOpensAfterConsecutiveFailuresOnly(t *testing.T) {
	var transitions []string
	b := newBreaker(3, time.Hour, func(from, to BreakerState) { transitions = append(transitions, from.String()+"→"+to.String()) })
	defer b.stop()
	clk := &clock{t: time.Unix(1000, 0)}
	b.now = clk.now
	b.done(false, true)
	b.done(false, true)
	b.done(false, false) // a success in between resets the count
	b.done(false, true)
	b.done(false, true)
	if _, _, ok := b.allow(); !ok || b.current() != Closed {
		t.Fatal("opened before three consecutive failures")
	}
	b.done(false, true)
	probe, retry, ok := b.allow()
	if ok || probe || retry != time.Hour {
		t.Fatalf("after three failures: ok %v probe %v retry %v, want refused for 1h", ok, probe, retry)
	}
	clk.add(time.Hour)
	if probe, _, ok := b.allow(); !ok || !probe {
		t.Fatal("open_for passed: the next request must be the probe")
	}
	if _, _, ok := b.allow(); ok {
		t.Fatal("a second request went through while the probe was in flight")
	}
	b.done(true, true) // the probe failed: open again
	if _, retry, ok := b.allow(); ok || retry != time.Hour {
		t.Fatal("a failed probe must reopen the breaker")
	}
	clk.add(time.Hour)
	probe, _, _ = b.allow()
	b.done(probe, false)
	if _, _, ok := b.allow(); !ok || b.current() != Closed {
		t.Fatal("a successful probe must close the breaker")
	}
	want := []string{"closed→open", "open→half_open", "half_open→open", "open→half_open", "half_open→closed"}
	if len(transitions) != len(want) {
		t.Fatalf("transitions %v, want %v", transitions, want)
	}
	for i := range want {
		if transitions[i] != want[i] {
			t.Fatalf("transitions %v, want %v", transitions, want)
		}
	}
}

// TestBreakerJobsWaitAndTakeTurnsProbing: while open, jobs wait without
// being sent; after open_for the oldest waiting job probes; a failed probe
// sends that job to the back of the line (so a job failing for reasons of
// its own cannot keep the breaker open); a successful one releases all.
func TestBreakerJobsWaitAndTakeTurnsProbing(t *testing.T) {
	b := newBreaker(1, 20*time.Millisecond, nil)
	defer b.stop()
	b.done(false, true) // open
	type outcome struct {
		job   int
		probe bool
	}
	turns := make(chan outcome, 16)
	var wg sync.WaitGroup
	start := func(job int) {
		wg.Go(func() {
			p, err := b.wait(context.Background())
			if err != nil {
				t.Error(err)
			}
			turns <- outcome{job, p}
		})
	}
	start(1)
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.jobs) == 1 })
	start(2)
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.jobs) == 2 })

	first := <-turns
	if !first.probe || first.job != 1 {
		t.Fatalf("first turn %+v, want job 1 probing", first)
	}
	b.done(true, true) // job 1's probe failed; it waits again, behind job 2
	start(1)
	second := <-turns
	if !second.probe || second.job != 2 {
		t.Fatalf("second turn %+v, want job 2 probing", second)
	}
	b.done(true, false) // job 2's probe succeeded: closed, job 1 released
	third := <-turns
	if third.probe || third.job != 1 {
		t.Fatalf("third turn %+v, want job 1 released without probing", third)
	}
	wg.Wait()
	if p, err := b.wait(context.Background()); p || err != nil {
		t.Errorf("closed breaker: wait = %v, %v", p, err)
	}
}

func TestBreakerWaitEndsWithContext(t *testing.T) {
	b := newBreaker(1, time.Hour, nil)
	defer b.stop()
	b.done(false, true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.wait(ctx); done <- err }()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.jobs) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("wait after cancel: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.jobs) != 0 {
		t.Error("a cancelled job stays in the line")
	}
}

// TestLimiterServesSyncRequestsFirst: a released slot goes to a waiting
// sync request before a job that waited longer.
func TestLimiterServesSyncRequestsFirst(t *testing.T) {
	l := newLimiter(1, 4)
	if _, err := l.acquire(time.Now().Add(time.Second), Background); err != nil {
		t.Fatal(err)
	}
	got := make(chan Priority, 2)
	var wg sync.WaitGroup
	for _, p := range []Priority{Background, Interactive} {
		wg.Go(func() {
			if _, err := l.acquire(time.Now().Add(5*time.Second), p); err != nil {
				t.Error(err)
				return
			}
			got <- p
		})
		waitFor(t, func() bool { i, b := l.pending(); return int(p) == 0 && i == 1 || int(p) == 1 && b == 1 })
	}
	l.release()
	if p := <-got; p != Interactive {
		t.Fatalf("first slot went to priority %d, want the sync request", p)
	}
	l.release()
	if p := <-got; p != Background {
		t.Fatalf("second slot went to priority %d, want the job", p)
	}
	l.release()
	wg.Wait()
	if l.busy() != 0 {
		t.Errorf("%d slots still in use", l.busy())
	}
}

// TestLimiterJobsDoNotCountAsPending: max_pending bounds waiting sync
// requests only; waiting jobs never make a sync request overloaded.
func TestLimiterJobsDoNotCountAsPending(t *testing.T) {
	l := newLimiter(1, 1)
	if _, err := l.acquire(time.Now().Add(time.Second), Interactive); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := l.acquire(time.Now().Add(200*time.Millisecond), Background); err == nil {
				l.release()
			}
		})
	}
	waitFor(t, func() bool { _, b := l.pending(); return b == 3 })
	done := make(chan error, 1)
	go func() {
		_, err := l.acquire(time.Now().Add(5*time.Second), Interactive)
		done <- err
	}()
	waitFor(t, func() bool { i, _ := l.pending(); return i == 1 })
	if _, err := l.acquire(time.Now().Add(time.Second), Interactive); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("second waiting sync request: %v, want ErrOverloaded", err)
	}
	l.release()
	if err := <-done; err != nil {
		t.Fatalf("the waiting sync request: %v", err)
	}
	l.release()
	wg.Wait()
}

// TestClientBreakerWithARealApp: an app answering 503 opens the breaker
// after three requests; sync requests are then refused at once without
// reaching the app, jobs wait unsent, and once the app recovers the first
// waiting job probes, succeeds and releases the others.
func TestClientBreakerWithARealApp(t *testing.T) {
	var down atomic.Bool
	var hits atomic.Int64
	down.Store(true)
	addr := startApp(t, func(ctx *fasthttp.RequestCtx) {
		hits.Add(1)
		if down.Load() {
			ctx.SetStatusCode(503)
		}
	})
	pool := NewPool(PoolOptions{})
	defer pool.Close()
	ep := endpoint(t, "app", "http://"+addr)
	ep.CircuitBreaker = &config.CircuitBreaker{Failures: 3, OpenFor: 50 * time.Millisecond}
	c := pool.Client(ep)
	for range 3 {
		resp, err := do(t, c, "GET", "/", nil, time.Second)
		if err != nil || resp.StatusCode() != 503 {
			t.Fatalf("got %v %v", resp.StatusCode(), err)
		}
	}
	if c.BreakerState() != Open {
		t.Fatalf("breaker %v after three 503s", c.BreakerState())
	}
	_, err := do(t, c, "GET", "/", nil, time.Second)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.RetryAfter <= 0 || hits.Load() != 3 {
		t.Fatalf("sync request on an open breaker: %v (hits %d)", err, hits.Load())
	}

	const jobs = 4
	results := make(chan error, jobs)
	for range jobs {
		go func() {
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("/job")
			for {
				turn, err := c.AwaitJob(context.Background())
				if err == nil {
					err = turn.Send(req, resp, time.Second, false, 1<<20)
				}
				if err == nil && resp.StatusCode() < 500 {
					results <- nil
					return
				}
				if err != nil {
					results <- err
					return
				}
				// A failed probe: the caller (the worker) tries again.
			}
		}()
	}
	waitFor(t, func() bool { return hits.Load() >= 5 }) // at least two probes failed
	down.Store(false)
	for range jobs {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if c.BreakerState() != Closed {
		t.Errorf("breaker %v after the app recovered", c.BreakerState())
	}
	// Each probe is one request, so while down the app saw about one
	// request per open_for, not one per job per retry.
	t.Logf("app requests: %d", hits.Load())
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
