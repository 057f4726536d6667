package structs

import (
	"encoding/json"
	"reflect"
)

// JobType says how the scheduler treats a job's tasks.
type JobType string

const (
	// JobTypeService keeps Count copies running forever, replacing and
	// restarting them as needed.
	JobTypeService JobType = "service"
	// JobTypeBatch runs Count copies to completion; successful copies are
	// never run again, failed ones are retried per the reschedule policy.
	JobTypeBatch JobType = "batch"
)

// JobStatus is the lifecycle of a job as a whole.
type JobStatus string

const (
	JobStatusPending JobStatus = "pending" // registered, nothing running yet
	JobStatusRunning JobStatus = "running" // at least one allocation live
	JobStatusDead    JobStatus = "dead"    // stopped, or a batch job that finished
)

// Placement strategies for ranking feasible nodes.
const (
	PlacementBinpack = "binpack" // fill the fullest node that fits (default)
	PlacementSpread  = "spread"  // prefer the emptiest node
)

// Constraint operators on node labels.
const (
	OpEqual    = "="
	OpNotEqual = "!="
	OpIn       = "in"
	OpRegexp   = "regexp"
)

// Constraint restricts which nodes may run a job. Label names a node label,
// or a fingerprinted attribute as "attr.<name>" (attr.os, attr.arch).
// A node without the label fails "=", "in" and "regexp" and passes "!=".
type Constraint struct {
	Label    string   `json:"label" yaml:"label"`
	Operator string   `json:"op" yaml:"op"`
	Value    string   `json:"value,omitempty" yaml:"value,omitempty"`
	Values   []string `json:"values,omitempty" yaml:"values,omitempty"`
}

// String renders the constraint as users write it: "zone = a".
func (c Constraint) String() string {
	if c.Operator == OpIn {
		b, _ := json.Marshal(c.Values)
		return c.Label + " in " + string(b)
	}
	return c.Label + " " + c.Operator + " " + c.Value
}

// RestartPolicy governs restarts of a task in place, on its node, by the
// agent, after the task exits (service: any exit; batch: a non-zero exit).
type RestartPolicy struct {
	// Attempts is how many restarts are allowed within Interval.
	Attempts int `json:"attempts" yaml:"attempts"`
	// Interval is the window over which Attempts are counted.
	Interval Duration `json:"interval" yaml:"interval"`
	// Delay is the wait before the first restart within Interval; the
	// waits before later ones follow DelayFunction (backoff.go).
	Delay Duration `json:"delay" yaml:"delay"`
	// DelayFunction is how the wait grows with each restart within
	// Interval: DelayConstant, DelayExponential or DelayFibonacci.
	DelayFunction string `json:"delay_function,omitempty" yaml:"delay_function,omitempty"`
	// MaxDelay caps the wait of the exponential and fibonacci functions.
	MaxDelay Duration `json:"max_delay,omitempty" yaml:"max_delay,omitempty"`
}

// ReschedulePolicy governs replacing a failed allocation with a new one,
// possibly on another node, by the scheduler, once restarts are exhausted.
type ReschedulePolicy struct {
	// Attempts is the number of replacements; ignored when Unlimited.
	Attempts  int  `json:"attempts" yaml:"attempts"`
	Unlimited bool `json:"unlimited" yaml:"unlimited"`
	// Delay is the wait before the first replacement of a chain; the
	// waits before later ones follow DelayFunction (backoff.go).
	Delay Duration `json:"delay" yaml:"delay"`
	// DelayFunction is how the wait grows with each replacement:
	// DelayConstant, DelayExponential or DelayFibonacci.
	DelayFunction string `json:"delay_function,omitempty" yaml:"delay_function,omitempty"`
	// MaxDelay caps the wait of the exponential and fibonacci functions.
	// A failed copy that ran for longer than MaxDelay starts the backoff
	// over (Delay again).
	MaxDelay Duration `json:"max_delay,omitempty" yaml:"max_delay,omitempty"`
}

// Task log limits: Nomad's defaults, and bounds that keep one job from
// claiming a node's disk by mistake.
const (
	DefaultLogMaxFiles      = 10
	DefaultLogMaxFileSizeMB = 10
	MaxLogFiles             = 100
	MaxLogFileSizeMB        = 10 * 1024
)

// LogConfig bounds what a task's output takes on its node: stdout and
// stderr are each kept as at most MaxFiles files of at most MaxFileSizeMB
// MiB; the oldest file is deleted when a new one starts.
type LogConfig struct {
	MaxFiles      int `json:"max_files" yaml:"max_files"`
	MaxFileSizeMB int `json:"max_file_size_mb" yaml:"max_file_size_mb"`
}

// WithDefaults fills the fields left at zero. Agents apply it too, for jobs
// stored before the field existed.
func (l LogConfig) WithDefaults() LogConfig {
	if l.MaxFiles == 0 {
		l.MaxFiles = DefaultLogMaxFiles
	}
	if l.MaxFileSizeMB == 0 {
		l.MaxFileSizeMB = DefaultLogMaxFileSizeMB
	}
	return l
}

// Job is a unit of work users submit: Count copies of one task group, or
// the groups listed under Groups (group.go).
//
// Without Groups a job holds a single group: its top-level fields are the
// group's and its main task's, and Tasks adds more tasks to every copy
// (tasks.go), so a one-task document reads as it always did.
type Job struct {
	// ID is the job's identity in state: JobKey(Namespace, Name), which
	// is the name in the default namespace. Registering a job with an
	// existing name in its namespace updates it.
	ID   string `json:"id" yaml:"-"`
	Name string `json:"name" yaml:"name"`
	// Namespace holds the job (DefaultNamespace when not given; a job
	// stored before namespaces existed reads as that).
	Namespace string  `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Type      JobType `json:"type" yaml:"type"`
	Priority  int     `json:"priority" yaml:"priority"`
	Count     int     `json:"count" yaml:"count"`

	Constraints []Constraint `json:"constraints,omitempty" yaml:"constraints,omitempty"`
	// Placement is "binpack" (default) or "spread".
	Placement string `json:"placement,omitempty" yaml:"placement,omitempty"`

	Resources Resources         `json:"resources" yaml:"resources"`
	Driver    string            `json:"driver" yaml:"driver"`
	Config    map[string]any    `json:"config,omitempty" yaml:"config,omitempty"`
	Env       map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	// Network asks for host ports for each copy (network.go).
	Network *Network `json:"network,omitempty" yaml:"network,omitempty"`
	// Services name the copies' endpoints and their health checks (health.go).
	Services []Service `json:"services,omitempty" yaml:"services,omitempty"`
	// Volumes are claimed by each copy and mounted into its tasks by
	// VolumeMounts (the main task's) and Tasks[i].VolumeMounts; Tasks
	// are run beside the main task (tasks.go).
	Volumes      map[string]VolumeRequest `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	VolumeMounts []VolumeMount            `json:"volume_mounts,omitempty" yaml:"volume_mounts,omitempty"`
	Tasks        []Task                   `json:"tasks,omitempty" yaml:"tasks,omitempty"`
	// Groups, when given, are the job's task groups (group.go); the
	// group fields above are then left out, and Count is the sum of the
	// groups' counts.
	Groups []TaskGroup `json:"groups,omitempty" yaml:"groups,omitempty"`
	// Group is set only on a group's view (GroupView): the group's name.
	Group string `json:"group,omitempty" yaml:"-"`

	Restart    RestartPolicy    `json:"restart" yaml:"restart"`
	Reschedule ReschedulePolicy `json:"reschedule" yaml:"reschedule"`
	// Logs bounds the task's stdout and stderr files on its node. A change
	// applies to allocations started after it.
	Logs LogConfig `json:"logs" yaml:"logs"`
	// Update makes a new version roll in waves through a deployment;
	// Migrate bounds how many copies leave a draining node at once
	// (deployment.go). Neither is part of the spec: changing them keeps
	// the version.
	Update  *UpdateStrategy  `json:"update,omitempty" yaml:"update,omitempty"`
	Migrate *MigrateStrategy `json:"migrate,omitempty" yaml:"migrate,omitempty"`

	// Gang asks for all-or-nothing placement: the copies a scheduling pass
	// needs are committed together or not at all (default: incremental,
	// whatever fits is committed).
	Gang bool `json:"gang,omitempty" yaml:"gang,omitempty"`

	// Framework names the framework that schedules the job under the
	// two-level architecture (`gantry server --scheduler two-level`): a
	// built-in one, "service" or "batch"; empty = the one of the job's
	// type (FrameworkFor). The other architectures ignore it.
	Framework string `json:"framework,omitempty" yaml:"framework,omitempty"`

	// Meta is free-form metadata; changing it updates the job in place
	// (no new version, allocations kept). Job types: job_types.go.
	Meta map[string]string `json:"meta,omitempty" yaml:"meta,omitempty"`
	// Periodic makes the job a template launched on a cron schedule.
	Periodic *PeriodicConfig `json:"periodic,omitempty" yaml:"periodic,omitempty"`
	// Parameterized makes the job a template started by dispatches.
	Parameterized *ParameterizedConfig `json:"parameterized,omitempty" yaml:"parameterized,omitempty"`

	// Server-managed fields below; ignored on submit.

	// ParentID is the periodic or parameterized job that launched this
	// one; Payload the dispatch's payload.
	ParentID string `json:"parent_id,omitempty" yaml:"-"`
	Payload  []byte `json:"payload,omitempty" yaml:"-"`

	// FrameworkTask is set on the jobs the server creates for tasks an
	// external framework launches (one job per task, see FrameworkTask);
	// nil for every job users submit.
	FrameworkTask *FrameworkTask `json:"framework_task,omitempty" yaml:"-"`

	// Stop is set by "job stop": all allocations are stopped, the job kept.
	Stop bool `json:"stop" yaml:"-"`
	// StopTime is when the job was stopped (unix nanoseconds; 0 while it
	// is not): garbage collection counts a stopped job's age from it.
	StopTime int64     `json:"stop_time,omitempty" yaml:"-"`
	Status   JobStatus `json:"status" yaml:"-"`
	// Version increases on every change of the task spec (not of Count);
	// allocations of an older version are replaced.
	Version uint64 `json:"version" yaml:"-"`
	// Stable is set once a deployment of this version succeeded;
	// auto_revert goes back to the last stable version.
	Stable      bool   `json:"stable,omitempty" yaml:"-"`
	SubmitTime  int64  `json:"submit_time" yaml:"-"`
	CreateIndex uint64 `json:"create_index" yaml:"-"`
	ModifyIndex uint64 `json:"modify_index" yaml:"-"`
}

// Copy returns a deep copy.
func (j *Job) Copy() *Job {
	if j == nil {
		return nil
	}
	c := *j
	c.Constraints = append([]Constraint(nil), j.Constraints...)
	for i := range c.Constraints {
		c.Constraints[i].Values = append([]string(nil), j.Constraints[i].Values...)
	}
	c.Env = copyMap(j.Env)
	c.Meta = copyMap(j.Meta)
	c.Payload = append([]byte(nil), j.Payload...)
	if j.Periodic != nil {
		p := *j.Periodic
		c.Periodic = &p
	}
	if j.Parameterized != nil {
		p := *j.Parameterized
		p.MetaRequired = append([]string(nil), p.MetaRequired...)
		p.MetaOptional = append([]string(nil), p.MetaOptional...)
		c.Parameterized = &p
	}
	if j.Update != nil {
		u := *j.Update
		c.Update = &u
	}
	if j.Migrate != nil {
		m := *j.Migrate
		c.Migrate = &m
	}
	if j.Network != nil {
		c.Network = &Network{Ports: append([]Port(nil), j.Network.Ports...)}
	}
	c.Services = copyServices(j.Services)
	j.copyTasks(&c)
	j.copyGroups(&c)
	if j.FrameworkTask != nil {
		t := *j.FrameworkTask
		c.FrameworkTask = &t
	}
	if j.Config != nil {
		// Config holds JSON-shaped values; a JSON round trip is the
		// simplest correct deep copy.
		b, _ := json.Marshal(j.Config)
		c.Config = nil
		_ = json.Unmarshal(b, &c.Config)
	}
	return &c
}

// SpecChanged reports whether a new submission changes what a task runs or
// where it may run, which means existing allocations must be replaced. Count,
// priority and policies are not part of it: changing them keeps allocations.
func SpecChanged(old, updated *Job) bool {
	if old == nil || updated == nil || old.Type.PerNode() != updated.Type.PerNode() {
		return true
	}
	type spec struct {
		Constraints []Constraint
		Resources   Resources
		Driver      string
		Config      map[string]any
		Env         map[string]string
		Network     *Network  `json:",omitempty"`
		Services    []Service `json:",omitempty"`
		// Omitted when empty, so jobs without them compare as before.
		Volumes      map[string]VolumeRequest `json:",omitempty"`
		VolumeMounts []VolumeMount            `json:",omitempty"`
		Tasks        []Task                   `json:",omitempty"`
		// Groups without their counts (scaling is no new version).
		Groups []TaskGroup `json:",omitempty"`
	}
	a := spec{old.Constraints, old.Resources, old.Driver, old.Config, old.Env, old.Network, old.Services, old.Volumes, old.VolumeMounts, old.Tasks, uncounted(old.Groups)}
	b := spec{updated.Constraints, updated.Resources, updated.Driver, updated.Config, updated.Env, updated.Network, updated.Services, updated.Volumes, updated.VolumeMounts, updated.Tasks, uncounted(updated.Groups)}
	// Compare through JSON so that map[string]any values decoded from YAML
	// (int) and JSON (float64) compare by meaning.
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return !reflect.DeepEqual(ja, jb)
}

// uncounted returns the groups with their counts at zero (a shallow copy).
func uncounted(gs []TaskGroup) []TaskGroup {
	if gs == nil {
		return nil
	}
	out := append([]TaskGroup(nil), gs...)
	for i := range out {
		out[i].Count = 0
	}
	return out
}
