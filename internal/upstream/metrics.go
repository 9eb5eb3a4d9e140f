package upstream

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// poolMetrics are the collectors of every endpoint of a Pool.
type poolMetrics struct {
	inFlight   *prometheus.GaugeVec
	rejections *prometheus.CounterVec
	wait       *prometheus.HistogramVec
	waiting    *prometheus.GaugeVec
	breaker    *prometheus.GaugeVec
	limit      *prometheus.GaugeVec
}

func newPoolMetrics(r prometheus.Registerer) *poolMetrics {
	return &poolMetrics{
		inFlight: register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "openhqm_upstream_in_flight",
			Help: "Requests sent to the endpoint and not yet answered.",
		}, []string{"endpoint"})),
		rejections: register(r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_upstream_limiter_rejections_total",
			Help: "Requests refused because max_concurrency was reached and max_pending was full.",
		}, []string{"endpoint"})),
		wait: register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "openhqm_upstream_limiter_wait_seconds",
			Help:    "Time a request (priority interactive) or a job (background) waited for a concurrency slot, when it had to.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint", "priority"})),
		waiting: register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "openhqm_upstream_jobs_waiting",
			Help: "Jobs held back, unsent and uncharged, while the endpoint's circuit breaker is open or the app asked for a pause.",
		}, []string{"endpoint"})),
		breaker: register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "openhqm_upstream_breaker_state",
			Help: "Circuit breaker of the endpoint: 0 closed, 1 open, 2 half-open (a probe in flight).",
		}, []string{"endpoint"})),
		limit: register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "openhqm_upstream_concurrency_limit",
			Help: "Requests this process lets in flight to the endpoint at once: max_concurrency, or the adaptive limit under it; 0: unlimited.",
		}, []string{"endpoint"})),
	}
}

// forget drops the series of an endpoint that is no longer configured.
func (m *poolMetrics) forget(name string) {
	m.inFlight.DeleteLabelValues(name)
	m.rejections.DeleteLabelValues(name)
	m.wait.DeleteLabelValues(name, "interactive")
	m.wait.DeleteLabelValues(name, "background")
	m.waiting.DeleteLabelValues(name)
	m.breaker.DeleteLabelValues(name)
	m.limit.DeleteLabelValues(name)
}

// clientMetrics are one endpoint's children, resolved once.
type clientMetrics struct {
	inFlight        prometheus.Gauge
	rejections      prometheus.Counter
	waitInteractive prometheus.Observer
	waitBackground  prometheus.Observer
	waitingJobs     prometheus.Gauge
	breaker         prometheus.Gauge
	limit           prometheus.Gauge
}

func (m *poolMetrics) forEndpoint(name string) *clientMetrics {
	return &clientMetrics{
		inFlight:        m.inFlight.WithLabelValues(name),
		rejections:      m.rejections.WithLabelValues(name),
		waitInteractive: m.wait.WithLabelValues(name, "interactive"),
		waitBackground:  m.wait.WithLabelValues(name, "background"),
		waitingJobs:     m.waiting.WithLabelValues(name),
		breaker:         m.breaker.WithLabelValues(name),
		limit:           m.limit.WithLabelValues(name),
	}
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
