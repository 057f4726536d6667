// Package api is gantry's public Go client for the HTTP API, and the JSON
// wire types it speaks. The CLI, the agent, tests and external programs use
// it.
//
// The wire types are aliases of gantry's domain model (internal/structs):
// one definition, so the API cannot drift from what the server stores, and
// programs outside this module can still name and build them through this
// package.
package api

import "github.com/gantry-project/gantry/internal/structs"

type (
	Job               = structs.Job
	JobType           = structs.JobType
	Constraint        = structs.Constraint
	Resources         = structs.Resources
	RestartPolicy     = structs.RestartPolicy
	ReschedulePolicy  = structs.ReschedulePolicy
	Duration          = structs.Duration
	Node              = structs.Node
	Allocation        = structs.Allocation
	TaskState         = structs.TaskState
	TaskEvent         = structs.TaskEvent
	PlacementFailure  = structs.PlacementFailure
	AllocClientUpdate = structs.AllocClientUpdate
	FieldError        = structs.FieldError

	// SchedulerStatus is GET /v1/scheduler/status.
	SchedulerStatus     = structs.SchedulerStatus
	SchedulerPoolStatus = structs.SchedulerPoolStatus
)

// JobRegisterRequest is the body of PUT /v1/jobs.
type JobRegisterRequest struct {
	Job *Job `json:"job"`
	// EnforceIndex makes the registration conditional (`gantry job run
	// --check-index`): it is refused with 409 unless the job's modify
	// index is JobModifyIndex (0: the job must not exist).
	EnforceIndex   bool   `json:"enforce_index,omitempty"`
	JobModifyIndex uint64 `json:"job_modify_index,omitempty"`
}

// JobRegisterResponse answers a register, scale or stop.
type JobRegisterResponse struct {
	JobID   string `json:"job_id"`
	Version uint64 `json:"version"`
	Index   uint64 `json:"index"`
}

// JobScaleRequest is the body of POST /v1/job/{id}/scale.
type JobScaleRequest struct {
	Count int `json:"count"`
	// Group is the task group to scale; it may be left out for a job
	// with one group.
	Group string `json:"group,omitempty"`
}

// JobListStub is one row of GET /v1/jobs.
type JobListStub struct {
	// ID is the job's key: its name in the default namespace,
	// "<namespace>/<name>" in others.
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Namespace   string         `json:"namespace"`
	Type        JobType        `json:"type"`
	Priority    int            `json:"priority"`
	Count       int            `json:"count"`
	Status      string         `json:"status"`
	Stop        bool           `json:"stop"`
	Version     uint64         `json:"version"`
	Summary     map[string]int `json:"summary"` // client status -> live alloc count
	SubmitTime  int64          `json:"submit_time"`
	ModifyIndex uint64         `json:"modify_index"`
}

// JobStatusResponse is GET /v1/job/{id}/status: the job, its allocations
// (without the embedded job) and why copies are pending, if they are.
type JobStatusResponse struct {
	Job         *Job           `json:"job"`
	Allocations []*Allocation  `json:"allocations"`
	Summary     map[string]int `json:"summary"`
	// Groups summarizes each task group of a job with groups, in the
	// job's order (absent for a job without groups: Summary says it all).
	Groups           []GroupSummary    `json:"groups,omitempty"`
	PlacementFailure *PlacementFailure `json:"placement_failure,omitempty"`
	// WaitingForOffers, under the two-level architecture, says why copies
	// wait: "waiting for offers: framework batch holds 0 of 3 offers;
	// dominant share 0.62" and what the last offers lacked.
	WaitingForOffers string `json:"waiting_for_offers,omitempty"`
	// Reschedules lists the failed copies whose replacement waits for
	// the reschedule policy's delay, by index.
	Reschedules []*PendingReschedule `json:"reschedules,omitempty"`
}

// PendingReschedule is a failed copy whose replacement waits: the
// scheduler places it at Time, not before (the job's reschedule policy and
// its delay function decide the wait).
type PendingReschedule struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	// PreviousAllocation is the failed allocation the replacement
	// replaces.
	PreviousAllocation string `json:"previous_allocation"`
	// Group is the copy's task group ("" for a job without groups).
	Group string `json:"group,omitempty"`
	// Attempt is the reschedule the replacement will be: its
	// reschedule_count (1 for the first of its chain).
	Attempt int `json:"attempt"`
	// Delay is the wait the delay function gives this attempt, from the
	// failure; Time (unix nanoseconds) is when it ends.
	Delay Duration `json:"delay"`
	Time  int64    `json:"time"`
}

// GCResponse answers POST /v1/system/gc: what the garbage collection it
// ran deleted, in how many Raft entries, and the index of the last one.
type GCResponse struct {
	Allocations int    `json:"allocations"`
	Jobs        int    `json:"jobs"`
	Entries     int    `json:"entries"`
	Index       uint64 `json:"index"`
}

// NodeRegisterRequest is the body of POST /v1/node/register.
type NodeRegisterRequest struct {
	Node *Node `json:"node"`
}

// NodeRegisterResponse tells the agent its ID and the heartbeat TTL.
type NodeRegisterResponse struct {
	NodeID       string   `json:"node_id"`
	HeartbeatTTL Duration `json:"heartbeat_ttl"`
	Index        uint64   `json:"index"`
}

// HeartbeatResponse carries the TTL within which the next heartbeat is due.
type HeartbeatResponse struct {
	HeartbeatTTL Duration `json:"heartbeat_ttl"`
	Index        uint64   `json:"index"`
}

// NodeDrainRequest is the body of POST /v1/node/{id}/drain.
type NodeDrainRequest struct {
	Enable bool `json:"enable"`
	// Deadline is how long copies of jobs with a migrate or update block
	// may take to move in waves before the rest are stopped (default
	// 1h); Force stops them at once; NoDeadline waits for the waves
	// however long they take.
	Deadline   structs.Duration `json:"deadline,omitempty"`
	Force      bool             `json:"force,omitempty"`
	NoDeadline bool             `json:"no_deadline,omitempty"`
}

// AllocUpdateRequest is the body of POST /v1/node/{id}/allocations.
type AllocUpdateRequest struct {
	Updates []*AllocClientUpdate `json:"updates"`
}

// IndexResponse answers writes that return only the Raft index.
type IndexResponse struct {
	Index uint64 `json:"index"`
}

// LeaderResponse is GET /v1/status/leader.
type LeaderResponse struct {
	Leader string `json:"leader"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Fields lists per-field validation errors, when that is the cause.
	Fields []FieldError `json:"fields,omitempty"`
}

// Status values, re-exported from the domain model.
const (
	NodeStatusReady = structs.NodeStatusReady
	NodeStatusDown  = structs.NodeStatusDown

	AllocDesiredRun   = structs.AllocDesiredRun
	AllocDesiredStop  = structs.AllocDesiredStop
	AllocDesiredEvict = structs.AllocDesiredEvict

	AllocClientPending  = structs.AllocClientPending
	AllocClientRunning  = structs.AllocClientRunning
	AllocClientComplete = structs.AllocClientComplete
	AllocClientFailed   = structs.AllocClientFailed
	AllocClientLost     = structs.AllocClientLost

	JobTypeService = structs.JobTypeService
	JobTypeBatch   = structs.JobTypeBatch
)

// NodeStatus is a node's liveness as the server sees it.
type NodeStatus = structs.NodeStatus

// GroupSummary is one task group's line of a job's status: its wanted
// copies and its allocations' count by client status (as Summary).
type GroupSummary struct {
	Name    string         `json:"name"`
	Count   int            `json:"count"`
	Summary map[string]int `json:"summary"`
}
