package structs

// SchedulerStatus is what a scheduling architecture reports about its work
// since it started on this leader: the figures `gantry scheduler status`
// shows (GET /v1/scheduler/status; package api re-exports it). Every
// architecture reports in this one type.
type SchedulerStatus struct {
	Architecture string  `json:"architecture"`
	QueueDepth   int     `json:"queue_depth"`
	Placements   uint64  `json:"placements"`
	Evaluations  uint64  `json:"evaluations"`
	Preemptions  uint64  `json:"preemptions"`
	BusyFraction float64 `json:"busy_fraction"`
	// Latency percentiles of scheduling one job, in milliseconds.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// DecisionsPerSec is jobs scheduled per second of wall time since the
	// scheduler started on this leader.
	DecisionsPerSec float64 `json:"decisions_per_sec"`

	// Shared-state figures (zero for other architectures).

	// Schedulers are the parallel schedulers (pools of workers).
	Schedulers []SchedulerPoolStatus `json:"schedulers,omitempty"`
	// PlansSubmitted counts plans sent to the plan applier.
	PlansSubmitted uint64 `json:"plans_submitted,omitempty"`
	// Conflicts counts plans the applier partly or wholly rejected
	// because a node no longer fitted.
	Conflicts uint64 `json:"conflicts,omitempty"`
	// ConflictFraction is conflicts per successful (fully accepted)
	// commit, as Omega defines it.
	ConflictFraction float64 `json:"conflict_fraction,omitempty"`
	// Retries counts plans recomputed on a newer snapshot after a
	// conflict.
	Retries uint64 `json:"retries,omitempty"`
}

// SchedulerPoolStatus is one shared-state scheduler: a pool of workers with
// its own placement settings, serving some job types.
type SchedulerPoolStatus struct {
	Name     string   `json:"name"`
	JobTypes []string `json:"job_types"`
	Workers  int      `json:"workers"`
	// BusyFraction is the pool's busy time over wall time × workers;
	// WorkerBusy the same per worker.
	BusyFraction   float64   `json:"busy_fraction"`
	WorkerBusy     []float64 `json:"worker_busy"`
	QueueDepth     int       `json:"queue_depth"`
	Evaluations    uint64    `json:"evaluations"`
	Placements     uint64    `json:"placements"`
	PlansSubmitted uint64    `json:"plans_submitted"`
	Conflicts      uint64    `json:"conflicts"`
	Retries        uint64    `json:"retries"`
}
