package structs

import (
	"slices"
	"time"
)

// UpdateStrategy is a service job's `update` block: how a new version
// replaces the copies of the old one (Nomad's update stanza). Defaults
// (Canonicalize) are Nomad's.
type UpdateStrategy struct {
	// MaxParallel is how many new copies may be placed and not yet
	// healthy at once; 0 turns rolling off (every copy replaced at once,
	// no deployment).
	MaxParallel int `json:"max_parallel" yaml:"max_parallel"`
	// MinHealthyTime is how long a new copy must run, without a restart,
	// to count as healthy.
	MinHealthyTime Duration `json:"min_healthy_time" yaml:"min_healthy_time"`
	// HealthyDeadline is how long a new copy has, from its placement, to
	// become healthy; past it, it is unhealthy.
	HealthyDeadline Duration `json:"healthy_deadline" yaml:"healthy_deadline"`
	// ProgressDeadline fails the deployment when no copy became healthy
	// for this long (0: no deadline).
	ProgressDeadline Duration `json:"progress_deadline" yaml:"progress_deadline"`
	// Stagger is accepted for Nomad documents; Nomad uses it for system
	// jobs only, which do not roll here (docs/jobs.md).
	Stagger Duration `json:"stagger" yaml:"stagger"`
	// Canary is how many new copies are placed beside the old ones before
	// the rest roll; the deployment waits for promotion.
	Canary int `json:"canary" yaml:"canary"`
	// AutoPromote promotes the canaries once they are all healthy.
	AutoPromote bool `json:"auto_promote" yaml:"auto_promote"`
	// AutoRevert registers the last stable version again when the
	// deployment fails.
	AutoRevert bool `json:"auto_revert" yaml:"auto_revert"`
}

// MigrateStrategy is a job's `migrate` block: how copies leave a draining
// node.
type MigrateStrategy struct {
	// MaxParallel is how many copies may be moving (stopped on the
	// draining node, replacement not yet healthy) at once.
	MaxParallel int `json:"max_parallel" yaml:"max_parallel"`
	// MinHealthyTime is how long a replacement must run to count as
	// healthy.
	MinHealthyTime Duration `json:"min_healthy_time" yaml:"min_healthy_time"`
	// HealthyDeadline is how long a replacement has to become healthy; a
	// replacement past it no longer holds the next move back.
	HealthyDeadline Duration `json:"healthy_deadline" yaml:"healthy_deadline"`
}

// Nomad's defaults for the update and migrate blocks.
const (
	DefaultMaxParallel      = 1
	DefaultMinHealthyTime   = Duration(10 * time.Second)
	DefaultHealthyDeadline  = Duration(5 * time.Minute)
	DefaultProgressDeadline = Duration(10 * time.Minute)
	DefaultStagger          = Duration(30 * time.Second)
)

// canonicalizeUpdate fills the update and migrate blocks' defaults: a
// field left at zero takes Nomad's default (max_parallel stays as written
// when the block sets any other field, so `max_parallel: 0` can turn
// rolling off).
func (j *Job) canonicalizeUpdate() {
	if u := j.Update; u != nil {
		if *u == (UpdateStrategy{}) {
			u.MaxParallel = DefaultMaxParallel
		}
		if u.MinHealthyTime == 0 {
			u.MinHealthyTime = DefaultMinHealthyTime
		}
		if u.HealthyDeadline == 0 {
			u.HealthyDeadline = DefaultHealthyDeadline
		}
		if u.ProgressDeadline == 0 {
			u.ProgressDeadline = DefaultProgressDeadline
		}
		if u.Stagger == 0 {
			u.Stagger = DefaultStagger
		}
	}
	if m := j.Migrate; m != nil {
		if m.MaxParallel == 0 {
			m.MaxParallel = DefaultMaxParallel
		}
		if m.MinHealthyTime == 0 {
			m.MinHealthyTime = DefaultMinHealthyTime
		}
		if m.HealthyDeadline == 0 {
			m.HealthyDeadline = DefaultHealthyDeadline
		}
	}
}

// validateUpdate checks the update and migrate blocks, after defaults.
func validateUpdate(e *ValidationError, j *Job) {
	if u := j.Update; u != nil {
		if j.Type != JobTypeService {
			e.add("update", "only service jobs roll (got type %q)", j.Type)
		}
		if u.MaxParallel < 0 || u.MaxParallel > MaxCount {
			e.add("update.max_parallel", "must be between 0 and %d (got %d)", MaxCount, u.MaxParallel)
		}
		if u.Canary < 0 || u.Canary > MaxCount {
			e.add("update.canary", "must be between 0 and %d (got %d)", MaxCount, u.Canary)
		}
		if u.Canary > 0 && u.MaxParallel == 0 {
			e.add("update.canary", "needs max_parallel > 0 (a deployment)")
		}
		if u.AutoPromote && u.Canary == 0 {
			e.add("update.auto_promote", "needs canary > 0")
		}
		if u.AutoRevert && u.MaxParallel == 0 {
			e.add("update.auto_revert", "needs max_parallel > 0 (a deployment)")
		}
		if u.MinHealthyTime < 0 {
			e.add("update.min_healthy_time", "must be >= 0 (got %s)", u.MinHealthyTime)
		}
		if u.HealthyDeadline <= 0 {
			e.add("update.healthy_deadline", "must be > 0 (got %s)", u.HealthyDeadline)
		} else if u.MinHealthyTime >= u.HealthyDeadline {
			e.add("update.min_healthy_time", "must be less than healthy_deadline (%s >= %s)", u.MinHealthyTime, u.HealthyDeadline)
		}
		if u.ProgressDeadline < 0 {
			e.add("update.progress_deadline", "must be >= 0 (got %s)", u.ProgressDeadline)
		} else if u.ProgressDeadline > 0 && u.ProgressDeadline < u.HealthyDeadline {
			e.add("update.progress_deadline", "must be 0 (none) or at least healthy_deadline (%s < %s)", u.ProgressDeadline, u.HealthyDeadline)
		}
		if u.Stagger < 0 {
			e.add("update.stagger", "must be >= 0 (got %s)", u.Stagger)
		}
	}
	if m := j.Migrate; m != nil {
		if j.Type.PerNode() {
			e.add("migrate", "system and sysbatch copies do not move (got type %q)", j.Type)
		}
		if m.MaxParallel < 1 || m.MaxParallel > MaxCount {
			e.add("migrate.max_parallel", "must be between 1 and %d (got %d)", MaxCount, m.MaxParallel)
		}
		if m.MinHealthyTime < 0 {
			e.add("migrate.min_healthy_time", "must be >= 0 (got %s)", m.MinHealthyTime)
		}
		if m.HealthyDeadline <= 0 {
			e.add("migrate.healthy_deadline", "must be > 0 (got %s)", m.HealthyDeadline)
		} else if m.MinHealthyTime >= m.HealthyDeadline {
			e.add("migrate.min_healthy_time", "must be less than healthy_deadline (%s >= %s)", m.MinHealthyTime, m.HealthyDeadline)
		}
	}
}

// Rolls reports whether the job's new versions roll through deployments.
func (j *Job) Rolls() bool {
	return j.Update != nil && j.Update.MaxParallel > 0 && j.Type == JobTypeService
}

// DrainLimit returns how many copies of the job may move off draining
// nodes at once and the health rule of their replacements; ok is false
// when the job sets neither a migrate nor an update block (its copies all
// move at once, as before those blocks existed).
func (j *Job) DrainLimit() (maxParallel int, minHealthy, healthyDeadline time.Duration, ok bool) {
	switch {
	case j.Migrate != nil:
		return j.Migrate.MaxParallel, j.Migrate.MinHealthyTime.D(), j.Migrate.HealthyDeadline.D(), true
	case j.Update != nil && j.Update.MaxParallel > 0:
		return j.Update.MaxParallel, j.Update.MinHealthyTime.D(), j.Update.HealthyDeadline.D(), true
	}
	return 0, 0, 0, false
}

// Deployment statuses.
const (
	DeploymentRunning    = "running"
	DeploymentPaused     = "paused"
	DeploymentSuccessful = "successful"
	DeploymentFailed     = "failed"
	DeploymentCancelled  = "cancelled"
)

// Deployment tracks one job version replacing the copies of the previous
// ones. The leader's deployment watcher records which new copies became
// healthy or unhealthy, and the reconciler reads it to size the next wave.
type Deployment struct {
	ID         string `json:"id"`
	JobID      string `json:"job_id"`
	Namespace  string `json:"namespace"`
	JobVersion uint64 `json:"job_version"`
	// Strategy is the job's update block at this version.
	Strategy UpdateStrategy `json:"strategy"`
	Status   string         `json:"status"`
	// StatusDescription says why the status is what it is.
	StatusDescription string `json:"status_description,omitempty"`
	// DesiredCanaries is the number of canaries (0 when there was nothing
	// to replace: a first version has no canaries).
	DesiredCanaries int  `json:"desired_canaries"`
	Promoted        bool `json:"promoted"`
	// Canaries are the new copies placed beside old ones before promotion.
	Canaries []string `json:"canaries,omitempty"`
	// Healthy and Unhealthy are new copies' IDs, sorted, as the watcher
	// found them; at most the job's count plus canaries each.
	Healthy   []string `json:"healthy,omitempty"`
	Unhealthy []string `json:"unhealthy,omitempty"`
	// RequireProgressBy is when the deployment fails if no copy became
	// healthy meanwhile (unix ns; 0: no progress deadline). It is moved
	// forward on every healthy copy and on resume.
	RequireProgressBy int64 `json:"require_progress_by,omitempty"`
	// RevertedTo, when set, is the version the failure registered again
	// (auto_revert).
	RevertedTo  uint64 `json:"reverted_to,omitempty"`
	CreateTime  int64  `json:"create_time"`
	ModifyTime  int64  `json:"modify_time"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// Active reports whether the deployment may still change copies.
func (d *Deployment) Active() bool {
	return d.Status == DeploymentRunning || d.Status == DeploymentPaused
}

// InCanaryPhase reports whether the deployment waits for its canaries'
// promotion.
func (d *Deployment) InCanaryPhase() bool { return d.DesiredCanaries > 0 && !d.Promoted }

// IsHealthy reports whether the watcher found the copy healthy.
func (d *Deployment) IsHealthy(allocID string) bool {
	_, ok := slices.BinarySearch(d.Healthy, allocID)
	return ok
}

// IsUnhealthy reports whether the watcher found the copy unhealthy.
func (d *Deployment) IsUnhealthy(allocID string) bool {
	_, ok := slices.BinarySearch(d.Unhealthy, allocID)
	return ok
}

// Copy returns a deep copy.
func (d *Deployment) Copy() *Deployment {
	if d == nil {
		return nil
	}
	c := *d
	c.Canaries = slices.Clone(d.Canaries)
	c.Healthy = slices.Clone(d.Healthy)
	c.Unhealthy = slices.Clone(d.Unhealthy)
	return &c
}

// DeploymentUpsertRequest stores deployments as given (the leader's
// watcher and the deployment API). A deployment that becomes successful
// marks its job version stable.
type DeploymentUpsertRequest struct {
	Deployments []*Deployment `json:"deployments"`
	Time        int64         `json:"time"`
}

// DeploymentActionResponse answers a pause, resume, fail or promote: the
// deployment as stored, and the Raft index of the change.
type DeploymentActionResponse struct {
	Deployment *Deployment `json:"deployment"`
	Index      uint64      `json:"index"`
}

// HealthState is a copy's health under a deployment's or a migration's
// rule.
type HealthState int

const (
	// HealthPending: not decided yet; At is when it will be healthy if
	// it keeps running (zero: not running yet).
	HealthPending HealthState = iota
	HealthHealthy
	HealthUnhealthy
)

// CopyHealth decides a new copy's health at now: the one place the rule
// is written (the deployment watcher and drains use it).
//
// A copy is unhealthy when it failed, was lost, exited, or restarted, or
// was not healthy healthyDeadline after its placement (0: no deadline).
// It is healthy once it has been healthy for minHealthy: as its agent
// reports it (Allocation.Health: Healthy held since Health.Time) when the
// agent reports health, and when it does not (nil: an agent from before
// health checks) once it has run (client status running, task started)
// for minHealthy. needReport (the job declares checks) makes a report
// necessary: running is not enough for a copy whose checks were not yet
// seen passing. For a pending copy, at is when it becomes healthy if
// nothing changes, or the healthy deadline, or zero.
func CopyHealth(a *Allocation, minHealthy, healthyDeadline time.Duration, needReport bool, now time.Time) (state HealthState, at time.Time, why string) {
	switch {
	case a.ClientStatus == AllocClientFailed || a.ClientStatus == AllocClientLost:
		return HealthUnhealthy, time.Time{}, "copy " + a.ClientStatus
	case a.ClientStatus == AllocClientComplete:
		return HealthUnhealthy, time.Time{}, "copy exited"
	case a.TaskState.Restarts > 0:
		return HealthUnhealthy, time.Time{}, "copy restarted"
	}
	if a.ClientStatus == AllocClientRunning {
		switch h := a.Health; {
		case h != nil && h.Healthy && h.Time > 0:
			at = time.Unix(0, h.Time).Add(minHealthy)
		case h == nil && !needReport && a.TaskState.StartedAt > 0:
			at = time.Unix(0, a.TaskState.StartedAt).Add(minHealthy)
		}
		if !at.IsZero() && !now.Before(at) {
			return HealthHealthy, time.Time{}, ""
		}
	}
	if healthyDeadline > 0 && a.CreateTime > 0 {
		deadline := time.Unix(0, a.CreateTime).Add(healthyDeadline)
		if !now.Before(deadline) {
			return HealthUnhealthy, time.Time{}, "not healthy within healthy_deadline " + healthyDeadline.String()
		}
		return HealthPending, minTime(at, deadline), ""
	}
	return HealthPending, at, ""
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
