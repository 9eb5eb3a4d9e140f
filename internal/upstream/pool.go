package upstream

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// DefaultMaxResponseBodySize bounds an app's answer when PoolOptions leaves
// MaxResponseBodySize at zero.
const DefaultMaxResponseBodySize = 64 << 20

// idleConnTimeout closes keep-alive connections unused this long. It stays
// below the idle timeouts common app servers use, so openhqm rarely sends a
// request on a connection the app is closing.
const idleConnTimeout = 15 * time.Second

// PoolOptions configures a Pool.
type PoolOptions struct {
	Logger *slog.Logger // nil: discard
	// MaxResponseBodySize bounds the body of an app's answer, in bytes;
	// default 64 MiB. A larger answer fails with ErrReset.
	MaxResponseBodySize int
	// Registry receives openhqm_upstream_in_flight{endpoint} and
	// openhqm_upstream_limiter_rejections_total{endpoint}; nil: not
	// exported. Pools sharing a registry share the series.
	Registry prometheus.Registerer
}

// Pool owns the clients of every endpoint across configuration generations.
// All methods are safe for concurrent use.
type Pool struct {
	log        *slog.Logger
	maxBody    int
	inFlight   *prometheus.GaugeVec
	rejections *prometheus.CounterVec

	mu      sync.Mutex
	clients map[string]*Client
	closed  bool
}

// NewPool returns an empty pool.
func NewPool(opts PoolOptions) *Pool {
	p := &Pool{
		log:     opts.Logger,
		maxBody: opts.MaxResponseBodySize,
		clients: map[string]*Client{},
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.maxBody <= 0 {
		p.maxBody = DefaultMaxResponseBodySize
	}
	p.inFlight = register(opts.Registry, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "openhqm_upstream_in_flight",
		Help: "Requests sent to the endpoint and not yet answered.",
	}, []string{"endpoint"}))
	p.rejections = register(opts.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openhqm_upstream_limiter_rejections_total",
		Help: "Requests refused because max_concurrency was reached and max_pending was full.",
	}, []string{"endpoint"}))
	return p
}

// register registers c, or returns the collector already registered under
// the same name, so that several pools may share one registry.
func register[C prometheus.Collector](r prometheus.Registerer, c C) C {
	if r == nil {
		return c
	}
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a conflicting metric definition is a programming error
	}
	return c
}

// Client returns the client of ep, reusing the existing client (and its
// keep-alive connections and limiter) when the endpoint's configuration is
// unchanged since the last call. When only credentials, headers or limits
// changed, the new client still shares the connections of the old one; when
// only credentials or headers changed, it also shares the limiter.
func (p *Pool) Client(ep *config.Endpoint) *Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.clients[ep.Name]
	if old != nil && sameEndpoint(old.ep, ep) {
		return old
	}
	c := &Client{
		name:       ep.Name,
		ep:         ep,
		scheme:     ep.URL.Scheme,
		host:       []byte(ep.URL.Host),
		basePath:   basePath(ep),
		urlPath:    urlPath(ep),
		inject:     injectedHeaders(ep),
		inFlight:   p.inFlight.WithLabelValues(ep.Name),
		rejections: p.rejections.WithLabelValues(ep.Name),
	}
	switch {
	case old != nil && sameTarget(old.ep, ep):
		c.hc = old.hc
		if sameLimits(old.ep, ep) {
			c.lim = old.lim
		} else {
			c.lim = newLimiter(ep.MaxConcurrency, ep.MaxPending)
		}
		p.log.Debug("endpoint settings changed; keeping its connections", "endpoint", ep.Name)
	default:
		c.hc = p.newHostClient(ep)
		c.lim = newLimiter(ep.MaxConcurrency, ep.MaxPending)
		if old != nil {
			old.hc.CloseIdleConnections()
			p.log.Debug("endpoint address changed; new connection pool", "endpoint", ep.Name)
		}
	}
	p.clients[ep.Name] = c
	return c
}

func (p *Pool) newHostClient(ep *config.Endpoint) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:  ep.URL.Host,
		IsTLS: ep.URL.Scheme == "https",
		Name:  "", // keep the client's User-Agent; add none
		// The limiter bounds concurrency; the connection cap only guards
		// against a runaway unlimited endpoint.
		MaxConns:                 65536,
		MaxIdleConnDuration:      idleConnTimeout,
		MaxResponseBodySize:      p.maxBody,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		// Header-name normalizing stays on: with it off, Del is case
		// sensitive and hop-by-hop headers in odd case would slip through.
	}
}

// Retain forgets clients of endpoints not in keep (keyed by endpoint name);
// their idle connections close now and their busy ones once the requests
// using them finish.
func (p *Pool) Retain(keep map[string]*config.Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, c := range p.clients {
		if _, ok := keep[name]; ok {
			continue
		}
		delete(p.clients, name)
		c.hc.CloseIdleConnections()
		p.inFlight.DeleteLabelValues(name)
		p.rejections.DeleteLabelValues(name)
	}
}

// Close closes the idle connections of every client and forgets them.
// Requests in flight finish; their connections close when released after
// the idle timeout.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, c := range p.clients {
		c.hc.CloseIdleConnections()
		delete(p.clients, name)
	}
	p.closed = true
}

func sameTarget(a, b *config.Endpoint) bool {
	return a.URL.Scheme == b.URL.Scheme && a.URL.Host == b.URL.Host
}

func sameLimits(a, b *config.Endpoint) bool {
	return a.MaxConcurrency == b.MaxConcurrency && a.MaxPending == b.MaxPending
}

func sameEndpoint(a, b *config.Endpoint) bool {
	return a == b || (sameTarget(a, b) && sameLimits(a, b) &&
		a.URL.String() == b.URL.String() &&
		a.Timeout == b.Timeout &&
		a.Auth == b.Auth &&
		slices.Equal(a.Headers, b.Headers))
}
