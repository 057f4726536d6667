package structs

import "time"

// Two-level scheduling: the types of frameworks, offers and tasks, shared
// by the allocator (internal/scheduler/twolevel), the server's framework
// API and the Go SDK (api/framework). The API is shaped like the Mesos v1
// scheduler API: one endpoint takes calls (framework_call.go), and a
// SUBSCRIBE call opens a stream of events, one JSON object per line.

// The built-in frameworks (two-level architecture).
const (
	// FrameworkService keeps service jobs' copies running (Marathon-like).
	FrameworkService = "service"
	// FrameworkBatch runs batch jobs to completion.
	FrameworkBatch = "batch"
)

// DefaultRole is the role of frameworks that name none.
const DefaultRole = "*"

// FrameworkFor returns the framework that schedules job under the
// two-level architecture: the one it names, else the built-in one of its
// type.
func FrameworkFor(job *Job) string {
	switch {
	case job == nil:
		return ""
	case job.FrameworkTask != nil:
		return job.FrameworkTask.FrameworkName
	case job.Framework != "":
		return job.Framework
	case job.Type == JobTypeBatch:
		return FrameworkBatch
	}
	return FrameworkService
}

// FrameworkTask marks a job the server created for one task an external
// framework launched. Each task is a job of one copy, so it goes through
// the same job writes, plan applier and agents as every other job; the
// job's ID is TaskJobID(framework name, task ID). The framework's identity
// is stored with each of its tasks so that a new leader knows every
// framework with running tasks (and its failover timeout) before the
// framework subscribes again, as a Mesos master re-learns frameworks.
type FrameworkTask struct {
	FrameworkID   string `json:"framework_id"`
	FrameworkName string `json:"framework_name"`
	Role          string `json:"role,omitempty"`
	TaskID        string `json:"task_id"`
	// FailoverTimeout is the framework's, when it launched the task.
	FailoverTimeout Duration `json:"failover_timeout,omitempty"`
}

// TaskJobID is the ID of the job holding a framework's task.
func TaskJobID(framework, taskID string) string { return framework + "." + taskID }

// FrameworkTaskState is a task's state as frameworks see it (Mesos' names).
type FrameworkTaskState string

const (
	TaskStaging  FrameworkTaskState = "TASK_STAGING"  // placed, not yet running
	TaskRunning  FrameworkTaskState = "TASK_RUNNING"  // the agent reports it running
	TaskKilling  FrameworkTaskState = "TASK_KILLING"  // asked to stop, still running
	TaskFinished FrameworkTaskState = "TASK_FINISHED" // exited 0
	TaskFailed   FrameworkTaskState = "TASK_FAILED"   // exited non-zero
	TaskKilled   FrameworkTaskState = "TASK_KILLED"   // stopped on request
	TaskLost     FrameworkTaskState = "TASK_LOST"     // its node went down
	TaskError    FrameworkTaskState = "TASK_ERROR"    // the launch was invalid
	TaskDropped  FrameworkTaskState = "TASK_DROPPED"  // not launched: offer gone or no room
	TaskUnknown  FrameworkTaskState = "TASK_UNKNOWN"  // the server knows no such task
)

// Terminal reports whether the task will not change state again.
func (s FrameworkTaskState) Terminal() bool {
	switch s {
	case TaskFinished, TaskFailed, TaskKilled, TaskLost, TaskError, TaskDropped, TaskUnknown:
		return true
	}
	return false
}

// TaskStatus is one task's state, sent in UPDATE events and returned by
// ACCEPT and `gantry framework status`.
type TaskStatus struct {
	TaskID  string             `json:"task_id"`
	State   FrameworkTaskState `json:"state"`
	Message string             `json:"message,omitempty"`
	// Reason says what caused the state ("reconciliation", "node down",
	// "offer rescinded" ...).
	Reason  string `json:"reason,omitempty"`
	AgentID string `json:"agent_id,omitempty"`
	AllocID string `json:"alloc_id,omitempty"`
	// UUID identifies an UPDATE to acknowledge; empty for statuses that
	// need no acknowledgement (reconciliation answers, ACCEPT results).
	UUID      string  `json:"uuid,omitempty"`
	ExitCode  int     `json:"exit_code,omitempty"`
	Timestamp float64 `json:"timestamp"` // unix seconds
}

// Offer is resources on one node offered to one framework: the node's
// capacity not used by live allocations and not offered to anyone else.
type Offer struct {
	ID          string            `json:"id"`
	FrameworkID string            `json:"framework_id"`
	AgentID     string            `json:"agent_id"` // the node's ID
	Hostname    string            `json:"hostname"` // the node's name
	Resources   Resources         `json:"resources"`
	Attributes  map[string]string `json:"attributes,omitempty"` // the node's labels
	// Role is set when the node is reserved for a role.
	Role string `json:"role,omitempty"`
	// Expires is when the offer is rescinded unless used (unix seconds).
	Expires float64 `json:"expires,omitempty"`
}

// Seconds converts a time to the float seconds of the framework API.
func Seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// FrameworkStatus is one framework as `gantry framework list|status` and
// `gantry scheduler status` show it (GET /v1/frameworks).
type FrameworkStatus struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	BuiltIn bool   `json:"built_in"`
	// Connected: subscribed now (built-in frameworks always are).
	Connected  bool `json:"connected"`
	Suppressed bool `json:"suppressed"`
	// FailoverTimeoutSec is how long its tasks outlive a disconnection;
	// DisconnectedSec how long it has been away (0 while connected).
	FailoverTimeoutSec float64 `json:"failover_timeout_sec,omitempty"`
	DisconnectedSec    float64 `json:"disconnected_sec,omitempty"`
	// Weight is its role's weight; DominantShare its weighted dominant
	// share of the cluster (allocated: used + offered + being launched).
	Weight        float64   `json:"weight"`
	DominantShare float64   `json:"dominant_share"`
	Allocated     Resources `json:"allocated"`
	Offered       Resources `json:"offered"`
	OffersHeld    int       `json:"offers_held"`
	OffersSent    uint64    `json:"offers_sent"`
	Accepted      uint64    `json:"accepted"`
	Declined      uint64    `json:"declined"`
	Rescinded     uint64    `json:"rescinded"`
	Expired       uint64    `json:"expired"`
	// Tasks counts an external framework's tasks that are not terminal;
	// Launched every task it launched since this leader started.
	Tasks    int    `json:"tasks"`
	Launched uint64 `json:"launched"`
	// JobsWaiting counts a built-in framework's jobs with copies waiting
	// for offers.
	JobsWaiting int `json:"jobs_waiting"`
	// DecisionDelayMs is a built-in framework's think time per job (an
	// experiment setting; 0 normally).
	DecisionDelayMs float64 `json:"decision_delay_ms,omitempty"`
}

// FrameworkDetail is GET /v1/framework/{id}: the framework and its tasks.
type FrameworkDetail struct {
	Framework FrameworkStatus `json:"framework"`
	Tasks     []TaskStatus    `json:"tasks"`
	// TasksOmitted counts tasks left out to keep the answer bounded.
	TasksOmitted int `json:"tasks_omitted,omitempty"`
}
