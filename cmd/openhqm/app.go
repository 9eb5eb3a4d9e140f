package main

import (
	"bytes"
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

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/upstream"
	"github.com/openhqm/openhqm/router"
	"github.com/openhqm/openhqm/workerpool"
)

// app is one running openhqm process (serve or worker): the current
// configuration generation and everything built from it. Reloads are
// serialized by mu; the current configuration is read lock-free.
type app struct {
	role   string // "serve" or "worker"
	name   string // stable consumer name
	src    source
	lookup func(string) (string, bool)

	log     *slog.Logger
	level   *slog.LevelVar
	reg     *prometheus.Registry
	metrics *reloadMetrics
	ups     *upstream.Pool
	set     *backendSet
	router  *router.Server   // serve only
	workers *workerpool.Pool // nil when this process runs no worker pool

	cfg  atomic.Pointer[config.Config]
	live atomic.Pointer[plan] // the backends of the current generation
	// staging is the plan being applied, while router.Apply runs (under mu).
	staging *plan
	first   *config.Config // the generation the listeners were started with

	mu     sync.Mutex // serializes apply and reload
	status configStatus

	retiring sync.WaitGroup // goroutines closing what an old generation alone used
	stopping chan struct{}  // closed once the listeners have shut down
}

// configStatus is what /-/config shows.
type configStatus struct {
	Generation      uint64       `json:"generation"`
	Digest          string       `json:"digest,omitempty"`
	Source          string       `json:"source"`
	Files           []string     `json:"files,omitempty"`
	LoadedAt        time.Time    `json:"loaded_at"`
	LastReloadAt    *time.Time   `json:"last_reload_at,omitempty"`
	LastReloadError *reloadError `json:"last_reload_error,omitempty"`
	RestartRequired []string     `json:"restart_required,omitempty"`
}

type reloadError struct {
	At          time.Time   `json:"at"`
	Message     string      `json:"message"`
	Diagnostics *jsonReport `json:"diagnostics,omitempty"`
}

// Retiring the backends only a replaced generation used: wait until its
// worker consumers drained and no submit runs on it any more
// (Generation.AsyncInFlight), but at least retireMin, which covers a request
// that loaded the generation just before the swap and has not started its
// submit yet, and at most retireMax, longer than the router's submit timeout
// (5s) plus the 2s it gives itself to delete the record of a failed submit.
const (
	retireMin = time.Second
	retireMax = 10 * time.Second
)

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

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// apply builds everything cfg needs and publishes it. On error the running
// generation is untouched.
func (a *app) apply(ctx context.Context, cfg *config.Config) error {
	p, err := a.set.prepare(ctx, cfg)
	if err != nil {
		return err
	}
	var replaced *router.Generation
	if a.router != nil {
		replaced = a.router.Current()
		a.staging = p // what router.Apply resolves queue names against
		err := a.router.Apply(cfg)
		a.staging = nil
		if err != nil {
			for _, c := range p.opened {
				c.Close()
			}
			return err
		}
	}
	a.set.commit(p)
	a.live.Store(p)
	a.cfg.Store(cfg)
	a.level.Set(parseLevel(cfg.Telemetry.LogLevel))

	drained := closedChan()
	if a.workers != nil {
		drained = a.workers.Reconcile(consumers(p, cfg.Worker.Queues))
	}
	if len(p.retired) > 0 {
		a.retiring.Go(func() {
			<-drained
			a.waitSubmits(replaced)
			for _, c := range p.retired {
				if err := c.Close(); err != nil {
					a.log.Warn("closing a retired backend", "err", err)
				}
			}
		})
	}
	for _, what := range p.keptSettings {
		a.log.Warn("changed settings of a memory backend take effect after a restart; it keeps its jobs meanwhile", "backend", what)
	}
	now := time.Now()
	a.status.Generation++
	a.status.Digest = cfg.Digest
	a.status.Files = cfg.Files
	a.status.LoadedAt = now
	a.status.RestartRequired = a.restartRequired(cfg)
	for _, s := range a.status.RestartRequired {
		a.log.Warn("setting changed; it takes effect after a restart", "setting", s)
	}
	a.metrics.applied(a.status.Generation, cfg.Digest, now)
	return nil
}

// waitSubmits waits until no submit runs on the replaced generation g (nil
// for a process without a router), within retireMin and retireMax; at
// shutdown it returns at once, no request being left.
func (a *app) waitSubmits(g *router.Generation) {
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		waited := time.Since(start)
		if waited >= retireMax || (waited >= retireMin && (g == nil || g.AsyncInFlight() == 0)) {
			return
		}
		select {
		case <-tick.C:
		case <-a.stopping:
			return
		}
	}
}

// restartRequired lists the settings of cfg that differ from those the
// process started with and cannot change live.
func (a *app) restartRequired(cfg *config.Config) []string {
	f := a.first
	if f == nil {
		return nil
	}
	var out []string
	if a.role == "serve" {
		if cfg.Server.Listen != f.Server.Listen {
			out = append(out, "server.listen")
		}
		if cfg.Server.AdminListen != f.Server.AdminListen {
			out = append(out, "server.admin_listen")
		}
		if cfg.Worker.Embedded != f.Worker.Embedded {
			out = append(out, "worker.embedded")
		}
	}
	if cfg.Worker.Concurrency != f.Worker.Concurrency {
		out = append(out, "worker.concurrency")
	}
	if cfg.Telemetry.LogFormat != f.Telemetry.LogFormat {
		out = append(out, "telemetry.log_format")
	}
	return out
}

// reload loads the configuration again and applies it when it changed. The
// running generation keeps serving when anything is wrong.
func (a *app) reload(ctx context.Context, reason string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.status.LastReloadAt = &now
	if a.src.kind != "file" {
		err := fmt.Errorf("the configuration comes from %s and cannot be reloaded", a.src)
		a.metrics.reloads.WithLabelValues("failure").Inc()
		return err
	}
	cfg, files, diags, err := a.src.load(a.lookup)
	if err == nil && cfg.Digest == a.cfg.Load().Digest {
		a.metrics.reloads.WithLabelValues("unchanged").Inc()
		a.status.LastReloadError = nil
		a.log.Debug("configuration unchanged", "reason", reason)
		return nil
	}
	if err == nil {
		err = a.apply(ctx, cfg)
	} else if errors.Is(err, errInvalidConfig) && diags.HasErrors() {
		// Name the problems where the caller sees only the error
		// (POST /-/reload); /-/config and the log carry them in full.
		err = fmt.Errorf("%w: %s", err, diags.Errs()[0])
		if n := len(diags.Errs()); n > 1 {
			err = fmt.Errorf("%w (and %d more)", err, n-1)
		}
	}
	if err != nil {
		a.metrics.reloads.WithLabelValues("failure").Inc()
		re := &reloadError{At: now, Message: err.Error()}
		if len(diags) > 0 {
			r := newJSONReport(files, diags, false)
			re.Diagnostics = &r
		}
		a.status.LastReloadError = re
		a.log.Error("configuration rejected; the running one keeps serving",
			"reason", reason, "err", err, "diagnostics", renderDiagnostics(files, diags))
		return err
	}
	a.metrics.reloads.WithLabelValues("success").Inc()
	a.status.LastReloadError = nil
	for _, d := range diags {
		a.log.Warn("configuration warning", "diagnostic", d.Error())
	}
	a.log.Info("configuration reloaded", "reason", reason, "generation", a.status.Generation, "digest", cfg.Digest)
	return nil
}

// configInfo is the body of /-/config.
func (a *app) configInfo() any {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.status
	s.Source = a.src.kind
	return s
}

// watch reloads on changes of the configuration directory and on SIGHUP until
// ctx is done. It never gives up on an error.
func (a *app) watch(ctx context.Context, hup <-chan struct{}) {
	var triggers <-chan config.Trigger
	var w *config.Watcher
	if a.src.kind == "file" {
		var err error
		w, err = config.NewWatcher(config.WatcherOptions{Paths: a.src.paths, InitialDigest: a.cfg.Load().Digest, Logger: a.log})
		if err != nil {
			a.log.Error("configuration watcher not started; reload with SIGHUP or POST /-/reload", "err", err)
		} else {
			triggers = w.C()
			var wg sync.WaitGroup
			wctx, cancel := context.WithCancel(ctx)
			wg.Go(func() { w.Run(wctx) })
			defer wg.Wait()
			defer cancel()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-triggers:
			a.reload(ctx, t.Reason)
		case <-hup:
			a.reload(ctx, "sighup")
		}
	}
}

// ready reports whether every queue and the result store answer.
func (a *app) ready(ctx context.Context) error {
	if a.cfg.Load() == nil {
		return errors.New("no configuration loaded")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	p := a.live.Load()
	if p == nil {
		return errors.New("no backends opened")
	}
	queues := p.queues
	names := make([]string, 0, len(queues))
	for name := range queues {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if _, err := queues[name].q.Stats(ctx); err != nil {
			return fmt.Errorf("queue %q: %w", name, err)
		}
	}
	if _, err := p.results.s.Get(ctx, "readiness-probe"); err != nil && !errors.Is(err, backends.ErrNotFound) && !errors.Is(err, backends.ErrExpired) {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// liveResults is the result store of the current generation, for the worker
// pool, which outlives generations.
type liveResults struct{ a *app }

func (l liveResults) Get(ctx context.Context, id string) (*backends.Result, error) {
	return l.a.live.Load().results.s.Get(ctx, id)
}

func (l liveResults) Update(ctx context.Context, r *backends.Result, ttl time.Duration) error {
	return l.a.live.Load().results.s.Update(ctx, r, ttl)
}

func (l liveResults) Create(ctx context.Context, r *backends.Result) error {
	return l.a.live.Load().results.s.Create(ctx, r)
}

func (l liveResults) Delete(ctx context.Context, id string) error {
	return l.a.live.Load().results.s.Delete(ctx, id)
}

func (l liveResults) Reserve(ctx context.Context, key, id, digest string, ttl time.Duration) (string, string, error) {
	return l.a.live.Load().results.s.Reserve(ctx, key, id, digest, ttl)
}

// stagedQueue resolves a queue name for router.Apply.
func (a *app) stagedQueue(name string) (router.Enqueuer, bool) {
	if a.staging == nil {
		return nil, false
	}
	oq, ok := a.staging.queues[name]
	if !ok {
		return nil, false
	}
	return oq.q, true
}

// components is the per-component state /health reports, from the result of
// the readiness check the same request just made.
func (a *app) components(_ context.Context, ready error) map[string]string {
	out := map[string]string{"api": "healthy"}
	if err := ready; err != nil {
		out["queue"] = "unhealthy: " + err.Error()
	} else {
		out["queue"] = "healthy"
	}
	return out
}

func renderDiagnostics(files map[string]*hcl.File, diags hcl.Diagnostics) string {
	if len(diags) == 0 {
		return ""
	}
	var b bytes.Buffer
	writeDiagnosticsText(&b, files, diags, false)
	return b.String()
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// consumers are the queues of p this process's worker pool consumes: those
// named in worker.queues, or all.
func consumers(p *plan, only []string) map[string]workerpool.Consumer {
	out := make(map[string]workerpool.Consumer, len(p.queues))
	for name, oq := range p.queues {
		if len(only) == 0 || slices.Contains(only, name) {
			out[name] = oq.q
		}
	}
	return out
}
