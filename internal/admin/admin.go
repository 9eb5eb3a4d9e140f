// Package admin serves openhqm's probes, metrics, introspection and control
// pages for `openhqm serve` and `openhqm worker` alike: /-/healthz,
// /-/readyz, /health, /metrics, /-/config, /-/routes, /-/queues and
// /-/jobs, and POST /-/reload. It
// owns no state: what a page shows comes from the functions in Options, so
// each process hands it its own values.
//
// One rule decides who may see a page on the application's listener
// (Shared): the probes and /metrics are open (the kubelet and Prometheus
// use that port); every other page, present or added later, answers only
// the server.admin_token bearer, and is not served there at all without
// one. Loopback is no credential: a mesh proxy in the pod makes every
// caller local.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/openhqm/openhqm/internal/httpheader"
	"github.com/openhqm/openhqm/internal/jobs"
)

// Options are what the pages show. Nil functions leave their page out (404),
// except Ready, whose absence means always ready.
type Options struct {
	// Version is reported by /health.
	Version string
	// Gatherer is what /metrics serves; nil: no /metrics.
	Gatherer prometheus.Gatherer
	// MetricsEnabled reports whether /metrics is on in the current
	// configuration; nil: always.
	MetricsEnabled func() bool
	// Ready reports whether the process can do its work (configuration
	// loaded, queues and result store reachable). It is called with a
	// context bounded by ProbeTimeout.
	Ready func(ctx context.Context) error
	// Config is the body of /-/config.
	Config func() any
	// Routes is the body of /-/routes; nil in a worker, which has none.
	Routes func() any
	// Jobs is the operator's tooling over the current generation's queues
	// and results, for /-/queues and /-/jobs (see jobs.go), with the
	// function that lets go of it; nil: no such pages.
	Jobs func() (*jobs.Service, func())
	// Reload runs a reload for POST /-/reload and returns the body of its
	// success (the new generation) or why it was refused.
	Reload func(ctx context.Context) (any, error)
	// Token returns the bearer that introspection and control require on a
	// Shared listener (server.admin_token of the current configuration);
	// nil or "": those pages are not served there.
	Token func() string
	// Observe, when set, counts each answer (request metrics).
	Observe func(code int, start time.Time)
	// ProbeTimeout bounds a readiness check; default 2s.
	ProbeTimeout time.Duration
}

// Exposure says which pages a listener serves.
type Exposure int

const (
	// Dedicated is a listener of its own (server.admin_listen, a worker's
	// listen address): every page.
	Dedicated Exposure = iota
	// Shared is the application's listener: probes and metrics for
	// everyone (the kubelet and Prometheus use that port); every other page
	// to the admin token's bearer only, and to nobody without a token.
	Shared
)

// Handler serves the admin pages. It is safe for concurrent use.
type Handler struct {
	opts    Options
	metrics fasthttp.RequestHandler
}

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = 2 * time.Second
	}
	h := &Handler{opts: opts}
	if opts.Gatherer != nil {
		h.metrics = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return h
}

// Serve answers the request when its path is an admin page and reports
// whether it was one; otherwise it leaves ctx untouched.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx, exp Exposure) bool {
	switch path := string(ctx.Path()); path {
	case "/-/healthz", "/-/readyz", "/health", "/metrics", "/-/config", "/-/routes", "/-/reload":
	default:
		if !isJobsPage(path) {
			return false
		}
	}
	start := time.Now()
	if exp == Dedicated || Open(string(ctx.Path())) || h.authorized(ctx) {
		h.serve(ctx)
	}
	if h.opts.Observe != nil {
		h.opts.Observe(ctx.Response.StatusCode(), start)
	}
	return true
}

// Dedicated serves a listener of its own: the admin pages and 404 for
// anything else.
func (h *Handler) Dedicated(ctx *fasthttp.RequestCtx) {
	if !h.Serve(ctx, Dedicated) {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not found"})
	}
}

// Open reports whether path is a page served to anyone on every listener:
// the probes and /metrics. Every other admin page is introspection or
// control, which a Shared listener serves only to the admin token.
func Open(path string) bool {
	switch path {
	case "/-/healthz", "/-/readyz", "/health", "/metrics":
		return true
	}
	return false
}

// authorized reports whether the request carries the admin token as a
// bearer; otherwise it answers 404 (no token configured: the page does not
// exist on this listener) or 401.
func (h *Handler) authorized(ctx *fasthttp.RequestCtx) bool {
	var token string
	if h.opts.Token != nil {
		token = h.opts.Token()
	}
	if token == "" {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not served on this listener: set server.admin_token and send it as a bearer, or set server.admin_listen"})
		return false
	}
	if got, ok := httpheader.Bearer(ctx.Request.Header.Peek("Authorization")); ok && sameToken(got, token) {
		return true
	}
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="openhqm admin"`)
	writeJSON(ctx, fasthttp.StatusUnauthorized, map[string]string{"error": "missing or invalid admin token"})
	return false
}

// sameToken compares in constant time, on digests so that the time does
// not depend on the lengths either.
func sameToken(got []byte, want string) bool {
	a, b := sha256.Sum256(got), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (h *Handler) serve(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/-/healthz":
		writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
	case "/-/readyz":
		if err := h.ready(); err != nil {
			writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready"})
	case "/health":
		h.health(ctx)
	case "/metrics":
		if h.metrics == nil || (h.opts.MetricsEnabled != nil && !h.opts.MetricsEnabled()) {
			writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "metrics are disabled"})
			return
		}
		h.metrics(ctx)
	case "/-/config":
		page(ctx, h.opts.Config)
	case "/-/routes":
		page(ctx, h.opts.Routes)
	case "/-/reload":
		h.reload(ctx)
	default: // the queues and jobs pages: introspection like /-/config, control like /-/reload
		h.jobsPage(ctx)
	}
}

func page(ctx *fasthttp.RequestCtx, f func() any) {
	if f == nil {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, f())
}

func (h *Handler) ready() error {
	if h.opts.Ready == nil {
		return nil
	}
	c, cancel := context.WithTimeout(context.Background(), h.opts.ProbeTimeout)
	defer cancel()
	return h.opts.Ready(c)
}

// health answers in the original OpenHQM's shape, with 503 when not ready.
func (h *Handler) health(ctx *fasthttp.RequestCtx) {
	status, code := "healthy", fasthttp.StatusOK
	components := map[string]string{"api": "healthy", "config": "healthy", "queue": "healthy"}
	if err := h.ready(); err != nil {
		status, code = "degraded", fasthttp.StatusServiceUnavailable
		components["queue"] = "unhealthy: " + err.Error()
	}
	version := h.opts.Version
	if version == "" {
		version = "dev"
	}
	writeJSON(ctx, code, map[string]any{
		"status":     status,
		"version":    version,
		"timestamp":  time.Now().UTC().Format(time.RFC3339Nano),
		"components": components,
	})
}

func (h *Handler) reload(ctx *fasthttp.RequestCtx) {
	if h.opts.Reload == nil {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		writeJSON(ctx, fasthttp.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
		return
	}
	body, err := h.opts.Reload(context.Background())
	if err != nil {
		writeJSON(ctx, fasthttp.StatusUnprocessableEntity, map[string]string{"status": "failed", "error": err.Error()})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, body)
}

// writeJSON answers with v as indented JSON.
func writeJSON(ctx *fasthttp.RequestCtx, code int, v any) {
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		b = []byte(`{"error":"cannot encode the answer"}`)
	}
	ctx.SetBody(append(b, '\n'))
}
