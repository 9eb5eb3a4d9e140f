package router

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/internal/httpheader"
	"github.com/valyala/fasthttp"
)

const (
	jobsPrefix        = "/-/requests/"
	maxIdempotencyKey = 255
)

// newJobID returns 128 bits from crypto/rand as 32 lowercase hex digits: a
// job id is a capability (with anonymous routes, knowing it is enough to
// read the result), so it must not be guessable.
func newJobID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return short)
	return hex.EncodeToString(b[:])
}

// validJobID reports whether id has the shape newJobID produces.
func validJobID(id []byte) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// serveAsync accepts the request as a job and answers 202 (or the job's
// outcome, when the client asked to wait and it finished in time).
func (s *Server) serveAsync(ctx *fasthttp.RequestCtx, g *Generation, r *Route, ex *exchange) {
	ar := g.async.routes[r.Name]
	if ar == nil {
		writeError(ctx, fasthttp.StatusInternalServerError, "the route has no queue", ex.id)
		return
	}
	principal := ""
	if len(ar.principals) > 0 && ex.principal >= 0 && ex.principal < len(ar.principals) {
		principal = ar.principals[ex.principal]
	}
	var authHeader string
	if r.state != nil && r.state.auth != nil {
		authHeader = r.state.auth.header
	}
	h := &ctx.Request.Header
	wait, waitOK := preferWait(h.Peek("Prefer"), g.async.maxWait)
	job := newRequestJob(ctx, ar, ex, authHeader)
	job.Principal = principal
	id, rej := s.submit(ctx, g, ar, job, ex)
	if rej != nil {
		if rej.id != "" {
			writeJSON(ctx, rej.code, map[string]string{"error": rej.msg, "id": rej.id, "status_url": jobsPrefix + rej.id, "request_id": string(ex.id)})
			ctx.Response.Header.SetBytesV(headerRequestID, ex.id)
		} else {
			writeError(ctx, rej.code, rej.msg, ex.id)
		}
		if rej.retryAfter != "" {
			ctx.Response.Header.Set("Retry-After", rej.retryAfter)
		}
		return
	}
	s.answerAccepted(ctx, g, id, wait, waitOK, ex)
}

// rejection is why a submit was refused, for the caller to answer in its
// own shape.
type rejection struct {
	code       int
	msg        string
	retryAfter string
	// id, when set, is the job a backend that did not answer may still
	// have stored: the outcome is unknown, and the answer names the id.
	id string
}

var (
	rejectKeyTooLong = &rejection{code: fasthttp.StatusBadRequest, msg: "Idempotency-Key is longer than 255 characters"}
	rejectKeyReused  = &rejection{code: fasthttp.StatusUnprocessableEntity, msg: "Idempotency-Key was already used with a different request"}
	rejectFull       = &rejection{code: fasthttp.StatusServiceUnavailable, msg: "the queue is full; retry later", retryAfter: "5"}
	rejectStore      = &rejection{code: fasthttp.StatusServiceUnavailable, msg: "the job could not be stored; retry later", retryAfter: "1"}
)

// submit stores job, built by an async route or the submit API, and returns
// the id the client gets: job.ID, or the id of the job an Idempotency-Key
// already names. Only a stored job gets an id: the pending record is written
// with the job (one round trip when the queue can), or first and deleted when
// the enqueue fails, or, with an Idempotency-Key, after the job, so that a
// record under a bound key always means a stored job.
func (s *Server) submit(ctx *fasthttp.RequestCtx, g *Generation, ar *asyncRoute, job *backends.Job, ex *exchange) (string, *rejection) {
	key := ctx.Request.Header.Peek("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return "", rejectKeyTooLong
	}
	c, cancel := context.WithTimeout(context.Background(), g.async.timeout)
	defer cancel()
	res := g.async.results
	switch re, ok := ar.queue.(ResultEnqueuer); {
	case len(key) > 0:
		existing, rej := s.reserve(c, g, ar, job, key, ex)
		if rej != nil || existing != "" {
			return existing, rej
		}
		if err := ar.queue.Enqueue(c, job); err != nil {
			return "", s.reject(g, ar, ex, err, "enqueue", job.ID, true)
		}
		if err := res.Create(c, pendingResult(job)); err != nil && !errors.Is(err, backends.ErrFinished) {
			// The job is stored, but its status would read 404 until a
			// worker takes it: answer 503; a retry with the same key
			// takes the id over (a duplicate the worker settles).
			return "", s.reject(g, ar, ex, err, "create result", job.ID, true)
		}
	case ok:
		if err := re.EnqueueWithResult(c, job, pendingResult(job)); err != nil {
			return "", s.reject(g, ar, ex, err, "enqueue with result", job.ID, false)
		}
	default:
		if err := res.Create(c, pendingResult(job)); err != nil {
			return "", s.reject(g, ar, ex, err, "create result", "", false)
		}
		if err := ar.queue.Enqueue(c, job); err != nil {
			if !maybeStored(err) {
				s.forget(g, job.ID)
			} // else the job may be stored: its record stays, for the client to poll
			return "", s.reject(g, ar, ex, err, "enqueue", job.ID, false)
		}
	}
	ar.accepted.Inc()
	return job.ID, nil
}

// reserve binds the client's Idempotency-Key to the job. It answers
// existing != "" when the key already names a stored job (the client then
// gets that job). Otherwise the caller enqueues the job and then creates its
// record, so that a record exists only for a stored job. When the key names
// a job without a record (its first submit failed, or is still enqueueing),
// the job takes over that id: at worst the job is stored twice, and the
// worker settles the duplicate (the first outcome stored stands).
func (s *Server) reserve(c context.Context, g *Generation, ar *asyncRoute, job *backends.Job, key []byte, ex *exchange) (existing string, rej *rejection) {
	res := g.async.results
	digest := requestDigest(job)
	scoped := scopeKey(ar.name, job.Principal, key)
	boundID, boundDigest, err := res.Reserve(c, scoped, job.ID, digest, g.async.idemTTL)
	if err != nil {
		// The key may now name job.ID: a retry with it stays on that id.
		return "", s.reject(g, ar, ex, err, "reserve idempotency key", job.ID, true)
	}
	if boundID == job.ID {
		return "", nil
	}
	if boundDigest != digest {
		ar.rejected[reasonConflict].Inc()
		return "", rejectKeyReused
	}
	_, err = res.Get(c, boundID)
	switch {
	case err == nil, errors.Is(err, backends.ErrExpired):
		return boundID, nil
	case errors.Is(err, backends.ErrNotFound):
		job.ID = boundID
		return "", nil
	default:
		return "", s.reject(g, ar, ex, err, "read result", "", true)
	}
}

// forget deletes the pending record of a job that was not enqueued, on a
// context of its own (the submit's may have expired).
func (s *Server) forget(g *Generation, id string) {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.async.results.Delete(c, id); err != nil {
		g.async.metrics.logLimited(s, "cannot delete the record of a job that was not enqueued", "request_id", id, "err", err)
	}
}

// reject counts a failed submit and says how to answer it: the queue is
// full, or a backend failed (then the error is logged, at most once a
// second). id is the job the failed operation wrote, if any: when the
// backend did not answer (a timeout, a connection cut mid-command) the write
// may still land and the job run, so the answer says the outcome is unknown
// and names it. keyed says whether the client sent an Idempotency-Key, with
// which a retry is safe.
func (s *Server) reject(g *Generation, ar *asyncRoute, ex *exchange, err error, op, id string, keyed bool) *rejection {
	if errors.Is(err, backends.ErrFull) {
		ar.rejected[reasonFull].Inc()
		return rejectFull
	}
	if tl := (*backends.TooLargeError)(nil); errors.As(err, &tl) {
		ar.rejected[reasonTooLarge].Inc()
		return &rejection{code: fasthttp.StatusRequestEntityTooLarge, msg: "the request is " + tl.Error() + "; send a smaller body"}
	}
	ar.rejected[reasonUnavailable].Inc()
	g.async.metrics.logLimited(s, "cannot accept a job", "route", ar.name, "queue", ar.queueName,
		"request_id", string(ex.id), "op", op, "err", err)
	if id != "" && maybeStored(err) {
		return unknownOutcome(id, keyed)
	}
	return rejectStore
}

// unknownOutcome is the 503 of a submit whose job may or may not have been
// stored: it names the id, and says how to find out or retry safely.
func unknownOutcome(id string, keyed bool) *rejection {
	msg := "the outcome is unknown: the queue or result store did not answer in time, and job " + id +
		" may still be stored and run; poll " + jobsPrefix + id + ", or retry with the same Idempotency-Key, which can never create a second job"
	if !keyed {
		msg = "the outcome is unknown: the queue or result store did not answer in time, and job " + id +
			" may still be stored and run; poll " + jobsPrefix + id + " before retrying (send an Idempotency-Key so that a retry can never create a second job)"
	}
	return &rejection{code: fasthttp.StatusServiceUnavailable, msg: msg, retryAfter: "1", id: id}
}

// maybeStored reports whether a failed backend call may still have taken
// effect: it was sent, or may have been, and no answer came (a deadline, a
// read timeout, a connection reset or closed mid-command). A refused
// connection or an error reply means it did not.
func maybeStored(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// logLimited logs a backend failure at most once a second (a Redis outage
// fails every submit).
func (m *asyncMetrics) logLimited(s *Server, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := m.lastLog.Load()
	if now-last < int64(time.Second) || !m.lastLog.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn(msg, args...)
}

// answerAccepted answers 202 for job id, or with the job's outcome when the
// client asked to wait and it finished in time.
func (s *Server) answerAccepted(ctx *fasthttp.RequestCtx, g *Generation, id string, wait time.Duration, waitOK bool, ex *exchange) {
	if waitOK {
		if res, err := s.waitFinished(ctx, g, id, wait); err == nil && res != nil {
			writeOutcome(ctx, res)
			ctx.Response.Header.Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
			ctx.Response.Header.SetBytesV(headerRequestID, ex.id)
			return
		}
	}
	ctx.Response.Reset()
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Location", jobsPrefix+id)
	ctx.Response.Header.Set("Retry-After", "1")
	ctx.Response.Header.SetBytesV(headerRequestID, ex.id)
	b := ex.buf[:0]
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","status":"pending","status_url":"`+jobsPrefix...)
	b = append(b, id...)
	b = append(b, "\"}\n"...)
	ctx.SetBody(b)
	ex.buf = b
}

// waitFinished polls the result store until job id is completed or failed,
// up to d (5 ms first, backing off to 100 ms). It answers nil when the job
// is still running at the end, and the store's error when reading failed.
func (s *Server) waitFinished(ctx *fasthttp.RequestCtx, g *Generation, id string, d time.Duration) (*backends.Result, error) {
	deadline := time.Now().Add(d)
	delay := 5 * time.Millisecond
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c, cancel := context.WithTimeout(context.Background(), g.async.timeout)
		res, err := g.async.results.Get(c, id)
		cancel()
		if err != nil {
			return nil, err
		}
		if res.Status.Final() {
			return res, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return res, errStillRunning
		}
		step := min(delay, left)
		delay = min(2*delay, 100*time.Millisecond)
		if timer == nil {
			timer = time.NewTimer(step)
		} else {
			timer.Reset(step)
		}
		select {
		case <-timer.C:
		case <-ctx.Done(): // server shutdown
			return res, errStillRunning
		}
	}
}

var errStillRunning = errors.New("job still running")

// preferWait parses the wait preference of RFC 7240 (seconds) from a Prefer
// header and caps it at max.
func preferWait(v []byte, max time.Duration) (time.Duration, bool) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexAny(v, ",;"); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) < 5 || !bytes.EqualFold(tok[:5], []byte("wait=")) {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.Trim(tok[5:], `"`)), 10, 32)
		if err != nil {
			return 0, false
		}
		d := time.Duration(n) * time.Second
		return min(d, max), d > 0 && max > 0
	}
	return 0, false
}

// newRequestJob copies the request out of fasthttp memory into a job.
// Dropped headers: hop-by-hop ones (and those named in Connection), Host,
// Content-Length, the client's credential (authHeader), and Prefer and
// Idempotency-Key, which were addressed to openhqm. X-Forwarded-* and
// X-Request-Id are set as the sync path sets them.
func newRequestJob(ctx *fasthttp.RequestCtx, ar *asyncRoute, ex *exchange, authHeader string) *backends.Job {
	req := &ctx.Request
	job := &backends.Job{
		ID:        newJobID(),
		Route:     ar.name,
		Endpoint:  ar.endpoint,
		Queue:     ar.queueName,
		Method:    string(req.Header.Method()),
		Path:      string(req.URI().PathOriginal()),
		Query:     string(req.URI().QueryString()),
		Body:      append([]byte(nil), req.Body()...),
		Key:       ar.name,
		CreatedAt: time.Now().UTC(),
	}
	if ar.keyHeader != "" {
		if k := req.Header.Peek(ar.keyHeader); len(k) > 0 {
			job.Key = string(k)
		}
	}
	var xff []byte
	job.Headers = make([]backends.Header, 0, 16)
	conn := httpheader.AcquireConnection()
	defer httpheader.ReleaseConnection(conn)
	for k, v := range req.Header.All() {
		if bytes.EqualFold(k, []byte("Connection")) {
			conn.Add(v)
		}
	}
	for k, v := range req.Header.All() {
		switch {
		case conn.Drops(k), httpheader.Framing(k), httpheader.IsForwarded(k),
			bytes.EqualFold(k, []byte("Prefer")), bytes.EqualFold(k, []byte("Idempotency-Key")),
			bytes.EqualFold(k, []byte(headerRequestID)),
			authHeader != "" && bytes.EqualFold(k, []byte(authHeader)):
		case bytes.EqualFold(k, []byte(httpheader.ForwardedFor)):
			if len(xff) > 0 {
				xff = append(xff, ", "...)
			}
			xff = append(xff, v...)
		default:
			job.Headers = append(job.Headers, backends.Header{Name: string(k), Value: string(v)})
		}
	}
	job.Headers = append(job.Headers,
		backends.Header{Name: httpheader.ForwardedFor, Value: string(httpheader.AppendForwardedFor(nil, xff, ctx.RemoteIP()))},
		backends.Header{Name: httpheader.ForwardedHost, Value: string(ctx.Host())},
		backends.Header{Name: httpheader.ForwardedProto, Value: httpheader.Proto(ctx.IsTLS())},
		backends.Header{Name: "X-Request-Id", Value: string(ex.id)},
	)
	return job
}

func pendingResult(job *backends.Job) *backends.Result {
	return &backends.Result{
		ID: job.ID, Route: job.Route, Principal: job.Principal, Status: backends.StatusPending,
		SubmittedAt: job.CreatedAt, UpdatedAt: job.CreatedAt,
	}
}

// requestDigest identifies a request's content for Idempotency-Key reuse.
func requestDigest(job *backends.Job) string {
	h := sha256.New()
	for _, p := range []string{job.Method, job.Path, job.Query} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	h.Write(job.Body)
	return hex.EncodeToString(h.Sum(nil))
}

// scopeKey scopes a client's Idempotency-Key to the route and the principal,
// so two clients (or two routes) never share a key.
func scopeKey(route, principal string, key []byte) string {
	h := sha256.New()
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write([]byte(principal))
	h.Write([]byte{0})
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))
}
