package admin

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/internal/jobs"
)

// The operator's pages, for every backend (the memory backend's only way
// in, since `openhqm jobs` cannot reach another process's memory):
//
//	GET    /-/queues                       the `openhqm jobs stats` JSON
//	GET    /-/jobs?queue=&state=&route=&limit=   the `jobs ls` JSON
//	GET    /-/jobs/{id}[?body=1]           the `jobs show` JSON
//	DELETE /-/jobs/{id}                    cancel
//	POST   /-/queues/{name}/redrive?all=1 | ?id=ID&id=ID [&route=R]
//	POST   /-/queues/{name}/purge[?older_than=1h]
//
// Reading pages are introspection, served like /-/config; the others
// change state and are served like POST /-/reload.

// jobsTimeout bounds one page's work on the backends.
const jobsTimeout = 30 * time.Second

// isJobsPage reports whether path is one of the pages above.
func isJobsPage(path string) bool {
	return path == "/-/queues" || path == "/-/jobs" ||
		strings.HasPrefix(path, "/-/queues/") || strings.HasPrefix(path, "/-/jobs/")
}

func (h *Handler) jobsPage(ctx *fasthttp.RequestCtx) {
	if h.opts.Jobs == nil {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	s, done := h.opts.Jobs()
	defer done()
	if s == nil {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"error": "no configuration loaded"})
		return
	}
	c, cancel := context.WithTimeout(context.Background(), jobsTimeout)
	defer cancel()
	path := string(ctx.Path())
	args := ctx.QueryArgs()
	method := string(ctx.Method())
	switch {
	case path == "/-/queues":
		if !allow(ctx, method, "GET") {
			return
		}
		rep, _ := s.Stats(c) // a queue's error is in its line
		writeJSON(ctx, fasthttp.StatusOK, rep)
	case path == "/-/jobs":
		if !allow(ctx, method, "GET") {
			return
		}
		limit, _ := strconv.Atoi(string(args.Peek("limit")))
		l, err := s.List(c, jobs.ListOptions{Queue: string(args.Peek("queue")), State: string(args.Peek("state")),
			Route: string(args.Peek("route")), Limit: limit})
		if err != nil {
			jobsError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, l)
	case strings.HasPrefix(path, "/-/jobs/"):
		id := strings.TrimPrefix(path, "/-/jobs/")
		switch method {
		case "GET", "HEAD":
			d, err := s.Show(c, id, args.Has("body"))
			if err != nil {
				jobsError(ctx, err)
				return
			}
			writeJSON(ctx, fasthttp.StatusOK, d)
		case "DELETE":
			r, err := s.Cancel(c, id)
			if err != nil {
				jobsError(ctx, err)
				return
			}
			writeJSON(ctx, fasthttp.StatusOK, map[string]any{"id": r.ID, "status": r.Status})
		default:
			allow(ctx, method, "GET, DELETE")
		}
	default: // /-/queues/{name}/redrive | purge
		name, action, _ := strings.Cut(strings.TrimPrefix(path, "/-/queues/"), "/")
		if action != "redrive" && action != "purge" {
			writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not found"})
			return
		}
		if !allow(ctx, method, "POST") {
			return
		}
		var n int
		var err error
		if action == "redrive" {
			o := jobs.RedriveOptions{Queue: name, Route: string(args.Peek("route"))}
			for _, id := range args.PeekMulti("id") {
				o.IDs = append(o.IDs, string(id))
			}
			if (o.IDs == nil) == !args.Has("all") {
				writeJSON(ctx, fasthttp.StatusBadRequest, map[string]string{"error": "give either all=1 or one or more id=ID"})
				return
			}
			n, err = s.Redrive(c, o)
		} else {
			var older time.Duration
			if v := args.Peek("older_than"); len(v) > 0 {
				if older, err = time.ParseDuration(string(v)); err != nil || older <= 0 {
					writeJSON(ctx, fasthttp.StatusBadRequest, map[string]string{"error": "older_than: a positive duration such as 1h"})
					return
				}
			}
			n, err = s.Purge(c, name, older)
		}
		if err != nil {
			jobsError(ctx, err)
			return
		}
		key := "redriven"
		if action == "purge" {
			key = "purged"
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"queue": name, key: n})
	}
}

// allow answers 405 unless method is one of want.
func allow(ctx *fasthttp.RequestCtx, method, want string) bool {
	for _, m := range strings.Split(want, ", ") {
		if m == method || (m == "GET" && method == "HEAD") {
			return true
		}
	}
	ctx.Response.Header.Set("Allow", want)
	writeJSON(ctx, fasthttp.StatusMethodNotAllowed, map[string]string{"error": "use " + want})
	return false
}

// jobsError maps the tooling's errors onto answers.
func jobsError(ctx *fasthttp.RequestCtx, err error) {
	code := fasthttp.StatusServiceUnavailable
	switch {
	case errors.Is(err, backends.ErrNotFound), errors.Is(err, jobs.ErrNoQueue):
		code = fasthttp.StatusNotFound
	case errors.Is(err, backends.ErrStarted), errors.Is(err, backends.ErrFinished):
		code = fasthttp.StatusConflict
	case errors.Is(err, jobs.ErrUnknownState):
		code = fasthttp.StatusBadRequest
	}
	writeJSON(ctx, code, map[string]string{"error": err.Error()})
}
