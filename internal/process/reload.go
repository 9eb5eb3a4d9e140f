package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openhqm/openhqm/config"
)

// Status is the body of /-/config.
type Status struct {
	Generation      uint64       `json:"generation"`
	Digest          string       `json:"digest,omitempty"`
	Source          string       `json:"source"`
	Files           []string     `json:"files,omitempty"`
	LoadedAt        time.Time    `json:"loaded_at"`
	LastReloadAt    *time.Time   `json:"last_reload_at,omitempty"`
	LastReloadError *ReloadError `json:"last_reload_error,omitempty"`
	RestartRequired []string     `json:"restart_required,omitempty"`
}

// ReloadError is why the last reload was refused. Its diagnostics carry
// their location and text but never a snippet of the source, which may hold
// a secret written in the file.
type ReloadError struct {
	At          time.Time    `json:"at"`
	Message     string       `json:"message"`
	Diagnostics []Diagnostic `json:"diagnostics,omitempty"`
}

// Diagnostic is one located problem of a configuration, as /-/config shows
// it (the fields of `openhqm validate --format json`, without the snippet).
type Diagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	Range    *Range `json:"range,omitempty"`
}

// Range locates a diagnostic.
type Range struct {
	Filename string `json:"filename"`
	Start    Pos    `json:"start"`
	End      Pos    `json:"end"`
}

// Pos is a position in a file.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

func diagnostics(diags hcl.Diagnostics) []Diagnostic {
	out := make([]Diagnostic, 0, len(diags))
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		jd := Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail}
		if r := d.Subject; r != nil {
			jd.Range = &Range{
				Filename: r.Filename,
				Start:    Pos{r.Start.Line, r.Start.Column, r.Start.Byte},
				End:      Pos{r.End.Line, r.End.Column, r.End.Byte},
			}
		}
		out = append(out, jd)
	}
	return out
}

// located renders diagnostics one per line as file:line:col: summary; detail,
// for logs: no snippet of the source.
func located(diags hcl.Diagnostics) string {
	var b strings.Builder
	for i, d := range diags {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(d.Error())
	}
	return b.String()
}

func (p *Process) configStatus() Status {
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	s := p.status
	s.Files = append([]string(nil), s.Files...)
	s.RestartRequired = append([]string(nil), s.RestartRequired...)
	return s
}

// applied records a published generation in the status and the metrics.
func (p *Process) applied(g *Generation, diags hcl.Diagnostics) {
	restart := p.restartRequired(g.Config)
	for _, s := range restart {
		p.log.Warn("setting changed; it takes effect after a restart", "setting", s)
	}
	for _, d := range diags {
		p.log.Warn("configuration warning", "diagnostic", d.Error())
	}
	p.statusMu.Lock()
	p.status.Generation = g.ID
	p.status.Digest = g.Config.Digest
	p.status.Files = g.Config.Files
	p.status.LoadedAt = g.LoadedAt
	p.status.RestartRequired = restart
	p.status.LastReloadError = nil
	p.statusMu.Unlock()
	p.metrics.applied(g.ID, g.Config.Digest, g.LoadedAt)
}

// Reload loads the configuration again and publishes it when it changed. The
// running generation keeps serving when anything is wrong; the error says
// what (for a configuration error, its first problem).
func (p *Process) Reload(ctx context.Context, reason string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.statusMu.Lock()
	p.status.LastReloadAt = &now
	p.statusMu.Unlock()

	err := p.reload(ctx, reason)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errUnchanged):
		p.metrics.reloads.WithLabelValues("unchanged").Inc()
		p.statusMu.Lock()
		p.status.LastReloadError = nil
		p.statusMu.Unlock()
		p.log.Debug("configuration unchanged", "reason", reason)
		return nil
	}
	p.metrics.reloads.WithLabelValues("failure").Inc()
	re := &ReloadError{At: now, Message: err.Error()}
	var ce *ConfigError
	if errors.As(err, &ce) {
		re.Diagnostics = diagnostics(ce.Diagnostics)
		p.log.Error("configuration rejected; the running one keeps serving",
			"reason", reason, "err", err, "diagnostics", located(ce.Diagnostics))
	} else {
		p.log.Error("configuration rejected; the running one keeps serving", "reason", reason, "err", err)
	}
	p.statusMu.Lock()
	p.status.LastReloadError = re
	p.statusMu.Unlock()
	return err
}

var errUnchanged = errors.New("configuration unchanged")

func (p *Process) reload(ctx context.Context, reason string) error {
	if p.opts.Source.Kind != FromFiles {
		return fmt.Errorf("the configuration comes from %s and cannot be reloaded", p.opts.Source)
	}
	cfg, diags, err := p.opts.Source.Load(p.opts.LookupEnv)
	if err != nil {
		return err
	}
	if cur := p.current.Load(); cur != nil && cfg.Digest == cur.Config.Digest {
		return errUnchanged
	}
	g, pl, err := p.build(ctx, cfg)
	if err != nil {
		return err
	}
	p.publish(g, pl)
	p.applied(g, diags)
	p.metrics.reloads.WithLabelValues("success").Inc()
	p.log.Info("configuration reloaded", "reason", reason, "generation", g.ID, "digest", cfg.Digest)
	return nil
}

// restartRequired lists the settings of cfg that differ from those the
// process started with and cannot change while it runs.
func (p *Process) restartRequired(cfg *config.Config) []string {
	f := p.first
	var out []string
	add := func(changed bool, name string) {
		if changed {
			out = append(out, name)
		}
	}
	if p.opts.Role == Serve {
		add(cfg.Server.Listen != f.Server.Listen, "server.listen")
		add(cfg.Server.AdminListen != f.Server.AdminListen, "server.admin_listen")
		add(cfg.Server.ReadTimeout != f.Server.ReadTimeout, "server.read_timeout")
		add(cfg.Server.WriteTimeout != f.Server.WriteTimeout, "server.write_timeout")
		add(cfg.Server.IdleTimeout != f.Server.IdleTimeout, "server.idle_timeout")
		add(cfg.Server.MaxConnections != f.Server.MaxConnections, "server.max_connections")
		// The listener reads a body up to the limit it started with; a
		// lower limit is enforced per request at once, a higher one needs
		// a restart.
		add(cfg.Server.MaxBodySize > f.Server.MaxBodySize, "server.max_body_size")
		add(cfg.Worker.Embedded != f.Worker.Embedded, "worker.embedded")
	} else {
		add(cfg.Worker.Listen != f.Worker.Listen && p.opts.Listen == "", "worker.listen")
	}
	add(cfg.Worker.Concurrency != f.Worker.Concurrency, "worker.concurrency")
	add(cfg.Worker.BatchSize != f.Worker.BatchSize, "worker.batch_size")
	add(cfg.Worker.Drain != f.Worker.Drain, "worker.drain")
	add(cfg.Telemetry.LogFormat != f.Telemetry.LogFormat, "telemetry.log_format")
	return out
}

// watch reloads on changes of the configuration directory and on SIGHUP
// until ctx is done. It never gives up on an error.
func (p *Process) watch(ctx context.Context, hup <-chan struct{}) {
	var triggers <-chan config.Trigger
	if p.opts.Source.Kind == FromFiles {
		w, err := config.NewWatcher(config.WatcherOptions{Paths: p.opts.Source.Paths, InitialDigest: p.first.Digest, Logger: p.log})
		if err != nil {
			p.log.Error("configuration watcher not started; reload with SIGHUP or POST /-/reload", "err", err)
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
			_ = p.Reload(ctx, t.Reason) // logged, counted and shown in /-/config
		case <-hup:
			_ = p.Reload(ctx, "sighup")
		}
	}
}

// sighup delivers a value on every SIGHUP until ctx is done; the goroutine
// it starts is owned by ctx and tracked by wg.
func sighup(ctx context.Context, wg *sync.WaitGroup) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	wg.Go(func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	})
	return out
}

// reloadMetrics are the configuration's metrics.
type reloadMetrics struct {
	reloads     *prometheus.CounterVec // result = success | failure | unchanged
	lastSuccess prometheus.Gauge
	generation  prometheus.Gauge
	info        *prometheus.GaugeVec // digest
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_config_reloads_total",
			Help: "Configuration reload attempts by result (success, failure, unchanged).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openhqm_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last configuration successfully applied.",
		}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openhqm_config_generation",
			Help: "Number of the configuration generation being served (1 at start-up).",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "openhqm_config_info",
			Help: "Always 1; the digest label identifies the configuration being served.",
		}, []string{"digest"}),
	}
	for _, r := range []string{"success", "failure", "unchanged"} {
		m.reloads.WithLabelValues(r)
	}
	reg.MustRegister(m.reloads, m.lastSuccess, m.generation, m.info)
	return m
}

func (m *reloadMetrics) applied(gen uint64, digest string, at time.Time) {
	m.generation.Set(float64(gen))
	m.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	m.info.Reset()
	m.info.WithLabelValues(digest).Set(1)
}
