package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fragileApp is an app that breaks under load or goes down: it takes delay
// per request, answers 500 when more than limit requests are in flight, and
// 503 while down. It echoes bodies like app, and records the most requests
// it ever had in flight and when each request arrived.
type fragileApp struct {
	URL   string
	delay time.Duration
	limit int64

	down     atomic.Bool
	inFlight inFlight
	mu       sync.Mutex
	arrivals []time.Time
}

// inFlight counts the requests an app is serving and remembers the most
// it ever served at once.
type inFlight struct{ n, peak atomic.Int64 }

// enter counts one more request and answers how many are in flight.
func (f *inFlight) enter() int64 {
	n := f.n.Add(1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	return n
}

func (f *inFlight) leave() { f.n.Add(-1) }

func startFragileApp(t *testing.T, delay time.Duration, limit int64) *fragileApp {
	t.Helper()
	a := &fragileApp{delay: delay, limit: limit}
	a.URL = serveHTTP(t, a)
	return a
}

func (a *fragileApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := a.inFlight.enter()
	defer a.inFlight.leave()
	a.mu.Lock()
	a.arrivals = append(a.arrivals, time.Now())
	a.mu.Unlock()
	if a.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	time.Sleep(a.delay)
	if n > a.limit {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "overloaded")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"path":%q,"echo":%s}`, r.URL.Path, jsonString(body))
}

// arrivedBetween counts the requests that arrived in [from, to).
func (a *fragileApp) arrivedBetween(from, to time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, t := range a.arrivals {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}

// TestSpikeSpillsToTheQueue: 400 POSTs from 64 clients hit an app that
// takes 100 ms and breaks above 4 in flight, behind an endpoint limited to 4
// with 8 waiting; the route is auto with on_overload = "queue". No client
// gets a 5xx, the app never has more than 4 in flight, some requests are
// answered at once and the rest accepted as jobs, and every job completes
// with the app's answer to its own body.
func TestSpikeSpillsToTheQueue(t *testing.T) {
	a := startFragileApp(t, 100*time.Millisecond, 4)
	listen := freeAddr(t)
	dir := writeConfig(t, fmt.Sprintf(`
server {
  listen = %q
}
endpoint "app" {
  url             = %q
  timeout         = "10s"
  max_concurrency = 4
  max_pending     = 8
}
queue "jobs" {
  backend = "memory"
  lease   = "1m"
}
route "orders" {
  match {
    path_prefix = "/orders"
  }
  mode        = "auto"
  on_overload = "queue"
  endpoint    = "app"
  queue       = "jobs"
}
worker {
  concurrency = 8
}
telemetry {
  log_level = "warn"
}
`, listen, a.URL))
	base := "http://" + listen
	serve := start(t, "serve", nil, "serve", "-c", dir)
	waitOK(t, serve, base+"/-/readyz")

	const total, clients = 400, 64
	var (
		mu       sync.Mutex
		codes    = map[int]int{}
		accepted []submitted
		next     atomic.Int64
	)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				body := fmt.Sprintf(`{"order":%d}`, i)
				resp, err := client.Post(base+"/orders/"+strconv.FormatInt(i, 10), "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("POST: %v", err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				switch resp.StatusCode {
				case http.StatusOK:
					if want := answer("/orders/"+strconv.FormatInt(i, 10), body); string(b) != want {
						t.Errorf("sync answer %q, want %q", b, want)
					}
				case http.StatusAccepted:
					id := strings.TrimPrefix(resp.Header.Get("Location"), "/-/requests/")
					accepted = append(accepted, submitted{body: body, code: 202, id: id, status: "/orders/" + strconv.FormatInt(i, 10)})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("answers: %v; the app's peak in flight: %d", codes, a.inFlight.peak.Load())
	for code, n := range codes {
		if code >= 500 {
			t.Errorf("%d requests answered %d", n, code)
		}
	}
	if codes[http.StatusOK] == 0 || codes[http.StatusAccepted] == 0 || codes[http.StatusOK]+codes[http.StatusAccepted] != total {
		t.Errorf("answers %v: want some 200, the rest 202", codes)
	}
	ids := make([]string, len(accepted))
	for i, s := range accepted {
		ids[i] = s.id
	}
	waitCompleted(t, base, ids, 60*time.Second)
	for _, s := range accepted {
		code, _, body, err := response(base, s.id)
		if err != nil || code != http.StatusOK || body != answer(s.status, s.body) {
			t.Fatalf("job %s: %d %q %v, want the app's answer to %s", s.id, code, body, err, s.body)
		}
	}
	if p := a.inFlight.peak.Load(); p > 4 {
		t.Errorf("the app had %d requests in flight at once, more than max_concurrency 4", p)
	}
}

// TestOutageIsWaitedOut: the app answers 503 for 15 s while 200 jobs
// arrive at 20/s. Its circuit breaker opens after 3 failures and probes
// once a second, so no job burns its 3 attempts: every job completes soon
// after the app is back, the failing app sees a few dozen requests during
// the outage, and a sync route to it answers 503 with Retry-After at once.
func TestOutageIsWaitedOut(t *testing.T) {
	a := startFragileApp(t, 0, 1000)
	listen := freeAddr(t)
	dir := writeConfig(t, fmt.Sprintf(`
server {
  listen = %q
}
endpoint "app" {
  url     = %q
  timeout = "5s"
  circuit_breaker {
    failures = 3
    open_for = "1s"
  }
}
queue "jobs" {
  backend = "memory"
  lease   = "1m"
}
route "jobs" {
  match {
    path_prefix = "/jobs"
  }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
  retry {
    attempts = 3
    backoff  = "constant"
    initial  = "500ms"
  }
  idempotent = true
}
route "sync" {
  match {
    path_prefix = "/sync"
  }
  endpoint = "app"
}
telemetry {
  log_level = "warn"
}
`, listen, a.URL))
	base := "http://" + listen
	serve := start(t, "serve", nil, "serve", "-c", dir)
	waitOK(t, serve, base+"/-/readyz")

	var (
		mu       sync.Mutex
		accepted []submitted
	)
	began := time.Now()
	var outageStart, outageEnd time.Time
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond) // 20 a second
		defer tick.Stop()
		for i := range 200 {
			<-tick.C
			s, err := submit(base, "/jobs/x", fmt.Sprintf(`{"job":%d}`, i))
			if err != nil || s.code != http.StatusAccepted {
				t.Errorf("submit %d: %+v %v", i, s, err)
				continue
			}
			mu.Lock()
			accepted = append(accepted, s)
			mu.Unlock()
		}
	})
	time.Sleep(time.Until(began.Add(2 * time.Second)))
	outageStart = time.Now()
	a.down.Store(true)

	// While the breaker is open, a sync request is refused at once,
	// without reaching the app.
	deadline := time.Now().Add(5 * time.Second)
	var syncCode int
	var retryAfter string
	var took time.Duration
	for time.Now().Before(deadline) {
		t0 := time.Now()
		resp, err := client.Get(base + "/sync/ping")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = time.Since(t0)
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" && strings.Contains(resp.Header.Get("Content-Type"), "json") {
			syncCode, retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("sync request while the breaker is open: %d, Retry-After %s, answered in %v", syncCode, retryAfter, took)
	if syncCode != http.StatusServiceUnavailable {
		t.Error("no sync request was refused by the open breaker")
	}
	if took > time.Second {
		t.Errorf("the open breaker's refusal took %v; it must not wait for the app", took)
	}

	time.Sleep(time.Until(outageStart.Add(15 * time.Second)))
	a.down.Store(false)
	outageEnd = time.Now()
	wg.Wait()

	mu.Lock()
	ids := make([]string, len(accepted))
	for i, s := range accepted {
		ids[i] = s.id
	}
	mu.Unlock()
	waitCompleted(t, base, ids, 30*time.Second)
	t.Logf("all %d jobs completed %v after the app came back", len(ids), time.Since(outageEnd).Round(100*time.Millisecond))
	during := a.arrivedBetween(outageStart, outageEnd)
	t.Logf("the app received %d requests during its 15 s outage", during)
	if during > 40 {
		t.Errorf("the failing app received %d requests during the outage, want at most 40", during)
	}
	for _, s := range accepted {
		code, _, body, err := response(base, s.id)
		if err != nil || code != http.StatusOK || body != answer("/jobs/x", s.body) {
			t.Fatalf("job %s: %d %q %v", s.id, code, body, err)
		}
	}
}
