package router

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

func mustJQ(t testing.TB, src string) *config.JQ {
	t.Helper()
	q, err := config.CompileJQ(src)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return q
}

// recordingApp keeps a copy of every request it receives.
type recordingApp struct {
	mu   sync.Mutex
	reqs []*fasthttp.Request
	addr string
}

func newRecordingApp(t testing.TB) *recordingApp {
	a := &recordingApp{}
	a.addr = startApp(t, func(ctx *fasthttp.RequestCtx) {
		r := &fasthttp.Request{}
		ctx.Request.CopyTo(r)
		a.mu.Lock()
		a.reqs = append(a.reqs, r)
		a.mu.Unlock()
		ctx.SetBodyString("ok")
	})
	return a
}

func (a *recordingApp) last(t testing.TB) *fasthttp.Request {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		t.Fatal("the app received nothing")
	}
	return a.reqs[len(a.reqs)-1]
}

func (a *recordingApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
}

// orderTransform is the original OpenHQM's order example (examples/README.md
// there) as a body transform: the body is the original's queue envelope,
// items are renamed, the total is computed and the currency falls back to
// USD.
const orderTransform = `{
  order_id: .payload.order_id,
  customer_id: .payload.customer.id,
  items: [.payload.items[] | {product_id: .sku, quantity: .qty, price: .unit_price}],
  total: ([.payload.items[] | .qty * .unit_price] | add),
  currency: (.payload.currency // "USD")
}`

// orderBody is the original's sample order without a currency (so the
// fallback is what sets it). The original documents MOUSE-002 at 25.50 and a
// total of 1051.49, which do not add up (999.99 + 2 × 25.50 = 1050.99); the
// price here is 25.75 so that the documented total is the computed one.
const orderBody = `{
  "payload": {
    "order_id": "ORD-2024-001",
    "customer": {"id": "CUST-123"},
    "items": [
      {"sku": "LAPTOP-001", "qty": 1, "unit_price": 999.99},
      {"sku": "MOUSE-002", "qty": 2, "unit_price": 25.75}
    ]
  },
  "metadata": {"type": "order.create"},
  "correlation_id": "test-order-001"
}`

const orderWant = `{"currency":"USD","customer_id":"CUST-123",` +
	`"items":[{"price":999.99,"product_id":"LAPTOP-001","quantity":1},{"price":25.75,"product_id":"MOUSE-002","quantity":2}],` +
	`"order_id":"ORD-2024-001","total":1051.49}`

// transformConfig serves one sync route "shape" on /shape with tr, in front
// of addr.
func transformConfig(t testing.TB, addr string, tr *config.Transform) *config.Config {
	cfg := simpleConfig(t, addr)
	cfg.Routes = append([]*config.Route{{
		Name: "shape", Mode: config.ModeSync, Endpoint: "app",
		Match: config.Match{PathPrefix: "/shape"}, Transform: tr,
	}}, cfg.Routes...)
	for i, r := range cfg.Routes {
		r.Index = i
	}
	return cfg
}

func TestTransformSync(t *testing.T) {
	tests := []struct {
		name string
		tr   *config.Transform
		uri  string
		body string
		hdr  []string
		// what the app must see
		wantBody    string
		wantURI     string
		wantHeaders map[string]string // "" means absent
	}{
		{
			name:     "order example",
			tr:       &config.Transform{Body: mustJQ(t, orderTransform)},
			uri:      "/shape/orders",
			body:     orderBody,
			hdr:      []string{"Content-Type", "text/plain"},
			wantBody: orderWant,
			wantURI:  "/shape/orders",
			wantHeaders: map[string]string{
				"Content-Type":   "application/json",
				"Content-Length": itoa(len(orderWant)),
			},
		},
		{
			name: "headers and query from the body",
			tr: &config.Transform{
				Headers: map[string]*config.JQ{
					"X-Tenant":   mustJQ(t, ".tenant"),
					"X-Count":    mustJQ(t, ".items | length"),
					"X-Big":      mustJQ(t, ".big"),
					"X-Price":    mustJQ(t, ".price"),
					"X-Vip":      mustJQ(t, ".vip"),
					"X-Tags":     mustJQ(t, ".tags"),
					"X-Customer": mustJQ(t, ".customer"),
				},
				Query: map[string]*config.JQ{
					"customer": mustJQ(t, ".customer.id"),
					"tenant":   mustJQ(t, ".tenant"),
					"n":        mustJQ(t, ".big"),
				},
			},
			uri:      "/shape/x?customer=old&keep=1&customer=older&a%20b=c",
			body:     `{"tenant":"acme corp","items":[1,2,3],"big":12345678901234567890,"price":25.50,"vip":true,"tags":["a","b"],"customer":{"id":"c&42"}}`,
			hdr:      []string{"X-Tenant", "forged"},
			wantBody: `{"tenant":"acme corp","items":[1,2,3],"big":12345678901234567890,"price":25.50,"vip":true,"tags":["a","b"],"customer":{"id":"c&42"}}`,
			wantURI:  "/shape/x?keep=1&a%20b=c&customer=c%2642&n=12345678901234567890&tenant=acme+corp",
			wantHeaders: map[string]string{
				"X-Tenant":   "acme corp",
				"X-Count":    "3",
				"X-Big":      "12345678901234567890",
				"X-Price":    "25.50",
				"X-Vip":      "true",
				"X-Tags":     `["a","b"]`,
				"X-Customer": `{"id":"c&42"}`,
			},
		},
		{
			name: "null or no result sets nothing",
			tr: &config.Transform{
				Headers: map[string]*config.JQ{
					"X-Missing": mustJQ(t, ".missing"),
					"X-Empty":   mustJQ(t, "empty"),
					"X-Kept":    mustJQ(t, ".missing"),
				},
				Query: map[string]*config.JQ{"q": mustJQ(t, ".missing"), "r": mustJQ(t, "empty")},
			},
			uri:      "/shape/y?q=client",
			body:     `{"a":1}`,
			hdr:      []string{"X-Kept", "from-client"},
			wantBody: `{"a":1}`,
			wantURI:  "/shape/y?q=client",
			wantHeaders: map[string]string{
				"X-Missing": "",
				"X-Empty":   "",
				"X-Kept":    "from-client",
			},
		},
		{
			name: "framing headers are the proxy's",
			tr: &config.Transform{Headers: map[string]*config.JQ{
				"Content-Length":    mustJQ(t, `"0"`),
				"Transfer-Encoding": mustJQ(t, `"chunked"`),
				"Host":              mustJQ(t, `"evil.example"`),
				"Content-Type":      mustJQ(t, `"application/vnd.order+json"`),
			}},
			uri:      "/shape/z",
			body:     `{"a":1}`,
			wantBody: `{"a":1}`,
			wantURI:  "/shape/z",
			wantHeaders: map[string]string{
				"Content-Length":    "7",
				"Transfer-Encoding": "",
				"Content-Type":      "application/vnd.order+json",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newRecordingApp(t)
			p := startProxy(t, transformConfig(t, app.addr, tt.tr), Deps{})
			resp := send(t, p.addr, newReq("POST", tt.uri, []byte(tt.body), tt.hdr...))
			if resp.StatusCode() != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
			}
			seen := app.last(t)
			if got := string(seen.Body()); got != tt.wantBody {
				t.Errorf("app got body\n%s\nwant\n%s", got, tt.wantBody)
			}
			if got := string(seen.RequestURI()); got != tt.wantURI {
				t.Errorf("app got URI %q, want %q", got, tt.wantURI)
			}
			got := map[string]string{}
			for h := range tt.wantHeaders {
				got[h] = string(seen.Header.Peek(h))
			}
			if d := cmp.Diff(tt.wantHeaders, got); d != "" {
				t.Errorf("app headers (-want +got):\n%s", d)
			}
			if n := len(seen.Header.PeekAll("X-Tenant")); n > 1 {
				t.Errorf("X-Tenant sent %d times", n)
			}
			if host := string(seen.Header.Host()); host != app.addr {
				t.Errorf("app got Host %q", host)
			}
		})
	}
}

// A request the transform cannot handle is refused with 422 and never
// reaches the app; the answer names the route and the failing part, not the
// expression or a gojq message.
func TestTransformRefused(t *testing.T) {
	tests := []struct {
		name    string
		tr      *config.Transform
		maxBody int64
		body    string
		want    string
	}{
		{"body not JSON", &config.Transform{Body: mustJQ(t, ".")}, 0, `<order id="1"/>`,
			`route "shape": the transform needs a JSON request body`},
		{"empty body", &config.Transform{Headers: map[string]*config.JQ{"X-A": mustJQ(t, ".a")}}, 0, ``,
			`route "shape": the transform needs a JSON request body`},
		{"two JSON values", &config.Transform{Body: mustJQ(t, ".")}, 0, `{"a":1} {"a":2}`,
			`route "shape": the transform needs a JSON request body`},
		{"runtime error in the body", &config.Transform{Body: mustJQ(t, ".items[] | .sku")}, 0, `{"items":7}`,
			`route "shape": the transform of the body failed on this request body`},
		{"runtime error in a header", &config.Transform{Headers: map[string]*config.JQ{"X-Secret-Expr": mustJQ(t, `error("internal detail")`)}}, 0, `{}`,
			`route "shape": the transform of the header X-Secret-Expr failed on this request body`},
		{"runtime error in a query", &config.Transform{Query: map[string]*config.JQ{"n": mustJQ(t, ".a + 1")}}, 0, `{"a":"x"}`,
			`route "shape": the transform of the query parameter n failed on this request body`},
		{"body with no value", &config.Transform{Body: mustJQ(t, "empty")}, 0, `{}`,
			`route "shape": the transform of the body failed: the expression produced no value`},
		{"line break in a header", &config.Transform{Headers: map[string]*config.JQ{"X-Note": mustJQ(t, ".note")}}, 0, `{"note":"a\r\nX-Admin: 1"}`,
			`route "shape": the transform of the header X-Note failed: the value contains a control character`},
		{"body above max_body_size", &config.Transform{Body: mustJQ(t, `[range(100) | "xxxxxxxxxx"]`)}, 512, `{}`,
			`route "shape": the transform of the body failed: the body is larger than max_body_size`},
		{"runaway expression", &config.Transform{Body: mustJQ(t, `[range(1e12)] | length`)}, 0, `{}`,
			`route "shape": the transform of the body took longer than 100ms`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newRecordingApp(t)
			cfg := transformConfig(t, app.addr, tt.tr)
			if tt.maxBody > 0 {
				cfg.Server.MaxBodySize = tt.maxBody
			}
			p := startProxy(t, cfg, Deps{})
			resp := send(t, p.addr, newReq("POST", "/shape/1", []byte(tt.body), "X-Request-Id", "req-422"))
			if resp.StatusCode() != 422 {
				t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
			}
			want := map[string]any{"error": tt.want, "request_id": "req-422"}
			if d := cmp.Diff(want, decode(t, resp)); d != "" {
				t.Errorf("answer (-want +got):\n%s", d)
			}
			if n := app.count(); n != 0 {
				t.Errorf("the app received %d requests", n)
			}
			if strings.Contains(string(resp.Body()), "internal detail") {
				t.Error("the answer leaks the jq error")
			}
		})
	}
}

// An async route stores the transformed request: the worker replays exactly
// what the transform produced.
func TestTransformAsync(t *testing.T) {
	cfg := asyncConfig(t)
	for _, r := range cfg.Routes {
		if r.Name == "orders" {
			r.Transform = &config.Transform{
				Body:    mustJQ(t, orderTransform),
				Headers: map[string]*config.JQ{"X-Correlation-Id": mustJQ(t, ".correlation_id"), "X-None": mustJQ(t, ".nope")},
				Query:   map[string]*config.JQ{"type": mustJQ(t, ".metadata.type")},
			}
		}
	}
	e := startAsync(t, cfg, nil, nil)
	resp := send(t, e.addr, newReq("POST", "/orders/new?src=web&type=x", []byte(orderBody), "Content-Type", "text/plain"))
	if resp.StatusCode() != 202 {
		t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	job := e.receiveOne(t).Job
	if got := string(job.Body); got != orderWant {
		t.Errorf("job body\n%s\nwant\n%s", got, orderWant)
	}
	if job.Query != "src=web&type=order.create" || job.Path != "/orders/new" {
		t.Errorf("job path %q query %q", job.Path, job.Query)
	}
	got := map[string][]string{}
	for _, h := range job.Headers {
		got[h.Name] = append(got[h.Name], h.Value)
	}
	for name, want := range map[string][]string{
		"Content-Type":     {"application/json"},
		"X-Correlation-Id": {"test-order-001"},
		"X-None":           nil,
		"Content-Length":   nil,
	} {
		if d := cmp.Diff(want, got[name]); d != "" {
			t.Errorf("job header %s (-want +got):\n%s", name, d)
		}
	}

	// A refused body is not queued.
	before, err := e.queue.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	resp = send(t, e.addr, newReq("POST", "/orders/new", []byte("not json")))
	if resp.StatusCode() != 422 {
		t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	if st, err := e.queue.Stats(t.Context()); err != nil || st.Depth != before.Depth {
		t.Errorf("queue depth %d %v after a refused request, %d before", st.Depth, err, before.Depth)
	}
}

func TestSetQuery(t *testing.T) {
	tests := []struct {
		query string
		set   []nameValue
		want  string
	}{
		{"", []nameValue{{"a", "1"}}, "a=1"},
		{"a=0", []nameValue{{"a", "1"}}, "a=1"},
		{"a=0&b=2&a=3", []nameValue{{"a", "x y"}}, "b=2&a=x+y"},
		{"b&&c=%2F", []nameValue{{"d", "é/&="}}, "b&c=%2F&d=%C3%A9%2F%26%3D"},
		{"a%62=1&ab=2", []nameValue{{"ab", "3"}}, "ab=3"},
		{"x=%zz", []nameValue{{"a b", "1"}}, "x=%zz&a+b=1"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if got := setQuery(tt.query, tt.set); got != tt.want {
				t.Errorf("setQuery(%q) = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}
