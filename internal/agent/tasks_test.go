package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/structs"
)

// readLines returns a marker file's lines (none when it does not exist).
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func execTask(name, hook string, sidecar bool, script string) structs.Task {
	t := structs.Task{Name: name, Driver: "exec", Config: sh(script), Resources: structs.Resources{CPU: 50, MemoryMB: 16}}
	if hook != "" {
		t.Lifecycle = &structs.TaskLifecycle{Hook: hook, Sidecar: sidecar}
	}
	return t
}

// TestTaskLifecycle: the tasks of a copy run in lifecycle order. The
// prestart hook runs to completion before the main task starts, the
// prestart sidecar runs beside it, the poststart hook after it started;
// stopping the copy stops the main task and the sidecar, then runs the
// poststop hook, and only then reports the copy complete. Every task's
// state and events are reported, each task logs into its own directory,
// and all share the copy's volume.
func TestTaskLifecycle(t *testing.T) {
	fs := newFakeServer(t)
	vol := t.TempDir()
	a := startAgent(t, fs, t.TempDir(), func(c *Config) {
		c.HostVolumes = map[string]HostVolume{"shared": {Path: vol}}
	})
	order := filepath.Join(vol, "order")
	log := func(what string) string { return fmt.Sprintf(`echo %s >> "$GANTRY_VOLUME_DATA/order"`, what) }
	al := testAlloc(a.NodeID(), structs.JobTypeService, "exec",
		sh(log("main")+`; echo main-out; while true; do sleep 0.05; done`))
	j := al.Job
	j.Volumes = map[string]structs.VolumeRequest{"data": {Type: structs.VolumeTypeHost, Source: "shared"}}
	mount := []structs.VolumeMount{{Volume: "data", Destination: "/data"}}
	j.VolumeMounts = mount
	j.Tasks = []structs.Task{
		execTask("setup", structs.HookPrestart, false, `sleep 0.2; `+log("setup")+`; echo setup-out`),
		execTask("side", structs.HookPrestart, true, log("side")+`; while true; do sleep 0.05; done`),
		execTask("after", structs.HookPoststart, false, log("after")),
		execTask("cleanup", structs.HookPoststop, false, log("cleanup")),
	}
	for i := range j.Tasks {
		j.Tasks[i].VolumeMounts = mount
	}
	al.Resources = j.TotalResources()
	fs.addAlloc(al)
	fs.waitStatus(al.ID, structs.AllocClientRunning)
	if got := fs.node(a.NodeID()).Attributes["host_volume.shared"]; got != "rw" {
		t.Fatalf("node attribute host_volume.shared = %q, want rw", got)
	}
	eventually(t, "poststart task done", func() bool {
		ts, ok := fs.alloc(al.ID).TaskStates["after"]
		return ok && ts.State == structs.TaskStateDead
	})
	got := fs.alloc(al.ID)
	for name, want := range map[string]string{"setup": structs.TaskStateDead, "side": structs.TaskStateRunning, "after": structs.TaskStateDead} {
		if ts := got.TaskStates[name]; ts.State != want || ts.Failed {
			t.Errorf("task %s: state %+v, want %s", name, ts, want)
		}
	}
	if _, ok := got.TaskStates["cleanup"]; ok {
		t.Error("the poststop task ran while the main task runs")
	}
	// The sidecar may start before or after the hook ends; the main task
	// only after the hook, the poststart task after the main one.
	lines := readLines(t, order)
	if len(lines) != 4 || index(lines, "side") < 0 || index(lines, "setup") > index(lines, "main") || lines[3] != "after" {
		t.Fatalf("order = %v, want setup and side (any order) before main, then after", lines)
	}
	dir := filepath.Join(a.cfg.DataDir, allocsDir, al.ID)
	if b, _ := tasklog.ReadAll(TaskDir(dir, "setup"), driver.StdoutFile); !strings.Contains(string(b), "setup-out") {
		t.Errorf("setup's log %q, want its output", b)
	}
	eventually(t, "main's output", func() bool {
		b, _ := tasklog.ReadAll(dir, driver.StdoutFile)
		return strings.Contains(string(b), "main-out")
	})
	if b, _ := tasklog.ReadAll(dir, driver.StdoutFile); strings.Contains(string(b), "setup-out") {
		t.Errorf("main's log %q, want only its own output", b)
	}

	fs.setDesired(al.ID, structs.AllocDesiredStop)
	final := fs.waitStatus(al.ID, structs.AllocClientComplete)
	if lines := readLines(t, order); len(lines) != 5 || lines[4] != "cleanup" {
		t.Fatalf("order = %v, want cleanup last", lines)
	}
	for name, ts := range final.TaskStates {
		if ts.State != structs.TaskStateDead {
			t.Errorf("task %s is %s after the copy completed", name, ts.State)
		}
	}
	if ts := final.TaskStates["side"]; !hasTaskEvent(ts, EventKilled) {
		t.Errorf("sidecar events %+v, want Killed", ts.Events)
	}
	if ts := final.TaskStates["cleanup"]; ts.Failed || ts.FinishedAt == 0 {
		t.Errorf("poststop state %+v", ts)
	}
}

func index(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func hasTaskEvent(ts structs.TaskState, typ string) bool {
	for _, e := range ts.Events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// TestPrestartFailureFailsStart: a failing prestart hook fails the start of
// the main task, which the restart policy retries (the hook runs again);
// once the restarts are exhausted the copy fails, and the main task never
// ran.
func TestPrestartFailureFailsStart(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	marker := filepath.Join(t.TempDir(), "m")
	al := testAlloc(a.NodeID(), structs.JobTypeService, "exec", sh(fmt.Sprintf("echo main >> %s; sleep 10", marker)))
	al.Job.Restart.Attempts = 1
	al.Job.Tasks = []structs.Task{execTask("setup", structs.HookPrestart, false, fmt.Sprintf("echo setup >> %s; exit 3", marker))}
	fs.addAlloc(al)
	final := fs.waitStatus(al.ID, structs.AllocClientFailed)
	if got := readLines(t, marker); strings.Join(got, ",") != "setup,setup" {
		t.Fatalf("runs = %v, want the hook twice and never the main task", got)
	}
	if !hasEvent(final, EventSetupFailure) || !strings.Contains(final.ClientDescription, "prestart task setup failed") {
		t.Fatalf("status %q, events %+v", final.ClientDescription, final.TaskState.Events)
	}
	if ts := final.TaskStates["setup"]; !ts.Failed || ts.ExitCode != 3 {
		t.Fatalf("setup state %+v", ts)
	}
}

// TestHostVolumeSurvivesRestart: data an exec task writes into its host
// volume is there when the task is restarted (here after each crash): the
// volume's directory is the agent's, outside the allocation. The task
// finds it in GANTRY_VOLUME_<NAME>.
func TestHostVolumeSurvivesRestart(t *testing.T) {
	fs := newFakeServer(t)
	vol := t.TempDir()
	a := startAgent(t, fs, t.TempDir(), func(c *Config) {
		c.HostVolumes = map[string]HostVolume{"db": {Path: vol}}
	})
	// Each run adds one to the counter in the volume, then crashes.
	script := `f="$GANTRY_VOLUME_STATE/count"; n=$(cat "$f" 2>/dev/null || echo 0); echo $((n+1)) > "$f"; exit 1`
	al := testAlloc(a.NodeID(), structs.JobTypeService, "exec", sh(script))
	al.Job.Restart.Attempts = 2
	al.Job.Volumes = map[string]structs.VolumeRequest{"state": {Type: structs.VolumeTypeHost, Source: "db"}}
	al.Job.VolumeMounts = []structs.VolumeMount{{Volume: "state", Destination: "/var/lib/state"}}
	fs.addAlloc(al)
	final := fs.waitStatus(al.ID, structs.AllocClientFailed)
	if final.TaskState.Restarts != 2 {
		t.Fatalf("restarts = %d, want 2", final.TaskState.Restarts)
	}
	b, err := os.ReadFile(filepath.Join(vol, "count"))
	if err != nil || strings.TrimSpace(string(b)) != "3" {
		t.Fatalf("count = %q (%v), want 3: each run saw the one before's data", b, err)
	}

	// A copy placed here claiming a volume this agent lacks fails to
	// start with the reason, instead of running without its data.
	al2 := testAlloc(a.NodeID(), structs.JobTypeService, "exec", sh("exit 0"))
	al2.Job.Volumes = map[string]structs.VolumeRequest{"x": {Type: structs.VolumeTypeHost, Source: "gone"}}
	al2.Job.VolumeMounts = []structs.VolumeMount{{Volume: "x", Destination: "/x"}}
	fs.addAlloc(al2)
	f2 := fs.waitStatus(al2.ID, structs.AllocClientFailed)
	if !strings.Contains(f2.ClientDescription, "host volume gone is not declared on this node") {
		t.Fatalf("description %q", f2.ClientDescription)
	}
}

func TestParseHostVolume(t *testing.T) {
	tests := []struct {
		in   string
		name string
		v    HostVolume
		err  string
	}{
		{in: "data=/srv/data", name: "data", v: HostVolume{Path: "/srv/data"}},
		{in: "data=/srv/data:ro", name: "data", v: HostVolume{Path: "/srv/data", ReadOnly: true}},
		{in: "data=/srv/data:rw", name: "data", v: HostVolume{Path: "/srv/data"}},
		{in: "data", err: "want NAME=/PATH"},
		{in: "=/x", err: "want NAME=/PATH"},
		{in: "da ta=/x", err: "the name must start"},
		{in: "data=relative", err: "must be absolute"},
		{in: "data=/a:b", err: "must be absolute, without ':'"},
	}
	for _, tt := range tests {
		name, v, err := ParseHostVolume(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || name != tt.name || v != tt.v {
			t.Errorf("%q: got %q %+v %v", tt.in, name, v, err)
		}
	}
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HostVolumes = map[string]HostVolume{"missing": {Path: filepath.Join(cfg.DataDir, "nope")}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "host_volumes: missing") {
		t.Fatalf("validate: %v", err)
	}
}
