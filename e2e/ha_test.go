package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/internal/testredis"
)

// haConfig is serve's configuration for the failover tests: one async route,
// an embedded worker, the queue and the results on the Redis that redis
// names (the inside of a redis block, without shards).
func haConfig(listen, appURL, redis string, shards int) string {
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
    %s
    stream       = "e2e-requests"
    group        = "e2e-workers"
    shards       = %d
    min_replicas = 1
  }
  lease = "3s"
}

results {
  backend = "redis"
  ttl     = "10m"
  redis {
    %s
    min_replicas = 1
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
    attempts = 20
    initial  = "100ms"
    max      = "1s"
  }
  idempotent = true
}

worker {
  embedded    = true
  concurrency = 16
  batch_size  = 10
  drain       = "5s"
}

telemetry {
  log_level = "warn"
}
`, listen, appURL, redis, shards, redis)
}

// paced is one submit of a paced run: when it was sent (since the start),
// and its answer.
type paced struct {
	submitted
	at  time.Duration
	err error
}

// submitPaced sends n submits at rate per second, each on its own
// goroutine so that a slow answer does not slow the pace, and calls at(d)
// on its own goroutine once d has passed since the start, for each d in at.
func submitPaced(t *testing.T, base string, n, rate int, events map[time.Duration]func()) []paced {
	t.Helper()
	out := make([]paced, n)
	var wg sync.WaitGroup
	start := time.Now()
	for d, f := range events {
		wg.Go(func() {
			time.Sleep(d)
			f()
		})
	}
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		wg.Go(func() {
			at := time.Since(start)
			s, err := submit(base, "/work/ha", fmt.Sprintf(`{"seq":%d}`, i))
			out[i] = paced{submitted: s, at: at, err: err}
		})
	}
	wg.Wait()
	return out
}

// checkFailover asserts that only 202 and 503 were answered, that at least
// minAccepted were accepted, with recovers that none was refused in the
// run's last second, and that every accepted job completed with the app's
// answer. It reports the accept rate after the kill and how long submits
// kept failing.
func checkFailover(t *testing.T, base string, subs []paced, killAt time.Duration, minAccepted int, recovers bool) {
	t.Helper()
	codes := map[int]int{}
	var ids []string
	var lastFailure time.Duration
	after, acceptedAfter := 0, 0
	for _, s := range subs {
		code := s.code
		if s.err != nil {
			code = -1
		}
		codes[code]++
		if code == http.StatusAccepted {
			ids = append(ids, s.id)
		} else if s.at > lastFailure {
			lastFailure = s.at
		}
		if s.at >= killAt && s.at < killAt+5*time.Second {
			after++
			if code == http.StatusAccepted {
				acceptedAfter++
			}
		}
	}
	refused := map[time.Duration]int{} // by the half second they were sent in
	for _, s := range subs {
		if s.code != http.StatusAccepted {
			refused[s.at.Truncate(500*time.Millisecond)]++
		}
	}
	t.Logf("refused submits by the half second they were sent in: %v", refused)
	recover := time.Duration(0)
	if lastFailure > killAt {
		recover = lastFailure - killAt
	}
	t.Logf("answers: %v; accepted %d of %d; in the 5 s after the kill %d of %d (%.0f%%); last refused submit %v after the kill",
		codes, len(ids), len(subs), acceptedAfter, after, 100*float64(acceptedAfter)/float64(max(after, 1)), recover.Round(time.Millisecond))
	for code, n := range codes {
		if code != http.StatusAccepted && code != http.StatusServiceUnavailable {
			t.Errorf("%d submits answered %d; only 202 and 503 are acceptable", n, code)
		}
	}
	if len(ids) < minAccepted {
		t.Errorf("%d of %d submits accepted, want at least %d", len(ids), len(subs), minAccepted)
	}
	// Once Redis has a primary again, every submit is accepted: the last
	// second of the run has no refusal.
	if last := subs[len(subs)-1].at; recovers && lastFailure > last-time.Second {
		t.Errorf("a submit %v into the run was refused, and the run ended at %v: want the refusals over a second before its end", lastFailure.Round(time.Millisecond), last.Round(time.Millisecond))
	}
	waitCompleted(t, base, ids, 90*time.Second)
	for _, s := range subs {
		if s.code != http.StatusAccepted {
			continue
		}
		code, _, body, err := response(base, s.id)
		if err != nil || code != http.StatusOK || body != answer("/work/ha", s.body) {
			t.Fatalf("job %s: response %d %q %v; want 200 %q", s.id, code, body, err, answer("/work/ha", s.body))
		}
	}
}

// TestSentinelFailover: a primary, two replicas and three sentinels; serve
// with an embedded worker keeps its queue and results there, every write
// confirmed by a replica. 1,500 jobs at 100/s; the primary is SIGKILLed 4 s
// in. Every job answered 202 completes with the app's answer, the submits
// of the last second are all accepted, and a replica is the primary
// afterwards. How long the sentinels take is Redis's: usually 2-3 s, but
// on a loaded machine they may elect twice and the surviving replica must
// resync before it confirms writes (8.6 s in one run), so the floor on
// accepted submits is only what came before the kill and after recovery.
func TestSentinelFailover(t *testing.T) {
	s := testredis.StartSentinel(t, 2, 3)
	a := startApp(t, time.Millisecond)
	listen := freeAddr(t)
	redis := fmt.Sprintf("sentinel {\n      master_name = %q\n      addrs = [%s]\n    }", testredis.MasterName, quoted(s.Addrs()))
	dir := writeConfig(t, haConfig(listen, a.URL, redis, 1))
	base := "http://" + listen
	serve := start(t, "serve", nil, "serve", "-c", dir)
	waitOK(t, serve, base+"/-/readyz")

	killAt := 4 * time.Second
	subs := submitPaced(t, base, 1500, 100, map[time.Duration]func(){killAt: s.Primary.Kill})
	checkFailover(t, base, subs, killAt, 500, true)

	m, err := s.Master()
	if err != nil || m == s.Primary.Addr() {
		t.Fatalf("the sentinels name %q (%v) as primary; want a former replica", m, err)
	}
	if role, err := testredis.Role(m); err != nil || role != "master" {
		t.Errorf("%s has role %q (%v), want master", m, role, err)
	}
}

// TestClusterFailover: a cluster of 3 primaries with a replica each; the
// queue has 6 shards, spread over at least 2 primaries, and every write is
// confirmed by a replica. 1,500 jobs at 100/s; the primary of a shard is
// SIGKILLed 4 s in and restarted 3 s later (it rejoins as a replica). Every
// job answered 202 completes, and at least 1,000 are accepted: submits go
// to the shards whose primary is alive.
func TestClusterFailover(t *testing.T) {
	c := testredis.StartCluster(t, 3, 1)
	a := startApp(t, time.Millisecond)
	listen := freeAddr(t)
	redis := fmt.Sprintf("cluster {\n      addrs = [%s]\n    }", quoted(c.Addrs()))
	dir := writeConfig(t, haConfig(listen, a.URL, redis, 6))
	base := "http://" + listen
	serve := start(t, "serve", nil, "serve", "-c", dir)
	waitOK(t, serve, base+"/-/readyz")

	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	primaries := map[string]bool{}
	var first string
	for i := range 6 {
		node, err := cc.MasterForKey(context.Background(), fmt.Sprintf("{e2e-requests:%d}", i))
		if err != nil {
			t.Fatal(err)
		}
		primaries[node.Options().Addr] = true
		if i == 0 {
			first = node.Options().Addr
		}
	}
	if len(primaries) < 2 {
		t.Fatalf("the 6 shards live on %d primaries, want at least 2", len(primaries))
	}
	var victim *testredis.Server
	for _, n := range c.Nodes {
		if n.Addr() == first {
			victim = n
		}
	}
	t.Logf("shards on primaries %v; killing %s", keys(primaries), victim.Addr())

	killAt, restartAt := 4*time.Second, 7*time.Second
	restarted := make(chan error, 1)
	subs := submitPaced(t, base, 1500, 100, map[time.Duration]func(){
		killAt:    victim.Kill,
		restartAt: func() { restarted <- victim.RestartErr() },
	})
	if err := <-restarted; err != nil {
		t.Fatalf("restart %s: %v", victim.Addr(), err)
	}
	checkFailover(t, base, subs, killAt, 1000, false)

	deadline := time.Now().Add(20 * time.Second)
	for {
		role, err := testredis.Role(victim.Addr())
		if err == nil && role == "slave" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node %s has role %q (%v), want a replica", victim.Addr(), role, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func quoted(addrs []string) string {
	q := make([]string, len(addrs))
	for i, a := range addrs {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, ", ")
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
