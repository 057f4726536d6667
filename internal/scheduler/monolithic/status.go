package monolithic

import (
	"errors"
	"slices"
	"time"

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
	m.placements = register(reg, m.placements)
	m.preemptions = register(reg, m.preemptions)
	m.evaluations = register(reg, m.evaluations)
	m.queueDepth = register(reg, m.queueDepth)
	m.latency = register(reg, m.latency)
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
