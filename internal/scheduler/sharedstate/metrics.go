package sharedstate

import (
	"github.com/gantry-project/gantry/internal/scheduler/schedstat"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus series, labelled by scheduler (pool) name;
// nil when no Registerer is set.
type metrics struct {
	placements, preemptions, evaluations *prometheus.CounterVec
	plans, conflicts, retries, busy      *prometheus.CounterVec
	queueDepth                           *prometheus.GaugeVec
	latency                              *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, pools []string) *metrics {
	if reg == nil {
		return nil
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return schedstat.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"scheduler"}))
	}
	m := &metrics{
		placements:  counter("gantry_sharedstate_placements_total", "Allocations placed by committed plans."),
		preemptions: counter("gantry_sharedstate_preemptions_total", "Allocations evicted by committed plans."),
		evaluations: counter("gantry_sharedstate_evaluations_total", "Jobs taken off a queue and scheduled."),
		plans:       counter("gantry_sharedstate_plans_submitted_total", "Plans sent to the plan applier."),
		conflicts:   counter("gantry_sharedstate_conflicts_total", "Plans the applier partly or wholly rejected."),
		retries:     counter("gantry_sharedstate_retries_total", "Plans recomputed on a newer snapshot after a conflict."),
		busy:        counter("gantry_sharedstate_busy_seconds_total", "Time workers spent scheduling (busy fraction = rate / workers)."),
		queueDepth: schedstat.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gantry_sharedstate_queue_depth", Help: "Jobs waiting in a scheduler's queue.",
		}, []string{"scheduler"})),
		latency: schedstat.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gantry_sharedstate_latency_seconds",
			Help:    "Time to schedule one job: snapshots, placement, commits and retries.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. ~3.3s
		}, []string{"scheduler"})),
	}
	for _, p := range pools {
		m.queueDepth.WithLabelValues(p).Set(0)
	}
	return m
}
