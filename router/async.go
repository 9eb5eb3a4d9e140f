package router

// The async path: async and auto routes turn a request into a
// backends.Job, the job API reads its status and result, and the original
// OpenHQM's /api/v1 API submits and reads jobs in its JSON shapes. A
// generation keeps the queue clients and the result store it was built with
// (Deps), so a request finishes on the clients of the generation it started
// with; the process keeps them open until no request uses that generation.

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
	reasonTooLarge    = "too_large"
)

// asyncGeneration is the async path's state inside a Generation.
type asyncGeneration struct {
	results ResultStore
	jobsAPI Canceller              // nil: jobs cannot be cancelled
	routes  map[string]*asyncRoute // by route name: async and auto routes, and those that spill to a queue
	submit  *submitAPI             // nil without submit_api
	maxWait time.Duration
	timeout time.Duration
	idemTTL time.Duration
	jobs    *routeMetrics // request metrics of /-/requests
	metrics *asyncMetrics
}

// asyncRoute is one async or auto route (or the submit API) in one generation.
type asyncRoute struct {
	name       string
	endpoint   string
	queueName  string
	queue      Enqueuer
	keyHeader  string   // request header giving the Kafka partition key or SQS FIFO message group; "" none
	principals []string // hex SHA-256 of the client_auth tokens, by token index
	accepted   prometheus.Counter
	rejected   map[string]prometheus.Counter
}

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
			Help: "Submits refused, by route and reason (full, unavailable, conflict, too_large).",
		}, []string{"route", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.rejected)
	}
	return m
}

// buildAsync fills g.async from cfg and deps; an error aborts the Build.
func (s *Server) buildAsync(cfg *config.Config, deps Deps, g *Generation) error {
	a := &g.async
	a.metrics = s.async
	a.jobs = s.metrics.forRoute(routeJobAPI)
	a.results = deps.Results
	a.jobsAPI = deps.Jobs
	wt := cfg.Server.WriteTimeout
	if wt <= 0 {
		wt = defaultWriteTimeout
	}
	a.maxWait = min(s.opts.MaxWait, wt)
	a.timeout = s.opts.SubmitTimeout
	a.idemTTL = cfg.Results.IdempotencyWindow
	if a.idemTTL <= 0 {
		a.idemTTL = 24 * time.Hour
	}
	a.routes = map[string]*asyncRoute{}
	for _, r := range g.Table.all {
		rc := r.Config
		if rc.Mode != config.ModeAsync && rc.Mode != config.ModeAuto && rc.OnOverload != config.OverloadQueue {
			continue
		}
		ar, err := s.asyncRoute(cfg, deps, a, rc.Name, rc.Endpoint, rc.Queue, rc.ClientAuth)
		if err != nil {
			return fmt.Errorf("route %q: %w", rc.Name, err)
		}
		a.routes[rc.Name] = ar
	}
	if sa := cfg.SubmitAPI; sa != nil {
		ar, err := s.asyncRoute(cfg, deps, a, routeSubmitAPI, sa.Endpoint, sa.Queue, sa.ClientAuth)
		if err != nil {
			return fmt.Errorf("submit_api: %w", err)
		}
		a.submit = &submitAPI{route: ar, auth: newClientAuth(sa.ClientAuth), metrics: s.metrics.forRoute(routeSubmitAPI)}
	}
	return nil
}

func (s *Server) asyncRoute(cfg *config.Config, deps Deps, a *asyncGeneration, name, endpoint, queue string, ca *config.ClientAuth) (*asyncRoute, error) {
	if a.results == nil {
		return nil, errors.New("no result store is configured for async jobs")
	}
	if queue == "" {
		return nil, errors.New("an async route needs a queue")
	}
	q := deps.Queues[queue]
	if q == nil {
		return nil, fmt.Errorf("queue %q has no client", queue)
	}
	ar := &asyncRoute{
		name: name, endpoint: endpoint, queueName: queue, queue: q,
		accepted: a.metrics.accepted.WithLabelValues(name),
		rejected: map[string]prometheus.Counter{},
	}
	for _, reason := range []string{reasonFull, reasonUnavailable, reasonConflict, reasonTooLarge} {
		ar.rejected[reason] = a.metrics.rejected.WithLabelValues(name, reason)
	}
	if qc := cfg.Queues[queue]; qc != nil && qc.Backend == config.BackendKafka && qc.Kafka != nil {
		ar.keyHeader = qc.Kafka.KeyHeader
	} else if qc != nil && qc.Backend == config.BackendSQS && qc.SQS != nil {
		ar.keyHeader = qc.SQS.KeyHeader
	} else if qc != nil && qc.Backend == config.BackendRedis && qc.Redis != nil {
		ar.keyHeader = qc.Redis.KeyHeader
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
