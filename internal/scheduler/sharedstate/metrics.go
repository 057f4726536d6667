package sharedstate

import (
	"errors"
	"slices"
	"time"

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
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"scheduler"}))
	}
	m := &metrics{
		placements:  counter("gantry_sharedstate_placements_total", "Allocations placed by committed plans."),
		preemptions: counter("gantry_sharedstate_preemptions_total", "Allocations evicted by committed plans."),
		evaluations: counter("gantry_sharedstate_evaluations_total", "Jobs taken off a queue and scheduled."),
		plans:       counter("gantry_sharedstate_plans_submitted_total", "Plans sent to the plan applier."),
		conflicts:   counter("gantry_sharedstate_conflicts_total", "Plans the applier partly or wholly rejected."),
		retries:     counter("gantry_sharedstate_retries_total", "Plans recomputed on a newer snapshot after a conflict."),
		busy:        counter("gantry_sharedstate_busy_seconds_total", "Time workers spent scheduling (busy fraction = rate / workers)."),
		queueDepth: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gantry_sharedstate_queue_depth", Help: "Jobs waiting in a scheduler's queue.",
		}, []string{"scheduler"})),
		latency: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
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

// register registers c, or returns the collector already registered under
// the same name: a server that regains leadership builds a new Scheduler
// on the same registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}

// latencyWindowSize bounds the samples kept for percentiles.
const latencyWindowSize = 1024

// window is a ring of the most recent latency samples.
type window struct {
	buf  []time.Duration
	next int
}

func (w *window) add(d time.Duration) {
	if len(w.buf) < latencyWindowSize {
		w.buf = append(w.buf, d)
		return
	}
	w.buf[w.next] = d
	w.next = (w.next + 1) % latencyWindowSize
}

// percentiles returns the nearest-rank percentiles ps (0..100) in ms.
func (w *window) percentiles(ps ...float64) []float64 {
	out := make([]float64, len(ps))
	if len(w.buf) == 0 {
		return out
	}
	s := slices.Clone(w.buf)
	slices.Sort(s)
	for i, p := range ps {
		k := int(p/100*float64(len(s))+0.5) - 1
		k = min(max(k, 0), len(s)-1)
		out[i] = float64(s[k]) / float64(time.Millisecond)
	}
	return out
}
