package router

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	rtmetrics "runtime/metrics"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/itchyny/gojq"
	"github.com/openhqm/openhqm/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// runawayJQ are expressions that, before jq evaluation was bounded, never
// answered (and kept allocating) or allocated gigabytes in one builtin call.
var runawayJQ = []string{
	`[range(1e9)] != null`,
	`def f: f; f`,
	`[limit(1e9; repeat(1))] | length > 0`,
	`("x" * 1e9 | length) > 0`,
	`reduce range(60) as $i ("x"; . + .) | length > 0`,
	`reduce range(40) as $i (0; [., .]) | tojson | length > 0`,
	`reduce range(40) as $i (0; [., .]) | . == .`,
	`null | .[100000000] = 1 | length > 0`,
	`"x" * 1000000 | [match(""; "g")] | length > 0`,
}

// A jq error's message is bounded, whatever the value it carries: a
// transform's refusal is logged with it.
func TestJQErrorMessage(t *testing.T) {
	q := mustJQ(t, `reduce range(40) as $i (0; [., .]) | error`)
	m := newJQMeter()
	defer m.release()
	_, _, err := jqFirst(context.Background(), q, nil, m)
	if err == nil || len(err.Error()) > 100 {
		t.Fatalf("error %.200v", err)
	}
}

// runawayConfig has, for each runaway expression i, a route m<i> matching
// it on /m<i> (endpoint "jq") and a route t<i> transforming with it on
// /t<i>, then a catch-all to endpoint "app".
func runawayConfig(t testing.TB, app, jqApp string) *config.Config {
	cfg := simpleConfig(t, app)
	cfg.Endpoints["jq"] = &config.Endpoint{Name: "jq", URL: mustURL(t, "http://"+jqApp), Timeout: 5 * time.Second}
	var routes []*config.Route
	for i, expr := range runawayJQ {
		routes = append(routes,
			&config.Route{Name: fmt.Sprintf("m%d", i), Mode: config.ModeSync, Endpoint: "jq",
				Match: config.Match{PathPrefix: fmt.Sprintf("/m%d", i), JQ: mustJQ(t, expr)}},
			&config.Route{Name: fmt.Sprintf("t%d", i), Mode: config.ModeSync, Endpoint: "jq",
				Match: config.Match{PathPrefix: fmt.Sprintf("/t%d", i)}, Transform: &config.Transform{Body: mustJQ(t, expr)}})
	}
	cfg.Routes = append(routes, cfg.Routes...)
	for i, r := range cfg.Routes {
		r.Index = i
	}
	return cfg
}

// startProxyLogging is startProxy with a Server that logs to log.
func startProxyLogging(t testing.TB, cfg *config.Config, log *slog.Logger) *proxy {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv := newTestServer(t, reg, Deps{})
	srv.log = log
	if err := srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{srv: srv, http: NewHTTPServer(cfg.Server, srv.Handler, nil), addr: ln.Addr().String(), reg: reg, done: make(chan struct{})}
	go func() { defer close(p.done); _ = p.http.Serve(ln) }()
	t.Cleanup(func() { _ = p.http.Shutdown(); <-p.done })
	return p
}

func answering(body string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(body) }
}

// A jq condition that runs away does not match: the request goes on to the
// next route once the evaluation hits jqTimeout or jqEvalMemory, the
// failure is counted, and it is logged once however often it happens.
func TestJQMatchRunaway(t *testing.T) {
	logs := &recordHandler{}
	cfg := runawayConfig(t, startApp(t, answering("fallback")), startApp(t, answering("jq route")))
	p := startProxyLogging(t, cfg, slog.New(logs))
	for i, expr := range runawayJQ {
		t.Run(expr, func(t *testing.T) {
			before := heapAllocs()
			for range 3 {
				resp := send(t, p.addr, newReq("POST", fmt.Sprintf("/m%d/x", i), []byte(`{}`)))
				if resp.StatusCode() != 200 || string(resp.Body()) != "fallback" {
					t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
				}
			}
			// Three evaluations within jqEvalMemory each, and the proxy's
			// own work; gigabytes before.
			if n := heapAllocs() - before; n > 3*jqEvalMemory+64<<20 {
				t.Errorf("three requests allocated %d MiB", n>>20)
			}
			route := fmt.Sprintf("m%d", i)
			if failures := jqFailures(t, p, route, "match"); failures != 3 {
				t.Errorf("%v failures counted, want 3", failures)
			}
			if n := logs.count(route); n != 1 {
				t.Errorf("%d log lines for route %s, want 1", n, route)
			}
		})
	}
}

// A transform that runs away answers 422 once it hits a limit, and never
// reaches the app.
func TestJQTransformRunaway(t *testing.T) {
	cfg := runawayConfig(t, startApp(t, answering("fallback")), startApp(t, answering("jq route")))
	p := startProxy(t, cfg, Deps{})
	for i, expr := range runawayJQ {
		t.Run(expr, func(t *testing.T) {
			before := heapAllocs()
			resp := send(t, p.addr, newReq("POST", fmt.Sprintf("/t%d/x", i), []byte(`{}`)))
			if resp.StatusCode() != 422 {
				t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
			}
			if n := heapAllocs() - before; n > jqEvalMemory+64<<20 {
				t.Errorf("the request allocated %d MiB", n>>20)
			}
			body := string(resp.Body())
			if !strings.Contains(body, "took longer than 100ms") && !strings.Contains(body, "needs more memory") &&
				!strings.Contains(body, "too much work") {
				t.Errorf("answer %s", body)
			}
		})
	}
}

// TestJQRunawayRSS sends 20 parallel requests of each runaway expression,
// as a jq condition and as a transform, to a real server in a child
// process, and checks the child's maximum resident set: the limits of one
// evaluation must not multiply by the number of requests.
func TestJQRunawayRSS(t *testing.T) {
	if os.Getenv("OPENHQM_JQ_RUNAWAY_CHILD") == "1" {
		runawayChild(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process that runs for a few seconds")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestJQRunawayRSS$", "-test.v")
	cmd.Env = append(os.Environ(), "OPENHQM_JQ_RUNAWAY_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
	t.Logf("child's maximum RSS: %d MiB\n%s", rss>>20, out)
	if rss > 512<<20 {
		t.Errorf("the child's maximum RSS was %d MiB", rss>>20)
	}
}

func runawayChild(t *testing.T) {
	cfg := runawayConfig(t, startApp(t, answering("fallback")), startApp(t, answering("jq route")))
	p := startProxy(t, cfg, Deps{})
	for i, expr := range runawayJQ {
		for _, kind := range []string{"m", "t"} {
			want := 200
			if kind == "t" {
				want = 422
			}
			codes, took := parallelRequests(t, p.addr, fmt.Sprintf("/%s%d/x", kind, i), 20)
			for _, c := range codes {
				if c != want {
					t.Errorf("%s %s: status %d, want %d", kind, expr, c, want)
				}
			}
			// Reported, not asserted: the machine is shared.
			slices.Sort(took)
			t.Logf("%s %-55s 20 parallel: median %4dms, slowest %4dms", kind, expr,
				took[len(took)/2].Milliseconds(), took[len(took)-1].Milliseconds())
		}
	}
}

// parallelRequests sends n POST requests with body {} to uri at once and
// returns their status codes and how long each took.
func parallelRequests(t testing.TB, addr, uri string, n int) ([]int, []time.Duration) {
	codes, took := make([]int, n), make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			defer func() { took[i] = time.Since(start) }()
			c := &fasthttp.HostClient{Addr: addr, ReadTimeout: 30 * time.Second}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod("POST")
			req.SetRequestURI("http://" + addr + uri)
			req.SetBodyString(`{}`)
			if err := c.Do(req, resp); err != nil {
				t.Error(err)
				return
			}
			codes[i] = resp.StatusCode()
		})
	}
	wg.Wait()
	return codes, took
}

// BenchmarkJQRunaway measures how long 20 parallel requests of each runaway
// expression take to be answered (one operation is the 20 requests).
func BenchmarkJQRunaway(b *testing.B) {
	cfg := runawayConfig(b, startApp(b, answering("fallback")), startApp(b, answering("jq route")))
	p := startProxy(b, cfg, Deps{})
	for i := range runawayJQ {
		for _, kind := range []string{"m", "t"} {
			b.Run(fmt.Sprintf("%s%d", kind, i), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					parallelRequests(b, p.addr, fmt.Sprintf("/%s%d/x", kind, i), 20)
				}
			})
		}
	}
}

// jqFailures sums openhqm_jq_failures_total of route and stage.
func jqFailures(t testing.TB, p *proxy, route, stage string) float64 {
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "openhqm_jq_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["stage"] == stage {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func heapAllocs() int64 {
	s := []rtmetrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	rtmetrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// recordHandler counts log records by their route attribute.
type recordHandler struct {
	mu     sync.Mutex
	routes map[string]int
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "route" {
			h.mu.Lock()
			if h.routes == nil {
				h.routes = map[string]int{}
			}
			h.routes[a.Value.String()]++
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) count(route string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.routes[route]
}

// BenchmarkJQOverhead compares the order transform run by plain gojq with
// the same expression compiled with guards and run with a deadline and a
// meter, as a transform runs it.
func BenchmarkJQOverhead(b *testing.B) {
	in, err := decodeJSON([]byte(orderBody))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("gojq", func(b *testing.B) {
		q, err := gojq.Parse(orderTransform)
		if err != nil {
			b.Fatal(err)
		}
		code, err := gojq.Compile(q)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if v, _ := code.Run(in).Next(); v == nil {
				b.Fatal("no result")
			}
		}
	})
	b.Run("guarded", func(b *testing.B) {
		q := mustJQ(b, orderTransform)
		b.ReportAllocs()
		for b.Loop() {
			c, cancel := context.WithTimeout(context.Background(), jqTimeout)
			m := newJQMeter()
			if _, ok, err := jqFirst(c, q, in, m); !ok || err != nil {
				b.Fatal(err)
			}
			m.release()
			cancel()
		}
	})
}
