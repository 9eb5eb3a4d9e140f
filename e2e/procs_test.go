package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// proc is a running openhqm process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
	err  error
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// start runs the openhqm binary with args and env (added to a clean
// environment that keeps only PATH and HOME). It is stopped at the end of the
// test; its output is printed when the test failed.
func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p := &proc{name: name, cmd: cmd, log: new(bytes.Buffer), mu: new(sync.Mutex), done: make(chan struct{})}
	cmd.Stdout = lockedWriter{p.mu, p.log}
	cmd.Stderr = lockedWriter{p.mu, p.log}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(sig)
	}
}

// stop sends SIGTERM and waits for the exit status.
func (p *proc) stop(t *testing.T, within time.Duration) int {
	t.Helper()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s did not exit within %v of SIGTERM", p.name, within)
	}
	return p.cmd.ProcessState.ExitCode()
}

// freeAddr returns a 127.0.0.1 address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitOK polls url until it answers 200.
func waitOK(t *testing.T, p *proc, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.output())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s did not answer 200 within 20s\n%s", p.name, url, p.output())
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "openhqm.hcl"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// app is the legacy app of the tests: it answers POSTs with a JSON echo of
// the body and counts the deliveries of each Idempotency-Key.
type app struct {
	URL   string
	name  string // sent back in X-App-Name
	delay time.Duration
	mu    sync.Mutex
	seen  map[string]int
	total int
}

// serveHTTP serves h on a free port of 127.0.0.1 until the test ends and
// answers its base URL.
func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

func startApp(t *testing.T, delay time.Duration) *app {
	t.Helper()
	a := &app{delay: delay, seen: map[string]int{}}
	srv := &http.Server{Handler: a}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	a.URL = "http://" + l.Addr().String()
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get("Idempotency-Key")
	a.mu.Lock()
	a.seen[key]++
	a.total++
	a.mu.Unlock()
	if a.delay > 0 {
		time.Sleep(a.delay)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-App", "legacy")
	w.Header().Set("X-App-Name", a.name)
	w.Header().Set("X-Gen-Seen", r.Header.Get("X-Gen"))
	fmt.Fprintf(w, `{"path":%q,"echo":%s}`, r.URL.Path, jsonString(body))
}

func jsonString(b []byte) string {
	s, _ := json.Marshal(string(b))
	return string(s)
}

// answer is what the app answers to a POST of body on path.
func answer(path, body string) string {
	return fmt.Sprintf(`{"path":%q,"echo":%s}`, path, jsonString([]byte(body)))
}

func (a *app) counts() (keys, total, duplicates int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.seen {
		if n > 1 {
			duplicates += n - 1
		}
	}
	return len(a.seen), a.total, duplicates
}

func (a *app) saw(key string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[key]
}

// client is an HTTP client with a pool large enough for the tests' concurrency.
// It presents adminToken on the admin pages (/-/config, /-/routes,
// /-/reload), which the configurations that use them set as
// server.admin_token.
var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: adminBearer{&http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}},
}

const adminToken = "e2e-admin-token"

type adminBearer struct{ http.RoundTripper }

func (a adminBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.URL.Path {
	case "/-/config", "/-/routes", "/-/reload":
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+adminToken)
	}
	return a.RoundTripper.RoundTrip(r)
}

// submitted is one request the test sent and what became of it.
type submitted struct {
	body   string
	code   int
	id     string
	status string
}

func submit(base, path, body string) (submitted, error) {
	s := submitted{body: body}
	resp, err := client.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	s.code = resp.StatusCode
	if resp.StatusCode != http.StatusAccepted {
		io.Copy(io.Discard, resp.Body)
		return s, nil
	}
	var v struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		StatusURL string `json:"status_url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return s, fmt.Errorf("decode 202 body: %w", err)
	}
	if loc := resp.Header.Get("Location"); loc != "/-/requests/"+v.ID {
		return s, fmt.Errorf("Location %q, want /-/requests/%s", loc, v.ID)
	}
	s.id, s.status = v.ID, v.Status
	return s, nil
}

// status returns the job's status field.
func status(base, id string) (string, error) {
	resp, err := client.Get(base + "/-/requests/" + id)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("GET /-/requests/%s: %d %s", id, resp.StatusCode, b)
	}
	var v struct {
		Status string `json:"status"`
	}
	err = json.NewDecoder(resp.Body).Decode(&v)
	return v.Status, err
}

// response returns the stored answer of the app for a completed job.
func response(base, id string) (int, http.Header, string, error) {
	resp, err := client.Get(base + "/-/requests/" + id + "/response")
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// waitCompleted polls every id until all are completed, or fails the test
// after within with how many are not.
func waitCompleted(t *testing.T, base string, ids []string, within time.Duration) {
	t.Helper()
	left := map[string]bool{}
	for _, id := range ids {
		left[id] = true
	}
	deadline := time.Now().Add(within)
	for len(left) > 0 && time.Now().Before(deadline) {
		for id := range left {
			st, err := status(base, id)
			if err != nil {
				continue
			}
			switch st {
			case "completed":
				delete(left, id)
			case "failed":
				t.Fatalf("job %s failed", id)
			}
		}
		if len(left) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d of %d jobs not completed within %v", len(left), len(ids), within)
	}
}

// killDuringLoad submits n async requests to path with 32 clients and kills
// victim with SIGKILL once the app has seen a quarter of them, so that it
// dies holding leased jobs. Then it waits until every request completed
// with the app's own answer, and reports the duplicates the app saw.
func killDuringLoad(t *testing.T, base string, a *app, victim *proc, n int, path string, within time.Duration) {
	t.Helper()
	subs := make([]submitted, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				s, err := submit(base, path, fmt.Sprintf(`{"seq":%d}`, i))
				if err != nil {
					errs <- err
					return
				}
				subs[i] = s
			}
		})
	}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for {
			if _, total, _ := a.counts(); total >= n/4 {
				victim.signal(syscall.SIGKILL)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	<-killed

	ids := make([]string, n)
	for i, s := range subs {
		if s.code != http.StatusAccepted {
			t.Fatalf("request %d answered %d, want 202", i, s.code)
		}
		ids[i] = s.id
	}
	waitCompleted(t, base, ids, within)
	for i, s := range subs {
		code, h, body, err := response(base, s.id)
		if err != nil || code != http.StatusOK || body != answer(path, s.body) || h.Get("X-App") != "legacy" {
			t.Fatalf("request %d (%s): response %d %q %v, X-App %q; want 200 %q", i, s.id, code, body, err, h.Get("X-App"), answer(path, s.body))
		}
		if a.saw(s.id) == 0 {
			t.Fatalf("the app never saw job %s", s.id)
		}
	}
	keys, total, dup := a.counts()
	t.Logf("%d jobs completed; the app saw %d distinct jobs in %d deliveries: %d duplicates after the SIGKILL", n, keys, total, dup)
}
