package upstream

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// Client sends requests to one endpoint. It is immutable once built and safe
// for concurrent use. Clients of successive configuration generations share
// the keep-alive connections (and the concurrency limiter) of an endpoint
// whose URL (and limits) did not change.
type Client struct {
	name     string
	ep       *config.Endpoint // the configuration this client was built from
	hc       *fasthttp.HostClient
	lim      *limiter // nil: unlimited
	scheme   string
	host     []byte
	basePath []byte   // without trailing slash; empty when the URL has none
	urlPath  []byte   // the URL's path as written; "/" when it has none
	inject   []header // static headers, then the auth header (last, so it wins)

	inFlight   prometheus.Gauge
	rejections prometheus.Counter
}

type header struct{ name, value []byte }

// Name returns the endpoint's name.
func (c *Client) Name() string { return c.name }

// Endpoint returns the configuration the client was built from. It must not
// be modified.
func (c *Client) Endpoint() *config.Endpoint { return c.ep }

// Do sends req to the endpoint and reads the answer into resp, waiting at
// most until deadline (including the wait for a concurrency slot).
//
// req's RequestURI (or parsed URI) is the origin-form path?query as the
// client sent it; Do sets the scheme and host, prefixes the endpoint URL's
// base path, sets Host, and injects the endpoint's static headers and
// credentials, replacing any header of the same name the client sent (so a
// client's Authorization is not forwarded when the endpoint injects its own).
// Do does not strip hop-by-hop headers nor set X-Forwarded-*: the caller
// does. The caller owns req and resp; Do modifies req. Errors wrap ErrConnect,
// ErrTimeout, ErrReset or ErrOverloaded; their text may name internal
// addresses and must not reach clients. Do allocates nothing in steady state
// on success.
func (c *Client) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	return c.do(req, resp, deadline, false)
}

// DoBase is Do for a request addressed to the endpoint's URL itself (its
// path exactly, "/" when it has none) instead of a path under it: the
// original OpenHQM's submit API sent every job there. req's path is
// replaced; its query is kept.
func (c *Client) DoBase(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	return c.do(req, resp, deadline, true)
}

func (c *Client) do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, base bool) error {
	if c.lim != nil {
		if err := c.lim.acquire(deadline); err != nil {
			if err == ErrOverloaded {
				c.rejections.Inc()
			}
			return err
		}
		defer c.lim.release()
	}
	c.inFlight.Inc()
	defer c.inFlight.Dec()

	c.prepare(req, base)
	if err := c.hc.DoDeadline(req, resp, deadline); err != nil {
		return classify(err)
	}
	return nil
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
