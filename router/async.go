package router

// This file is the seam of the async path (DESIGN §3, issue 4). The async
// feature replaces it wholesale: it may redefine AsyncOptions (queues,
// results, submit API settings) and asyncGeneration (per-generation queue
// clients), and implement the three methods below. Nothing else in the
// package depends on their internals.

import (
	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
)

// AsyncOptions carries the async path's dependencies in Options.Async.
type AsyncOptions struct{}

// asyncGeneration is the async path's state inside a Generation.
type asyncGeneration struct{}

// buildAsync fills g.async from cfg when Apply builds a generation; prev is
// the generation being replaced (nil on the first Apply), whose queue
// clients may be reused. An error aborts the Apply.
func (s *Server) buildAsync(cfg *config.Config, g *Generation, prev *Generation) error {
	return nil
}

// serveJobAPI serves the job API (GET /-/requests/{id}, its /response, the
// original's /api/v1/...) and reports whether it handled the request. It
// runs before route matching.
func (s *Server) serveJobAPI(ctx *fasthttp.RequestCtx, g *Generation) bool {
	return false
}

// serveAsync handles a request matched by an async route (or an auto route
// asked to respond asynchronously) after the inbound checks passed. ex.id is
// the request id and ex.principal the client_auth token index (-1: none).
// ctx's memory must be copied before it outlives the handler.
func (s *Server) serveAsync(ctx *fasthttp.RequestCtx, g *Generation, r *Route, ex *exchange) {
	writeError(ctx, fasthttp.StatusNotImplemented, "async routes are not enabled in this build", ex.id)
}
