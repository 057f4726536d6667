package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// Driver runs one kind of task. A Driver is shared by every allocation on an
// agent and must be safe for concurrent use.
type Driver interface {
	// Name is the name jobs use in their "driver" field.
	Name() string
	// Validate checks a job's config block; field names are relative to
	// "config" (the job validator prefixes them).
	Validate(config map[string]any) []structs.FieldError
	// Start launches a task. The returned Task is running (or has already
	// exited); an error means nothing was started.
	Start(cfg *TaskConfig) (Task, error)
	// Recover re-attaches to a task started by an earlier agent process from
	// the handle that agent saved. It never starts the task again: a task
	// that ended while no agent watched it is returned already exited, with
	// its exit code if one was recorded and ExitResult.Err set if not.
	Recover(h *Handle, cfg *TaskConfig) (Task, error)
}

// Task is one running (or finished) task.
type Task interface {
	// Handle is what the agent saves to re-attach after a restart.
	Handle() *Handle
	// Exited is closed once the task has ended; Result is then final.
	Exited() <-chan struct{}
	// Result is the task's end; valid after Exited is closed.
	Result() ExitResult
	// Stop asks the task to end (SIGTERM for processes), waits up to grace,
	// then kills it. It returns when the task has ended or cannot be ended.
	Stop(grace time.Duration) error
	// Detach stops watching the task without stopping it, so a new agent
	// process (or a new Agent on the same data dir) can re-attach. Exited is
	// never closed after Detach unless the task had already ended.
	Detach()
}

// TaskConfig is everything a driver needs to start one allocation's task.
type TaskConfig struct {
	AllocID    string
	JobID      string
	AllocIndex int
	JobType    structs.JobType
	Config     map[string]any
	Env        map[string]string
	Resources  structs.Resources
	// Logs bounds the task's log files (zero fields take the defaults).
	Logs structs.LogConfig
	// AllocDir is <data-dir>/allocs/<alloc-id>, created by the caller;
	// task logs go there as rotated stdout.log.<offset> and
	// stderr.log.<offset> files (package tasklog).
	AllocDir string
	// Ports are host ports the agent reserved for this task. Drivers that
	// give a task its own network (docker) publish each one; others ignore
	// them. Nil until the agent allocates ports.
	Ports []PortMapping
	// Mounts are the job's volumes this task mounts.
	Mounts []Mount
	// TaskName is the task of the allocation this is: "" for the main
	// task, the name for an extra one (task groups). Drivers that name
	// what they create after the allocation (containers) add it.
	TaskName string
}

// Mount kinds.
const (
	MountHost         = "host"   // Source is a host directory (a declared host volume)
	MountDockerVolume = "docker" // Source is a Docker named volume
)

// Mount is a volume the agent mounts into a task. Drivers that give a task
// its own file system (docker) mount it at Target; the exec driver, which
// has no mount namespace, passes a host path as GANTRY_VOLUME_<VOLUME>.
type Mount struct {
	// Volume is the job's name for the volume.
	Volume   string `json:"volume"`
	Kind     string `json:"kind"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// PortMapping publishes one host port to a task.
type PortMapping struct {
	// Label names the port ("http"); it is what jobs refer to.
	Label string `json:"label,omitempty"`
	// HostIP is the host address to bind ("" = all addresses).
	HostIP   string `json:"host_ip,omitempty"`
	HostPort int    `json:"host_port"`
	// ContainerPort is the port inside the task's network (0 = HostPort).
	ContainerPort int `json:"container_port,omitempty"`
	// Protocol is "tcp" (the default when empty) or "udp".
	Protocol string `json:"protocol,omitempty"`
}

// Handle is the JSON-serializable identity of a started task. State is
// private to the driver that made it.
type Handle struct {
	Driver    string          `json:"driver"`
	AllocID   string          `json:"alloc_id"`
	AllocDir  string          `json:"alloc_dir"`
	StartedAt int64           `json:"started_at"` // unix nanoseconds
	PID       int             `json:"pid,omitempty"`
	State     json.RawMessage `json:"state,omitempty"`
}

// ExitResult is how a task ended.
type ExitResult struct {
	// ExitCode is the process exit code; 128+signal when killed by one.
	ExitCode int
	// Signal is the signal that killed the task, or 0.
	Signal int
	// OOMKilled says the kernel killed the task for exceeding its memory
	// limit (reported by drivers that can tell, such as docker).
	OOMKilled bool
	// Err is set when the task's end could not be observed (its supervisor
	// vanished without recording an exit code): the task is lost.
	Err        error
	FinishedAt time.Time
}

// Successful reports an exit code of 0 without a signal or loss.
func (r ExitResult) Successful() bool { return r.ExitCode == 0 && r.Signal == 0 && r.Err == nil }

func (r ExitResult) String() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.OOMKilled:
		return fmt.Sprintf("out of memory: killed at its memory limit (exit code %d)", r.ExitCode)
	case r.Signal != 0:
		return fmt.Sprintf("killed by signal %d (exit code %d)", r.Signal, r.ExitCode)
	default:
		return fmt.Sprintf("exit code %d", r.ExitCode)
	}
}

// Fingerprinter is implemented by drivers whose availability depends on the
// machine (docker needs a reachable daemon). The agent merges the attributes
// into the node's at start, so jobs can constrain on them
// ("attr.driver.docker = true"); an unavailable driver returns none.
type Fingerprinter interface {
	Fingerprint(ctx context.Context) map[string]string
}

// Cleaner is implemented by drivers whose tasks leave resources outside the
// agent's data dir (docker containers). The agent calls Cleanup after it has
// re-attached to its tasks and then periodically; the driver removes what it
// created for allocations owns does not report as live. It returns how many
// resources it removed.
type Cleaner interface {
	Cleanup(ctx context.Context, owns func(allocID string) bool) (int, error)
}

// ErrStartFailed marks errors from Start that come from the task itself
// (bad command, mock fail_start) rather than from the agent.
var ErrStartFailed = errors.New("task failed to start")
