package router

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/httpheader"
	"github.com/openhqm/openhqm/internal/upstream"
	"github.com/valyala/fasthttp"
)

// forward proxies the request in place: ctx.Request becomes the outbound
// request and the app's answer is read straight into ctx.Response. The
// endpoint's slot is taken first, so that a request refused for load is
// still untouched: with on_overload = "queue" it becomes a job instead.
//
// The route's timeout bounds the wait for the answer's head. A body over
// upstream.StreamThreshold (or of unknown length) is not read here: it
// streams to the client after the handler returns, each piece bounded by
// the route's timeout on the app's side and by the write timeout on the
// client's, and the endpoint's slot is held until it is written. start is
// when the request began to be routed: the timeout counts from there.
func (s *Server) forward(ctx *fasthttp.RequestCtx, g *Generation, r *Route, ex *exchange, start time.Time) {
	st := r.state
	req := &ctx.Request
	deadline := start.Add(st.timeout) // start: when routing began; one clock read less

	slot, err := st.client.Acquire(deadline)
	if err != nil {
		if r.Config.OnOverload == config.OverloadQueue && overloaded(err) && g.async.routes[r.Name] != nil {
			st.metrics.spilled.Inc()
			s.serveAsync(ctx, g, r, ex)
			return
		}
		s.upstreamError(ctx, r, ex, err)
		return
	}
	clientClose := req.Header.ConnectionClose()
	clientHTTP11 := req.Header.IsHTTP11()

	httpheader.StripRequest(&req.Header)
	if st.auth != nil {
		// The client's credential is openhqm's, not the app's.
		req.Header.Del(st.auth.header)
	}
	ex.buf = httpheader.SetForwarded(&req.Header, ctx.RemoteIP(), ctx.Host(), ctx.IsTLS(), ex.buf)
	// The app sees one X-Request-Id, ours. SetCanonical replaces the
	// first copy; a Del (a scan with a copy of the name) only when the
	// client sent more.
	if fieldCount(&req.Header, requestIDKey) > 1 {
		req.Header.Del(headerRequestID)
	}
	req.Header.SetCanonical(requestIDKey, ex.id)

	err = slot.Send(req, &ctx.Response, deadline, upstream.Stream{
		ReadIdle: st.timeout, Client: ctx.Conn(), WriteIdle: g.writeIdle,
		NoChunks: !clientHTTP11,
	})
	if err != nil {
		s.upstreamError(ctx, r, ex, err)
	} else {
		httpheader.StripResponse(&ctx.Response.Header)
		ctx.Response.Header.SetCanonical(requestIDKey, ex.id)
	}
	if clientClose {
		ctx.SetConnectionClose()
	}
}

var requestIDKey = []byte(headerRequestID)

// fieldCount is the number of fields named name (canonical form) in h.
func fieldCount(h *fasthttp.RequestHeader, name []byte) int {
	n := 0
	for k := range h.All() {
		if bytes.EqualFold(k, name) {
			n++
		}
	}
	return n
}

// overloaded reports whether the endpoint refused a request for load: its
// slots and max_pending were full, or its circuit breaker is open.
func overloaded(err error) bool {
	return errors.Is(err, upstream.ErrOverloaded) || errors.Is(err, upstream.ErrOpen)
}

func (s *Server) upstreamError(ctx *fasthttp.RequestCtx, r *Route, ex *exchange, err error) {
	code, msg := fasthttp.StatusBadGateway, "the application could not be reached"
	retryAfter := 1
	var open *upstream.OpenError
	switch {
	case errors.As(err, &open):
		code, msg = fasthttp.StatusServiceUnavailable, "the application is unavailable; openhqm stopped sending it requests for a moment"
		retryAfter = max(1, int((open.RetryAfter+time.Second-1)/time.Second))
	case errors.Is(err, upstream.ErrTimeout):
		code, msg = fasthttp.StatusGatewayTimeout, "the application did not answer in time"
	case errors.Is(err, upstream.ErrOverloaded):
		code, msg = fasthttp.StatusServiceUnavailable, "the application is at its concurrency limit"
	case errors.Is(err, upstream.ErrTooLarge):
		msg = "the application's answer is too large to send without chunked encoding (HTTP/1.0)"
	case errors.Is(err, upstream.ErrReset):
		msg = "the application closed the connection without a valid answer"
	}
	writeError(ctx, code, msg, ex.id)
	if code == fasthttp.StatusServiceUnavailable {
		ex.buf = strconv.AppendInt(ex.buf[:0], int64(retryAfter), 10)
		ctx.Response.Header.SetBytesV("Retry-After", ex.buf)
	}
	if !overloaded(err) { // counted in metrics; a log line each would flood
		s.log.Warn("upstream request failed", "request_id", string(ex.id), "route", r.Name,
			"endpoint", r.state.endpoint, "status", code, "err", err)
	}
}
