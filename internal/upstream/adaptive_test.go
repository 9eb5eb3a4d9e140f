package upstream

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/config"
)

// app is a simulated app that serves knee requests at once in base time and
// shares itself beyond: n in flight take base × n/knee each.
type app struct {
	base time.Duration
	knee int
}

func (a app) latency(inFlight int) time.Duration {
	return a.base * time.Duration(max(inFlight, a.knee)) / time.Duration(a.knee)
}

// drive runs windows of saturated demand (every slot admitted in use)
// against a and answers the limit after each (not the half of it a probe
// admits).
func drive(g *gradient, a app, windows int) []int {
	var limits []int
	for range windows {
		for {
			n := g.current()
			if g.sample(a.latency(n), answered, n) != 0 {
				limits = append(limits, int(g.limit))
				break
			}
		}
	}
	return limits
}

// TestGradientFindsTheKnee: under saturated demand the limit settles
// between the app's knee and 2 × tolerance × knee, far under the ceiling,
// without ratcheting up through its probes, and climbs back to the ceiling
// once the app is fast again.
func TestGradientFindsTheKnee(t *testing.T) {
	for _, tol := range []float64{1.5, 2} {
		g := newGradient(1, 64, tol)
		slow := app{base: 20 * time.Millisecond, knee: 8}
		limits := drive(g, slow, 1000)
		last := limits[len(limits)-300:]
		for _, n := range last {
			if n < slow.knee || float64(n) > 2*tol*float64(slow.knee) {
				t.Fatalf("tolerance %v: limit %d in the last 300 windows (%v); want within [%d, %v]", tol, n, last, slow.knee, 2*tol*float64(slow.knee))
			}
		}
		fast := app{base: 20 * time.Millisecond, knee: 1000}
		limits = drive(g, fast, 200)
		if got := limits[len(limits)-1]; got != 64 {
			t.Fatalf("tolerance %v: limit %d after the app became fast again, want the ceiling 64 (%v)", tol, got, limits)
		}
	}
}

// TestGradientStaysAtTheCeilingForAFastApp: an app whose latency does not
// grow with load keeps the configured limit.
func TestGradientStaysAtTheCeilingForAFastApp(t *testing.T) {
	g := newGradient(1, 32, 2)
	limits := drive(g, app{base: 5 * time.Millisecond, knee: 1000}, 300)
	if limits[0] != initialLimit {
		t.Fatalf("first limit %d, want the initial %d", limits[0], initialLimit)
	}
	reached := slices.Index(limits, 32)
	if reached < 0 || reached > 60 {
		t.Fatalf("limit reached 32 after %d windows, want within 60: %v", reached, limits)
	}
	for _, n := range limits[reached:] {
		if n != 32 {
			t.Fatalf("limit %d after reaching 32, want 32 throughout: %v", n, limits)
		}
	}
}

// TestGradientBacksOffOnDrops: a window with a 429/503 cuts the limit by a
// tenth, down to the floor.
func TestGradientBacksOffOnDrops(t *testing.T) {
	g := newGradient(3, 20, 2)
	g.limit = 20
	want := 20.0
	for range 40 {
		for i := 0; ; i++ {
			n := g.current()
			o := answered
			if i == 0 {
				o = overloaded
			}
			if g.sample(10*time.Millisecond, o, n) != 0 {
				break
			}
		}
		want = max(want*dropFactor, 3)
		if int(g.limit) != int(want) {
			t.Fatalf("limit %v after a dropped window, want %d", g.limit, int(want))
		}
	}
	if int(g.limit) != 3 {
		t.Fatalf("limit %v after 40 dropped windows, want the floor 3", g.limit)
	}
}

// TestGradientIgnoresAppLimitedWindows: when fewer than half the slots are
// in use the latency says nothing about the limit, which stays.
func TestGradientIgnoresAppLimitedWindows(t *testing.T) {
	g := newGradient(1, 40, 2)
	g.limit = 40
	for i := 0; i < 1000; i++ {
		lat := 10 * time.Millisecond
		if i > 100 {
			lat = time.Second // slow, but only 3 in flight
		}
		g.sample(lat, answered, 3)
		if g.limit != 40 {
			t.Fatalf("limit moved to %v on app-limited windows", g.limit)
		}
	}
}

// TestGradientFollowsALastingRise: when the app's unloaded latency rises
// for good, the limit does not stay down: a probe at half the limit
// measures the new unloaded latency, which the baseline then follows.
func TestGradientFollowsALastingRise(t *testing.T) {
	g := newGradient(1, 32, 2)
	drive(g, app{base: 10 * time.Millisecond, knee: 1000}, 20)
	limits := drive(g, app{base: 100 * time.Millisecond, knee: 1000}, 300)
	if got := limits[len(limits)-1]; got != 32 {
		t.Fatalf("limit %d after the app became uniformly 10× slower, want back at 32: %v", got, limits)
	}
}

// TestGradientTimeouts: a timeout is a drop when the request had at least
// tolerance × the unloaded latency to answer in, and is not counted at all
// when its budget was shorter.
func TestGradientTimeouts(t *testing.T) {
	g := newGradient(1, 20, 2)
	g.limit = 20
	for g.baseline == 0 {
		g.sample(10*time.Millisecond, answered, 20)
	}
	before := g.limit
	for range 1000 {
		g.sample(15*time.Millisecond, timedOut, 20) // 15 ms < 2 × 10 ms: too short to tell
	}
	if g.limit != before || g.n != 0 {
		t.Fatalf("short timeouts moved the limit from %v to %v (window %d)", before, g.limit, g.n)
	}
	for g.limit == before {
		g.sample(30*time.Millisecond, timedOut, 20)
	}
	if want := before * dropFactor; g.limit != want {
		t.Fatalf("limit %v after a window of timeouts past tolerance, want %v", g.limit, want)
	}
}

// TestAdaptiveLimiter: a lower limit takes effect as slots are released
// (nothing is taken back), a higher one hands slots to waiters at once.
func TestAdaptiveLimiter(t *testing.T) {
	var reported []int
	l := newAdaptiveLimiter(4, 8, 1, 2, func(n int) { reported = append(reported, n) })
	deadline := time.Now().Add(5 * time.Second)
	for range 4 {
		if _, err := l.acquire(deadline, Background); err != nil {
			t.Fatal(err)
		}
	}
	// Drops cut the limit to 3, then 2 (4 × 0.9 = 3.6, × 0.9 = 3.24 → 3, 2.9 → 2).
	for l.max == 4 || l.max == 3 {
		l.observe(time.Millisecond, overloaded)
	}
	if l.max != 2 || l.busy() != 4 {
		t.Fatalf("max %d busy %d, want max 2 with the 4 slots still held", l.max, l.busy())
	}
	got := make(chan struct{})
	go func() {
		if _, err := l.acquire(deadline, Background); err == nil {
			close(got)
		}
	}()
	for _, bg := l.pending(); bg != 1; _, bg = l.pending() {
		time.Sleep(time.Millisecond)
	}
	l.release()
	l.release()
	if l.busy() != 2 {
		t.Fatalf("busy %d after two releases above the limit, want 2 (freed, not handed over)", l.busy())
	}
	select {
	case <-got:
		t.Fatal("a waiter got a slot above the lowered limit")
	default:
	}
	// Fast, saturated windows raise the limit again, which lets the waiter in.
	for l.max < 4 {
		l.observe(time.Millisecond, answered)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter got no slot after the limit rose")
	}
	if l.busy() != 3 {
		t.Fatalf("busy %d, want 3", l.busy())
	}
	if len(reported) == 0 || reported[len(reported)-1] != 4 {
		t.Fatalf("limits reported %v, want the last to be 4", reported)
	}
}

// TestAdaptiveLimitHoldsUnderSyncWaits: callers that wait for a slot and
// then run out of time at the app are not the app's overload. The app
// always answers in 40 ms; 48 callers with 150 ms each share 16 slots, so
// many wait most of their budget. The limit must not collapse (it fell to
// 1 when such timeouts counted as drops).
func TestAdaptiveLimitHoldsUnderSyncWaits(t *testing.T) {
	addr := startApp(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(40 * time.Millisecond)
		ctx.SetBodyString("ok")
	})
	pool := NewPool(PoolOptions{})
	defer pool.Close()
	ep := endpoint(t, "a", "http://"+addr+"/")
	ep.MaxConcurrency, ep.MaxPending = 16, 1000
	ep.Adaptive = &config.AdaptiveConcurrency{Min: 1, Tolerance: 1.5}
	c := pool.Client(ep)
	var answered, failed atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(2 * time.Second)
	for range 48 {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for time.Now().Before(stop) {
				req.Reset()
				req.SetRequestURI("/x")
				req.Header.SetHost("c")
				if err := c.Do(req, resp, time.Now().Add(150*time.Millisecond)); err == nil {
					answered.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	c.lim.mu.Lock()
	limit := c.lim.adaptive.limit
	c.lim.mu.Unlock()
	t.Logf("%d answered, %d failed, limit %.1f", answered.Load(), failed.Load(), limit)
	// It grows from its start of 4 toward 16; a loaded machine may slow
	// the app's answers and hold it lower, but never under its start.
	if limit < initialLimit {
		t.Errorf("the adaptive limit fell to %.1f of 16 for an app whose latency never changed", limit)
	}
}
