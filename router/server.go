// Package router is openhqm's ingress: a fasthttp handler that matches a
// request against the compiled route table of a configuration generation
// and proxies it synchronously, or accepts it as a job, and serves the job
// API (status, result, cancel) and the original OpenHQM's /api/v1.
//
// The router builds generations but does not publish them: whoever owns the
// process lifecycle keeps the current one and hands each request the
// generation it uses to its end (Options.Current).
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/upstream"
)

// Options configures a Server.
type Options struct {
	Logger *slog.Logger // nil: discard
	// Registry receives the router's metrics; nil: not exported.
	Registry prometheus.Registerer
	// Current returns the generation a request uses and the function that
	// ends that use; it is called once per request, and the returned
	// function is called once when the request is answered. Required.
	Current func() (*Generation, func())
	// MaxWait caps Prefer: wait=N and ?wait= long polls; default 60s. The
	// server's write timeout (default 30s) caps them too.
	MaxWait time.Duration
	// SubmitTimeout bounds storing one job (result record and enqueue);
	// default 5s.
	SubmitTimeout time.Duration
}

// Deps are what one generation uses and the router does not own: the
// endpoint clients, the queue clients and the result store. They must stay
// usable for as long as a request may use the generation.
type Deps struct {
	// Endpoints are the clients of the configuration's endpoints, by name.
	Endpoints map[string]*upstream.Client
	// Queues are the clients of the queues async routes and submit_api name,
	// by name.
	Queues map[string]Enqueuer
	// Results is the result store; nil when nothing is async.
	Results ResultStore
	// Jobs cancels jobs for DELETE /-/requests/{id}; nil: 405.
	Jobs Canceller
}

// Canceller cancels a job that has not started and answers its cancelled
// record: errors wrap backends.ErrStarted or ErrFinished (409),
// ErrNotFound or ErrExpired (404).
type Canceller interface {
	Cancel(ctx context.Context, id string) (*backends.Result, error)
}

// Server is the ingress handler. Its methods are safe for concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	async   *asyncMetrics

	unmatched *routeMetrics
	admin     *routeMetrics
}

// New returns a Server. Until Options.Current returns a generation, every
// route answers 503.
func New(opts Options) (*Server, error) {
	if opts.Current == nil {
		return nil, errors.New("router: Options.Current is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 60 * time.Second
	}
	if opts.SubmitTimeout <= 0 {
		opts.SubmitTimeout = 5 * time.Second
	}
	s := &Server{opts: opts, log: opts.Logger, metrics: newMetrics(opts.Registry), async: newAsyncMetrics(opts.Registry)}
	s.unmatched = s.metrics.forRoute(routeUnmatched)
	s.admin = s.metrics.forRoute(routeAdmin)
	return s, nil
}

// Generation is everything a request needs from one configuration: the
// compiled route table with each route's endpoint client, auth and rate
// limit, and the async path's queues and result store. It is immutable once
// built.
type Generation struct {
	Config *config.Config
	Table  *Table

	maxBody   int64
	writeIdle time.Duration      // the listener's write timeout, for answers that stream
	buckets   map[string]*bucket // rate limits by route name, reused by the next generation

	// async holds the async path's state (queues, results); its type is
	// declared in async.go.
	async asyncGeneration
}

// routeState is what the sync path of one route uses in one generation.
type routeState struct {
	client   *upstream.Client
	timeout  time.Duration
	bucket   *bucket     // nil: no rate limit
	auth     *clientAuth // nil: anyone may call
	metrics  *routeMetrics
	endpoint string
}

// Build compiles cfg into a generation using deps. Rate-limit buckets of
// routes whose limits did not change are taken over from prev (nil for the
// first generation), so a reload does not refill them. Build publishes
// nothing and may run concurrently with requests on prev. cfg must be
// validated and must not be modified afterwards.
func (s *Server) Build(cfg *config.Config, deps Deps, prev *Generation) (*Generation, error) {
	g := &Generation{
		Config:  cfg,
		Table:   compile(cfg, s.log),
		maxBody: cfg.Server.MaxBodySize,
		buckets: map[string]*bucket{},
	}
	if g.writeIdle = cfg.Server.WriteTimeout; g.writeIdle <= 0 {
		g.writeIdle = defaultWriteTimeout
	}
	for _, r := range g.Table.all {
		rc := r.Config
		client := deps.Endpoints[rc.Endpoint]
		if client == nil {
			return nil, fmt.Errorf("route %q: endpoint %q has no client", rc.Name, rc.Endpoint)
		}
		st := &routeState{
			client:   client,
			timeout:  rc.Timeout,
			auth:     newClientAuth(rc.ClientAuth),
			metrics:  s.metrics.forRoute(rc.Name),
			endpoint: rc.Endpoint,
		}
		if st.timeout <= 0 {
			st.timeout = client.Endpoint().Timeout
		}
		if st.timeout <= 0 {
			st.timeout = 30 * time.Second
		}
		if rl := rc.RateLimit; rl != nil {
			var b *bucket
			if prev != nil {
				b = prev.buckets[rc.Name]
			}
			if b == nil || b.cfg.RequestsPerSecond != rl.RequestsPerSecond || b.cfg.Burst != newBucket(*rl).cfg.Burst {
				b = newBucket(*rl)
			}
			g.buckets[rc.Name] = b
			st.bucket = b
		}
		r.state = st
	}
	if err := s.buildAsync(cfg, deps, g); err != nil {
		return nil, err
	}
	return g, nil
}

// Routes describes the compiled table for /-/routes, in match order.
func (g *Generation) Routes() []map[string]any {
	out := make([]map[string]any, 0, len(g.Table.all))
	for _, r := range g.Table.all {
		out = append(out, marshalRoute(r))
	}
	return out
}

// ObserveAdmin counts one answer of an admin path in the request metrics,
// under the route label "(admin)".
func (s *Server) ObserveAdmin(code int, start time.Time) { s.admin.observe(code, start) }

// Handler serves the application's traffic: the job API, then the routes.
// It is safe for concurrent use.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
	g, done := s.opts.Current()
	defer done()
	if g == nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "no configuration loaded yet", nil)
		return
	}
	s.serve(ctx, g)
}
