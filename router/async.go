package router

// The async path (DESIGN §3, issue 4): async and auto routes turn a request
// into a backends.Job, the job API reads its status and result, and the
// original OpenHQM's /api/v1 API submits and reads jobs in its JSON shapes.
//
// Wiring across reloads. The router never imports a backend implementation;
// cmd/ hands it the clients through AsyncOptions:
//
//   - AsyncOptions.Results is the process's one result store, fixed at New.
//   - AsyncOptions.Queues is called only inside Apply, from the goroutine
//     calling Apply, once for every queue an async or auto route or the
//     submit_api block of the configuration being applied names. It must
//     return the client built for that configuration (a reused one when the
//     queue's settings did not change). The generation keeps what it got, so
//     a request finishes on the queue client of the generation it started
//     with. A name it cannot resolve makes Apply fail and nothing is
//     published.
//
// A reload therefore looks like: build (or reuse) the queue clients of the
// new configuration, make Queues answer with them, call Apply(cfg), and once
// it returned, retire the clients no longer used after the replaced
// generation has no submit in flight (Generation.AsyncInFlight reaches 0;
// a submit that still loses the race to a closed client answers 503, never
// 202).

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Enqueuer is what the async path needs of a queue. Implementations must be
// safe for concurrent use; Enqueue returns nil only once the job is stored.
type Enqueuer interface {
	Enqueue(ctx context.Context, job *backends.Job) error
	Stats(ctx context.Context) (backends.Stats, error)
}

// ResultEnqueuer is optionally implemented by an Enqueuer that can store a
// job's pending result record together with the job, in one round trip and
// all-or-nothing (a Redis queue whose result store lives on the same
// server). When the queue implements it, a submit without Idempotency-Key
// costs one backend call instead of Create then Enqueue. The record must be
// written exactly as ResultStore.Create would write it.
type ResultEnqueuer interface {
	EnqueueWithResult(ctx context.Context, job *backends.Job, pending *backends.Result) error
}

// ResultStore is what the async path needs of the result store (a subset of
// backends.ResultStore). Implementations must be safe for concurrent use.
type ResultStore interface {
	Create(ctx context.Context, r *backends.Result) error
	Get(ctx context.Context, id string) (*backends.Result, error)
	Delete(ctx context.Context, id string) error
	Reserve(ctx context.Context, key, id, digest string, ttl time.Duration) (boundID, boundDigest string, err error)
}

// AsyncOptions carries the async path's dependencies in Options.Async. See
// the comment at the top of this file for how they cross reloads.
type AsyncOptions struct {
	// Queues resolves a configured queue name to its client; called only
	// during Apply. nil: configurations with async routes or submit_api are
	// refused by Apply.
	Queues func(name string) (Enqueuer, bool)
	// Results is the process's result store; nil: as for Queues.
	Results ResultStore
	// MaxWait caps Prefer: wait=N and ?wait= long polls; default 60s. The
	// server's write timeout (default 30s) caps them too.
	MaxWait time.Duration
	// SubmitTimeout bounds storing one job (result record and enqueue);
	// default 5s.
	SubmitTimeout time.Duration
}

// Route label values of the async API's request metrics.
const (
	routeJobAPI    = "(jobs)"
	routeSubmitAPI = "(submit_api)"
)

// Reasons of openhqm_async_rejected_total.
const (
	reasonFull        = "full"
	reasonUnavailable = "unavailable"
	reasonConflict    = "conflict"
)

// asyncGeneration is the async path's state inside a Generation.
type asyncGeneration struct {
	results  ResultStore
	routes   map[string]*asyncRoute // by route name; only async and auto routes
	queues   map[string]Enqueuer    // every queue this generation submits to
	submit   *submitAPI             // nil without submit_api
	maxWait  time.Duration
	timeout  time.Duration
	idemTTL  time.Duration
	jobs     *routeMetrics // request metrics of /-/requests
	metrics  *asyncMetrics
	inflight atomic.Int64
}

// asyncRoute is one async or auto route (or the submit API) in one generation.
type asyncRoute struct {
	name       string
	endpoint   string
	queueName  string
	queue      Enqueuer
	keyHeader  string   // request header giving the Kafka partition key; "" none
	principals []string // hex SHA-256 of the client_auth tokens, by token index
	accepted   prometheus.Counter
	rejected   map[string]prometheus.Counter
}

// AsyncInFlight is the number of submits still running on g; once g was
// replaced and this is 0, no request uses g's queue clients any more (a
// request that loaded g just before it was replaced may still start one).
func (g *Generation) AsyncInFlight() int64 { return g.async.inflight.Load() }

// asyncMetrics are the async path's collectors, shared by every generation.
type asyncMetrics struct {
	accepted *prometheus.CounterVec
	rejected *prometheus.CounterVec
	lastLog  atomic.Int64 // unix ns of the last rate-limited log line
}

func newAsyncMetrics(reg prometheus.Registerer) *asyncMetrics {
	m := &asyncMetrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_async_accepted_total",
			Help: "Requests accepted as jobs (answered 202), by route.",
		}, []string{"route"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_async_rejected_total",
			Help: "Submits refused, by route and reason (full, unavailable, conflict).",
		}, []string{"route", "reason"}),
	}
	if reg == nil {
		return m
	}
	m.accepted = register(reg, m.accepted)
	m.rejected = register(reg, m.rejected)
	return m
}

// register registers c, or returns the collector already registered (an
// earlier Apply that failed after registering).
func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return old
			}
		}
		panic(err) // a different collector under our name is a wiring bug
	}
	return c
}

// buildAsync fills g.async from cfg when Apply builds a generation; prev is
// the generation being replaced (nil on the first Apply). An error aborts the
// Apply.
func (s *Server) buildAsync(cfg *config.Config, g *Generation, prev *Generation) error {
	a := &g.async
	if prev != nil && prev.async.metrics != nil {
		a.metrics = prev.async.metrics
	} else {
		a.metrics = newAsyncMetrics(s.opts.Registry)
	}
	a.jobs = s.metrics.forRoute(routeJobAPI)
	a.results = s.opts.Async.Results
	a.maxWait = s.opts.Async.MaxWait
	if a.maxWait <= 0 {
		a.maxWait = 60 * time.Second
	}
	wt := cfg.Server.WriteTimeout
	if wt <= 0 {
		wt = defaultWriteTimeout
	}
	a.maxWait = min(a.maxWait, wt)
	a.timeout = s.opts.Async.SubmitTimeout
	if a.timeout <= 0 {
		a.timeout = 5 * time.Second
	}
	a.idemTTL = cfg.Results.TTL
	if a.idemTTL <= 0 {
		a.idemTTL = 24 * time.Hour
	}
	a.queues = map[string]Enqueuer{}
	a.routes = map[string]*asyncRoute{}
	for _, r := range g.Table.all {
		rc := r.Config
		if rc.Mode != config.ModeAsync && rc.Mode != config.ModeAuto {
			continue
		}
		ar, err := s.asyncRoute(cfg, a, rc.Name, rc.Endpoint, rc.Queue, rc.ClientAuth)
		if err != nil {
			return fmt.Errorf("route %q: %w", rc.Name, err)
		}
		a.routes[rc.Name] = ar
	}
	if sa := cfg.SubmitAPI; sa != nil {
		ar, err := s.asyncRoute(cfg, a, routeSubmitAPI, sa.Endpoint, sa.Queue, sa.ClientAuth)
		if err != nil {
			return fmt.Errorf("submit_api: %w", err)
		}
		a.submit = &submitAPI{route: ar, auth: newClientAuth(sa.ClientAuth), metrics: s.metrics.forRoute(routeSubmitAPI)}
	}
	return nil
}

func (s *Server) asyncRoute(cfg *config.Config, a *asyncGeneration, name, endpoint, queue string, ca *config.ClientAuth) (*asyncRoute, error) {
	if a.results == nil {
		return nil, errors.New("no result store is configured for async jobs")
	}
	if queue == "" {
		return nil, errors.New("an async route needs a queue")
	}
	q, ok := a.queues[queue]
	if !ok {
		if s.opts.Async.Queues != nil {
			q, ok = s.opts.Async.Queues(queue)
		}
		if !ok || q == nil {
			return nil, fmt.Errorf("queue %q has no client", queue)
		}
		a.queues[queue] = q
	}
	ar := &asyncRoute{
		name: name, endpoint: endpoint, queueName: queue, queue: q,
		accepted: a.metrics.accepted.WithLabelValues(name),
		rejected: map[string]prometheus.Counter{},
	}
	for _, reason := range []string{reasonFull, reasonUnavailable, reasonConflict} {
		ar.rejected[reason] = a.metrics.rejected.WithLabelValues(name, reason)
	}
	if qc := cfg.Queues[queue]; qc != nil && qc.Backend == config.BackendKafka && qc.Kafka != nil {
		ar.keyHeader = qc.Kafka.KeyHeader
	}
	if auth := newClientAuth(ca); auth != nil {
		for _, d := range auth.digests {
			ar.principals = append(ar.principals, hex.EncodeToString(d[:]))
		}
	}
	return ar, nil
}

// serveJobAPI serves the job API (GET /-/requests/{id}, its /response, and
// the original's /api/v1/... when submit_api is configured) and reports
// whether it handled the request. It runs before route matching and always
// on the main listener, with or without admin_listen: clients use it, and
// each job is guarded by its submitter's credential, not by the listener.
func (s *Server) serveJobAPI(ctx *fasthttp.RequestCtx, g *Generation) bool {
	path := ctx.Path()
	switch {
	case hasPrefix(path, jobsPrefix):
		start := time.Now()
		s.serveJobs(ctx, g, path[len(jobsPrefix):])
		g.async.jobs.observe(ctx.Response.StatusCode(), start)
		return true
	case g.async.submit != nil && hasPrefix(path, submitPrefix):
		start := time.Now()
		s.serveSubmitAPI(ctx, g, path[len(submitPrefix):])
		g.async.submit.metrics.observe(ctx.Response.StatusCode(), start)
		return true
	}
	return false
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }
