package agent

import "github.com/prometheus/client_golang/prometheus"

// metrics are the agent's Prometheus figures.
type metrics struct {
	running       prometheus.Gauge
	starts        prometheus.Counter
	restarts      prometheus.Counter
	failures      prometheus.Counter
	hbFailures    prometheus.Counter
	updateLatency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gantry_agent_running_tasks", Help: "Tasks running on this node."}),
		starts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_agent_task_starts_total", Help: "Task starts, restarts included."}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_agent_task_restarts_total", Help: "Restarts in place under the restart policy."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_agent_task_failures_total", Help: "Allocations that ended failed (restarts exhausted, start errors, lost)."}),
		hbFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gantry_agent_heartbeat_failures_total", Help: "Heartbeats that did not reach a server."}),
		updateLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gantry_agent_alloc_update_latency_seconds",
			Help:    "Time from a task transition to the server's acknowledgement of its report.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
	}
	for _, c := range []prometheus.Collector{m.running, m.starts, m.restarts, m.failures, m.hbFailures, m.updateLatency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
