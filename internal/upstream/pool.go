package upstream

import (
	"context"
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
	// Dial opens connections to the apps; nil: TCP. Benchmarks use it to
	// measure the forward path without the kernel's share.
	Dial fasthttp.DialFunc
}

// Pool owns the clients of every endpoint across configuration generations.
// All methods are safe for concurrent use.
type Pool struct {
	log     *slog.Logger
	maxBody int
	dial    fasthttp.DialFunc
	m       *poolMetrics

	mu      sync.Mutex
	clients map[string]*Client
	closed  bool
}

// NewPool returns an empty pool.
func NewPool(opts PoolOptions) *Pool {
	p := &Pool{
		log:     opts.Logger,
		maxBody: opts.MaxResponseBodySize,
		dial:    opts.Dial,
		clients: map[string]*Client{},
		m:       newPoolMetrics(opts.Registry),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.maxBody <= 0 {
		p.maxBody = DefaultMaxResponseBodySize
	}
	return p
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
		name:     ep.Name,
		ep:       ep,
		scheme:   ep.URL.Scheme,
		host:     []byte(ep.URL.Host),
		basePath: basePath(ep),
		urlPath:  urlPath(ep),
		inject:   injectedHeaders(ep),
		pause:    &pause{},
		m:        p.m.forEndpoint(ep.Name),
	}
	if cb := ep.CircuitBreaker; cb != nil && cb.Probe != "" {
		c.probe = []byte(cb.Probe)
	}
	switch {
	case old != nil && sameTarget(old.ep, ep):
		c.hc, c.pause = old.hc, old.pause
		if sameLimits(old.ep, ep) {
			c.lim = old.lim
		} else {
			old.lim.retire()
			c.lim = newEndpointLimiter(ep, c.m)
		}
		if sameBreaker(old.ep, ep) {
			c.br = old.br
		} else {
			old.stopBreaker()
			c.br = p.newBreaker(ep, c.m)
		}
		p.log.Debug("endpoint settings changed; keeping its connections", "endpoint", ep.Name)
	default:
		c.hc = p.newHostClient(ep)
		c.lim = newEndpointLimiter(ep, c.m)
		c.br = p.newBreaker(ep, c.m)
		if old != nil {
			old.lim.retire()
			old.hc.CloseIdleConnections()
			old.stopBreaker()
			p.log.Debug("endpoint address changed; new connection pool", "endpoint", ep.Name)
		}
	}
	p.clients[ep.Name] = c
	return c
}

func (p *Pool) newHostClient(ep *config.Endpoint) *fasthttp.HostClient {
	hc := &fasthttp.HostClient{
		Addr:  ep.URL.Host,
		Dial:  p.dial,
		IsTLS: ep.URL.Scheme == "https",
		Name:  "", // keep the client's User-Agent; add none
		// The limiter bounds concurrency; the connection cap only guards
		// against a runaway unlimited endpoint.
		MaxConns:                 65536,
		MaxIdleConnDuration:      idleConnTimeout,
		MaxResponseBodySize:      p.maxBody,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		// An answer that streams is read through this buffer: 32 KiB
		// reads instead of fasthttp's 4 KiB take a third off the CPU of a
		// large chunked answer. A reader is held only while a request is
		// in flight.
		ReadBufferSize: 32 << 10,
		// Header-name normalizing stays on: with it off, Del is case
		// sensitive and hop-by-hop headers in odd case would slip through.
	}
	return hc
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
		c.stopBreaker()
		c.lim.retire()
		p.m.forget(name)
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
		c.stopBreaker()
		delete(p.clients, name)
	}
	p.closed = true
}

func sameTarget(a, b *config.Endpoint) bool {
	return a.URL.Scheme == b.URL.Scheme && a.URL.Host == b.URL.Host
}

func sameLimits(a, b *config.Endpoint) bool {
	x, y := a.Adaptive, b.Adaptive
	return a.MaxConcurrency == b.MaxConcurrency && a.MaxPending == b.MaxPending &&
		(x == y || (x != nil && y != nil && *x == *y))
}

// newEndpointLimiter is ep's limiter (nil without max_concurrency), which
// exports its limit.
func newEndpointLimiter(ep *config.Endpoint, m *clientMetrics) *limiter {
	if ep.MaxConcurrency <= 0 {
		m.limit.Set(0)
		return nil
	}
	var l *limiter
	if a := ep.Adaptive; a != nil {
		l = newAdaptiveLimiter(ep.MaxConcurrency, ep.MaxPending, a.Min, a.Tolerance, func(n int) { m.limit.Set(float64(n)) })
	} else {
		l = newLimiter(ep.MaxConcurrency, ep.MaxPending)
	}
	m.limit.Set(float64(l.max))
	return l
}

func sameBreaker(a, b *config.Endpoint) bool {
	x, y := a.CircuitBreaker, b.CircuitBreaker
	return x == y || (x != nil && y != nil && *x == *y)
}

func sameEndpoint(a, b *config.Endpoint) bool {
	return a == b || (sameTarget(a, b) && sameLimits(a, b) && sameBreaker(a, b) &&
		a.URL.String() == b.URL.String() &&
		a.Timeout == b.Timeout &&
		a.Auth == b.Auth &&
		slices.Equal(a.Headers, b.Headers))
}

// newBreaker is the circuit breaker of ep, which logs each transition once
// and exports its state.
func (p *Pool) newBreaker(ep *config.Endpoint, m *clientMetrics) *breaker {
	m.breaker.Set(0)
	cb := ep.CircuitBreaker
	if cb == nil {
		return nil
	}
	name := ep.Name
	return newBreaker(cb.Failures, cb.OpenFor, func(from, to BreakerState) {
		m.breaker.Set(float64(to))
		level := slog.LevelInfo
		if to == Open && from == Closed {
			level = slog.LevelWarn
		}
		p.log.Log(context.Background(), level, "circuit breaker "+to.String(), "endpoint", name, "from", from.String())
	})
}

func (c *Client) stopBreaker() {
	if c.br != nil {
		c.br.stop()
	}
}
