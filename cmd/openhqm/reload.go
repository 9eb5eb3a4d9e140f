package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// reloadMetrics are the configuration metrics of DESIGN §5 and issue 5.
type reloadMetrics struct {
	reloads     *prometheus.CounterVec // result = success | failure | unchanged
	lastSuccess prometheus.Gauge
	generation  prometheus.Gauge
	info        *prometheus.GaugeVec // digest
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_config_reloads_total",
			Help: "Configuration reload attempts by result (success, failure, unchanged).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openhqm_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last configuration successfully applied.",
		}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openhqm_config_generation",
			Help: "Number of the configuration generation being served (1 at start-up).",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "openhqm_config_info",
			Help: "Always 1; the digest label identifies the configuration being served.",
		}, []string{"digest"}),
	}
	for _, r := range []string{"success", "failure", "unchanged"} {
		m.reloads.WithLabelValues(r)
	}
	reg.MustRegister(m.reloads, m.lastSuccess, m.generation, m.info)
	return m
}

func (m *reloadMetrics) applied(gen uint64, digest string, at time.Time) {
	m.generation.Set(float64(gen))
	m.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	m.info.Reset()
	m.info.WithLabelValues(digest).Set(1)
}
