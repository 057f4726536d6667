package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's own Prometheus figures; the scheduler registers
// its own on the same registry.
type metrics struct {
	registry   *prometheus.Registry
	apiLatency *prometheus.HistogramVec
	raftApply  *prometheus.HistogramVec
	// raftWritesWaited counts the log writes (fsyncs) started while an
	// entry waited to be applied (raft.go, countingLogStore).
	raftWritesWaited prometheus.Histogram
	heartbeatMisses  prometheus.Counter
	planApply        prometheus.Histogram
	planRejected     prometheus.Counter
	planBatch        prometheus.Histogram
	blockedRetries   prometheus.Counter
	forwarded        *prometheus.CounterVec
	unknownEntries   prometheus.Counter
	gcAllocs         prometheus.Counter
	gcJobs           prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gantry_http_request_duration_seconds",
			Help:    "Latency of API requests by route and status code (blocking queries include their wait).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route", "code"}),
		raftApply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gantry_raft_apply_duration_seconds",
			Help:    "Time from proposing a Raft entry until it is applied locally, by message type.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"type"}),
		heartbeatMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_heartbeat_misses_total",
			Help: "Nodes marked down because they missed their heartbeat TTL.",
		}),
		planApply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gantry_plan_apply_duration_seconds",
			Help:    "Time to check and commit one batch of plans.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		planRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_plan_rejected_nodes_total",
			Help: "Node parts of plans rejected by the plan applier because they no longer fit.",
		}),
		blockedRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_plan_blocked_retries_total",
			Help: "Jobs re-enqueued because a placement failure was decided on a snapshot older than the nodes table.",
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_http_forwarded_total",
			Help: "API requests this server forwarded to the leader, by outcome.",
		}, []string{"outcome"}),
	}
	m.raftWritesWaited = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "gantry_raft_log_writes_waited",
		Help:    "Log writes the local log store started between proposing an entry and its local apply (about 2 is the least on a busy one-voter leader).",
		Buckets: []float64{0, 1, 2, 3, 4, 6, 8, 12, 16},
	})
	m.registry.MustRegister(m.raftWritesWaited)
	m.planBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "gantry_plan_batch_size",
		Help:    "Plans checked and committed together in one Raft entry.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	})
	m.unknownEntries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gantry_raft_unknown_entries_total",
		Help: "Committed Raft entries of a type this build does not know (it is older than the leader's): the server stops its Raft at the first.",
	})
	m.gcAllocs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gantry_gc_allocations_total",
		Help: "Terminal allocations deleted by garbage collection (with their jobs or alone).",
	})
	m.gcJobs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gantry_gc_jobs_total",
		Help: "Finished jobs deleted by garbage collection.",
	})
	m.registry.MustRegister(m.planBatch, m.unknownEntries, m.gcAllocs, m.gcJobs)
	m.registry.MustRegister(m.apiLatency, m.raftApply, m.heartbeatMisses, m.planApply, m.planRejected,
		m.blockedRetries, m.forwarded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registerBlocked adds the blocked-job tracker's figures (blocked.go).
func (m *metrics) registerBlocked(t *blockedJobs) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gantry_scheduler_blocked_jobs",
			Help: "Jobs with copies left unplaced for want of room, waiting for room to grow on a node that admits them (leader only).",
		}, func() float64 {
			n, _ := t.count()
			return float64(n)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gantry_scheduler_unblocked_total",
			Help: "Blocked jobs enqueued again because room grew on a node that admits them.",
		}, func() float64 {
			_, n := t.count()
			return float64(n)
		}),
	)
}
