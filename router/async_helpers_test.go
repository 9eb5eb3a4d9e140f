package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
	"github.com/openhqm/openhqm/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// asyncEnv is a proxy with async routes over real memory backends.
type asyncEnv struct {
	*proxy
	cfg     *config.Config
	queue   backends.Queue
	results backends.ResultStore
}

// asyncConfig has the routes the async tests use: "orders" (async, anyone),
// "secure" (async, bearer), "keyed" (async, api_key in X-Key), "auto" and a
// sync catch-all, plus submit_api; endpoint "app" at an address nothing
// listens on (no test here replays a job).
func asyncConfig(t testing.TB) *config.Config {
	cfg := simpleConfig(t, "127.0.0.1:1")
	cfg.Endpoints["other"] = &config.Endpoint{Name: "other", URL: mustURL(t, "http://127.0.0.1:2"), Timeout: time.Second}
	cfg.Queues = map[string]*config.Queue{"jobs": {Name: "jobs", Backend: config.BackendMemory}}
	cfg.Results = config.Results{Backend: config.BackendMemory, TTL: time.Hour}
	async := func(name, prefix string, mode config.Mode, ca *config.ClientAuth) *config.Route {
		return &config.Route{Name: name, Mode: mode, Endpoint: "app", Queue: "jobs", Match: config.Match{PathPrefix: prefix}, ClientAuth: ca}
	}
	cfg.Routes = append([]*config.Route{
		async("orders", "/orders", config.ModeAsync, nil),
		async("secure", "/secure", config.ModeAsync, &config.ClientAuth{Type: config.AuthBearer, Tokens: []string{"alice-token", "bob-token"}}),
		async("keyed", "/keyed", config.ModeAsync, &config.ClientAuth{Type: config.AuthAPIKey, Header: "X-Key", Tokens: []string{"k-one"}}),
		async("auto", "/auto", config.ModeAuto, nil),
	}, cfg.Routes...)
	for i, r := range cfg.Routes {
		r.Index = i
	}
	cfg.SubmitAPI = &config.SubmitAPI{Endpoint: "app", Queue: "jobs"}
	return cfg
}

// startAsync serves cfg with q as queue "jobs" and res as the result store;
// nil means a new memory backend.
func startAsync(t testing.TB, cfg *config.Config, q backends.Queue, res backends.ResultStore) *asyncEnv {
	t.Helper()
	if q == nil {
		mq, err := memory.NewQueue(memory.QueueOptions{Name: "jobs"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mq.Close() })
		q = mq
	}
	if res == nil {
		mr, err := memory.NewResults(memory.ResultsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mr.Close() })
		res = mr
	}
	deps := Deps{Queues: map[string]Enqueuer{"jobs": q}, Results: res}
	return &asyncEnv{proxy: startProxy(t, cfg, deps), cfg: cfg, queue: q, results: res}
}

// receiveOne takes one job from the queue, failing after a few seconds.
func (e *asyncEnv) receiveOne(t testing.TB) *backends.Delivery {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ds, err := e.queue.Receive(context.Background(), "test", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 {
			return ds[0]
		}
	}
	t.Fatal("no job in the queue")
	return nil
}

// newReq builds a request; hdr is name, value pairs.
func newReq(method, uri string, body []byte, hdr ...string) *fasthttp.Request {
	req := &fasthttp.Request{}
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.URI().DisablePathNormalizing = true
	req.UseHostHeader = true
	req.SetBody(body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

func decode(t testing.TB, resp *fasthttp.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(resp.Body(), &m); err != nil {
		t.Fatalf("body %q: %v", resp.Body(), err)
	}
	return m
}

func digestOf(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// complete stores a finished result for id, as a worker would.
func complete(t testing.TB, res backends.ResultStore, id string, status backends.Status, code int, body string, hdr ...string) {
	t.Helper()
	r, err := res.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	r.Status, r.Attempts, r.StartedAt, r.UpdatedAt, r.CompletedAt = status, 1, now.Add(-42*time.Millisecond), now, now
	r.StatusCode, r.Body = code, []byte(body)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Headers = append(r.Headers, backends.Header{Name: hdr[i], Value: hdr[i+1]})
	}
	if status == backends.StatusFailed {
		r.Error = "upstream answered 500 Internal Server Error (gave up after 3 attempts)"
	}
	if err := res.Update(context.Background(), r, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// counterValue reads a counter from reg; labels are name, value pairs that
// must all match.
func counterValue(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
