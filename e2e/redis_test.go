package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhqm/openhqm/internal/testredis"
)

// redisConfig is serve's and the workers' configuration: one async route on a
// Redis queue, results in Redis, no embedded worker.
func redisConfig(listen, appURL, redisURL string) string {
	return fmt.Sprintf(`
server {
  listen = %q
}

endpoint "app" {
  url     = %q
  timeout = "2s"
}

queue "jobs" {
  backend = "redis"
  redis {
    url    = %q
    stream = "e2e-requests"
    group  = "e2e-workers"
  }
  lease = "3s"
}

results {
  backend = "redis"
  ttl     = "10m"
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
  retry {
    attempts = 10
    initial  = "100ms"
    max      = "1s"
  }
  idempotent = true
}

worker {
  embedded    = false
  concurrency = 16
  batch_size  = 10
  drain       = "5s"
}

telemetry {
  log_level = "warn"
}
`, listen, appURL, redisURL, redisURL)
}

// TestSIGKILLWorkerLosesNothing: serve, two workers, Redis and an app; 2,000
// async requests; one worker is killed with SIGKILL while it holds jobs.
// Every request must end completed with the app's own answer.
func TestSIGKILLWorkerLosesNothing(t *testing.T) {
	rs := testredis.Start(t, testredis.WithAOF())
	a := startApp(t, 5*time.Millisecond)
	listen := freeAddr(t)
	dir := writeConfig(t, redisConfig(listen, a.URL, rs.URL()))
	base := "http://" + listen

	serve := start(t, "serve", nil, "serve", "-c", dir)
	w1 := start(t, "worker-1", nil, "worker", "-c", dir, "--listen", freeAddr(t), "worker-1")
	w2addr := freeAddr(t)
	w2 := start(t, "worker-2", nil, "worker", "-c", dir, "--listen", w2addr, "--name", "worker-2")
	waitOK(t, serve, base+"/-/readyz")
	waitOK(t, w2, "http://"+w2addr+"/-/readyz")

	killDuringLoad(t, base, a, w1, 2000, "/work/item", 60*time.Second)
	if code := w2.stop(t, 15*time.Second); code != 0 {
		t.Errorf("worker-2 exited %d after SIGTERM, want 0", code)
	}
	if code := serve.stop(t, 15*time.Second); code != 0 {
		t.Errorf("serve exited %d after SIGTERM, want 0", code)
	}
}

// TestRedisRestartKeepsEveryAcceptedJob: Redis (AOF on) stops in the middle
// of a stream of submits and comes back. Submits during the outage get 503,
// never 202; every 202 completes.
func TestRedisRestartKeepsEveryAcceptedJob(t *testing.T) {
	rs := testredis.Start(t, testredis.WithAOF(), testredis.WithArgs("--appendfsync", "always"))
	a := startApp(t, time.Millisecond)
	listen := freeAddr(t)
	dir := writeConfig(t, redisConfig(listen, a.URL, rs.URL()))
	base := "http://" + listen

	serve := start(t, "serve", nil, "serve", "-c", dir)
	wAddr := freeAddr(t)
	w := start(t, "worker", nil, "worker", "-c", dir, "--listen", wAddr, "worker-a")
	waitOK(t, serve, base+"/-/readyz")
	waitOK(t, w, "http://"+wAddr+"/-/readyz")

	var (
		mu       sync.Mutex
		accepted []submitted
		codes    = map[int]int{}
		stopped  atomic.Bool
		seq      atomic.Int64
	)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stopped.Load() {
				i := seq.Add(1)
				s, err := submit(base, "/work/r", fmt.Sprintf(`{"seq":%d}`, i))
				mu.Lock()
				if err != nil {
					codes[-1]++
				} else {
					codes[s.code]++
					if s.code == http.StatusAccepted {
						accepted = append(accepted, s)
					}
				}
				mu.Unlock()
				if err == nil && s.code != http.StatusAccepted {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	rs.Halt()
	time.Sleep(1500 * time.Millisecond)
	if resp, err := client.Get(base + "/-/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/-/readyz while Redis is down: %v %v, want 503", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := rs.RestartErr(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	stopped.Store(true)
	wg.Wait()

	t.Logf("answers during the run: %v", codes)
	for code, count := range codes {
		if code != http.StatusAccepted && code != http.StatusServiceUnavailable {
			t.Errorf("%d submits answered %d; only 202 and 503 are acceptable", count, code)
		}
	}
	if codes[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no submit answered 503 while Redis was down")
	}
	ids := make([]string, len(accepted))
	for i, s := range accepted {
		ids[i] = s.id
	}
	waitCompleted(t, base, ids, 60*time.Second)
	for _, s := range accepted {
		code, _, body, err := response(base, s.id)
		if err != nil || code != http.StatusOK || body != answer("/work/r", s.body) {
			t.Fatalf("job %s: response %d %q %v", s.id, code, body, err)
		}
	}
}
