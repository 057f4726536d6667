package monolithic

import (
	"github.com/gantry-project/gantry/internal/scheduler/schedstat"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus series; nil fields when no Registerer is set.
type metrics struct {
	placements  prometheus.Counter
	preemptions prometheus.Counter
	evaluations prometheus.Counter
	queueDepth  prometheus.Gauge
	latency     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		placements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_scheduler_placements_total", Help: "Allocations placed by committed plans.",
		}),
		preemptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_scheduler_preemptions_total", Help: "Allocations evicted by committed plans.",
		}),
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_scheduler_evaluations_total", Help: "Jobs taken off the queue and scheduled.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gantry_scheduler_queue_depth", Help: "Jobs waiting in the scheduler queue.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gantry_scheduler_latency_seconds",
			Help:    "Time to schedule one job: snapshot, reconcile, place, commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. ~3.3s
		}),
	}
	m.placements = schedstat.Register(reg, m.placements)
	m.preemptions = schedstat.Register(reg, m.preemptions)
	m.evaluations = schedstat.Register(reg, m.evaluations)
	m.queueDepth = schedstat.Register(reg, m.queueDepth)
	m.latency = schedstat.Register(reg, m.latency)
	return m
}
