package structs

import "fmt"

// Task groups (Nomad's job → group → task). A job either describes one
// group with its top-level fields (the form every document had before
// groups: the implicit group, named after the job) or lists its groups
// under Groups, each with its own count, resources, ports, volumes,
// services and tasks. The scheduler, the agent and the service catalog
// work on a group's view (GroupView): a Job whose top-level fields are
// that group's, so everything written for one-group jobs serves each
// group unchanged. An allocation records its group (Allocation.Group, ""
// for the implicit group); copy indexes count per group.

// MaxGroups bounds the groups of one job.
const MaxGroups = 32

// TaskGroup is one group of a job with Groups: Count copies of its tasks,
// each copy placed on one node. Its fields mean what the job's top-level
// fields of the same names mean in a one-group job: Driver, Config, Env,
// Resources and VolumeMounts describe the group's main task (named after
// the group), Tasks the others.
type TaskGroup struct {
	Name  string `json:"name" yaml:"name"`
	Count int    `json:"count" yaml:"count"`
	// Constraints are added to the job's.
	Constraints []Constraint `json:"constraints,omitempty" yaml:"constraints,omitempty"`

	Resources    Resources                `json:"resources" yaml:"resources"`
	Driver       string                   `json:"driver" yaml:"driver"`
	Config       map[string]any           `json:"config,omitempty" yaml:"config,omitempty"`
	Env          map[string]string        `json:"env,omitempty" yaml:"env,omitempty"`
	Network      *Network                 `json:"network,omitempty" yaml:"network,omitempty"`
	Services     []Service                `json:"services,omitempty" yaml:"services,omitempty"`
	Volumes      map[string]VolumeRequest `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	VolumeMounts []VolumeMount            `json:"volume_mounts,omitempty" yaml:"volume_mounts,omitempty"`
	Tasks        []Task                   `json:"tasks,omitempty" yaml:"tasks,omitempty"`

	// Restart, Reschedule and Logs left out (zero) take the job's.
	Restart    RestartPolicy    `json:"restart" yaml:"restart"`
	Reschedule ReschedulePolicy `json:"reschedule" yaml:"reschedule"`
	Logs       LogConfig        `json:"logs" yaml:"logs"`

	// Update and Migrate are not supported per group yet: Validate
	// refuses them with a clear message rather than the parser calling
	// them unknown fields.
	Update  *UpdateStrategy  `json:"update,omitempty" yaml:"update,omitempty"`
	Migrate *MigrateStrategy `json:"migrate,omitempty" yaml:"migrate,omitempty"`
}

// HasGroups reports whether the job lists its groups (Groups) rather than
// being one implicit group.
func (j *Job) HasGroups() bool { return len(j.Groups) > 0 }

// MainTask is the name of a copy's main task: the group's in a group's
// view, else the job's (as `alloc exec --task` always had it).
func (j *Job) MainTask() string {
	if j.Group != "" {
		return j.Group
	}
	return j.Name
}

// GroupNames lists the job's groups in order; a one-group job has one
// group, named "" (the implicit group).
func (j *Job) GroupNames() []string {
	if !j.HasGroups() {
		return []string{""}
	}
	out := make([]string, len(j.Groups))
	for i := range j.Groups {
		out[i] = j.Groups[i].Name
	}
	return out
}

// LookupGroup returns the group of that name, or nil.
func (j *Job) LookupGroup(name string) *TaskGroup {
	for i := range j.Groups {
		if j.Groups[i].Name == name {
			return &j.Groups[i]
		}
	}
	return nil
}

// GroupView returns the job as one group sees it: the job's fields with
// the group's in place of the top-level group fields, Groups nil and
// Group set to the group's name. A job without Groups is its own view
// (name ""), and so is a view already (Group == name); nil when the job
// has no such group. The view shares maps and slices with the job: treat
// it as read-only, as stored jobs are.
func (j *Job) GroupView(name string) *Job {
	if j == nil || !j.HasGroups() {
		if j != nil && j.Group != name {
			return nil
		}
		return j
	}
	g := j.LookupGroup(name)
	if g == nil {
		return nil
	}
	v := *j
	v.Groups = nil
	v.Group = g.Name
	v.Count = g.Count
	switch {
	case len(g.Constraints) == 0:
	case len(j.Constraints) == 0:
		v.Constraints = g.Constraints
	default:
		v.Constraints = append(append(make([]Constraint, 0, len(j.Constraints)+len(g.Constraints)), j.Constraints...), g.Constraints...)
	}
	v.Resources, v.Driver, v.Config, v.Env = g.Resources, g.Driver, g.Config, g.Env
	v.Network, v.Services = g.Network, g.Services
	v.Volumes, v.VolumeMounts, v.Tasks = g.Volumes, g.VolumeMounts, g.Tasks
	if g.Restart != (RestartPolicy{}) {
		v.Restart = g.Restart
	}
	if g.Reschedule != (ReschedulePolicy{}) {
		v.Reschedule = g.Reschedule
	}
	if g.Logs != (LogConfig{}) {
		v.Logs = g.Logs.WithDefaults()
	}
	v.Update, v.Migrate = g.Update, g.Migrate
	return &v
}

// AllocGroupName is the display name of copy idx of a group: Nomad's
// "job.group[idx]", and "job[idx]" for the implicit group.
func AllocGroupName(job, group string, idx int) string {
	if group == "" {
		return AllocName(job, idx)
	}
	return AllocName(job+"."+group, idx)
}

// canonicalizeGroups fills what a job with groups derives: its Count is
// the sum of its groups' (what `job status` and the job list show).
func (j *Job) canonicalizeGroups() {
	if !j.HasGroups() {
		return
	}
	n := 0
	for i := range j.Groups {
		n += j.Groups[i].Count
	}
	j.Count = n
}

// validateGroups checks a job with groups: the job's own fields that a
// group takes over must be left out, and each group is checked through
// its view with the rules of a one-group job, its fields named
// "groups[i].<field>".
func (j *Job) validateGroups(e *ValidationError, drivers DriverRules) {
	if len(j.Groups) > MaxGroups {
		e.add("groups", "at most %d groups per job (got %d)", MaxGroups, len(j.Groups))
		return
	}
	if j.Type.PerNode() {
		e.add("groups", "a %s job runs one copy per node of its single group: describe it without groups", j.Type)
	}
	for _, f := range groupOnlyFields(j) {
		e.add(f, "a job with groups describes its tasks in each group: move %s into the groups", f)
	}
	if j.Update != nil || j.Migrate != nil {
		e.add("update", "rolling updates and migrate blocks are not supported for jobs with groups yet: leave them out (a new version replaces the copies at once, drains move them at once)")
	}
	seen := map[string]bool{}
	for i := range j.Groups {
		g := &j.Groups[i]
		f := fmt.Sprintf("groups[%d]", i)
		if validName(e, f, g.Name) && seen[g.Name] {
			e.add(f+".name", "group %q is given twice: group names are unique in a job", g.Name)
		}
		seen[g.Name] = true
		if g.Count < 0 || g.Count > MaxCount {
			e.add(f+".count", "must be between 0 and %d (got %d)", MaxCount, g.Count)
		}
		for k, c := range g.Constraints {
			validateConstraint(e, fmt.Sprintf("%s.constraints[%d]", f, k), c)
		}
		if g.Update != nil || g.Migrate != nil {
			e.add(f+".update", "rolling updates and migrate blocks are not supported per group yet: leave them out")
		}
		if g.Driver == "" && len(g.Tasks) == 0 {
			e.add(f, "a group with no tasks: give its main task's driver, resources and config (and more tasks under tasks)")
			continue
		}
		// The view carries the group's fields where the rules of a
		// one-group job look for them.
		v := *j
		v.Groups, v.Group, v.Constraints = nil, g.Name, nil
		v.Resources, v.Driver, v.Config, v.Env = g.Resources, g.Driver, g.Config, g.Env
		v.Network, v.Services = g.Network, g.Services
		v.Volumes, v.VolumeMounts, v.Tasks = g.Volumes, g.VolumeMounts, g.Tasks
		v.Restart, v.Reschedule, v.Logs = g.Restart, g.Reschedule, g.Logs
		if v.Restart == (RestartPolicy{}) {
			v.Restart = j.Restart
		} else if v.Restart.DelayFunction == "" {
			v.Restart.DelayFunction = DelayConstant
		}
		if v.Reschedule == (ReschedulePolicy{}) {
			v.Reschedule = j.Reschedule
		} else if v.Reschedule.DelayFunction == "" {
			v.Reschedule.DelayFunction = DelayConstant
		}
		if v.Logs == (LogConfig{}) {
			v.Logs = j.Logs
		} else {
			v.Logs = v.Logs.WithDefaults()
		}
		sub := &ValidationError{}
		v.validateSpec(sub, drivers)
		for _, fe := range sub.Errors {
			fe.Field = f + "." + fe.Field
			e.Errors = append(e.Errors, fe)
		}
	}
}

// canonicalizeGroupPolicies gives each group's own restart and reschedule
// blocks the meaning Canonicalize gives the job's: a block written
// without delay_function is constant.
func (j *Job) canonicalizeGroupPolicies() {
	for i := range j.Groups {
		g := &j.Groups[i]
		if g.Restart != (RestartPolicy{}) && g.Restart.DelayFunction == "" {
			g.Restart.DelayFunction = DelayConstant
		}
		if g.Reschedule != (ReschedulePolicy{}) && g.Reschedule.DelayFunction == "" {
			g.Reschedule.DelayFunction = DelayConstant
		}
		if g.Logs != (LogConfig{}) {
			g.Logs = g.Logs.WithDefaults()
		}
	}
}

// groupOnlyFields lists the top-level fields a job with groups sets but
// must leave to its groups.
func groupOnlyFields(j *Job) []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(j.Resources != (Resources{}), "resources")
	add(j.Driver != "", "driver")
	add(len(j.Config) > 0, "config")
	add(len(j.Env) > 0, "env")
	add(j.Network != nil, "network")
	add(len(j.Services) > 0, "services")
	add(len(j.Volumes) > 0, "volumes")
	add(len(j.VolumeMounts) > 0, "volume_mounts")
	add(len(j.Tasks) > 0, "tasks")
	return out
}

// copyGroups deep-copies the groups of j into c.
func (j *Job) copyGroups(c *Job) {
	if j.Groups == nil {
		return
	}
	c.Groups = make([]TaskGroup, len(j.Groups))
	for i := range j.Groups {
		g := j.Groups[i]
		// A group's fields are a one-group job's: copy them as Copy does.
		tmp := (&Job{
			Constraints: g.Constraints, Env: g.Env, Config: g.Config, Network: g.Network,
			Services: g.Services, Volumes: g.Volumes, VolumeMounts: g.VolumeMounts, Tasks: g.Tasks,
			Update: g.Update, Migrate: g.Migrate,
		}).Copy()
		g.Constraints, g.Env, g.Config, g.Network = tmp.Constraints, tmp.Env, tmp.Config, tmp.Network
		g.Services, g.Volumes, g.VolumeMounts, g.Tasks = tmp.Services, tmp.Volumes, tmp.VolumeMounts, tmp.Tasks
		g.Update, g.Migrate = tmp.Update, tmp.Migrate
		c.Groups[i] = g
	}
}

// GroupSpecChanged reports whether a group's spec differs between two
// versions of a job (what its copies run or where they may run).
func GroupSpecChanged(old, updated *Job, group string) bool {
	a, b := old.GroupView(group), updated.GroupView(group)
	if a == nil || b == nil {
		return a != b
	}
	return SpecChanged(a, b)
}
