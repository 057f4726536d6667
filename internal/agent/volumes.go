package agent

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// MaxHostVolumes bounds the host volumes one agent declares.
const MaxHostVolumes = 256

// HostVolume is a directory of this node that jobs may claim by name
// (`gantry agent --host-volume name=/path[:ro]`).
type HostVolume struct {
	Path     string
	ReadOnly bool
}

// ParseHostVolume reads "name=/path" or "name=/path:ro" (":rw" is the
// default, written out or not).
func ParseHostVolume(s string) (string, HostVolume, error) {
	name, p, ok := strings.Cut(s, "=")
	if !ok || name == "" || p == "" {
		return "", HostVolume{}, fmt.Errorf("host volume %q: want NAME=/PATH or NAME=/PATH:ro", s)
	}
	var v HostVolume
	if base, mode, ok := cutLast(p, ":"); ok && (mode == "ro" || mode == "rw") {
		p, v.ReadOnly = base, mode == "ro"
	}
	v.Path = p
	if err := checkHostVolume(name, v); err != nil {
		return "", HostVolume{}, err
	}
	return name, v, nil
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func checkHostVolume(name string, v HostVolume) error {
	if len(name) > structs.MaxNameLen || !volumeNameOK(name) {
		return fmt.Errorf("host volume %q: the name must start with a letter or digit and hold only letters, digits, '_', '-' and '.'", name)
	}
	if !filepath.IsAbs(v.Path) || strings.ContainsAny(v.Path, ":\x00") {
		return fmt.Errorf("host volume %s: path %q must be absolute, without ':'", name, v.Path)
	}
	return nil
}

func volumeNameOK(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '_' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// checkHostVolumes validates the declared volumes; a path that is missing
// or not a directory is refused at start, not found by the first task.
func checkHostVolumes(vols map[string]HostVolume) []error {
	var errs []error
	if len(vols) > MaxHostVolumes {
		errs = append(errs, fmt.Errorf("host_volumes: at most %d (got %d)", MaxHostVolumes, len(vols)))
	}
	names := make([]string, 0, len(vols))
	for n := range vols {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := vols[n]
		if err := checkHostVolume(n, v); err != nil {
			errs = append(errs, fmt.Errorf("host_volumes: %w", err))
			continue
		}
		if fi, err := os.Stat(v.Path); err != nil {
			errs = append(errs, fmt.Errorf("host_volumes: %s: %w", n, err))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("host_volumes: %s: %s is not a directory", n, v.Path))
		}
	}
	return errs
}

// advertiseHostVolumes puts the declared volumes into the node's
// attributes, so the scheduler places claims only here.
func advertiseHostVolumes(vols map[string]HostVolume, attrs map[string]string) {
	for n, v := range vols {
		mode := "rw"
		if v.ReadOnly {
			mode = "ro"
		}
		attrs[structs.NodeAttrHostVolumePrefix+n] = mode
	}
}

// taskMounts resolves a task's volume mounts on this node. A host volume
// gone since placement (the agent restarted without it) fails the start
// with a clear error rather than running the task without its data.
func (a *Agent) taskMounts(job *structs.Job, mounts []structs.VolumeMount) ([]driver.Mount, error) {
	var out []driver.Mount
	for _, m := range mounts {
		req, ok := job.Volumes[m.Volume]
		if !ok {
			return nil, fmt.Errorf("volume %q is not declared by the job", m.Volume)
		}
		dm := driver.Mount{Volume: m.Volume, Target: m.Destination, ReadOnly: job.MountReadOnly(m)}
		switch req.Type {
		case structs.VolumeTypeHost:
			hv, ok := a.cfg.HostVolumes[req.Source]
			if !ok {
				return nil, fmt.Errorf("host volume %s is not declared on this node (start the agent with --host-volume %s=/PATH)", req.Source, req.Source)
			}
			if hv.ReadOnly && !dm.ReadOnly {
				return nil, fmt.Errorf("host volume %s is read-only on this node; claim it with read_only: true", req.Source)
			}
			dm.Kind, dm.Source = driver.MountHost, hv.Path
		case structs.VolumeTypeDocker:
			dm.Kind, dm.Source = driver.MountDockerVolume, req.Source
		default:
			return nil, fmt.Errorf("volume %q: unknown type %q", m.Volume, req.Type)
		}
		out = append(out, dm)
	}
	return out, nil
}

// addMounts resolves a task's mounts into cfg and tells the task where
// each volume is as GANTRY_VOLUME_<NAME>: the mount's destination for
// docker tasks, the host directory for the others (the exec driver has no
// mount namespace, so it cannot place the volume at the destination, nor
// make it read-only). The error says why a mount cannot be made here.
func (a *Agent) addMounts(cfg *driver.TaskConfig, drv string, mounts []structs.VolumeMount, job *structs.Job) error {
	if len(mounts) == 0 {
		return nil
	}
	ms, err := a.taskMounts(job, mounts)
	if err != nil {
		return err
	}
	env := make(map[string]string, len(cfg.Env)+len(ms))
	maps.Copy(env, cfg.Env)
	for _, m := range ms {
		where := m.Source
		if drv == "docker" {
			where = m.Target
		}
		env[structs.VolumeEnvName(m.Volume)] = where
	}
	cfg.Env = env
	cfg.Mounts = ms
	return nil
}
