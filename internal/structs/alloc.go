package structs

import "fmt"

// Desired statuses are what the server wants of an allocation.
const (
	AllocDesiredRun   = "run"
	AllocDesiredStop  = "stop"  // job stopped/scaled down/replaced, or node lost
	AllocDesiredEvict = "evict" // preempted by higher-priority work
)

// Client statuses are what the agent reports of an allocation.
const (
	AllocClientPending  = "pending"
	AllocClientRunning  = "running"
	AllocClientComplete = "complete" // exited 0 and will not run again
	AllocClientFailed   = "failed"   // exited non-zero and restarts exhausted
	AllocClientLost     = "lost"     // its node went down
)

// Task states inside an allocation.
const (
	TaskStatePending = "pending"
	TaskStateRunning = "running"
	TaskStateDead    = "dead"
)

// TaskEvent is one step in a task's life, shown by "alloc status".
type TaskEvent struct {
	Time    int64  `json:"time"` // unix nanoseconds
	Type    string `json:"type"` // Received, Started, Terminated, Restarting, Killed ...
	Message string `json:"message,omitempty"`
}

// MaxTaskEvents bounds the events kept per allocation.
const MaxTaskEvents = 10

// TaskState is the agent's report of the task inside an allocation.
type TaskState struct {
	State      string      `json:"state"`
	Restarts   int         `json:"restarts"`
	ExitCode   int         `json:"exit_code"`
	Failed     bool        `json:"failed"`
	StartedAt  int64       `json:"started_at,omitempty"`
	FinishedAt int64       `json:"finished_at,omitempty"`
	PID        int         `json:"pid,omitempty"`
	Events     []TaskEvent `json:"events,omitempty"`
}

// Allocation is one copy of a job's task bound to a node.
type Allocation struct {
	ID         string `json:"id"`
	JobID      string `json:"job_id"`
	JobVersion uint64 `json:"job_version"`
	// Name is "<job>[<index>]"; Index is stable across replacements so a
	// replacement takes the place of the copy it replaces.
	Name  string `json:"name"`
	Index int    `json:"index"`
	// Group is the job's task group the copy belongs to ("" for the
	// implicit group of a job without groups); Index counts per group,
	// and Name is then "<job>.<group>[<index>]" (group.go).
	Group     string    `json:"group,omitempty"`
	NodeID    string    `json:"node_id"`
	NodeName  string    `json:"node_name,omitempty"`
	Resources Resources `json:"resources"`
	// Ports are the host ports the scheduler gave this copy (network.go).
	Ports []AllocPort `json:"ports,omitempty"`
	// Priority is the job's priority when placed, used for preemption.
	Priority int `json:"priority"`
	// Job is the job as it was when the allocation was placed, so an agent
	// runs exactly the version it was given.
	// The job's groups are all in it; the agent runs the copy's
	// (GroupJob).
	Job *Job `json:"job,omitempty"`

	DesiredStatus      string `json:"desired_status"`
	DesiredDescription string `json:"desired_description,omitempty"`
	ClientStatus       string `json:"client_status"`
	ClientDescription  string `json:"client_description,omitempty"`

	TaskState TaskState `json:"task_state"`
	// Health is the copy's health as its agent reports it (health.go);
	// nil while not known.
	Health *AllocHealth `json:"health,omitempty"`
	// TaskStates are the states of the copy's extra tasks (Job.Tasks), by
	// name; TaskState stays the main task's.
	TaskStates map[string]TaskState `json:"task_states,omitempty"`

	// PreviousAllocation is the allocation this one replaces.
	PreviousAllocation string `json:"previous_allocation,omitempty"`
	// RescheduleCount counts replacements of failed copies in this chain.
	RescheduleCount int `json:"reschedule_count"`
	// PreemptedBy names the allocation whose placement evicted this one.
	PreemptedBy string `json:"preempted_by,omitempty"`

	CreateTime  int64  `json:"create_time"`
	ModifyTime  int64  `json:"modify_time"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	// AllocModifyIndex is the index of the last change made by the server
	// (placement, stop, eviction, lost); agents' own status reports do not
	// move it, so a node's blocking query does not wake for its own reports.
	AllocModifyIndex uint64 `json:"alloc_modify_index"`
}

// AllocName is the display name of copy idx of a job's implicit group.
func AllocName(job string, idx int) string { return fmt.Sprintf("%s[%d]", job, idx) }

// ClientTerminal reports whether the task has finished on the node for good.
func (a *Allocation) ClientTerminal() bool {
	switch a.ClientStatus {
	case AllocClientComplete, AllocClientFailed, AllocClientLost:
		return true
	}
	return false
}

// Terminal reports whether the allocation no longer holds resources: the
// server no longer wants it or it has finished. A stopped allocation stops
// counting at once (as in Nomad); agents kill stopped tasks before they start
// new ones, so a node's real usage follows within one sync.
func (a *Allocation) Terminal() bool {
	return a.DesiredStatus != AllocDesiredRun || a.ClientTerminal()
}

// Copy returns a copy sharing the (immutable) Job pointer.
func (a *Allocation) Copy() *Allocation {
	if a == nil {
		return nil
	}
	c := *a
	c.TaskState.Events = append([]TaskEvent(nil), a.TaskState.Events...)
	c.Ports = append([]AllocPort(nil), a.Ports...)
	c.Health = a.Health.Copy()
	c.TaskStates = CopyTaskStates(a.TaskStates)
	return &c
}

// Stub returns a copy without the embedded job, for listings.
func (a *Allocation) Stub() *Allocation {
	c := a.Copy()
	c.Job = nil
	return c
}

// CopyTaskStates deep-copies extra tasks' states (nil stays nil).
func CopyTaskStates(m map[string]TaskState) map[string]TaskState {
	if m == nil {
		return nil
	}
	c := make(map[string]TaskState, len(m))
	for k, ts := range m {
		ts.Events = append([]TaskEvent(nil), ts.Events...)
		c[k] = ts
	}
	return c
}

// GroupJob is the view of the allocation's group of its embedded job
// (Job.GroupView): what the copy runs. nil without the job, or when the
// job has no such group.
func (a *Allocation) GroupJob() *Job { return a.Job.GroupView(a.Group) }
