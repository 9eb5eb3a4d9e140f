package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/router"
	"github.com/openhqm/openhqm/workerpool"
)

const serveSynopsis = `serve [-c PATH]

Runs the ingress: the sync proxy, async submits, the job API and the admin
endpoints, and the worker pool in-process when worker.embedded is true.
PATH is a file or a directory of *.hcl / *.hcl.json files. Without -c:
$OPENHQM_CONFIG, then the original OpenHQM's OPENHQM_* variables, then
/etc/openhqm, then the embedded default configuration.`

// shutdownTimeout bounds how long serve waits for in-flight requests after
// SIGTERM before it closes their connections.
const shutdownTimeout = 30 * time.Second

// serveMain runs `openhqm serve`.
//
// Shutdown order, on SIGINT/SIGTERM: stop the config watcher; stop accepting
// and finish in-flight requests (up to shutdownTimeout); stop the worker pool
// (it finishes in-flight jobs within worker.drain and leaves the rest for
// redelivery); close the backends and the endpoint clients.
func serveMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", serveSynopsis, stderr)
	var path string
	fs.StringVar(&path, "c", "", "configuration file or directory")
	fs.StringVar(&path, "config", "", "same as -c")
	if err := fs.Parse(args); err != nil {
		if isHelp(err) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "openhqm serve: unexpected argument %q (use -c PATH)\n", fs.Arg(0))
		return 2
	}
	a, code := newApp("serve", path, "", stderr)
	if a == nil {
		return code
	}
	cfg := a.cfg.Load()
	a.name = consumerName("", os.LookupEnv)
	a.set.consumer = a.name

	ver, _ := buildVersion()
	r, err := router.New(router.Options{
		Logger:     a.log,
		Registry:   a.reg,
		Pool:       a.ups,
		Version:    ver,
		Reload:     func(ctx context.Context) error { return a.reload(ctx, "api") },
		ConfigInfo: a.configInfo,
		Ready:      a.ready,
		Components: a.components,
		Async:      router.AsyncOptions{Queues: a.stagedQueue, Results: liveResults{a}},
	})
	if err != nil {
		fmt.Fprintf(stderr, "openhqm serve: %v\n", err)
		return 1
	}
	a.router = r
	if cfg.Worker.Embedded {
		a.workers, err = newWorkerPool(a, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "openhqm serve: %v\n", err)
			return 1
		}
	}
	a.mu.Lock()
	err = a.apply(ctx, cfg)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("cannot start", "err", err)
		a.set.closeAll()
		return 1
	}

	servers := []*listener{{addr: cfg.Server.Listen, srv: router.NewHTTPServer(cfg.Server, r.Handler, a.log)}}
	if cfg.Server.AdminListen != "" {
		servers = append(servers, &listener{addr: cfg.Server.AdminListen, srv: router.NewHTTPServer(cfg.Server, r.AdminHandler, a.log)})
	}
	code = runProcess(ctx, a, servers)
	r.Close()
	return code
}

// listener is one HTTP server of the process.
type listener struct {
	addr string
	srv  *fasthttp.Server
	ln   net.Listener // opened by runProcess
}

// runProcess serves the listeners, the worker pool and the reload loop until
// ctx is done, then shuts them down in order. It returns the exit code.
func runProcess(ctx context.Context, a *app, servers []*listener) int {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	// Listen before serving: a taken port fails the start at once, and a
	// shutdown that comes before Serve registered its listener still
	// closes it (below), so Serve cannot outlive the process's shutdown.
	for i, l := range servers {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, prev := range servers[:i] {
				prev.ln.Close()
			}
			a.log.Error("cannot listen", "addr", l.addr, "err", err)
			a.set.closeAll()
			a.ups.Close()
			return 1
		}
		l.ln = ln
	}
	failed := make(chan error, len(servers))
	var httpWG sync.WaitGroup
	for _, l := range servers {
		httpWG.Go(func() {
			a.log.Info("listening", "addr", l.ln.Addr().String())
			if err := l.srv.Serve(l.ln); err != nil {
				failed <- fmt.Errorf("serve %s: %w", l.addr, err)
			}
		})
	}

	var watcher, bg sync.WaitGroup
	watcher.Go(func() { a.watch(runCtx, sighup(runCtx)) })
	workersCtx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	if a.workers != nil {
		bg.Go(func() {
			if err := a.workers.Run(workersCtx); err != nil {
				a.log.Error("worker pool", "err", err)
			}
		})
	}

	code := 0
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case err := <-failed:
		a.log.Error("cannot serve", "err", err)
		code = 1
	}
	stop() // the watcher: no reload may reconcile a pool that is draining
	watcher.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	for _, l := range servers {
		if err := l.srv.ShutdownWithContext(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			a.log.Warn("http shutdown", "addr", l.addr, "err", err)
		}
		l.ln.Close() // in case Serve had not registered it yet
	}
	cancel()
	httpWG.Wait()
	close(a.stopping)
	stopWorkers() // the pool drains within worker.drain
	bg.Wait()
	a.retiring.Wait()
	a.set.closeAll()
	a.ups.Close()
	a.log.Info("stopped")
	return code
}

// start creates the worker pool when withWorkers and applies the first
// generation. It returns a non-zero exit code when the process cannot start.
func (a *app) start(ctx context.Context, withWorkers bool, stderr io.Writer) int {
	cfg := a.cfg.Load()
	if withWorkers {
		var err error
		if a.workers, err = newWorkerPool(a, cfg); err != nil {
			fmt.Fprintf(stderr, "openhqm %s: %v\n", a.role, err)
			return 1
		}
	}
	a.mu.Lock()
	err := a.apply(ctx, cfg)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("cannot start", "err", err)
		a.set.closeAll()
		return 1
	}
	return 0
}

func newWorkerPool(a *app, cfg *config.Config) (*workerpool.Pool, error) {
	return workerpool.New(workerpool.Options{
		Name:        a.name,
		Concurrency: cfg.Worker.Concurrency,
		BatchSize:   cfg.Worker.BatchSize,
		Drain:       cfg.Worker.Drain,
		Logger:      a.log,
		Registry:    a.reg,
		Upstreams:   a.ups,
		Config:      a.cfg.Load,
		Results:     liveResults{a},
	})
}
