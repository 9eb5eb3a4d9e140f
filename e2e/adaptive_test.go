package e2e

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openhqm/openhqm/internal/testredis"
)

// sharedApp serves knee requests at once in base time each and shares
// itself beyond, like a thread pool in front of a few cores: a request that
// arrives with n in flight takes base × n/knee. It records how many were in
// flight at each arrival and how long the requests took.
type sharedApp struct {
	URL        string
	base       time.Duration
	knee       int64
	inFlight   inFlight
	mu         sync.Mutex
	arrivals   int64
	inFlightAt int64 // sum of in flight at arrival
	took       time.Duration
}

func startSharedApp(t *testing.T, base time.Duration, knee int64) *sharedApp {
	t.Helper()
	a := &sharedApp{base: base, knee: knee}
	a.URL = serveHTTP(t, a)
	return a
}

func (a *sharedApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	n := a.inFlight.enter()
	defer a.inFlight.leave()
	d := a.base * time.Duration(max(n, a.knee)) / time.Duration(a.knee)
	time.Sleep(d)
	a.mu.Lock()
	a.arrivals++
	a.inFlightAt += n
	a.took += d
	a.mu.Unlock()
	fmt.Fprint(w, "done")
}

// load is what the app saw of a run.
type load struct {
	requests           int64
	meanInFlight       float64
	meanLatency, drain time.Duration
	peak               int64
	limits             []float64 // each worker's openhqm_upstream_concurrency_limit at the end
}

// TestAdaptiveConcurrency: three separate workers, each allowed 32 requests
// in flight, drain 1,200 jobs into an app that serves 4 at once and slows
// down in proportion beyond. With fixed limits the three together keep
// about 96 requests in the app, each taking 24 times its unloaded latency;
// with adaptive_concurrency each worker sees the latency climb and backs
// off, without any coordination, and the app keeps a few times its
// capacity in flight. Both runs complete every job with one request each.
func TestAdaptiveConcurrency(t *testing.T) {
	const jobs, workers = 1200, 3
	run := func(t *testing.T, adaptive string) load {
		a := startSharedApp(t, 20*time.Millisecond, 4)
		rs := testredis.Start(t)
		listen := freeAddr(t)
		dir := writeConfig(t, fmt.Sprintf(`
server {
  listen = %q
}
endpoint "app" {
  url             = %q
  timeout         = "10s"
  max_concurrency = 32
  %s
}
queue "jobs" {
  backend = "redis"
  redis {
    url = %q
  }
}
results {
  backend = "redis"
  redis {
    url = %q
  }
}
route "work" {
  match {
    path_prefix = "/work"
  }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
}
worker {
  embedded    = false
  concurrency = 32
}
telemetry {
  log_level = "warn"
}
`, listen, a.URL, adaptive, rs.URL(), rs.URL()))
		base := "http://" + listen
		serve := start(t, "serve", nil, "serve", "-c", dir)
		waitOK(t, serve, base+"/-/readyz")
		ids := submitN(t, base, jobs, "x")
		began := time.Now()
		var admins []string
		for i := range workers {
			addr := freeAddr(t)
			admins = append(admins, "http://"+addr)
			start(t, fmt.Sprintf("worker%d", i), nil, "worker", "-c", dir, "--name", fmt.Sprintf("w%d", i), "--listen", addr)
		}
		waitCompleted(t, base, ids, 120*time.Second)
		l := load{drain: time.Since(began), peak: a.inFlight.peak.Load()}
		a.mu.Lock()
		l.requests = a.arrivals
		l.meanInFlight = float64(a.inFlightAt) / float64(max(a.arrivals, 1))
		l.meanLatency = a.took / time.Duration(max(a.arrivals, 1))
		a.mu.Unlock()
		for _, adm := range admins {
			l.limits = append(l.limits, metric(t, adm+"/metrics", `openhqm_upstream_concurrency_limit{endpoint="app"}`))
		}
		if l.requests != jobs {
			t.Errorf("the app saw %d requests for %d jobs", l.requests, jobs)
		}
		return l
	}
	var fixed, adaptive load
	t.Run("fixed", func(t *testing.T) { fixed = run(t, "") })
	t.Run("adaptive", func(t *testing.T) { adaptive = run(t, "adaptive_concurrency {}") })
	for _, r := range []struct {
		name string
		l    load
	}{{"fixed", fixed}, {"adaptive", adaptive}} {
		t.Logf("%-8s app: mean in flight %5.1f, peak %3d, mean latency %v; drained %d jobs in %v; workers' limits at the end %v",
			r.name, r.l.meanInFlight, r.l.peak, r.l.meanLatency.Round(time.Millisecond), jobs, r.l.drain.Round(100*time.Millisecond), r.l.limits)
	}
	if t.Failed() {
		return
	}
	if adaptive.meanInFlight > fixed.meanInFlight/3 {
		t.Errorf("mean in flight at the app: %.1f adaptive, %.1f fixed; want the adaptive limit to keep under a third", adaptive.meanInFlight, fixed.meanInFlight)
	}
	for _, l := range adaptive.limits {
		if l >= 32 {
			t.Errorf("a worker's adaptive limit ended at %v, the ceiling: it did not back off", l)
		}
	}
}
