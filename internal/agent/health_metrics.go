package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// agentHealth is what the health checks of all tasks share: their
// metrics and the HTTP client of the http checks.
type agentHealth struct {
	tasks   prometheus.Gauge
	healthy prometheus.Gauge
	probes  *prometheus.CounterVec
	client  *http.Client
}

func newAgentHealth(reg prometheus.Registerer) (*agentHealth, error) {
	h := &agentHealth{
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gantry_agent_health_tasks", Help: "Running tasks whose health the agent follows."}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gantry_agent_healthy_tasks", Help: "Running tasks that are healthy (every check passing)."}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_agent_check_probes_total", Help: "Health check runs, by check type and result."},
			[]string{"type", "result"}),
		// No keep-alive: one idle connection per checked copy (and its
		// two goroutines) would add up on a node with many copies; no
		// proxy: checks go straight to the copy. A probe reads a status
		// line, headers and at most maxHTTPCheckBody: 1 KiB buffers
		// instead of the default 4 KiB ones make each probe's connection
		// cheaper, and the headers are bounded.
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil,
			WriteBufferSize: 1 << 10, ReadBufferSize: 1 << 10, MaxResponseHeaderBytes: 64 << 10}},
	}
	for _, c := range []prometheus.Collector{h.tasks, h.healthy, h.probes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return h, nil
}
