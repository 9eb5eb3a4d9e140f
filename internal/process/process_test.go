package process

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/backends"
)

type closer func()

func (c closer) Close() error { c(); return nil }

// app is an upstream on 127.0.0.1 that answers with its name; requests to
// /slow wait until release is closed.
type app struct {
	addr    string
	release chan struct{}
	entered chan struct{}
}

func startApp(t *testing.T, name string) *app {
	t.Helper()
	a := &app{release: make(chan struct{}), entered: make(chan struct{}, 16)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			a.entered <- struct{}{}
			<-a.release
		}
		ctx.SetBodyString(name)
	}}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		select {
		case <-a.release:
		default:
			close(a.release)
		}
		_ = srv.Shutdown()
		<-done
	})
	a.addr = ln.Addr().String()
	return a
}

// configFile writes a configuration to dir/openhqm.hcl: routes "/" to the
// endpoint at addr, and names the memory queues given (the first is the
// queue of an async route /jobs).
func writeConfig(t *testing.T, dir, addr string, queues ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "server {\n  listen = \"127.0.0.1:0\"\n  admin_token = %q\n}\nendpoint \"app\" {\n  url = \"http://%s\"\n}\n", testAdminToken, addr)
	for _, q := range queues {
		fmt.Fprintf(&b, "queue %q {\n  backend = \"memory\"\n}\n", q)
	}
	if len(queues) > 0 {
		fmt.Fprintf(&b, "route \"jobs\" {\n  match {\n    path_prefix = \"/jobs\"\n  }\n  mode = \"async\"\n  endpoint = \"app\"\n  queue = %q\n}\n", queues[0])
	}
	b.WriteString("route \"default\" {\n  match {\n    path_prefix = \"/\"\n  }\n  endpoint = \"app\"\n}\n")
	// Write and rename, as a ConfigMap update swaps its files: the
	// directory watcher of a running process must never read half a file
	// (a truncated one can be valid, without the routes).
	tmp := filepath.Join(dir, ".openhqm.hcl.tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "openhqm.hcl")); err != nil {
		t.Fatal(err)
	}
}

// running is a Process serving on 127.0.0.1.
type running struct {
	p    *Process
	addr string
	logs *lockedBuffer
	stop func() int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProcess(t *testing.T, dir string) *running {
	t.Helper()
	return startProcessEnv(t, dir, nil)
}

// startProcessEnv starts a process whose env() reads lookup.
func startProcessEnv(t *testing.T, dir string, lookup func(string) (string, bool)) *running {
	t.Helper()
	src := Source{Kind: FromFiles, Paths: []string{dir}}
	cfg, warnings, err := src.Load(lookup)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	p, err := New(context.Background(), Options{Role: Serve, Name: "test", Source: src, Config: cfg, Warnings: warnings, LookupEnv: lookup, Log: logs, ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan []string, 1)
	code := make(chan int, 1)
	go func() { code <- p.Run(ctx, func(a []string) { addrs <- a }) }()
	var r *running
	select {
	case a := <-addrs:
		r = &running{p: p, addr: a[0], logs: logs}
	case c := <-code:
		t.Fatalf("Run returned %d at start:\n%s", c, logs)
	}
	stopped := false
	r.stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		select {
		case c := <-code:
			return c
		case <-time.After(20 * time.Second):
			t.Fatalf("Run did not return:\n%s", logs)
			return -1
		}
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("process log:\n%s", logs)
		}
	})
	return r
}

// testAdminToken is the server.admin_token of writeConfig; get presents it
// on the admin pages.
const testAdminToken = "process-test-admin-token"

func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + path)
	if strings.HasPrefix(path, "/-/") && !strings.HasPrefix(path, "/-/requests") {
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
	}
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Errorf("GET %s: %v", path, err)
		return 0, ""
	}
	return resp.StatusCode(), string(resp.Body())
}

// queueClosed reports whether a memory queue client was closed: a closed
// one refuses Receive at once; an open, empty one waits for the context.
func queueClosed(q backends.Queue) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := q.Receive(ctx, "probe", 1)
	return errors.Is(err, backends.ErrClosed)
}

func handles(p *Process) (map[string]*queueHandle, *resultsHandle) {
	g := p.current.Load()
	return g.queues, g.results
}

// TestRetirementClosesExactlyWhatIsNoLongerUsed: a reload that drops a
// queue closes its client, but only once the last request that started on
// the old generation has finished; queues and results still named stay
// open and are the same clients.
func TestRetirementClosesExactlyWhatIsNoLongerUsed(t *testing.T) {
	a := startApp(t, "one")
	dir := t.TempDir()
	writeConfig(t, dir, a.addr, "keep", "drop")
	r := startProcess(t, dir)
	oldQueues, oldResults := handles(r.p)

	slow := make(chan string, 1)
	go func() { _, body := get(t, r.addr, "/slow"); slow <- body }()
	<-a.entered // the request holds generation 1

	writeConfig(t, dir, a.addr, "keep", "added")
	if err := r.p.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	newQueues, newResults := handles(r.p)
	if newQueues["keep"] != oldQueues["keep"] || newResults != oldResults {
		t.Error("an unchanged queue or result store was opened again instead of reused")
	}
	if queueClosed(oldQueues["drop"].q) {
		t.Fatal("the dropped queue was closed while a request of its generation still ran")
	}
	if r.p.live.Load() != 2 {
		t.Errorf("live generations = %d, want 2 (the current one and the one in use)", r.p.live.Load())
	}

	close(a.release)
	if body := <-slow; body != "one" {
		t.Errorf("the request in flight got %q", body)
	}
	// The generation retires with the request; the queue closes once the
	// worker's consumer of it has drained too.
	deadline := time.Now().Add(5 * time.Second)
	for (r.p.live.Load() != 1 || !queueClosed(oldQueues["drop"].q)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !queueClosed(oldQueues["drop"].q) {
		t.Error("the dropped queue is still open after its generation retired and its consumer drained")
	}
	for name, h := range newQueues {
		if queueClosed(h.q) {
			t.Errorf("queue %q of the current generation was closed", name)
		}
	}
	if r.stop() != 0 {
		t.Error("exit code")
	}
	for name, h := range newQueues {
		if !queueClosed(h.q) {
			t.Errorf("queue %q still open after the process stopped", name)
		}
		if h.refs != 0 {
			t.Errorf("queue %q holds %d references after stop", name, h.refs)
		}
	}
}

// TestFailedReloadKeepsGeneration: a configuration that does not validate is
// refused, the running generation keeps serving, and /-/config tells why
// without quoting the file.
func TestFailedReloadKeepsGeneration(t *testing.T) {
	a := startApp(t, "one")
	dir := t.TempDir()
	writeConfig(t, dir, a.addr, "jobs")
	r := startProcess(t, dir)
	before := r.p.current.Load()

	secret := "s3cr3t-token-value"
	bad := fmt.Sprintf("endpoint \"app\" {\n  url = \"http://%s\"\n  auth {\n    type = \"bearer\"\n    token = %q\n  }\n  timeout = \"soon\"\n}\n", a.addr, secret)
	if err := os.WriteFile(filepath.Join(dir, "openhqm.hcl"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.p.Reload(context.Background(), "test")
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Reload of an invalid file: %v, want a *ConfigError", err)
	}
	if r.p.current.Load() != before {
		t.Error("the generation changed after a failed reload")
	}
	if code, body := get(t, r.addr, "/hello"); code != 200 || body != "one" {
		t.Errorf("after the failed reload: %d %q", code, body)
	}
	code, body := get(t, r.addr, "/-/config")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("/-/config: %d %s", code, body)
	}
	if st.Generation != before.ID || st.LastReloadError == nil || len(st.LastReloadError.Diagnostics) == 0 {
		t.Errorf("/-/config after a failed reload: %s", body)
	} else if d := st.LastReloadError.Diagnostics[0]; d.Range == nil || d.Range.Start.Line == 0 {
		t.Errorf("diagnostic without a location: %+v", d)
	}
	for what, s := range map[string]string{"/-/config": body, "log": r.logs.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("%s quotes the token written in the file", what)
		}
	}
}

// TestHostileReloadIsRefusedWhileServing: a file nested 100,000 levels deep
// (which overflowed the parser's stack and killed the process) and a FIFO
// named *.hcl (which wedged the reload) are written into the served
// directory while requests flow; each reload is refused with a located
// error, and every request is still answered.
func TestHostileReloadIsRefusedWhileServing(t *testing.T) {
	a := startApp(t, "one")
	dir := t.TempDir()
	writeConfig(t, dir, a.addr, "jobs")
	r := startProcess(t, dir)

	stop := make(chan struct{})
	var failed, ok atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if code, body := get(t, r.addr, "/x"); code == 200 && body == "one" {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}
	})

	// Requests flow before, during and after the hostile reloads.
	waitAnswered := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ok.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d requests answered, want %d", ok.Load(), n)
			}
		}
	}
	waitAnswered(1)

	deep := "server {\n  listen = \"127.0.0.1:0\"\n}\nendpoint \"x\" {\n  url = " + strings.Repeat("(", 100000) + "\"http://a\"" + strings.Repeat(")", 100000) + "\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "deep.hcl"), []byte(deep), 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.p.Reload(context.Background(), "test")
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "deep.hcl:5") || !strings.Contains(err.Error(), "Nesting deeper") {
		t.Errorf("reload of a 100,000-deep file: %v, want a located nesting error", err)
	}
	os.Remove(filepath.Join(dir, "deep.hcl"))

	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.hcl"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.p.Reload(context.Background(), "test") }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "pipe.hcl") {
			t.Errorf("reload with a FIFO in the directory: %v, want an error naming it", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO in the configuration directory wedged the reload")
	}
	waitAnswered(ok.Load() + 1)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("while hostile files were reloaded: %d requests failed, %d answered", failed.Load(), ok.Load())
	}
	if code, body := get(t, r.addr, "/-/config"); code != 200 || !strings.Contains(body, "pipe.hcl") {
		t.Errorf("/-/config does not show the last reload's error: %d %s", code, body)
	}
}

// TestSwapUnderLoad: requests keep flowing over keep-alive connections while
// the configuration moves the catch-all route between two apps 40 times;
// none fails, each is answered by one of the apps, and afterwards only the
// current generation is alive.
func TestSwapUnderLoad(t *testing.T) {
	apps := []*app{startApp(t, "blue"), startApp(t, "green")}
	dir := t.TempDir()
	writeConfig(t, dir, apps[0].addr, "jobs")
	r := startProcess(t, dir)

	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := &fasthttp.HostClient{Addr: r.addr}
			req, resp := &fasthttp.Request{}, &fasthttp.Response{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req.SetRequestURI("http://" + r.addr + "/x")
				err := c.DoTimeout(req, resp, 5*time.Second)
				if body := string(resp.Body()); err != nil || resp.StatusCode() != 200 || (body != "blue" && body != "green") {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		})
	}
	for i := range 40 {
		writeConfig(t, dir, apps[(i+1)%2].addr, "jobs", fmt.Sprintf("q%d", i%3))
		if err := r.p.Reload(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("%d requests failed, %d succeeded", failed.Load(), ok.Load())
	}
	if code, body := get(t, r.addr, "/x"); code != 200 || body != "blue" {
		t.Errorf("after the last reload: %d %q, want blue", code, body)
	}
	if n := r.p.live.Load(); n != 1 {
		t.Errorf("live generations after the load = %d, want 1", n)
	}
	if r.p.current.Load().ID != 41 {
		t.Errorf("generation %d, want 41", r.p.current.Load().ID)
	}
}

// TestAcquireNeverReturnsARetiredGeneration races acquisitions against
// swaps: a generation handed out must still hold a positive count, and
// every generation but the last retires exactly once.
func TestAcquireNeverReturnsARetiredGeneration(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	p := &Process{allRetired: make(chan struct{}), backends: &backendSet{log: log}, log: log}
	var retired atomic.Int64
	newGen := func(id uint64) *Generation {
		// Each generation has a result store of its own, closed when it
		// retires: the count of closes is the count of retirements.
		g := &Generation{ID: id, p: p, results: &resultsHandle{handle: handle{what: "results", c: closer(func() { retired.Add(1) }), refs: 1}}}
		g.refs.Store(1)
		g.release = g.unref
		p.live.Add(1)
		return g
	}
	p.current.Store(newGen(1))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				g := p.acquire()
				if g.refs.Load() <= 0 {
					bad.Add(1)
				}
				g.release()
			}
		})
	}
	for id := uint64(2); id <= 2000; id++ {
		old := p.current.Swap(newGen(id))
		old.unref()
	}
	close(stop)
	wg.Wait()
	p.backends.closing.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d acquisitions returned a retired generation", bad.Load())
	}
	if retired.Load() != 1999 || p.live.Load() != 1 {
		t.Errorf("retired %d generations, %d live; want 1999 and 1", retired.Load(), p.live.Load())
	}
}

// TestAdminTokenOnMainListener: on the main listener the admin pages answer
// only the current configuration's admin_token (a reload rotates it), the
// probes and /metrics answer anyone, and without a token the admin pages
// are not served at all.
func TestAdminTokenOnMainListener(t *testing.T) {
	a := startApp(t, "one")
	dir := t.TempDir()
	writeConfig(t, dir, a.addr)
	r := startProcess(t, dir)
	ask := func(method, path, token string) int {
		t.Helper()
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(method)
		req.SetRequestURI("http://" + r.addr + path)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp.StatusCode()
	}
	type probe struct {
		method, path, token string
		want                int
	}
	check := func(cases []probe) {
		t.Helper()
		for _, c := range cases {
			if got := ask(c.method, c.path, c.token); got != c.want {
				t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.token, got, c.want)
			}
		}
	}
	check([]probe{
		{"GET", "/-/config", "", 401},
		{"GET", "/-/config", "wrong", 401},
		{"GET", "/-/config", testAdminToken, 200},
		{"GET", "/-/routes", testAdminToken, 200},
		{"POST", "/-/reload", "", 401},
		{"GET", "/-/healthz", "", 200},
		{"GET", "/-/readyz", "", 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/hello", "", 200},
	})

	// Rotate the token with a reload.
	cfg, _ := os.ReadFile(filepath.Join(dir, "openhqm.hcl"))
	rotated := strings.Replace(string(cfg), testAdminToken, "rotated-admin-token", 1)
	if err := os.WriteFile(filepath.Join(dir, "openhqm.hcl"), []byte(rotated), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ask("POST", "/-/reload", testAdminToken); got != 200 {
		t.Fatalf("POST /-/reload: %d", got)
	}
	check([]probe{
		{"GET", "/-/config", testAdminToken, 401},
		{"GET", "/-/config", "rotated-admin-token", 200},
	})

	// No token: not served on the main listener, whoever asks.
	bare := strings.Replace(string(cfg), fmt.Sprintf("  admin_token = %q\n", testAdminToken), "", 1)
	if err := os.WriteFile(filepath.Join(dir, "openhqm.hcl"), []byte(bare), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.p.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	check([]probe{
		{"GET", "/-/config", "rotated-admin-token", 404},
		{"GET", "/-/routes", "", 404},
		{"POST", "/-/reload", "", 404},
		{"GET", "/-/healthz", "", 200},
		{"GET", "/health", "", 200},
	})
}

// TestMaxConnections: the listener of serve holds at most
// server.max_connections connections; the next one is answered 503 and
// counted, and the probe answers again once one closed.
func TestMaxConnections(t *testing.T) {
	a := startApp(t, "one")
	dir := t.TempDir()
	writeConfig(t, dir, a.addr)
	cfg, _ := os.ReadFile(filepath.Join(dir, "openhqm.hcl"))
	limited := strings.Replace(string(cfg), "server {\n", "server {\n  max_connections = 2\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "openhqm.hcl"), []byte(limited), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startProcess(t, dir)
	probe := func(c net.Conn) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET /-/healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return err.Error()
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err.Error()
		}
		return strings.TrimSpace(line)
	}
	var open []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
	}
	for i, want := range []string{"HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 503 Service Unavailable"} {
		if got := probe(open[i]); got != want {
			t.Errorf("connection %d: %q, want %q", i+1, got, want)
		}
	}
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		got := probe(c)
		c.Close()
		if got == "HTTP/1.1 200 OK" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a connection closed: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mfs, err := r.p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	rejected := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "openhqm_http_connections_rejected_total" {
			rejected = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if rejected < 1 {
		t.Errorf("openhqm_http_connections_rejected_total = %v, want at least 1", rejected)
	}
}
