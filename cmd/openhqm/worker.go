package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/openhqm/openhqm/router"
)

const workerSynopsis = `worker [-c PATH] [--name NAME | NAME] [--listen ADDR]

Runs a worker pool alone (the separately scaled Deployment). NAME is the
stable consumer name (default $POD_NAME, then the hostname): a restarted
worker with the same name takes back its own pending jobs at once. The
worker serves /health, /-/healthz, /-/readyz and /metrics on --listen, else
worker.listen.`

// workerMain runs `openhqm worker`. Shutdown order, on SIGINT/SIGTERM: stop
// receiving and finish in-flight jobs within worker.drain (the rest stays
// leased and is redelivered), stop the admin listener, close the backends.
func workerMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("worker", workerSynopsis, stderr)
	var path, name, listen string
	fs.StringVar(&path, "c", "", "configuration file or directory")
	fs.StringVar(&path, "config", "", "same as -c")
	fs.StringVar(&name, "name", "", "stable consumer name (default $POD_NAME, then the hostname)")
	fs.StringVar(&listen, "listen", "", "address of /health and /metrics (default worker.listen)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if isHelp(err) {
			return 0
		}
		return 2
	}
	switch {
	case len(pos) > 1:
		fmt.Fprintf(stderr, "openhqm worker: too many arguments %q\n", pos)
		return 2
	case len(pos) == 1 && name != "" && pos[0] != name:
		fmt.Fprintf(stderr, "openhqm worker: the name is given twice (%q and --name %q)\n", pos[0], name)
		return 2
	case len(pos) == 1:
		name = pos[0]
	}
	a, code := newApp("worker", path, consumerName(name, os.LookupEnv), stderr)
	if a == nil {
		return code
	}
	cfg := a.cfg.Load()
	if listen == "" {
		listen = cfg.Worker.Listen
	}
	if code := a.start(ctx, true, stderr); code != 0 {
		return code
	}
	a.log.Info("worker started", "name", a.name, "queues", len(a.live.Load().queues), "concurrency", cfg.Worker.Concurrency)
	srv := router.NewHTTPServer(cfg.Server, workerAdmin(a), a.log)
	return runProcess(ctx, a, []*listener{{addr: listen, srv: srv}})
}

// workerAdmin serves the worker's probes and metrics.
func workerAdmin(a *app) fasthttp.RequestHandler {
	metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	ver, _ := buildVersion()
	return func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/metrics":
			metrics(ctx)
		case "/-/healthz":
			writeAdminJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
		case "/-/readyz":
			if err := a.ready(ctx); err != nil {
				writeAdminJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
				return
			}
			writeAdminJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready"})
		case "/health":
			comps := a.components(ctx, a.ready(ctx))
			status, code := "healthy", fasthttp.StatusOK
			if comps["queue"] != "healthy" {
				status, code = "degraded", fasthttp.StatusServiceUnavailable
			}
			writeAdminJSON(ctx, code, map[string]any{
				"status": status, "version": ver, "timestamp": time.Now().UTC().Format(time.RFC3339),
				"components": comps,
			})
		case "/-/config":
			writeAdminJSON(ctx, fasthttp.StatusOK, a.configInfo())
		default:
			writeAdminJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not found"})
		}
	}
}

func writeAdminJSON(ctx *fasthttp.RequestCtx, code int, v any) {
	b, _ := json.Marshal(v)
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}
