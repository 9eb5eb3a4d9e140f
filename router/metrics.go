package router

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Route label values for requests no configured route handled.
const (
	routeUnmatched = "(none)"
	routeAdmin     = "(admin)"
)

// metrics holds the router's collectors. Their children are resolved once per
// route name and kept across generations, so the request path only touches
// pre-resolved children.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	spilled     *prometheus.CounterVec
	jqFailures  *prometheus.CounterVec

	mu     sync.Mutex
	routes map[string]*routeMetrics
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "openhqm_http_request_duration_seconds",
			Help:    "Time from reading a request to writing its answer, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_rate_limited_total",
			Help: "Requests refused with 429 by a route's rate_limit.",
		}, []string{"route"}),
		spilled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_http_spilled_total",
			Help: "Sync requests accepted as jobs (202) because their endpoint was saturated or its circuit breaker open (on_overload = \"queue\").",
		}, []string{"route"}),
		jqFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_jq_failures_total",
			Help: "jq evaluations that failed, by route, stage (match or transform) and reason (error, timeout, memory, work, panic).",
		}, []string{"route", "stage", "reason"}),
		routes: map[string]*routeMetrics{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.rateLimited, m.spilled, m.jqFailures} {
			if err := reg.Register(c); err != nil {
				panic(err) // two routers on one registry is a wiring bug
			}
		}
	}
	return m
}

// forRoute returns the children of a route name, creating them once.
func (m *metrics) forRoute(name string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm := m.routes[name]
	if rm == nil {
		rm = &routeMetrics{
			name:        name,
			requests:    m.requests,
			duration:    m.duration.WithLabelValues(name),
			rateLimited: m.rateLimited.WithLabelValues(name),
			spilled:     m.spilled.WithLabelValues(name),
			jqFailures:  m.jqFailures,
		}
		m.routes[name] = rm
	}
	return rm
}

// routeMetrics are the pre-resolved children of one route. Status code
// counters are resolved on first use of each code and cached.
type routeMetrics struct {
	name        string
	requests    *prometheus.CounterVec
	duration    prometheus.Observer
	rateLimited prometheus.Counter
	spilled     prometheus.Counter
	jqFailures  *prometheus.CounterVec
	codes       [600]atomic.Pointer[counterRef]
}

type counterRef struct{ c prometheus.Counter }

func (rm *routeMetrics) observe(code int, start time.Time) {
	rm.duration.Observe(time.Since(start).Seconds())
	if code < 0 || code >= len(rm.codes) {
		code = 0
	}
	ref := rm.codes[code].Load()
	if ref == nil {
		ref = &counterRef{rm.requests.WithLabelValues(rm.name, strconv.Itoa(code))}
		rm.codes[code].Store(ref)
	}
	ref.c.Inc()
}

// jqFailed counts a failed jq evaluation; rare enough to resolve the child
// each time.
func (rm *routeMetrics) jqFailed(stage, reason string) {
	rm.jqFailures.WithLabelValues(rm.name, stage, reason).Inc()
}
