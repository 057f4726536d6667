package structs

// Requests below are what the leader proposes, each under its MessageType
// (message_type.go). Every ID, time and derived value is chosen before
// proposing, so applying an entry is deterministic.

// NodeRegisterRequest upserts a node and marks it ready.
type NodeRegisterRequest struct {
	Node *Node `json:"node"`
	Time int64 `json:"time"`
}

// NodeUpdateStatusRequest changes a node's status. Going down marks every
// live allocation on the node lost (client status "lost", desired "stop").
type NodeUpdateStatusRequest struct {
	NodeID string     `json:"node_id"`
	Status NodeStatus `json:"status"`
	Time   int64      `json:"time"`
}

// NodeUpdateDrainRequest turns draining on or off.
type NodeUpdateDrainRequest struct {
	NodeID string `json:"node_id"`
	Drain  bool   `json:"drain"`
	Time   int64  `json:"time"`
	// Deadline is the drain's deadline (unix ns; 0: none).
	Deadline int64 `json:"deadline,omitempty"`
}

// JobRegisterRequest upserts a canonicalized, validated job.
type JobRegisterRequest struct {
	Job *Job `json:"job"`
	// Deployment, when set, is the deployment this registration starts
	// (a new version of a job with an update block).
	Deployment *Deployment `json:"deployment,omitempty"`
}

// JobDeregisterRequest stops a job (its allocations get desired "stop");
// with Purge the job and its allocations are removed from state.
type JobDeregisterRequest struct {
	JobID string `json:"job_id"`
	Purge bool   `json:"purge"`
	Time  int64  `json:"time"`
}

// AllocClientUpdate is an agent's report on one allocation.
type AllocClientUpdate struct {
	ID                string    `json:"id"`
	ClientStatus      string    `json:"client_status"`
	ClientDescription string    `json:"client_description,omitempty"`
	TaskState         TaskState `json:"task_state"`
	// Health is the copy's health; nil while not known (health.go).
	Health *AllocHealth `json:"health,omitempty"`
	// TaskStates are the extra tasks' states (Allocation.TaskStates).
	TaskStates map[string]TaskState `json:"task_states,omitempty"`
}

// AllocClientUpdateRequest applies a batch of agent reports.
type AllocClientUpdateRequest struct {
	NodeID  string               `json:"node_id"`
	Updates []*AllocClientUpdate `json:"updates"`
	Time    int64                `json:"time"`
}

// ApplyPlanRequest commits the checked part of a plan: full allocation
// objects (new ones and updated copies of stopped/evicted ones) and the
// job's placement failure record.
type ApplyPlanRequest struct {
	Allocs       []*Allocation     `json:"allocs"`
	JobID        string            `json:"job_id,omitempty"`
	Failure      *PlacementFailure `json:"failure,omitempty"`
	ClearFailure bool              `json:"clear_failure,omitempty"`
	Time         int64             `json:"time"`
	// JobVersion, when not zero, is the version of the job the plan was
	// checked against: new placements (and the evictions made for them)
	// are committed only if the job still exists at that version and is
	// not stopped. The applier checks plans before the entries ahead of
	// them are applied, so the job may change in between.
	JobVersion uint64 `json:"job_version,omitempty"`
}

// ApplyPlanBatchRequest commits several checked plans in one entry, in
// order, in one transaction (the applier checked each against the state the
// previous ones leave).
type ApplyPlanBatchRequest struct {
	Plans []*ApplyPlanRequest `json:"plans"`
}
