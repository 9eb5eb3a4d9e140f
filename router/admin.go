package router

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// serveAdmin serves the admin paths (DESIGN §5) and reports whether path was
// one. g may be nil before the first Apply.
func (s *Server) serveAdmin(ctx *fasthttp.RequestCtx, g *Generation) bool {
	path := ctx.Path()
	switch string(path) {
	case "/-/healthz", "/-/readyz", "/health", "/metrics", "/-/config", "/-/routes", "/-/reload":
	default:
		return false
	}
	start := time.Now()
	defer func() { s.admin.observe(ctx.Response.StatusCode(), start) }()
	switch string(path) {
	case "/-/healthz":
		writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
	case "/-/readyz":
		if err := s.ready(ctx, g); err != nil {
			writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return true
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready"})
	case "/health":
		s.health(ctx, g)
	case "/metrics":
		if s.gatherer == nil || (g != nil && !g.Config.Telemetry.Metrics) {
			writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "metrics are disabled"})
			return true
		}
		s.metricsHandler()(ctx)
	case "/-/config":
		s.configInfo(ctx, g)
	case "/-/routes":
		if g == nil {
			writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"error": "no configuration loaded yet"})
			return true
		}
		routes := make([]map[string]any, 0, len(g.Table.all))
		for _, r := range g.Table.all {
			routes = append(routes, marshalRoute(r))
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"generation": g.ID, "routes": routes})
	case "/-/reload":
		if !ctx.IsPost() {
			ctx.Response.Header.Set("Allow", "POST")
			writeJSON(ctx, fasthttp.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
			return true
		}
		if g != nil && g.adminOnMain && !ctx.RemoteIP().IsLoopback() {
			// Without admin_listen the admin paths share the public
			// listener: only a caller inside the pod may trigger a reload.
			writeJSON(ctx, fasthttp.StatusForbidden, map[string]string{"error": "reload is allowed from loopback only unless server.admin_listen is set"})
			return true
		}
		if s.opts.Reload == nil {
			writeJSON(ctx, fasthttp.StatusNotImplemented, map[string]string{"error": "reload is not wired"})
			return true
		}
		if err := s.opts.Reload(context.Background()); err != nil {
			writeJSON(ctx, fasthttp.StatusUnprocessableEntity, map[string]string{"status": "failed", "error": err.Error()})
			return true
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"status": "reloaded", "generation": s.gen.Load().ID})
	}
	return true
}

func (s *Server) ready(ctx *fasthttp.RequestCtx, g *Generation) error {
	if g == nil {
		return errNoConfig
	}
	if s.opts.Ready != nil {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return s.opts.Ready(c)
	}
	return nil
}

type adminError string

func (e adminError) Error() string { return string(e) }

const errNoConfig = adminError("no configuration loaded yet")

// health answers in the original OpenHQM's shape, with 503 when not ready.
func (s *Server) health(ctx *fasthttp.RequestCtx, g *Generation) {
	components := map[string]string{"api": "healthy", "config": "healthy"}
	err := s.ready(ctx, g)
	if g == nil {
		components["config"] = "not loaded"
	}
	if s.opts.Components != nil {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for k, v := range s.opts.Components(c, err) {
			components[k] = v
		}
		cancel()
	}
	status := "healthy"
	for _, v := range components {
		if v != "healthy" {
			status = "degraded"
		}
	}
	code := fasthttp.StatusOK
	if err != nil {
		status, code = "degraded", fasthttp.StatusServiceUnavailable
	}
	version := s.opts.Version
	if version == "" {
		version = "dev"
	}
	writeJSON(ctx, code, map[string]any{
		"status":     status,
		"version":    version,
		"timestamp":  time.Now().UTC().Format(time.RFC3339Nano),
		"components": components,
	})
}

func (s *Server) configInfo(ctx *fasthttp.RequestCtx, g *Generation) {
	if s.opts.ConfigInfo != nil {
		writeJSON(ctx, fasthttp.StatusOK, s.opts.ConfigInfo())
		return
	}
	if g == nil {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"error": "no configuration loaded yet"})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{
		"generation": g.ID,
		"digest":     g.Config.Digest,
		"files":      g.Config.Files,
		"loaded_at":  g.LoadedAt.UTC().Format(time.RFC3339Nano),
	})
}

func (s *Server) metricsHandler() fasthttp.RequestHandler {
	s.metricsOnce.Do(func() {
		s.promHandler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	})
	return s.promHandler
}
