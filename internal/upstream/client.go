package upstream

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/config"
)

// Client sends requests to one endpoint. It is immutable once built and safe
// for concurrent use. Clients of successive configuration generations share
// the keep-alive connections, the concurrency limiter, the circuit breaker
// and the pause the app asked for of an endpoint whose URL (and limits, and
// breaker settings) did not change.
type Client struct {
	name     string
	ep       *config.Endpoint // the configuration this client was built from
	hc       *fasthttp.HostClient
	lim      *limiter // nil: unlimited
	br       *breaker // nil: no circuit breaker
	pause    *pause
	scheme   string
	host     []byte
	basePath []byte   // without trailing slash; empty when the URL has none
	urlPath  []byte   // the URL's path as written; "/" when it has none
	probe    []byte   // the breaker's probe path; empty: a real request probes
	inject   []header // static headers, then the auth header (last, so it wins)

	m *clientMetrics
}

type header struct{ name, value []byte }

// Name returns the endpoint's name.
func (c *Client) Name() string { return c.name }

// Endpoint returns the configuration the client was built from. It must not
// be modified.
func (c *Client) Endpoint() *config.Endpoint { return c.ep }

// Do sends a sync request to the endpoint and reads the answer into resp,
// waiting at most until deadline (including the wait for a concurrency slot,
// where it goes before waiting jobs). An answer larger than StreamThreshold
// streams: see Slot.Send.
//
// req's RequestURI (or parsed URI) is the origin-form path?query as the
// client sent it; Do sets the scheme and host, prefixes the endpoint URL's
// base path, sets Host, and injects the endpoint's static headers and
// credentials, replacing any header of the same name the client sent (so a
// client's Authorization is not forwarded when the endpoint injects its own).
// Do does not strip hop-by-hop headers nor set X-Forwarded-*: the caller
// does. The caller owns req and resp; Do modifies req. Errors wrap
// ErrConnect, ErrTimeout, ErrReset, ErrOverloaded or ErrOpen; their text may
// name internal addresses and must not reach clients. Do allocates nothing in
// steady state on success when the answer does not stream.
func (c *Client) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	slot, err := c.Acquire(deadline)
	if err != nil {
		return err
	}
	return slot.Send(req, resp, deadline, Stream{})
}

// Slot is the right to send one sync request: a concurrency slot, and the
// breaker's leave. Send it or Release it, once.
type Slot struct {
	c     *Client
	probe bool
}

// Acquire takes a slot for a sync request before the caller commits to
// sending it, so that a request refused for load (ErrOverloaded: slots and
// max_pending full; ErrOpen: the breaker is open) is still untouched and can
// be answered otherwise, as a job. It waits for a slot until deadline.
func (c *Client) Acquire(deadline time.Time) (Slot, error) {
	probe := false
	if c.br != nil {
		var retry time.Duration
		var ok bool
		if probe, retry, ok = c.br.allow(); !ok {
			return Slot{}, openError(retry)
		}
		if probe && len(c.probe) > 0 {
			if !c.runProbe(deadline) {
				return Slot{}, openError(c.br.openFor)
			}
			probe = false
		}
	}
	if c.lim != nil {
		waited, err := c.lim.acquire(deadline, Interactive)
		if err != nil {
			if probe {
				c.br.abandon()
			}
			if err == ErrOverloaded {
				c.m.rejections.Inc()
			}
			return Slot{}, err
		}
		if waited > 0 {
			c.m.waitInteractive.Observe(waited.Seconds())
		}
	}
	return Slot{c: c, probe: probe}, nil
}

// Send sends req on the slot; see Do. The deadline bounds the answer's
// head; its body is then read whole when its Content-Length is at most
// StreamThreshold, and otherwise becomes resp's body stream, read from the
// app as the client takes it (st says how long each piece may take). The
// slot is released when Send returns, or, for an answer that streams, when
// resp's body stream is closed: fasthttp's server does that once the answer
// is written or the client went away, and resetting or releasing resp does
// it too. Until then the request counts against max_concurrency, because
// the app is still busy sending.
func (s Slot) Send(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, st Stream) error {
	return s.c.send(req, resp, &exchange{deadline: deadline, streams: true, stream: st}, s.probe, false)
}

// Release gives the slot back unused.
func (s Slot) Release() {
	if s.c == nil {
		return
	}
	if s.probe {
		s.c.br.abandon()
	}
	if s.c.lim != nil {
		s.c.lim.release()
	}
}

// Turn is a job's permission to be sent: the endpoint is not holding jobs
// back, or the job is the breaker's half-open probe. Send it or Release it,
// once.
type Turn struct {
	c     *Client
	probe bool
}

// Probe reports whether the job goes as the breaker's half-open probe: when
// it fails, it failed for the endpoint (still down) rather than for the job.
func (t Turn) Probe() bool { return t.probe }

// AwaitJob waits while the endpoint holds jobs back: while the pause the app
// asked for (Pause) lasts, and while the breaker is open (then the oldest
// waiting job probes, or the probe path does). Nothing is sent to the app
// meanwhile and a waiting job costs no CPU. It returns ctx's error when ctx
// ends first.
func (c *Client) AwaitJob(ctx context.Context) (Turn, error) {
	for {
		if err := c.pause.wait(ctx, c.m.waitingJobs); err != nil {
			return Turn{}, err
		}
		if c.br == nil {
			return Turn{c: c}, nil
		}
		c.m.waitingJobs.Inc()
		probe, err := c.br.wait(ctx)
		c.m.waitingJobs.Dec()
		if err != nil {
			return Turn{}, err
		}
		if probe && len(c.probe) > 0 {
			if !c.runProbe(time.Now().Add(c.ep.Timeout)) {
				continue // still down: wait again
			}
			probe = false
		}
		return Turn{c: c, probe: probe}, nil
	}
}

// Send sends the job's request on the turn: it takes a concurrency slot
// behind the waiting sync requests, then sends with the timeout. A slot
// that is not free within the timeout fails with ErrTimeout wrapping
// ErrSlotWait: the request was not sent. base sends
// to the endpoint's URL itself (the original OpenHQM's submit API did)
// instead of req's path under it. The answer is read whole; one over
// maxBody bytes (zero: the pool's MaxResponseBodySize) is not read and
// fails with a *TooLargeError (ErrTooLarge).
// Other errors are those of Do.
func (t Turn) Send(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, base bool, maxBody int) error {
	c := t.c
	deadline := time.Now().Add(timeout)
	if c.lim != nil {
		waited, err := c.lim.acquire(deadline, Background)
		if err != nil {
			t.Release()
			return err
		}
		if waited > 0 {
			c.m.waitBackground.Observe(waited.Seconds())
			// The app gets the whole timeout, however long the slot took.
			deadline = time.Now().Add(timeout)
		}
	}
	if maxBody <= 0 {
		maxBody = c.hc.MaxResponseBodySize
	}
	return c.send(req, resp, &exchange{deadline: deadline, limit: maxBody}, t.probe, base)
}

// Release gives back a turn that will not be sent.
func (t Turn) Release() {
	if t.probe {
		t.c.br.abandon()
	}
}

// Pause holds back this endpoint's jobs until until: the app asked for it
// (a 429 or 503 with Retry-After). Sync requests are not held back.
func (c *Client) Pause(until time.Time) { c.pause.until(until) }

// BreakerState is the state of the endpoint's circuit breaker (Closed when
// it has none).
func (c *Client) BreakerState() BreakerState {
	if c.br == nil {
		return Closed
	}
	return c.br.current()
}

func (c *Client) send(req *fasthttp.Request, resp *fasthttp.Response, x *exchange, probe, base bool) error {
	c.m.inFlight.Inc()
	c.prepare(req, base)
	var began time.Time
	if c.lim != nil && c.lim.adaptive != nil {
		began = time.Now()
	}
	streaming, err := c.do(req, resp, x)
	if err != nil {
		err = classify(err)
	}
	if !began.IsZero() {
		c.sample(time.Since(began), resp, err)
	}
	if c.br != nil {
		// An answer too large to store says nothing about the app's health.
		failed := (err != nil && !errors.Is(err, ErrTooLarge)) || (err == nil && resp.StatusCode() >= 500)
		c.br.done(probe, failed)
	}
	if !streaming {
		c.finish()
	}
	return err
}

// sample feeds the adaptive limit one answer's latency (to its head, for
// an answer that streams). A timeout, a 429 and a 503 are the app's signs
// of overload; a request that did not reach the app says nothing of its
// latency.
func (c *Client) sample(latency time.Duration, resp *fasthttp.Response, err error) {
	switch code := resp.StatusCode(); {
	case err == nil && (code == fasthttp.StatusTooManyRequests || code == fasthttp.StatusServiceUnavailable):
		c.lim.observe(latency, overloaded)
	case err == nil:
		c.lim.observe(latency, answered)
	case errors.Is(err, ErrTimeout):
		c.lim.observe(latency, timedOut)
	}
}

// finish gives back what a request held while it was in flight.
func (c *Client) finish() {
	c.m.inFlight.Dec()
	if c.lim != nil {
		c.lim.release()
	}
}

// runProbe sends the breaker's probe, a GET of the probe path, and reports
// the outcome to the breaker: true when the app answered below 500.
func (c *Client) runProbe(deadline time.Time) bool {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURIBytes(c.probe)
	resp.SkipBody = true
	probeDeadline := time.Now().Add(c.ep.Timeout)
	if c.ep.Timeout <= 0 || probeDeadline.After(deadline) {
		probeDeadline = deadline
	}
	c.prepare(req, false)
	err := c.hc.DoDeadline(req, resp, probeDeadline)
	ok := err == nil && resp.StatusCode() < 500
	c.br.done(true, !ok)
	return ok
}

func (c *Client) prepare(req *fasthttp.Request, base bool) {
	u := req.URI()
	u.DisablePathNormalizing = true // forward the path exactly as the client wrote it
	switch {
	case base:
		u.SetPathBytes(c.urlPath)
	case len(c.basePath) > 0:
		buf := bytebufferpool.Get()
		buf.B = append(buf.B, c.basePath...)
		buf.B = append(buf.B, u.PathOriginal()...)
		u.SetPathBytes(buf.B)
		bytebufferpool.Put(buf)
	}
	u.SetScheme(c.scheme)
	u.SetHostBytes(c.host)
	req.UseHostHeader = false
	req.Header.SetHostBytes(c.host)
	for i := range c.inject {
		// Del first: Set replaces only the first of repeated fields, and a
		// client's second Authorization must not reach the app.
		req.Header.DelBytes(c.inject[i].name)
		req.Header.SetBytesKV(c.inject[i].name, c.inject[i].value)
	}
}

// injectedHeaders returns the static headers followed by the credential
// header of ep. The credential comes last so that it wins over a static
// header of the same name.
func injectedHeaders(ep *config.Endpoint) []header {
	out := make([]header, 0, len(ep.Headers)+1)
	for _, h := range ep.Headers {
		out = append(out, header{[]byte(h.Name), []byte(h.Value)})
	}
	a := ep.Auth
	switch a.Type {
	case config.AuthBearer:
		out = append(out, header{[]byte("Authorization"), []byte("Bearer " + a.Token)})
	case config.AuthBasic:
		cred := base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
		out = append(out, header{[]byte("Authorization"), []byte("Basic " + cred)})
	case config.AuthAPIKey:
		name := a.Header
		if name == "" {
			name = "X-API-Key"
		}
		out = append(out, header{[]byte(name), []byte(a.Token)})
	case config.AuthHeader:
		if a.Header != "" {
			out = append(out, header{[]byte(a.Header), []byte(a.Token)})
		}
	}
	return out
}

func basePath(ep *config.Endpoint) []byte {
	p := strings.TrimRight(ep.URL.EscapedPath(), "/")
	if p == "" {
		return nil
	}
	return []byte(p)
}

func urlPath(ep *config.Endpoint) []byte {
	if p := ep.URL.EscapedPath(); p != "" {
		return []byte(p)
	}
	return []byte("/")
}
