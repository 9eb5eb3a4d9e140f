package router

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

// serve routes one request on generation g: the job API first, then the
// routes.
func (s *Server) serve(ctx *fasthttp.RequestCtx, g *Generation) {
	if s.serveJobAPI(ctx, g) {
		return
	}
	start := time.Now()
	if ambiguousPath(ctx.Request.Header.RequestURI()) {
		writeError(ctx, fasthttp.StatusBadRequest, "the path holds an encoded slash or dot, or a dot segment; openhqm does not forward such paths", nil)
		s.unmatched.observe(ctx.Response.StatusCode(), start)
		return
	}
	r := g.Table.Match(ctx)
	if r == nil {
		s.notFound(ctx)
		s.unmatched.observe(ctx.Response.StatusCode(), start)
		return
	}
	s.serveRoute(ctx, g, r, start)
}

func (s *Server) notFound(ctx *fasthttp.RequestCtx) {
	msg := "no route for " + string(ctx.Method()) + " " + string(ctx.Path())
	writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": msg})
}

// serveRoute runs the inbound checks (client auth, rate limit, body size),
// the route's transform, and then the route's mode.
func (s *Server) serveRoute(ctx *fasthttp.RequestCtx, g *Generation, r *Route, start time.Time) {
	st := r.state
	ex := acquireExchange()
	defer releaseExchange(ex)

	if id := ctx.Request.Header.Peek(headerRequestID); validRequestID(id) {
		ex.id = append(ex.id, id...)
	} else {
		ex.id = appendNewRequestID(ex.id)
	}

	switch {
	case st.auth != nil && !s.authorize(ctx, st, ex):
		writeError(ctx, fasthttp.StatusUnauthorized, "missing or invalid credentials", ex.id)
		ctx.Response.Header.Set("WWW-Authenticate", st.auth.challenge)
	case !s.allow(ctx, st, ex):
		// allow wrote the 429
	case g.maxBody > 0 && int64(len(ctx.Request.Body())) > g.maxBody:
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large", ex.id)
	case r.Config.Transform != nil && !s.transform(ctx, g, r, ex):
		// transform answered (422); sync and async both see the rewritten request
	case r.Config.Mode == config.ModeAsync ||
		(r.Config.Mode == config.ModeAuto && prefersAsync(&ctx.Request.Header)):
		s.serveAsync(ctx, g, r, ex)
	default:
		s.forward(ctx, g, r, ex, start)
	}

	code := ctx.Response.StatusCode()
	st.metrics.observe(code, start)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("request", "request_id", string(ex.id), "route", r.Name, "endpoint", st.endpoint,
			"status", code, "duration", time.Since(start))
	}
}

func (s *Server) authorize(ctx *fasthttp.RequestCtx, st *routeState, ex *exchange) bool {
	ex.principal = st.auth.principal(&ctx.Request.Header)
	return ex.principal >= 0
}

func (s *Server) allow(ctx *fasthttp.RequestCtx, st *routeState, ex *exchange) bool {
	if st.bucket == nil {
		return true
	}
	ok, retry := st.bucket.take(time.Now())
	if ok {
		return true
	}
	st.metrics.rateLimited.Inc()
	writeError(ctx, fasthttp.StatusTooManyRequests, "rate limit exceeded", ex.id)
	ex.buf = strconv.AppendInt(ex.buf[:0], int64(retry), 10)
	ctx.Response.Header.SetBytesV("Retry-After", ex.buf)
	return false
}

// prefersAsync reports whether the client sent Prefer: respond-async.
func prefersAsync(h *fasthttp.RequestHeader) bool {
	return bytes.Contains(h.Peek("Prefer"), []byte("respond-async"))
}

// marshalRoute describes one compiled route for /-/routes.
func marshalRoute(r *Route) map[string]any {
	rc := r.Config
	m := map[string]any{"name": r.Name, "mode": rc.Mode, "endpoint": rc.Endpoint}
	switch {
	case rc.Match.PathSegments != nil:
		m["path_template"] = rc.Match.Path
	case rc.Match.Path != "":
		m["path"] = rc.Match.Path
	default:
		p := rc.Match.PathPrefix
		if p == "" {
			p = "/"
		}
		m["path_prefix"] = p
	}
	if len(rc.Match.Methods) > 0 {
		m["methods"] = rc.Match.Methods
	}
	if len(rc.Match.Hosts) > 0 {
		m["hosts"] = rc.Match.Hosts
	}
	if len(rc.Match.Headers) > 0 {
		hs := map[string]string{}
		for _, h := range rc.Match.Headers {
			if h.Regex != nil {
				hs[h.Name] = "~" + h.Regex.String()
			} else {
				hs[h.Name] = h.Value
			}
		}
		m["headers"] = hs
	}
	if rc.Match.JQ != nil {
		m["jq"] = rc.Match.JQ.Source
	}
	if rc.Priority != 0 {
		m["priority"] = rc.Priority
	}
	if rc.Queue != "" {
		m["queue"] = rc.Queue
	}
	if r.state != nil {
		m["timeout"] = r.state.timeout.String()
		m["client_auth"] = r.state.auth != nil
		m["rate_limited"] = r.state.bucket != nil
	}
	return m
}
