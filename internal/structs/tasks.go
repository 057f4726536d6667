package structs

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Task groups: a job's top-level fields are its group and the group's main
// task (so one-task documents keep their meaning); Tasks adds more tasks to
// every copy, placed with the main task on one node and sharing its ports
// and volumes. Lifecycle hooks order them around the main task, as Nomad's.
// The main task is named after the job (as `alloc exec --task` always had
// it); extra tasks by their own names.

// Lifecycle hooks of an extra task.
const (
	HookPrestart  = "prestart"  // before the main task starts
	HookPoststart = "poststart" // once the main task has started
	HookPoststop  = "poststop"  // once the main task has ended for good
)

// Limits on task groups and volumes.
const (
	MaxTasks        = 16
	MaxVolumes      = 32
	MaxVolumeMounts = 32
	MaxTaskNameLen  = 64
)

// Volume types a job may claim.
const (
	VolumeTypeHost   = "host"   // a directory the agent declares (--host-volume)
	VolumeTypeDocker = "docker" // a Docker named volume, created by the Engine
)

// NodeAttrHostVolumePrefix starts the node attribute of each host volume an
// agent declares: "host_volume.data" = "rw" or "ro". The path stays on the
// agent; the servers only need to know where a volume exists.
const NodeAttrHostVolumePrefix = "host_volume."

// Task is one more task of a copy, beside the main task.
type Task struct {
	Name      string            `json:"name" yaml:"name"`
	Driver    string            `json:"driver" yaml:"driver"`
	Config    map[string]any    `json:"config,omitempty" yaml:"config,omitempty"`
	Env       map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	Resources Resources         `json:"resources" yaml:"resources"`
	// Lifecycle makes the task a hook; nil runs it beside the main task
	// for the copy's whole life, like a sidecar.
	Lifecycle    *TaskLifecycle `json:"lifecycle,omitempty" yaml:"lifecycle,omitempty"`
	VolumeMounts []VolumeMount  `json:"volume_mounts,omitempty" yaml:"volume_mounts,omitempty"`
}

// TaskLifecycle is when a task runs relative to the main task. Sidecar
// keeps a prestart or poststart task running beside the main one (restarted
// under the restart policy); without it the task runs once to completion.
type TaskLifecycle struct {
	Hook    string `json:"hook" yaml:"hook"`
	Sidecar bool   `json:"sidecar,omitempty" yaml:"sidecar,omitempty"`
}

// VolumeRequest is a volume a copy claims, by the name its tasks mount.
type VolumeRequest struct {
	// Type is VolumeTypeHost or VolumeTypeDocker.
	Type string `json:"type" yaml:"type"`
	// Source is the host volume's name on the agent, or the Docker
	// volume's name.
	Source   string `json:"source" yaml:"source"`
	ReadOnly bool   `json:"read_only,omitempty" yaml:"read_only,omitempty"`
}

// VolumeMount mounts a claimed volume into a task.
type VolumeMount struct {
	Volume      string `json:"volume" yaml:"volume"`
	Destination string `json:"destination" yaml:"destination"`
	ReadOnly    bool   `json:"read_only,omitempty" yaml:"read_only,omitempty"`
}

// IsHook reports whether the task runs once to completion (a prestart,
// poststart or poststop task that is not a sidecar).
func (t *Task) IsHook() bool { return t.Lifecycle != nil && !t.Lifecycle.Sidecar }

// Hook is the task's lifecycle hook; "" for a task without a lifecycle.
func (t *Task) Hook() string {
	if t.Lifecycle == nil {
		return ""
	}
	return t.Lifecycle.Hook
}

// HasTask reports whether the job has an extra task of that name.
func (j *Job) HasTask(name string) bool {
	for i := range j.Tasks {
		if j.Tasks[i].Name == name {
			return true
		}
	}
	return false
}

// TotalResources is what one copy asks of a node: the main task's
// resources plus every extra task's.
func (j *Job) TotalResources() Resources {
	r := j.Resources
	for i := range j.Tasks {
		r = r.Add(j.Tasks[i].Resources)
	}
	return r
}

// Drivers lists the task drivers a copy needs, the main task's first.
func (j *Job) Drivers() []string {
	out := []string{j.Driver}
	for i := range j.Tasks {
		if d := j.Tasks[i].Driver; d != "" && !containsString(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// HostVolumeClaims lists the host volumes a copy needs on its node, sorted
// by source, with whether each may be read-only there (every claim of it
// is read-only).
func (j *Job) HostVolumeClaims() []HostVolumeClaim {
	if len(j.Volumes) == 0 {
		return nil
	}
	by := map[string]bool{}
	for _, v := range j.Volumes {
		if v.Type != VolumeTypeHost {
			continue
		}
		ro, seen := by[v.Source]
		by[v.Source] = (ro || !seen) && v.ReadOnly
	}
	out := make([]HostVolumeClaim, 0, len(by))
	for s, ro := range by {
		out = append(out, HostVolumeClaim{Source: s, ReadOnly: ro})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Source < out[b].Source })
	return out
}

// HostVolumeClaim is one host volume a copy needs.
type HostVolumeClaim struct {
	Source   string
	ReadOnly bool
}

// HostVolume reports whether the node's agent declares the host volume,
// and whether it declares it read-only.
func (n *Node) HostVolume(name string) (exists, readOnly bool) {
	v, ok := n.Attributes[NodeAttrHostVolumePrefix+name]
	return ok, v == "ro"
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// copyTasks deep-copies the task group fields of j into c.
func (j *Job) copyTasks(c *Job) {
	c.VolumeMounts = append([]VolumeMount(nil), j.VolumeMounts...)
	if j.Volumes != nil {
		c.Volumes = make(map[string]VolumeRequest, len(j.Volumes))
		for k, v := range j.Volumes {
			c.Volumes[k] = v
		}
	}
	if j.Tasks == nil {
		return
	}
	c.Tasks = make([]Task, len(j.Tasks))
	for i, t := range j.Tasks {
		t.Env = copyMap(t.Env)
		t.VolumeMounts = append([]VolumeMount(nil), t.VolumeMounts...)
		if t.Lifecycle != nil {
			l := *t.Lifecycle
			t.Lifecycle = &l
		}
		if t.Config != nil {
			b, _ := json.Marshal(t.Config)
			t.Config = nil
			_ = json.Unmarshal(b, &t.Config)
		}
		c.Tasks[i] = t
	}
}

// volumeNameRE keeps volume names usable in environment variable names
// (GANTRY_VOLUME_<NAME>).
var volumeNameRE = portLabelRE

// dockerVolumeRE is the Engine's rule for volume names.
var dockerVolumeRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// VolumeEnvName is the variable that gives an exec task the host path of
// a mounted volume: GANTRY_VOLUME_DATA for "data".
func VolumeEnvName(volume string) string { return "GANTRY_VOLUME_" + strings.ToUpper(volume) }

// validateTasks checks the extra tasks, the volumes and every mount.
func (j *Job) validateTasks(e *ValidationError, drivers DriverRules) {
	if len(j.Volumes) > MaxVolumes {
		e.add("volumes", "at most %d volumes per copy (got %d)", MaxVolumes, len(j.Volumes))
	}
	upper := map[string]string{}
	for _, name := range sortedVolumeNames(j.Volumes) {
		v := j.Volumes[name]
		f := "volumes." + name
		if len(name) > 64 || !volumeNameRE.MatchString(name) {
			e.add(f, "a volume name must start with a letter and hold only letters, digits and '_', at most 64 characters (it names the variable GANTRY_VOLUME_<NAME>)")
		} else if other, dup := upper[strings.ToUpper(name)]; dup {
			e.add(f, "differs from volume %q only in case (their variables would clash)", other)
		}
		upper[strings.ToUpper(name)] = name
		switch v.Type {
		case VolumeTypeHost, VolumeTypeDocker:
		case "":
			e.add(f+".type", "is required: %q or %q", VolumeTypeHost, VolumeTypeDocker)
		default:
			e.add(f+".type", "must be %q or %q (got %q)", VolumeTypeHost, VolumeTypeDocker, v.Type)
		}
		switch {
		case v.Source == "":
			e.add(f+".source", "is required: the %s volume's name", v.Type)
		case len(v.Source) > MaxNameLen || !dockerVolumeRE.MatchString(v.Source):
			e.add(f+".source", "must be a volume name: letters, digits, '_', '-' and '.', at most %d characters (got %q)", MaxNameLen, v.Source)
		}
	}
	j.validateMounts(e, "volume_mounts", j.Driver, j.VolumeMounts)

	if len(j.Tasks) > MaxTasks {
		e.add("tasks", "at most %d tasks besides the main one (got %d)", MaxTasks, len(j.Tasks))
		return
	}
	names := map[string]bool{}
	for i := range j.Tasks {
		t := &j.Tasks[i]
		f := fmt.Sprintf("tasks[%d]", i)
		switch {
		case !validName(e, f, t.Name):
		case t.Name == j.MainTask() && j.Group != "":
			e.add(f+".name", "%q is the group's name, which names the main task (the one the group's driver and config describe)", t.Name)
		case t.Name == j.MainTask():
			e.add(f+".name", "%q is the job's name, which names the main task (the one the job's top-level fields describe)", t.Name)
		case names[t.Name]:
			e.add(f+".name", "%q is given twice", t.Name)
		}
		names[t.Name] = true
		if t.Resources.CPU <= 0 {
			e.add(f+".resources.cpu", "must be > 0 millicores (got %d)", t.Resources.CPU)
		}
		if t.Resources.MemoryMB <= 0 {
			e.add(f+".resources.memory_mb", "must be > 0 MiB (got %d)", t.Resources.MemoryMB)
		}
		for k := range t.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				e.add(f+".env", "variable name %q must be non-empty and contain no '=' or NUL", k)
			}
		}
		if l := t.Lifecycle; l != nil {
			switch l.Hook {
			case HookPrestart, HookPoststart:
			case HookPoststop:
				if l.Sidecar {
					e.add(f+".lifecycle.sidecar", "a poststop task runs once the main task has ended; it cannot run beside it")
				}
			default:
				e.add(f+".lifecycle.hook", "must be %q, %q or %q (got %q)", HookPrestart, HookPoststart, HookPoststop, l.Hook)
			}
		}
		j.validateMounts(e, f+".volume_mounts", t.Driver, t.VolumeMounts)
		validateDriver(e, f+".", t.Driver, t.Config, drivers)
	}
}

func (j *Job) validateMounts(e *ValidationError, field, driver string, mounts []VolumeMount) {
	if len(mounts) > MaxVolumeMounts {
		e.add(field, "at most %d mounts per task (got %d)", MaxVolumeMounts, len(mounts))
		return
	}
	dests := map[string]bool{}
	for i, m := range mounts {
		f := fmt.Sprintf("%s[%d]", field, i)
		v, ok := j.Volumes[m.Volume]
		switch {
		case m.Volume == "":
			e.add(f+".volume", "is required: the name of a volume under volumes")
		case !ok:
			e.add(f+".volume", "%q is not declared under volumes (declared: %s)", m.Volume, strings.Join(sortedVolumeNames(j.Volumes), ", "))
		case v.Type == VolumeTypeDocker && driver != "docker" && driver != "":
			e.add(f+".volume", "%q is a docker volume; only docker tasks can mount it (this task's driver is %q)", m.Volume, driver)
		}
		switch {
		case m.Destination == "":
			e.add(f+".destination", "is required: the path inside the task")
		case !path.IsAbs(m.Destination) || strings.ContainsAny(m.Destination, ":\x00"):
			e.add(f+".destination", "must be an absolute path without ':' (got %q)", m.Destination)
		case dests[path.Clean(m.Destination)]:
			e.add(f+".destination", "%q is mounted twice in this task", m.Destination)
		}
		dests[path.Clean(m.Destination)] = true
	}
}

// validateDriver checks a task's driver and its config block.
func validateDriver(e *ValidationError, prefix, driver string, config map[string]any, drivers DriverRules) {
	if driver == "" {
		e.add(prefix+"driver", "is required")
		return
	}
	if drivers == nil {
		return
	}
	if errs, known := drivers.CheckConfig(driver, config); known {
		for _, fe := range errs {
			fe.Field = prefix + "config." + fe.Field
			e.Errors = append(e.Errors, fe)
		}
	} else if names := drivers.Names(); len(names) == 0 {
		e.add(prefix+"driver", "unknown driver %q (no task driver is registered in this program)", driver)
	} else {
		e.add(prefix+"driver", "unknown driver %q (known: %s)", driver, strings.Join(names, ", "))
	}
}

func sortedVolumeNames(m map[string]VolumeRequest) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// MountReadOnly reports whether a mount is read-only: the mount or the
// volume's claim says so.
func (j *Job) MountReadOnly(m VolumeMount) bool {
	return m.ReadOnly || j.Volumes[m.Volume].ReadOnly
}

// validName reports an empty or malformed task or group name at f.name;
// it says whether the name is well formed.
func validName(e *ValidationError, f, name string) bool {
	switch {
	case name == "":
		e.add(f+".name", "is required")
	case len(name) > MaxTaskNameLen || !nameRE.MatchString(name):
		e.add(f+".name", "must start with a letter or digit and hold only letters, digits, '_', '-' and '.', at most %d characters (got %q)", MaxTaskNameLen, name)
	default:
		return true
	}
	return false
}
