package process

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/jobs"
	"github.com/openhqm/openhqm/internal/upstream"
	"github.com/openhqm/openhqm/router"
	"github.com/openhqm/openhqm/workerpool"
)

// Generation is everything built from one configuration: the configuration,
// the router's compiled table with its endpoint clients, the queue and
// result backends, and the worker pool's view of them. It is built
// completely before it is published, published with one atomic store, never
// modified afterwards, and retired (its backends released) when the last
// request or job that started on it has finished.
//
// Its reference count is exact: 1 while it is the published generation,
// plus one per request or job attempt using it. A user takes a reference
// only while the count is positive (tryAcquire), so a generation whose count
// reached zero is never used again.
type Generation struct {
	ID       uint64
	Config   *config.Config
	LoadedAt time.Time

	router  *router.Generation // nil in a worker
	worker  workerpool.Snapshot
	queues  map[string]*queueHandle
	results *resultsHandle
	jobs    *jobs.Service // the operator's tooling over queues and results

	p       *Process
	refs    atomic.Int64
	release func() // unref as a func value, made once so users do not allocate
}

// tryAcquire takes a reference unless the generation was retired.
func (g *Generation) tryAcquire() bool {
	for {
		n := g.refs.Load()
		if n <= 0 {
			return false
		}
		if g.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// unref drops a reference; the last one retires the generation.
func (g *Generation) unref() {
	switch n := g.refs.Add(-1); {
	case n == 0:
		g.p.retire(g)
	case n < 0:
		panic("process: generation released more often than acquired")
	}
}

// acquire returns the published generation with a reference taken, or nil
// before the first one and after the process stopped. The caller calls
// g.release exactly once.
func (p *Process) acquire() *Generation {
	for {
		g := p.current.Load()
		if g == nil || g.tryAcquire() {
			return g
		}
		// g was replaced and retired between the load and the acquire:
		// the pointer already names its successor.
	}
}

func noop() {}

// currentRouter is router.Options.Current.
func (p *Process) currentRouter() (*router.Generation, func()) {
	g := p.acquire()
	if g == nil {
		return nil, noop
	}
	return g.router, g.release
}

// currentWorker is workerpool.Options.Current.
func (p *Process) currentWorker() (*workerpool.Snapshot, func()) {
	g := p.acquire()
	if g == nil {
		return nil, noop
	}
	return &g.worker, g.release
}

// build makes the generation of cfg without publishing it. Backends and
// endpoint clients whose settings did not change are reused. On error
// nothing it opened stays open.
func (p *Process) build(ctx context.Context, cfg *config.Config) (*Generation, *plan, error) {
	pl, err := p.backends.prepare(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	g := &Generation{
		ID:       p.generations + 1,
		Config:   cfg,
		LoadedAt: time.Now(),
		queues:   pl.queues,
		results:  pl.results,
		jobs:     jobsService(cfg, pl.queues, pl.results.s),
		p:        p,
	}
	endpoints := make(map[string]*upstream.Client, len(cfg.Endpoints))
	for name, ep := range cfg.Endpoints {
		endpoints[name] = p.ups.Client(ep)
	}
	if p.router != nil {
		queues := make(map[string]router.Enqueuer, len(pl.queues))
		for name, h := range pl.queues {
			queues[name] = h.q
		}
		var prev *router.Generation
		if cur := p.current.Load(); cur != nil {
			prev = cur.router
		}
		deps := router.Deps{Endpoints: endpoints, Queues: queues, Results: pl.results.s}
		if g.jobs.Results != nil {
			deps.Jobs = g.jobs
		}
		rg, err := p.router.Build(cfg, deps, prev)
		if err != nil {
			p.backends.abandon(pl)
			return nil, nil, err
		}
		g.router = rg
	}
	g.worker = workerpool.Snapshot{Config: cfg, Results: pl.results.s, Endpoints: endpoints}
	g.refs.Store(1)
	g.release = g.unref
	return g, pl, nil
}

// publish makes g the generation new requests and job attempts use, with one
// atomic store, points the worker pool at its queues, and lets go of the
// replaced generation, which retires once its last user finished. The caller
// holds p.mu.
func (p *Process) publish(g *Generation, pl *plan) {
	p.backends.commit(pl)
	p.live.Add(1)
	p.generations = g.ID
	old := p.current.Swap(g)
	p.ups.Retain(g.Config.Endpoints)
	p.level.Set(parseLevel(g.Config.Telemetry.LogLevel))
	if p.pool != nil {
		p.reconcile(g)
	}
	for _, what := range pl.keptSettings {
		p.log.Warn("changed settings of a memory backend take effect after a restart; it keeps its jobs meanwhile", "backend", what)
	}
	if old != nil {
		old.unref()
	}
}

// reconcile makes the worker pool consume g's queues (those named in
// worker.queues, or all). A consumer holds its own reference on its queue
// client until it has drained, so a queue client outlives the generations
// that named it for as long as jobs it delivered are running. The caller
// holds p.mu.
func (p *Process) reconcile(g *Generation) {
	only := g.Config.Worker.Queues
	want := make(map[string]*queueHandle, len(g.queues))
	consumers := make(map[string]workerpool.Consumer, len(g.queues))
	for name, h := range g.queues {
		if len(only) == 0 || slices.Contains(only, name) {
			want[name] = h
			consumers[name] = h.q
		}
	}
	var stopped []*queueHandle
	for name, h := range p.consumed {
		if want[name] != h {
			stopped = append(stopped, h)
			delete(p.consumed, name)
		}
	}
	for name, h := range want {
		if p.consumed[name] != h {
			p.backends.acquire(&h.handle)
			p.consumed[name] = h
		}
	}
	drained := p.pool.Reconcile(consumers)
	if len(stopped) > 0 {
		p.bg.Go(func() {
			<-drained
			for _, h := range stopped {
				p.backends.release(&h.handle)
			}
		})
	}
}

// retire releases the backends of a generation nobody uses any more.
func (p *Process) retire(g *Generation) {
	for _, h := range g.queues {
		p.backends.release(&h.handle)
	}
	p.backends.release(&g.results.handle)
	p.log.Debug("configuration generation retired", "generation", g.ID)
	if p.live.Add(-1) == 0 {
		p.retiredAll.Do(func() { close(p.allRetired) })
	}
}
