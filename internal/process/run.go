package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/internal/admin"
	"github.com/openhqm/openhqm/router"
)

// listener is one HTTP server of the process.
type listener struct {
	addr string
	srv  *fasthttp.Server
	ln   net.Listener
}

// listeners are the servers of the process's role: serve's main listener
// (admin pages first unless server.admin_listen is set) and its admin
// listener; a worker's admin listener.
func (p *Process) listeners() []*listener {
	cfg := p.first
	if p.opts.Role == Worker {
		addr := p.opts.Listen
		if addr == "" {
			addr = cfg.Worker.Listen
		}
		return []*listener{{addr: addr, srv: router.NewHTTPServer(cfg.Server, p.admin.Dedicated, p.log)}}
	}
	main := p.router.Handler
	if cfg.Server.AdminListen == "" {
		main = func(ctx *fasthttp.RequestCtx) {
			if p.admin.Serve(ctx, admin.Shared) {
				return
			}
			p.router.Handler(ctx)
		}
	}
	out := []*listener{{addr: cfg.Server.Listen, srv: router.NewHTTPServer(cfg.Server, main, p.log)}}
	if cfg.Server.AdminListen != "" {
		out = append(out, &listener{addr: cfg.Server.AdminListen, srv: router.NewHTTPServer(cfg.Server, p.admin.Dedicated, p.log)})
	}
	return out
}

// Run serves until ctx is done, then stops in order, and returns the exit
// code: 0 after a clean stop, 1 when a listener could not start or failed.
// The ready callback, when set, receives the listeners' addresses once they
// listen (tests use port 0).
//
// Stop order: the reload loop (no reload may reconcile a pool that is
// draining); the listeners, which finish the requests in flight within
// ShutdownTimeout; the worker pool, which finishes its jobs within
// worker.drain and leaves the rest for redelivery; the last generation,
// whose backends close once nothing uses them; the endpoint clients.
func (p *Process) Run(ctx context.Context, ready func(addrs []string)) int {
	servers := p.listeners()
	cfg := p.first.Server
	// Listen before serving: a taken port fails the start at once, and a
	// shutdown that comes before Serve registered its listener still closes
	// it (below), so Serve cannot outlive the process's shutdown.
	for i, l := range servers {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, prev := range servers[:i] {
				prev.ln.Close()
			}
			p.log.Error("cannot listen", "addr", l.addr, "err", err)
			p.stop()
			return 1
		}
		l.ln = router.Listen(ln, cfg, p.connRejected.Inc)
	}
	failed := make(chan error, len(servers))
	var httpWG sync.WaitGroup
	addrs := make([]string, len(servers))
	for i, l := range servers {
		addrs[i] = l.ln.Addr().String()
		httpWG.Go(func() {
			p.log.Info("listening", "addr", l.ln.Addr().String())
			if err := l.srv.Serve(l.ln); err != nil {
				failed <- fmt.Errorf("serve %s: %w", l.addr, err)
			}
		})
	}

	loopCtx, stopLoop := context.WithCancel(ctx)
	var loop sync.WaitGroup
	hup := sighup(loopCtx, &loop)
	loop.Go(func() { p.watch(loopCtx, hup) })

	poolCtx, stopPool := context.WithCancel(context.Background())
	defer stopPool()
	var poolDone sync.WaitGroup
	if p.pool != nil {
		poolDone.Go(func() {
			if err := p.pool.Run(poolCtx); err != nil {
				p.log.Error("worker pool", "err", err)
			}
		})
	}
	if ready != nil {
		ready(addrs)
	}

	code := 0
	select {
	case <-ctx.Done():
		p.log.Info("shutting down")
	case err := <-failed:
		p.log.Error("cannot serve", "err", err)
		code = 1
	}
	stopLoop()
	loop.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), p.opts.ShutdownTimeout)
	for _, l := range servers {
		if err := l.srv.ShutdownWithContext(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			p.log.Warn("http shutdown", "addr", l.addr, "err", err)
		}
		l.ln.Close() // in case Serve had not registered it yet
	}
	cancel()
	httpWG.Wait()
	stopPool()
	poolDone.Wait()
	p.stop()
	p.log.Info("stopped")
	return code
}

// Close releases what New opened, for a process whose Run is never called.
func (p *Process) Close() { p.stop() }

// stop lets go of the published generation and of every consumer's queue
// reference, waits (bounded) until every generation is retired and its
// backends closed, and closes the endpoint clients. The listeners and the
// worker pool have stopped.
func (p *Process) stop() {
	p.mu.Lock()
	for name, h := range p.consumed {
		p.backends.release(&h.handle)
		delete(p.consumed, name)
	}
	p.bg.Wait()
	if g := p.current.Swap(nil); g != nil {
		g.unref()
	}
	p.mu.Unlock()
	select {
	case <-p.allRetired:
		p.backends.closing.Wait()
	case <-time.After(p.opts.ShutdownTimeout):
		// A request still runs on an old generation (it outlived the
		// listener's shutdown); its backends close with the process.
		p.log.Warn("requests still use a configuration generation; leaving its backends open")
	}
	p.ups.Close()
}
