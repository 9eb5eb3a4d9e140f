// Package process is openhqm's lifecycle: it builds a Generation (the
// configuration, the route table, the endpoint clients, the queue and result
// backends, the worker pool's view of them) completely, publishes it with one
// atomic store, and retires it exactly when the requests and jobs that
// started on it have finished. It runs the reload loop (directory watcher,
// SIGHUP, POST /-/reload), the listeners and the worker pool, and stops them
// in order. `openhqm serve` and `openhqm worker` are thin calls into it.
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/admin"
	"github.com/openhqm/openhqm/internal/jobs"
	"github.com/openhqm/openhqm/internal/upstream"
	"github.com/openhqm/openhqm/router"
	"github.com/openhqm/openhqm/workerpool"
)

// Role says what a process runs.
type Role string

const (
	// Serve is the ingress: the router, and the worker pool when
	// worker.embedded is true.
	Serve Role = "serve"
	// Worker is a worker pool alone, with its admin listener.
	Worker Role = "worker"
)

// Options configure a Process.
type Options struct {
	Role Role
	// Name is the stable consumer name toward the queues.
	Name string
	// Source is where reloads read the configuration.
	Source Source
	// Config is the first configuration, loaded from Source by the caller;
	// Warnings are its diagnostics, logged at start.
	Config   *config.Config
	Warnings hcl.Diagnostics
	// LookupEnv resolves env() on reloads; nil: none is set.
	LookupEnv func(string) (string, bool)
	// Log receives the logs (the format and level come from the
	// configuration).
	Log io.Writer
	// Version is reported by /health.
	Version string
	// Listen is a worker's admin address; "": worker.listen.
	Listen string
	// ShutdownTimeout bounds the wait for requests in flight at shutdown;
	// default 30s.
	ShutdownTimeout time.Duration
}

// Process is one running openhqm serve or worker.
type Process struct {
	opts    Options
	log     *slog.Logger
	level   *slog.LevelVar
	reg     *prometheus.Registry
	metrics *reloadMetrics
	// connRejected counts connections refused for server.max_connections.
	connRejected prometheus.Counter
	ups          *upstream.Pool
	backends     *backendSet
	router       *router.Server   // nil in a worker
	pool         *workerpool.Pool // nil when this process runs no worker pool
	admin        *admin.Handler
	first        *config.Config // the generation the listeners start with

	current atomic.Pointer[Generation]

	mu          sync.Mutex // serializes reloads; guards the fields below
	generations uint64     // the ID of the newest published generation
	consumed    map[string]*queueHandle

	statusMu sync.Mutex // guards status only, so /-/config never waits for a reload
	status   Status

	live       atomic.Int64 // published generations not yet retired
	allRetired chan struct{}
	retiredAll sync.Once
	bg         sync.WaitGroup // releases waiting for consumers to drain
}

// New builds and publishes the first generation. It fails when a backend
// cannot be opened or the configuration cannot be compiled; nothing stays
// open then.
func New(ctx context.Context, opts Options) (*Process, error) {
	if opts.Config == nil {
		return nil, errors.New("process: Options.Config is required")
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = func(string) (string, bool) { return "", false }
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	cfg := opts.Config
	log, level := newLogger(opts.Log, cfg.Telemetry)
	log = log.With("role", string(opts.Role))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p := &Process{
		opts:    opts,
		log:     log,
		level:   level,
		reg:     reg,
		metrics: newReloadMetrics(reg),
		connRejected: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "openhqm_http_connections_rejected_total",
			Help: "Connections answered 503 and closed because server.max_connections were open.",
		}),
		ups:        upstream.NewPool(upstream.PoolOptions{Logger: log, Registry: reg}),
		backends:   &backendSet{log: log, consumer: opts.Name},
		first:      cfg,
		consumed:   map[string]*queueHandle{},
		allRetired: make(chan struct{}),
		status:     Status{Source: string(opts.Source.Kind)},
	}
	for _, d := range opts.Warnings {
		log.Warn("configuration warning", "diagnostic", d.Error())
	}
	if opts.Source.Kind == FromFiles {
		if set := OriginalEnv(opts.LookupEnv); len(set) > 0 {
			log.Warn("OPENHQM_* variables are ignored: the configuration comes from files", "variables", set)
		}
		for _, path := range opts.Source.Paths {
			if w := config.SubPathWarning(path); w != "" {
				log.Warn(w)
			}
		}
	}
	var err error
	if opts.Role == Serve {
		p.router, err = router.New(router.Options{Logger: log, Registry: reg, Current: p.currentRouter})
		if err != nil {
			return nil, err
		}
	}
	if opts.Role == Worker || cfg.Worker.Embedded {
		p.pool, err = workerpool.New(workerpool.Options{
			Name:        opts.Name,
			Concurrency: cfg.Worker.Concurrency,
			BatchSize:   cfg.Worker.BatchSize,
			Drain:       cfg.Worker.Drain,
			Logger:      log,
			Registry:    reg,
			Current:     p.currentWorker,
		})
		if err != nil {
			return nil, err
		}
	}
	p.admin = admin.New(p.adminOptions())

	p.mu.Lock()
	defer p.mu.Unlock()
	g, pl, err := p.build(ctx, cfg)
	if err != nil {
		p.ups.Close()
		return nil, err
	}
	p.publish(g, pl)
	p.applied(g, nil)
	log.Info("configuration loaded", "source", opts.Source.String(), "digest", cfg.Digest,
		"generation", g.ID, "routes", len(cfg.Routes), "queues", len(cfg.Queues))
	return p, nil
}

// Registry is the process's metrics registry.
func (p *Process) Registry() *prometheus.Registry { return p.reg }

// Logger is the process's logger.
func (p *Process) Logger() *slog.Logger { return p.log }

// Current returns the published generation (nil after Run returned). The
// caller must not keep it: it is retired once replaced and unused.
func (p *Process) Current() *Generation { return p.current.Load() }

func (p *Process) adminOptions() admin.Options {
	o := admin.Options{
		Version:  p.opts.Version,
		Gatherer: p.reg,
		MetricsEnabled: func() bool {
			g := p.current.Load()
			return g == nil || g.Config.Telemetry.Metrics
		},
		Ready:  p.ready,
		Config: func() any { return p.configStatus() },
		Token: func() string {
			if g := p.current.Load(); g != nil {
				return g.Config.Server.AdminToken
			}
			return ""
		},
		Jobs: func() (*jobs.Service, func()) {
			g := p.acquire()
			if g == nil {
				return nil, noop
			}
			return g.jobs, g.release
		},
		Reload: func(ctx context.Context) (any, error) {
			if err := p.Reload(ctx, "api"); err != nil {
				return nil, err
			}
			return map[string]any{"status": "reloaded", "generation": p.current.Load().ID}, nil
		},
	}
	if p.router != nil {
		o.Observe = p.router.ObserveAdmin
		o.Routes = func() any {
			g := p.acquire()
			if g == nil {
				return map[string]any{"routes": []any{}}
			}
			defer g.release()
			return map[string]any{"generation": g.ID, "routes": g.router.Routes()}
		}
	}
	return o
}

// ready reports whether every queue and the result store of the current
// generation answer.
func (p *Process) ready(ctx context.Context) error {
	g := p.acquire()
	if g == nil {
		return errors.New("no configuration loaded")
	}
	defer g.release()
	names := make([]string, 0, len(g.queues))
	for name := range g.queues {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if _, err := g.queues[name].q.Stats(ctx); err != nil {
			return fmt.Errorf("queue %q: %w", name, err)
		}
	}
	_, err := g.results.s.Get(ctx, "readiness-probe")
	if err != nil && !errors.Is(err, backends.ErrNotFound) && !errors.Is(err, backends.ErrExpired) {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

func newLogger(w io.Writer, tel config.Telemetry) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(parseLevel(tel.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if tel.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), level
	}
	return slog.New(slog.NewJSONHandler(w, opts)), level
}

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "critical":
		return slog.LevelError
	}
	return slog.LevelInfo
}
