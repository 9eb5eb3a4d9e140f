// Package router is openhqm's ingress: a fasthttp handler that matches a
// request against the compiled route table of the current configuration
// generation and proxies it synchronously (or hands it to the async path),
// plus the admin endpoints.
package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/upstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Options configures a Server. Every hook is optional.
type Options struct {
	Logger *slog.Logger // nil: discard
	// Registry receives the router's metrics (and the upstream pool's when
	// Pool is nil); nil: not exported.
	Registry prometheus.Registerer
	// Gatherer is what /metrics serves; nil: Registry when it is also a
	// Gatherer (a *prometheus.Registry is), else /metrics answers 404.
	Gatherer prometheus.Gatherer
	// Pool provides the endpoint clients; nil: New creates one, and Close
	// closes it. Share one Pool with the worker pool of the same process so
	// the app sees one set of connections and one max_concurrency.
	Pool *upstream.Pool
	// Version is reported by /health.
	Version string

	// Reload is called by POST /-/reload; nil: 501.
	Reload func(ctx context.Context) error
	// ConfigInfo returns what /-/config shows (generation, hash, loaded at,
	// last reload error); nil: the current generation's digest and files.
	ConfigInfo func() any
	// Ready reports whether the process can serve (queues reachable);
	// nil: ready once a configuration is applied.
	Ready func(ctx context.Context) error
	// Components adds named component states ("healthy" or anything else,
	// which makes /health "degraded") to /health. ready is what Ready just
	// answered for the same request, so the hook need not check again.
	Components func(ctx context.Context, ready error) map[string]string

	// Async carries what the async path needs (queues, results). It is
	// declared in async.go, which the async feature owns.
	Async AsyncOptions
}

// Server is the ingress handler. Its handlers are safe for concurrent use;
// Apply may be called concurrently with them (each request uses the
// generation it loaded first, to the end).
type Server struct {
	opts     Options
	log      *slog.Logger
	pool     *upstream.Pool
	ownsPool bool
	metrics  *metrics
	gatherer prometheus.Gatherer
	started  time.Time

	gen atomic.Pointer[Generation]

	applyMu sync.Mutex // serialises Apply
	buckets map[string]*bucket
	nextID  uint64

	unmatched *routeMetrics
	admin     *routeMetrics

	metricsOnce sync.Once
	promHandler fasthttp.RequestHandler
}

// New returns a Server without configuration: until Apply succeeds, routes
// answer 503 and /-/readyz is not ready.
func New(opts Options) (*Server, error) {
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		pool:     opts.Pool,
		gatherer: opts.Gatherer,
		started:  time.Now(),
		buckets:  map[string]*bucket{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.pool == nil {
		s.pool = upstream.NewPool(upstream.PoolOptions{Logger: s.log, Registry: opts.Registry})
		s.ownsPool = true
	}
	if s.gatherer == nil {
		if g, ok := opts.Registry.(prometheus.Gatherer); ok {
			s.gatherer = g
		}
	}
	s.metrics = newMetrics(opts.Registry)
	s.unmatched = s.metrics.forRoute(routeUnmatched)
	s.admin = s.metrics.forRoute(routeAdmin)
	return s, nil
}

// Generation is everything a request needs from one configuration. It is
// immutable once published.
type Generation struct {
	ID       uint64
	Config   *config.Config
	Table    *Table
	LoadedAt time.Time

	adminOnMain bool
	maxBody     int64

	// async holds the async path's per-generation state (queues, results);
	// its type is declared in async.go.
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

// Current returns the published generation, or nil before the first Apply.
func (s *Server) Current() *Generation { return s.gen.Load() }

// Apply builds a generation from cfg and publishes it with one atomic store.
// Endpoint clients (and their connections) and rate-limit buckets of
// unchanged settings are reused. On error nothing is published. cfg must be
// validated and must not be modified afterwards.
func (s *Server) Apply(cfg *config.Config) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()

	g := &Generation{
		ID:          s.nextID + 1,
		Config:      cfg,
		Table:       compile(cfg),
		LoadedAt:    time.Now(),
		adminOnMain: cfg.Server.AdminListen == "",
		maxBody:     cfg.Server.MaxBodySize,
	}
	buckets := map[string]*bucket{}
	for _, r := range g.Table.all {
		rc := r.Config
		ep := cfg.Endpoints[rc.Endpoint]
		if ep == nil {
			return fmt.Errorf("route %q: unknown endpoint %q", rc.Name, rc.Endpoint)
		}
		st := &routeState{
			client:   s.pool.Client(ep),
			timeout:  rc.Timeout,
			auth:     newClientAuth(rc.ClientAuth),
			metrics:  s.metrics.forRoute(rc.Name),
			endpoint: ep.Name,
		}
		if st.timeout <= 0 {
			st.timeout = ep.Timeout
		}
		if st.timeout <= 0 {
			st.timeout = 30 * time.Second
		}
		if rl := rc.RateLimit; rl != nil {
			b := s.buckets[rc.Name]
			if b == nil || b.cfg.RequestsPerSecond != rl.RequestsPerSecond || b.cfg.Burst != newBucket(*rl).cfg.Burst {
				b = newBucket(*rl)
			}
			buckets[rc.Name] = b
			st.bucket = b
		}
		r.state = st
	}
	if err := s.buildAsync(cfg, g, s.gen.Load()); err != nil {
		return err
	}
	s.buckets = buckets
	s.nextID = g.ID
	s.gen.Store(g)
	s.pool.Retain(cfg.Endpoints)
	s.log.Info("configuration applied", "generation", g.ID, "routes", len(g.Table.all), "digest", cfg.Digest)
	return nil
}

// Close releases the endpoint clients when the Server created the pool. Call
// it after the listeners have shut down.
func (s *Server) Close() {
	if s.ownsPool {
		s.pool.Close()
	}
}
