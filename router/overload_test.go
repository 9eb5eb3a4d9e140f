package router

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/config"
)

// overloadConfig routes /spill (sync, on_overload = "queue") and /reject
// (sync, the default) to one endpoint at addr that takes one request at a
// time and lets none wait.
func overloadConfig(t testing.TB, addr string) *config.Config {
	cfg := asyncConfig(t)
	cfg.Endpoints["app"] = &config.Endpoint{Name: "app", URL: mustURL(t, "http://"+addr), Timeout: 5 * time.Second, MaxConcurrency: 1}
	cfg.Routes = append([]*config.Route{
		{Name: "spill", Mode: config.ModeSync, OnOverload: config.OverloadQueue, Endpoint: "app", Queue: "jobs", Match: config.Match{PathPrefix: "/spill"}},
		{Name: "reject", Mode: config.ModeSync, Endpoint: "app", Match: config.Match{PathPrefix: "/reject"}},
	}, cfg.Routes...)
	for i, r := range cfg.Routes {
		r.Index = i
	}
	return cfg
}

// holdApp answers /hold only once release is closed, everything else at once.
func holdApp(t *testing.T) (addr string, entered chan struct{}, release func()) {
	entered = make(chan struct{}, 4)
	hold := make(chan struct{})
	var once sync.Once
	addr = startApp(t, func(ctx *fasthttp.RequestCtx) {
		if strings.HasSuffix(string(ctx.Path()), "/hold") {
			entered <- struct{}{}
			<-hold
		}
		ctx.SetBodyString("app:" + string(ctx.Path()))
	})
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	return addr, entered, release
}

// TestSaturatedSyncRouteSpillsToTheQueue: with the endpoint's only slot
// taken, a request on an on_overload = "queue" route is accepted as a job
// (202, and the job is the request as the client sent it), while one on a
// rejecting route gets 503 with Retry-After.
func TestSaturatedSyncRouteSpillsToTheQueue(t *testing.T) {
	addr, entered, release := holdApp(t)
	e := startAsync(t, overloadConfig(t, addr), nil, nil)
	held := make(chan *fasthttp.Response, 1)
	go func() { held <- send(t, e.addr, newReq("GET", "/spill/hold", nil)) }()
	<-entered

	resp := send(t, e.addr, newReq("POST", "/spill/orders?x=1", []byte(`{"n":1}`),
		"Connection", "X-Secret", "X-Secret", "hop", "X-Forwarded-For", "1.2.3.4", "Content-Type", "application/json"))
	if resp.StatusCode() != 202 || !strings.HasPrefix(string(resp.Header.Peek("Location")), "/-/requests/") {
		t.Fatalf("saturated spill route: %d %s, want 202 + Location", resp.StatusCode(), resp.Body())
	}
	job := e.receiveOne(t).Job
	if job.Route != "spill" || job.Method != "POST" || job.Path != "/spill/orders" || job.Query != "x=1" || string(job.Body) != `{"n":1}` {
		t.Errorf("job %+v", job)
	}
	xff := 0
	for _, h := range job.Headers {
		switch {
		case strings.EqualFold(h.Name, "X-Secret"):
			t.Errorf("a header named in Connection was stored: %v", h)
		case h.Name == "X-Forwarded-For":
			xff++
			if h.Value != "1.2.3.4, 127.0.0.1" {
				t.Errorf("X-Forwarded-For %q", h.Value)
			}
		}
	}
	if xff != 1 {
		t.Errorf("%d X-Forwarded-For headers", xff)
	}

	resp = send(t, e.addr, newReq("GET", "/reject/x", nil))
	if resp.StatusCode() != 503 || string(resp.Header.Peek("Retry-After")) != "1" {
		t.Errorf("saturated reject route: %d Retry-After %q", resp.StatusCode(), resp.Header.Peek("Retry-After"))
	}
	if got := counterValue(t, e.reg, "openhqm_http_spilled_total", "route", "spill"); got != 1 {
		t.Errorf("openhqm_http_spilled_total{route=spill} = %v, want 1", got)
	}

	release()
	if r := <-held; r.StatusCode() != 200 || string(r.Body()) != "app:/spill/hold" {
		t.Errorf("the held request: %d %s", r.StatusCode(), r.Body())
	}
	if resp := send(t, e.addr, newReq("GET", "/spill/free", nil)); resp.StatusCode() != 200 {
		t.Errorf("with a free slot the spill route proxies: %d %s", resp.StatusCode(), resp.Body())
	}
}

// TestOpenBreakerAnswersAtOnce: while the endpoint's breaker is open, a sync
// request is refused at once with the time until a probe, without reaching
// the app, or spills to the queue.
func TestOpenBreakerAnswersAtOnce(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	addr := startApp(t, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		hits++
		mu.Unlock()
		ctx.SetStatusCode(503)
	})
	cfg := overloadConfig(t, addr)
	cfg.Endpoints["app"].MaxConcurrency = 0
	cfg.Endpoints["app"].CircuitBreaker = &config.CircuitBreaker{Failures: 2, OpenFor: time.Hour}
	e := startAsync(t, cfg, nil, nil)
	for range 2 {
		if resp := send(t, e.addr, newReq("GET", "/reject/x", nil)); resp.StatusCode() != 503 {
			t.Fatalf("the app's own 503: %d", resp.StatusCode())
		}
	}
	resp := send(t, e.addr, newReq("GET", "/reject/x", nil))
	if resp.StatusCode() != 503 || string(resp.Header.Peek("Retry-After")) != "3600" || !strings.Contains(string(resp.Body()), "unavailable") {
		t.Errorf("open breaker: %d Retry-After %q %s", resp.StatusCode(), resp.Header.Peek("Retry-After"), resp.Body())
	}
	if resp := send(t, e.addr, newReq("GET", "/spill/x", nil)); resp.StatusCode() != 202 {
		t.Errorf("open breaker, spill route: %d %s", resp.StatusCode(), resp.Body())
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 2 {
		t.Errorf("the app saw %d requests, want 2 (none while open)", hits)
	}
}
