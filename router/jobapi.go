package router

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/httpheader"
	"github.com/valyala/fasthttp"
)

// serveJobs serves GET /-/requests/{id} (the status) and
// GET /-/requests/{id}/response (the app's answer). rest is the path after
// the prefix.
//
// /response answers: completed → the app's status, headers and body
// verbatim; failed → the last answer of the app when the worker got one
// (a 5xx it gave up on), else 502 with the status JSON; pending or
// processing → 202 with Retry-After and the status JSON. Both carry
// OpenHQM-Status. ?wait=30s (or =30) long-polls up to the cap.
func (s *Server) serveJobs(ctx *fasthttp.RequestCtx, g *Generation, rest []byte) {
	id, sub, _ := bytes.Cut(rest, []byte("/"))
	if len(sub) > 0 && string(sub) != "response" || !validJobID(id) || g.async.results == nil {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "no such request"})
		return
	}
	if ctx.IsDelete() && len(sub) == 0 && g.async.jobsAPI != nil {
		s.cancelJob(ctx, g, string(id))
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		allow := "GET, HEAD"
		if len(sub) == 0 && g.async.jobsAPI != nil {
			allow += ", DELETE"
		}
		ctx.Response.Header.Set("Allow", allow)
		writeJSON(ctx, fasthttp.StatusMethodNotAllowed, map[string]string{"error": "use " + allow})
		return
	}
	res, ok := s.readJob(ctx, g, string(id), func(code int, msg string) {
		writeJSON(ctx, code, map[string]string{"error": msg})
	})
	if !ok {
		return
	}
	if len(sub) == 0 {
		writeJSON(ctx, fasthttp.StatusOK, statusOf(res))
		return
	}
	if d, ok := queryWait(ctx.QueryArgs().Peek("wait"), g.async.maxWait); ok && !finished(res) {
		if r, err := s.waitFinished(ctx, g, res.ID, d); err == nil {
			res = r
		}
	}
	switch res.Status {
	case backends.StatusCompleted:
		writeOutcome(ctx, res)
	case backends.StatusCancelled:
		writeJSON(ctx, fasthttp.StatusConflict, statusOf(res))
		ctx.Response.Header.Set("OpenHQM-Status", string(res.Status))
	case backends.StatusFailed:
		if res.StatusCode > 0 {
			writeOutcome(ctx, res)
		} else {
			writeJSON(ctx, fasthttp.StatusBadGateway, statusOf(res))
			ctx.Response.Header.Set("OpenHQM-Status", string(res.Status))
		}
	default:
		writeJSON(ctx, fasthttp.StatusAccepted, statusOf(res))
		ctx.Response.Header.Set("Retry-After", "1")
		ctx.Response.Header.Set("OpenHQM-Status", string(res.Status))
	}
}

// readJob loads job id and checks that the caller may read it. On failure it
// answers through fail (404 unknown, hidden or malformed; 410 expired; 503
// store unreachable) and reports false.
func (s *Server) readJob(ctx *fasthttp.RequestCtx, g *Generation, id string, fail func(code int, msg string)) (*backends.Result, bool) {
	c, cancel := context.WithTimeout(context.Background(), g.async.timeout)
	res, err := g.async.results.Get(c, id)
	cancel()
	switch {
	case errors.Is(err, backends.ErrNotFound):
		fail(fasthttp.StatusNotFound, "no such request")
		return nil, false
	case errors.Is(err, backends.ErrExpired):
		fail(fasthttp.StatusGone, "the result of this request has expired")
		return nil, false
	case err != nil:
		g.async.metrics.logLimited(s, "cannot read a job's result", "request_id", id, "err", err)
		fail(fasthttp.StatusServiceUnavailable, "the result store is unavailable; retry later")
		ctx.Response.Header.Set("Retry-After", "1")
		return nil, false
	}
	if !mayRead(&ctx.Request.Header, g, res) {
		fail(fasthttp.StatusNotFound, "no such request")
		return nil, false
	}
	return res, true
}

func finished(r *backends.Result) bool {
	return r.Status.Final()
}

// mayRead reports whether the caller presents the credential that submitted
// the job. Anonymous jobs are readable by anyone holding the id. The
// credential is looked for where client_auth reads it: Authorization:
// Bearer, the api_key header of the job's route (or of submit_api) in the
// current configuration, and X-API-Key; each is compared as a SHA-256 digest
// in constant time.
func mayRead(h *fasthttp.RequestHeader, g *Generation, res *backends.Result) bool {
	if res.Principal == "" {
		return true
	}
	want := []byte(res.Principal)
	match := 0
	check := func(cred []byte) {
		if len(cred) == 0 {
			return
		}
		d := sha256.Sum256(cred)
		var hx [2 * sha256.Size]byte
		hex.Encode(hx[:], d[:])
		match |= subtle.ConstantTimeCompare(hx[:], want)
	}
	if cred, ok := httpheader.Bearer(h.Peek("Authorization")); ok {
		check(cred)
	}
	check(h.Peek("X-API-Key"))
	if name := apiKeyHeader(g, res.Route); name != "" && name != "X-API-Key" {
		check(h.Peek(name))
	}
	return match == 1
}

// apiKeyHeader names the api_key header of the route (or of submit_api when
// route is the submit API's) in g, or "".
func apiKeyHeader(g *Generation, route string) string {
	var ca *config.ClientAuth
	if route == "" || route == routeSubmitAPI {
		if g.Config.SubmitAPI != nil {
			ca = g.Config.SubmitAPI.ClientAuth
		}
	} else {
		for _, r := range g.Table.all {
			if r.Name == route {
				ca = r.Config.ClientAuth
				break
			}
		}
	}
	if ca == nil || ca.Type != config.AuthAPIKey {
		return ""
	}
	if ca.Header == "" {
		return "X-API-Key"
	}
	return ca.Header
}

// jobStatus is the JSON of GET /-/requests/{id}. Times are RFC 3339 in UTC,
// omitted while zero.
type jobStatus struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Route       string `json:"route,omitempty"`
	Attempts    int    `json:"attempts"`
	SubmittedAt string `json:"submitted_at,omitempty"`
	StartedAt   string `json:"started_at,omitempty"`
	UpdatedAt   string `json:"updated_at,omitempty"`
	CompletedAt string `json:"completed_at,omitempty"`
	Error       string `json:"error,omitempty"`
	ResponseURL string `json:"response_url"`
}

func statusOf(r *backends.Result) jobStatus {
	route := r.Route
	if route == "" {
		route = routeSubmitAPI
	}
	return jobStatus{
		ID: r.ID, Status: string(r.Status), Route: route, Attempts: r.Attempts,
		SubmittedAt: rfc3339(r.SubmittedAt), StartedAt: rfc3339(r.StartedAt),
		UpdatedAt: rfc3339(r.UpdatedAt), CompletedAt: rfc3339(r.CompletedAt),
		Error: r.Error, ResponseURL: jobsPrefix + r.ID + "/response",
	}
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// writeOutcome answers with the app's stored answer: its status, headers
// (hop-by-hop ones and Content-Length dropped; fasthttp frames the body) and
// body, plus OpenHQM-Status naming the job's state.
func writeOutcome(ctx *fasthttp.RequestCtx, r *backends.Result) {
	ctx.Response.Reset()
	// Reset turns fasthttp's default Content-Type back on; an answer without
	// one must stay without one.
	ctx.Response.Header.SetNoDefaultContentType(true)
	code := r.StatusCode
	if code <= 0 {
		code = fasthttp.StatusOK
	}
	ctx.SetStatusCode(code)
	for _, h := range r.Headers {
		if httpheader.IsHopByHop(h.Name) || strings.EqualFold(h.Name, "Content-Length") {
			continue
		}
		ctx.Response.Header.Add(h.Name, h.Value)
	}
	ctx.Response.Header.Set("OpenHQM-Status", string(r.Status))
	ctx.Response.SetBody(r.Body)
}

// queryWait parses ?wait= as a Go duration ("30s") or whole seconds ("30"),
// capped at max.
func queryWait(v []byte, max time.Duration) (time.Duration, bool) {
	if len(v) == 0 || max <= 0 {
		return 0, false
	}
	d, err := time.ParseDuration(string(v))
	if err != nil {
		n, err := strconv.ParseUint(string(v), 10, 32)
		if err != nil {
			return 0, false
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, max), true
}

// cancelJob serves DELETE /-/requests/{id}: the submitting principal (as
// for reading it) cancels a job that has not started. 200 with the status
// JSON, now "cancelled"; 409 with the current status once a worker took
// it or it has an outcome; 404 unknown or hidden.
func (s *Server) cancelJob(ctx *fasthttp.RequestCtx, g *Generation, id string) {
	fail := func(code int, msg string) { writeJSON(ctx, code, map[string]string{"error": msg}) }
	if _, ok := s.readJob(ctx, g, id, fail); !ok {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), g.async.timeout)
	res, err := g.async.jobsAPI.Cancel(c, id)
	cancel()
	switch {
	case err == nil:
		writeJSON(ctx, fasthttp.StatusOK, statusOf(res))
	case errors.Is(err, backends.ErrStarted), errors.Is(err, backends.ErrFinished):
		msg := "the job has already started; only a job that has not started can be cancelled"
		if errors.Is(err, backends.ErrFinished) {
			msg = "the job has already finished"
		}
		body := map[string]any{"error": msg}
		if cur, ok := s.readJob(ctx, g, id, fail); ok {
			body["status"] = statusOf(cur)
		} else {
			return
		}
		writeJSON(ctx, fasthttp.StatusConflict, body)
	case errors.Is(err, backends.ErrNotFound), errors.Is(err, backends.ErrExpired):
		fail(fasthttp.StatusNotFound, "no such request")
	default:
		g.async.metrics.logLimited(s, "cannot cancel a job", "request_id", id, "err", err)
		ctx.Response.Header.Set("Retry-After", "1")
		fail(fasthttp.StatusServiceUnavailable, "the queue or the result store is unavailable; retry later")
	}
}
