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
	// BlockedJobs counts the jobs with copies left unplaced for want of
	// room that the leader enqueues again when room grows on a node that
	// admits them; Unblocked counts those enqueues (monolithic and
	// shared-state; two-level jobs wait for offers instead).
	BlockedJobs int    `json:"blocked_jobs"`
	Unblocked   uint64 `json:"unblocked"`

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

	// Two-level figures (zero for other architectures).

	// Frameworks are the registered frameworks, built-in and external.
	Frameworks []FrameworkStatus `json:"frameworks,omitempty"`
	// OffersOutstanding counts offers sent and not yet used, declined,
	// rescinded or expired.
	OffersOutstanding int `json:"offers_outstanding,omitempty"`
	// OfferHoldP50Ms and OfferHoldP99Ms are how long offers stayed with
	// a framework (over the last 1,024 offers closed).
	OfferHoldP50Ms float64 `json:"offer_hold_p50_ms,omitempty"`
	OfferHoldP99Ms float64 `json:"offer_hold_p99_ms,omitempty"`
	// OffersSent, Declines, Rescinds and OffersExpired count offers sent,
	// declined, rescinded (node lost or drained, framework gone) and
	// rescinded because they timed out.
	OffersSent    uint64 `json:"offers_sent,omitempty"`
	Declines      uint64 `json:"declines,omitempty"`
	Rescinds      uint64 `json:"rescinds,omitempty"`
	OffersExpired uint64 `json:"offers_expired,omitempty"`
	// JobsWaiting counts jobs with copies waiting for offers.
	JobsWaiting int `json:"jobs_waiting,omitempty"`
	// AllocationRounds counts the allocator's rounds; AllocationRoundP99Ms
	// is the 99th percentile of their duration.
	AllocationRounds     uint64  `json:"allocation_rounds,omitempty"`
	AllocationRoundP99Ms float64 `json:"allocation_round_p99_ms,omitempty"`
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
