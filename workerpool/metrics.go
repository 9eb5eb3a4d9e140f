package workerpool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openhqm/openhqm/backends"
)

// Outcomes of one job attempt, the outcome label of openhqm_worker_jobs_total.
const (
	outcomeCompleted = "completed"
	outcomeRetried   = "retried"
	outcomeFailed    = "failed"
)

// metrics are the pool's Prometheus series. The names are the ones the
// original OpenHQM's dashboards query; labels are configuration names only.
type metrics struct {
	duration *prometheus.HistogramVec // queue, endpoint
	errors   *prometheus.CounterVec   // queue, endpoint, reason
	active   *prometheus.GaugeVec     // queue
	jobs     *prometheus.CounterVec   // queue, endpoint, outcome
}

func newMetrics(reg prometheus.Registerer, stats *statsCollector) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "openhqm_worker_processing_duration_seconds",
			Help:    "Time spent on one job attempt, from receipt to the stored outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"queue", "endpoint"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_worker_errors_total",
			Help: "Failed job attempts and worker-side errors, by reason (connect, timeout, reset, overloaded, 5xx, 429, upstream, endpoint_missing, config, results, ack, dead_letter, receive, panic).",
		}, []string{"queue", "endpoint", "reason"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "openhqm_worker_active",
			Help: "Jobs being processed right now.",
		}, []string{"queue"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openhqm_worker_jobs_total",
			Help: "Job attempts by outcome: completed, retried (nacked with a delay) or failed (dead-lettered).",
		}, []string{"queue", "endpoint", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.duration, m.errors, m.active, m.jobs, stats} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register worker metrics: %w", err)
		}
	}
	return m, nil
}

// StatsReporter is implemented by consumers that can report their backlog
// (every backends.Queue does). Consumers without it have no depth metrics.
type StatsReporter interface {
	Stats(ctx context.Context) (backends.Stats, error)
}

// statsTimeout bounds one queue's Stats call during a scrape.
const statsTimeout = 2 * time.Second

// statsCollector reports openhqm_queue_depth and
// openhqm_queue_oldest_job_age_seconds for the queues the pool consumes,
// asking each backend at scrape time.
type statsCollector struct {
	depth  *prometheus.Desc
	oldest *prometheus.Desc
	// queues returns a snapshot of the consumed queues; safe for concurrent use.
	queues func() map[string]Consumer
	onErr  func(queue string, err error)
}

func newStatsCollector(queues func() map[string]Consumer, onErr func(string, error)) *statsCollector {
	return &statsCollector{
		depth: prometheus.NewDesc("openhqm_queue_depth",
			"Jobs accepted and not yet acknowledged (waiting, leased and delayed).", []string{"queue"}, nil),
		oldest: prometheus.NewDesc("openhqm_queue_oldest_job_age_seconds",
			"Age of the oldest unacknowledged job; 0 when the queue is empty.", []string{"queue"}, nil),
		queues: queues,
		onErr:  onErr,
	}
}

// Describe implements prometheus.Collector.
func (s *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.depth
	ch <- s.oldest
}

// Collect implements prometheus.Collector. A queue whose Stats fails is left
// out of the scrape (and the failure is logged, rate-limited).
func (s *statsCollector) Collect(ch chan<- prometheus.Metric) {
	for name, c := range s.queues() {
		sr, ok := c.(StatsReporter)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
		st, err := sr.Stats(ctx)
		cancel()
		if err != nil {
			if !errors.Is(err, backends.ErrClosed) {
				s.onErr(name, err)
			}
			continue
		}
		ch <- prometheus.MustNewConstMetric(s.depth, prometheus.GaugeValue, float64(st.Depth), name)
		ch <- prometheus.MustNewConstMetric(s.oldest, prometheus.GaugeValue, st.OldestAge.Seconds(), name)
	}
}
