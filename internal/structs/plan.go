package structs

// AllocStop asks for an existing allocation to be stopped or evicted.
type AllocStop struct {
	AllocID     string `json:"alloc_id"`
	NodeID      string `json:"node_id"`
	Desired     string `json:"desired"` // AllocDesiredStop or AllocDesiredEvict
	Description string `json:"description"`
	// PreemptedBy is the allocation that needs the room (evictions only).
	PreemptedBy string `json:"preempted_by,omitempty"`
}

// PlacementFailure explains why copies of a job could not be placed: how
// many nodes each filter excluded. Stored per job until it is fully placed.
type PlacementFailure struct {
	JobID          string `json:"job_id"`
	Unplaced       int    `json:"unplaced"`
	NodesEvaluated int    `json:"nodes_evaluated"`
	// NodesFiltered counts nodes excluded per reason, e.g.
	// "constraint zone = a": 3, "not ready": 1, "draining": 1.
	NodesFiltered map[string]int `json:"nodes_filtered,omitempty"`
	// NodesExhausted counts nodes that passed filters but lacked room,
	// per dimension: "cpu": 2, "memory": 7.
	NodesExhausted map[string]int `json:"nodes_exhausted,omitempty"`
	Message        string         `json:"message"`
	Time           int64          `json:"time"`
}

// Plan is a scheduler's decision for one job: new allocations, stops and
// preemptions. It is checked against current state by the plan applier on
// the leader, which commits what still fits.
type Plan struct {
	JobID    string `json:"job_id"`
	Priority int    `json:"priority"`
	// SnapshotIndex is the state index the scheduler decided on.
	SnapshotIndex uint64 `json:"snapshot_index"`
	// Placements are new allocations, NodeID set, DesiredStatus run.
	Placements []*Allocation `json:"placements,omitempty"`
	Stops      []AllocStop   `json:"stops,omitempty"`
	// Preemptions are evictions that make room for Placements on the same
	// node; they are applied only together with those placements.
	Preemptions []AllocStop `json:"preemptions,omitempty"`
	// Failure, when set, records why some copies could not be placed;
	// ClearFailure removes a stored failure (the job is now fully placed).
	Failure      *PlacementFailure `json:"failure,omitempty"`
	ClearFailure bool              `json:"clear_failure,omitempty"`
	// AllOrNothing rejects the whole plan if any node of it does not fit.
	AllOrNothing bool `json:"all_or_nothing,omitempty"`
}

// IsNoOp reports whether the plan changes nothing.
func (p *Plan) IsNoOp() bool {
	return len(p.Placements) == 0 && len(p.Stops) == 0 && len(p.Preemptions) == 0 &&
		p.Failure == nil && !p.ClearFailure
}

// PlanResult is the applier's answer.
type PlanResult struct {
	// Index is the Raft index at which the committed part applied.
	Index uint64 `json:"index"`
	// Placed lists the IDs of committed placements.
	Placed []string `json:"placed,omitempty"`
	// RejectedNodes lists nodes whose part of the plan no longer fit.
	RejectedNodes []string `json:"rejected_nodes,omitempty"`
	// RefreshIndex is the index a scheduler must see before retrying the
	// rejected part.
	RefreshIndex uint64 `json:"refresh_index,omitempty"`
}
