package twolevel

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantry-project/gantry/internal/scheduler/schedstat"
)

// metrics are the Prometheus series, named as `gantry scheduler status`
// names the figures; nil when no Registerer is set.
type metrics struct {
	offersOutstanding prometheus.Gauge
	offerHold         prometheus.Histogram
	offersSent        prometheus.Counter
	declines          prometheus.Counter
	rescinds          prometheus.Counter
	expired           prometheus.Counter
	jobsWaiting       prometheus.Gauge
	rounds            prometheus.Counter
	roundSeconds      prometheus.Histogram
	dominantShare     *prometheus.GaugeVec
	placements        *prometheus.CounterVec
	evaluations       *prometheus.CounterVec
	busy              *prometheus.CounterVec
	latency           *prometheus.HistogramVec
	// last* are the allocator's counters at the last observation.
	lastSent, lastDeclined, lastRescinded, lastExpired uint64
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	counter := func(name, help string) prometheus.Counter {
		return schedstat.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
	}
	gauge := func(name, help string) prometheus.Gauge {
		return schedstat.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
	}
	byFw := []string{"framework"}
	return &metrics{
		offersOutstanding: gauge("gantry_twolevel_offers_outstanding", "Offers sent and not yet used, declined, rescinded or expired."),
		offerHold: schedstat.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gantry_twolevel_offer_hold_seconds", Help: "How long an offer stayed with its framework.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20), // 100µs .. ~52s
		})),
		offersSent:  counter("gantry_twolevel_offers_sent_total", "Offers sent to frameworks."),
		declines:    counter("gantry_twolevel_declines_total", "Offers declined by frameworks."),
		rescinds:    counter("gantry_twolevel_rescinds_total", "Offers rescinded: node lost or drained, room used, framework gone."),
		expired:     counter("gantry_twolevel_offers_expired_total", "Offers rescinded because they timed out."),
		jobsWaiting: gauge("gantry_twolevel_jobs_waiting", "Jobs of the built-in frameworks with copies waiting for offers."),
		rounds:      counter("gantry_twolevel_allocation_rounds_total", "Allocation rounds run."),
		roundSeconds: schedstat.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gantry_twolevel_allocation_round_seconds", Help: "Time of one allocation round (feeding the allocator included).",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 18), // 10µs .. ~1.3s
		})),
		dominantShare: schedstat.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gantry_twolevel_dominant_share", Help: "A framework's weighted dominant share of the cluster.",
		}, byFw)),
		placements: schedstat.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_twolevel_placements_total", Help: "Allocations placed by a built-in framework's committed plans.",
		}, byFw)),
		evaluations: schedstat.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_twolevel_evaluations_total", Help: "Jobs a built-in framework evaluated.",
		}, byFw)),
		busy: schedstat.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_twolevel_busy_seconds_total", Help: "Time built-in frameworks spent deciding (decision delays included).",
		}, byFw)),
		latency: schedstat.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gantry_twolevel_latency_seconds", Help: "Time a built-in framework took to schedule one job.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, byFw)),
	}
}

// observeLocked brings the metrics up to date with the allocator.
func (s *Scheduler) observeLocked() {
	m := s.m
	if m == nil || s.alloc == nil {
		return
	}
	for _, d := range s.alloc.TakeHolds() {
		m.offerHold.Observe(d.Seconds())
	}
	f := s.alloc.Figures()
	m.offersOutstanding.Set(float64(f.OffersOutstanding))
	add := func(c prometheus.Counter, now uint64, last *uint64) {
		if now > *last {
			c.Add(float64(now - *last))
		}
		*last = now
	}
	add(m.offersSent, f.OffersSent, &m.lastSent)
	add(m.declines, f.Declined, &m.lastDeclined)
	add(m.rescinds, f.Rescinded, &m.lastRescinded)
	add(m.expired, f.Expired, &m.lastExpired)
}

// gaugesLocked sets the per-framework shares and the jobs waiting.
func (s *Scheduler) gaugesLocked() {
	waiting := 0
	for _, b := range s.builtins {
		b.mu.Lock()
		waiting += len(b.waiting)
		b.mu.Unlock()
	}
	s.m.jobsWaiting.Set(float64(waiting))
	for _, ff := range s.alloc.Frameworks() {
		name := ff.Name
		if f := s.fws[ff.ID]; f != nil {
			name = f.name
		}
		if name != "" && (ff.Registered || s.builtin(ff.ID) != nil) {
			s.m.dominantShare.WithLabelValues(name).Set(ff.DominantShare)
		}
	}
}
