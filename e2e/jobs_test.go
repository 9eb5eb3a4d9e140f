package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhqm/openhqm/internal/testredis"
)

// opsConfig is serve's and the worker's configuration for the operator
// tooling's tests: one async route with two attempts on the queue block
// given, results in Redis.
func opsConfig(listen, appURL, queueBlock, redisURL string) string {
	return fmt.Sprintf(`
server {
  listen = %q
}

endpoint "app" {
  url     = %q
  timeout = "2s"
}

%s

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
  mode       = "async"
  endpoint   = "app"
  queue      = "jobs"
  idempotent = true
  retry {
    attempts = 2
    initial  = "50ms"
    max      = "100ms"
  }
}

worker {
  embedded    = false
  concurrency = 8
  drain       = "5s"
}

telemetry {
  log_level = "warn"
}
`, listen, appURL, queueBlock, redisURL)
}

// switchApp answers 503 until fixed, then echoes like app; it counts the
// requests of each job.
type switchApp struct {
	URL   string
	fixed atomic.Bool
	mu    sync.Mutex
	seen  map[string]int
}

func startSwitchApp(t *testing.T) *switchApp {
	t.Helper()
	a := &switchApp{seen: map[string]int{}}
	a.URL = serveHTTP(t, a)
	return a
}

func (a *switchApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.seen[r.Header.Get("Idempotency-Key")]++
	a.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/work/slow") {
		time.Sleep(2 * time.Second)
	}
	if !a.fixed.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"path":%q,"echo":%s}`, r.URL.Path, jsonString(body))
}

func (a *switchApp) saw(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[id]
}

// jobsCmd runs `openhqm jobs ARGS -c dir` and answers its exit code, stdout
// and stderr.
func jobsCmd(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	return jobsCmdEnv(t, nil, dir, args...)
}

// jobsCmdEnv is jobsCmd with env added to a clean environment, as start does.
func jobsCmdEnv(t *testing.T, env []string, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, append(append([]string{"jobs"}, args...), "-c", dir)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("openhqm jobs %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// jobsJSON runs a jobs command with --format json, which must succeed, and
// decodes its output into v.
func jobsJSON(t *testing.T, dir string, v any, args ...string) {
	t.Helper()
	code, out, errs := jobsCmd(t, dir, append(args, "--format", "json")...)
	if code != 0 {
		t.Fatalf("openhqm jobs %v: exit %d\n%s", args, code, errs)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("openhqm jobs %v: %v\n%s", args, err, out)
	}
}

type queueLine struct {
	Name     string  `json:"name"`
	Backend  string  `json:"backend"`
	Waiting  int64   `json:"waiting"`
	InFlight int64   `json:"in_flight"`
	Dead     int64   `json:"dead"`
	Oldest   float64 `json:"oldest_age_seconds"`
}

// statsOf reads the line of queue jobs from a stats JSON.
func statsOf(t *testing.T, raw []byte) queueLine {
	t.Helper()
	var rep struct {
		Queues []queueLine `json:"queues"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("stats JSON: %v\n%s", err, raw)
	}
	for _, q := range rep.Queues {
		if q.Name == "jobs" {
			return q
		}
	}
	t.Fatalf("no queue jobs in %s", raw)
	return queueLine{}
}

// waitDead polls stats (through read) until queue jobs counts n dead letters.
func waitDeadLetters(t *testing.T, read func() []byte, n int64, within time.Duration) queueLine {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		q := statsOf(t, read())
		if q.Dead == n {
			return q
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters: %d, want %d (stats %+v)", q.Dead, n, q)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func submitN(t *testing.T, base string, n int, tag string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		s, err := submit(base, "/work/"+tag, fmt.Sprintf(`{"n":%d,"tag":%q}`, i, tag))
		if err != nil || s.code != http.StatusAccepted {
			t.Fatalf("submit %d: %v (code %d)", i, err, s.code)
		}
		ids = append(ids, s.id)
	}
	return ids
}

// testOperatorTooling is the acceptance of the jobs tooling against a
// queue backend: dead letters seen, listed, shown and redriven after the
// app is fixed; pending jobs cancelled by CLI and by DELETE never reach
// the app; purge empties the dead letters.
func testOperatorTooling(t *testing.T, queueBlock func(redisURL string) string, backend string) {
	rs := testredis.Start(t)
	a := startSwitchApp(t)
	listen := freeAddr(t)
	dir := writeConfig(t, opsConfig(listen, a.URL, queueBlock(rs.URL()), rs.URL()))
	base := "http://" + listen
	serve := start(t, "serve", nil, "serve", "-c", dir)
	waitOK(t, serve, base+"/-/readyz")
	worker := start(t, "worker", nil, "worker", "-c", dir, "--name", "w1", "--listen", freeAddr(t))
	stats := func() []byte {
		code, out, errs := jobsCmd(t, dir, "stats", "--format", "json")
		if code != 0 {
			t.Fatalf("jobs stats: exit %d\n%s", code, errs)
		}
		return []byte(out)
	}

	began := time.Now()
	phase := func(name string) { t.Logf("%s after %v", name, time.Since(began).Round(100*time.Millisecond)) }

	// 30 jobs that fail twice end in the dead letters.
	failing := submitN(t, base, 30, "a")
	q := waitDeadLetters(t, stats, 30, 60*time.Second)
	if q.Backend != backend {
		t.Fatalf("stats backend %q, want %q", q.Backend, backend)
	}
	var list struct {
		Jobs []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Route    string `json:"route"`
			Attempts int    `json:"attempts"`
			Error    string `json:"error"`
		} `json:"jobs"`
	}
	jobsJSON(t, dir, &list, "ls", "--queue", "jobs", "--state", "dead")
	var dead []string
	for _, j := range list.Jobs {
		dead = append(dead, j.ID)
		if j.State != "dead" || j.Route != "work" || !strings.Contains(j.Error, "503") {
			t.Fatalf("dead job %+v: want state dead, route work, an error naming 503", j)
		}
	}
	slices.Sort(dead)
	if want := slices.Sorted(slices.Values(failing)); !slices.Equal(dead, want) {
		t.Fatalf("ls --state dead listed %d jobs, want the 30 failed ones", len(dead))
	}
	var show struct {
		ID       string  `json:"id"`
		State    string  `json:"state"`
		Attempts int     `json:"attempts"`
		Method   string  `json:"method"`
		Path     string  `json:"path"`
		Body     *string `json:"body"`
		Result   struct {
			Status string `json:"status"`
		} `json:"result"`
		Outcomes []struct {
			Attempt    int    `json:"attempt"`
			StatusCode int    `json:"status_code"`
			Outcome    string `json:"outcome"`
		} `json:"attempt_outcomes"`
	}
	jobsJSON(t, dir, &show, "show", failing[0])
	if show.Attempts != 2 || show.State != "dead" || show.Result.Status != "failed" || show.Method != "POST" || show.Path != "/work/a" || show.Body != nil {
		t.Fatalf("show: %+v; want 2 attempts, dead, result failed, POST /work/a, no body", show)
	}
	if len(show.Outcomes) != 2 {
		t.Fatalf("show: attempt outcomes %+v; want both attempts'", show.Outcomes)
	}
	for i, o := range show.Outcomes {
		if o.Attempt != i+1 || o.StatusCode != 503 || !strings.Contains(o.Outcome, "503") {
			t.Fatalf("show: outcome %d is %+v; want attempt %d answered 503", i, o, i+1)
		}
	}
	code, out, _ := jobsCmd(t, dir, "show", failing[0])
	if code != 0 || !strings.Contains(out, "attempts:") || !strings.Contains(out, "attempt 1:") || !strings.Contains(out, "attempt 2:") {
		t.Fatalf("show as text: exit %d\n%s", code, out)
	}
	t.Logf("jobs show:\n%s", out)

	phase("dead letters listed")
	// The app is fixed: a redrive brings every job to completion.
	a.fixed.Store(true)
	code, out, errs := jobsCmd(t, dir, "redrive", "--queue", "jobs", "--all")
	if code != 0 || !strings.Contains(out, "30 ") {
		t.Fatalf("redrive: exit %d\n%s%s", code, out, errs)
	}
	phase("redrive returned")
	for _, id := range failing {
		if st, err := status(base, id); err != nil || st == "failed" {
			t.Fatalf("job %s after the redrive returned: %q %v; want it no longer failed", id, st, err)
		}
	}
	waitCompleted(t, base, failing, 60*time.Second)
	for i, id := range failing[:3] {
		_, _, body, err := response(base, id)
		if want := answer("/work/a", fmt.Sprintf(`{"n":%d,"tag":"a"}`, i)); err != nil || body != want {
			t.Fatalf("response of %s: %q %v, want %q", id, body, err, want)
		}
	}
	var done struct {
		Jobs []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"jobs"`
	}
	jobsJSON(t, dir, &done, "ls", "--state", "completed", "--route", "work", "--limit", "1000")
	var completed []string
	for _, j := range done.Jobs {
		completed = append(completed, j.ID)
	}
	for _, id := range failing {
		if !slices.Contains(completed, id) {
			t.Fatalf("ls --state completed lacks redriven job %s (%d listed)", id, len(completed))
		}
	}
	phase("redriven jobs answered")
	waitDeadLetters(t, stats, 0, 10*time.Second)
	if code, out, _ := jobsCmd(t, dir, "redrive", "--queue", "jobs", "--all"); code != 0 || !strings.HasPrefix(out, "0 ") {
		t.Fatalf("second redrive: exit %d\n%s", code, out)
	}

	phase("redriven jobs completed")
	// Five pending jobs with no worker: two cancelled by the CLI, one over
	// the job API, and none of the three reaches the app.
	if worker.stop(t, 15*time.Second) != 0 {
		t.Fatalf("worker did not stop cleanly\n%s", worker.output())
	}
	pending := submitN(t, base, 5, "c")
	for _, id := range pending[:2] {
		if code, out, errs := jobsCmd(t, dir, "cancel", id); code != 0 || !strings.Contains(out, "cancelled") {
			t.Fatalf("cancel %s: exit %d\n%s%s", id, code, out, errs)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"/-/requests/"+pending[2], nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"cancelled"`) {
		t.Fatalf("DELETE /-/requests/%s: %d %s", pending[2], resp.StatusCode, b)
	}
	if code, _, errs := jobsCmd(t, dir, "cancel", "00000000000000000000000000000000"); code != 1 || !strings.Contains(errs, "no job") {
		t.Fatalf("cancel of an unknown id: exit %d\n%s", code, errs)
	}
	if code, _, errs := jobsCmd(t, dir, "cancel", failing[0]); code != 1 || !strings.Contains(errs, "already finished") {
		t.Fatalf("cancel of a completed job: exit %d\n%s", code, errs)
	}
	// What waits is the two jobs not cancelled.
	list.Jobs = nil
	jobsJSON(t, dir, &list, "ls", "--queue", "jobs", "--state", "waiting")
	var waiting []string
	for _, j := range list.Jobs {
		waiting = append(waiting, j.ID)
	}
	if want := slices.Sorted(slices.Values(pending[3:])); !slices.Equal(slices.Sorted(slices.Values(waiting)), want) {
		t.Fatalf("ls --state waiting: %v, want the two jobs not cancelled %v", waiting, want)
	}
	start(t, "worker2", nil, "worker", "-c", dir, "--name", "w1", "--listen", freeAddr(t))
	waitCompleted(t, base, pending[3:], 30*time.Second)
	time.Sleep(500 * time.Millisecond) // let any wrongly delivered job reach the app
	for _, id := range pending[:3] {
		if n := a.saw(id); n != 0 {
			t.Fatalf("cancelled job %s reached the app %d times", id, n)
		}
		if st, err := status(base, id); err != nil || st != "cancelled" {
			t.Fatalf("status of cancelled job %s: %q %v", id, st, err)
		}
	}
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second DELETE: %d, want 409", resp.StatusCode)
	}

	phase("cancelled jobs checked")
	// Purge empties the dead letters.
	a.fixed.Store(false)
	submitN(t, base, 3, "p")
	waitDeadLetters(t, stats, 3, 30*time.Second)
	if code, out, errs := jobsCmd(t, dir, "purge", "--queue", "jobs", "--dead", "--yes"); code != 0 || !strings.HasPrefix(out, "3 ") {
		t.Fatalf("purge: exit %d\n%s%s", code, out, errs)
	}
	waitDeadLetters(t, stats, 0, 10*time.Second)
}

func TestOperatorToolingRedis(t *testing.T) {
	testOperatorTooling(t, func(redisURL string) string {
		return fmt.Sprintf(`
queue "jobs" {
  backend = "redis"
  redis {
    url    = %q
    stream = "ops-requests"
    group  = "ops-workers"
  }
  lease = "3s"
}`, redisURL)
	}, "redis")
}

func TestOperatorToolingKafka(t *testing.T) {
	broker := startKafka(t, "ops-jobs")
	testOperatorTooling(t, func(string) string {
		return fmt.Sprintf(`
queue "jobs" {
  backend = "kafka"
  kafka {
    brokers = [%q]
    topic   = "ops-jobs"
    group   = "ops-workers"
  }
  lease = "5s"
}`, broker)
	}, "kafka")
}

// TestOperatorToolingMemory runs the same flows on the memory backend,
// whose state only its own process holds, through the admin pages; `jobs`
// says so and points at them.
func TestOperatorToolingMemory(t *testing.T) {
	a := startSwitchApp(t)
	listen, admin := freeAddr(t), freeAddr(t)
	dir := writeConfig(t, fmt.Sprintf(`
server {
  listen       = %q
  admin_listen = %q
}

endpoint "app" {
  url     = %q
  timeout = "5s"
}

queue "jobs" {
  backend = "memory"
}

route "work" {
  match {
    path_prefix = "/work"
  }
  mode       = "async"
  endpoint   = "app"
  queue      = "jobs"
  idempotent = true
  retry {
    attempts = 2
    initial  = "50ms"
    max      = "100ms"
  }
}

worker {
  embedded    = true
  concurrency = 1
  batch_size  = 1
}

telemetry {
  log_level = "warn"
}
`, listen, admin, a.URL))
	base, adm := "http://"+listen, "http://"+admin
	serve := start(t, "serve", nil, "serve", "-c", dir)
	waitOK(t, serve, adm+"/-/readyz")
	call := func(method, url string, v any) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("%s %s: %v\n%s", method, url, err, b)
			}
		}
		return resp.StatusCode
	}
	stats := func() []byte {
		resp, err := client.Get(adm + "/-/queues")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}

	code, _, errs := jobsCmd(t, dir, "stats")
	if code != 1 || !strings.Contains(errs, "memory") || !strings.Contains(errs, "/-/queues") {
		t.Fatalf("jobs stats on the memory backend: exit %d\n%s", code, errs)
	}

	failing := submitN(t, base, 30, "a")
	waitDeadLetters(t, stats, 30, 30*time.Second)
	var list struct {
		Jobs []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"jobs"`
	}
	if c := call("GET", adm+"/-/jobs?queue=jobs&state=dead", &list); c != 200 || len(list.Jobs) != 30 {
		t.Fatalf("GET /-/jobs?state=dead: %d, %d jobs", c, len(list.Jobs))
	}
	var show struct {
		Attempts int    `json:"attempts"`
		State    string `json:"state"`
	}
	if c := call("GET", adm+"/-/jobs/"+failing[0], &show); c != 200 || show.Attempts != 2 || show.State != "dead" {
		t.Fatalf("GET /-/jobs/ID: %d %+v", c, show)
	}
	a.fixed.Store(true)
	var moved struct {
		Redriven int `json:"redriven"`
	}
	if c := call("POST", adm+"/-/queues/jobs/redrive?all=1", &moved); c != 200 || moved.Redriven != 30 {
		t.Fatalf("POST /-/queues/jobs/redrive: %d %+v", c, moved)
	}
	waitCompleted(t, base, failing, 30*time.Second)
	waitDeadLetters(t, stats, 0, 5*time.Second)

	// The only worker slot is busy with a slow job: five jobs wait.
	slow := submitN(t, base, 1, "slow")
	deadline := time.Now().Add(5 * time.Second)
	for a.saw(slow[0]) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	pending := submitN(t, base, 5, "c")
	for _, id := range pending[:2] {
		if c := call("DELETE", adm+"/-/jobs/"+id, nil); c != 200 {
			t.Fatalf("DELETE /-/jobs/%s: %d", id, c)
		}
	}
	if c := call("DELETE", base+"/-/requests/"+pending[2], nil); c != 200 {
		t.Fatalf("DELETE /-/requests/%s: %d", pending[2], c)
	}
	if c := call("DELETE", adm+"/-/jobs/"+slow[0], nil); c != http.StatusConflict {
		t.Fatalf("DELETE of the running job: %d, want 409", c)
	}
	waitCompleted(t, base, append(slow, pending[3:]...), 30*time.Second)
	for _, id := range pending[:3] {
		if n := a.saw(id); n != 0 {
			t.Fatalf("cancelled job %s reached the app %d times", id, n)
		}
		if st, err := status(base, id); err != nil || st != "cancelled" {
			t.Fatalf("status of cancelled job %s: %q %v", id, st, err)
		}
	}

	a.fixed.Store(false)
	submitN(t, base, 2, "p")
	waitDeadLetters(t, stats, 2, 30*time.Second)
	var purged struct {
		Purged int `json:"purged"`
	}
	if c := call("POST", adm+"/-/queues/jobs/purge", &purged); c != 200 || purged.Purged != 2 {
		t.Fatalf("POST /-/queues/jobs/purge: %d %+v", c, purged)
	}
	waitDeadLetters(t, stats, 0, 5*time.Second)
}
