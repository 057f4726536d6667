package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/docker"
	"github.com/gantry-project/gantry/internal/driver/docker/dockertest"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestDockerVolumesSurviveRestart: a docker task's data in a host volume
// (bind mount) and in a Docker named volume (created by the Engine) is
// there after the task restarts in a new container; a read-only mount
// refuses writes.
func TestDockerVolumesSurviveRestart(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	named := fmt.Sprintf("gantry-test-%d", os.Getpid())
	t.Cleanup(func() {
		_, _ = cli.VolumeRemove(context.Background(), named, client.VolumeRemoveOptions{Force: true})
	})
	vol := t.TempDir()
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir(), withBuiltinDrivers, func(c *Config) {
		c.HostVolumes = map[string]HostVolume{"state": {Path: vol}}
	})
	// Each run counts itself in both volumes, tries the read-only mount,
	// then crashes: the restart policy starts a new container.
	script := `for d in /data /cache; do n=$(cat $d/count 2>/dev/null || echo 0); echo $((n+1)) > $d/count; done
echo "run data=$(cat /data/count) cache=$(cat /cache/count) env=$GANTRY_VOLUME_DATA"
if touch /ro/x 2>/dev/null; then echo ro=writable; else echo ro=refused; fi
exit 1`
	al := testAlloc(a.NodeID(), structs.JobTypeService, "docker",
		map[string]any{"image": image, "command": "sh", "args": []any{"-c", script}})
	al.Job.Restart.Attempts = 2
	al.Job.Volumes = map[string]structs.VolumeRequest{
		"data":  {Type: structs.VolumeTypeHost, Source: "state"},
		"cache": {Type: structs.VolumeTypeDocker, Source: named},
		"ro":    {Type: structs.VolumeTypeHost, Source: "state", ReadOnly: true},
	}
	al.Job.VolumeMounts = []structs.VolumeMount{
		{Volume: "data", Destination: "/data"}, {Volume: "cache", Destination: "/cache"}, {Volume: "ro", Destination: "/ro"},
	}
	fs.addAlloc(al)
	final := fs.waitStatus(al.ID, structs.AllocClientFailed)
	if final.TaskState.Restarts != 2 {
		t.Fatalf("restarts = %d, want 2 (%s)", final.TaskState.Restarts, final.ClientDescription)
	}
	b, _ := tasklog.ReadAll(filepath.Join(a.cfg.DataDir, allocsDir, al.ID), driver.StdoutFile)
	out := string(b)
	for _, want := range []string{"run data=1 cache=1 env=/data", "run data=3 cache=3 env=/data", "ro=refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ro=writable") {
		t.Errorf("a read-only mount took a write:\n%s", out)
	}
	if c, _ := os.ReadFile(filepath.Join(vol, "count")); strings.TrimSpace(string(c)) != "3" {
		t.Errorf("host volume count = %q, want 3", c)
	}
}

// TestDockerTaskGroup: a copy of a docker main task and a docker sidecar
// runs two containers (the sidecar's named after it); an agent restart
// re-attaches to both without a second container; stopping the copy
// removes both.
func TestDockerTaskGroup(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	fs := newFakeServer(t)
	dataDir := t.TempDir()
	a1 := startAgent(t, fs, dataDir, withBuiltinDrivers)
	al := testAlloc(a1.NodeID(), structs.JobTypeService, "docker",
		map[string]any{"image": image, "command": "sh", "args": []any{"-c", "exec sleep 1000"}})
	al.Job.Tasks = []structs.Task{{Name: "side", Driver: "docker", Resources: structs.Resources{CPU: 50, MemoryMB: 16},
		Lifecycle: &structs.TaskLifecycle{Hook: structs.HookPrestart, Sidecar: true},
		Config:    map[string]any{"image": image, "command": "sh", "args": []any{"-c", "echo side-up; exec sleep 1000"}}}}
	fs.addAlloc(al)
	eventually(t, "main and sidecar running", func() bool {
		a := fs.alloc(al.ID)
		return a.ClientStatus == structs.AllocClientRunning && a.TaskStates["side"].State == structs.TaskStateRunning
	})
	first := allocContainers(t, cli, al.ID)
	if len(first) != 2 {
		t.Fatalf("containers %v, want two", first)
	}
	insp, err := cli.ContainerInspect(context.Background(), docker.ContainerName(al.ID)+"-side", client.ContainerInspectOptions{})
	if err != nil || insp.Container.Config.Labels[docker.LabelTask] != "side" {
		t.Fatalf("sidecar container: %v", err)
	}
	if err := a1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	startAgent(t, fs, dataDir, withBuiltinDrivers)
	eventually(t, "sidecar re-attached", func() bool { return hasTaskEvent(fs.alloc(al.ID).TaskStates["side"], EventReattached) })
	if again := allocContainers(t, cli, al.ID); len(again) != 2 || !sameSet(again, first) {
		t.Fatalf("containers after the agent restart %v, want only %v", again, first)
	}
	fs.setDesired(al.ID, structs.AllocDesiredStop)
	final := fs.waitStatus(al.ID, structs.AllocClientComplete)
	if final.TaskStates["side"].State != structs.TaskStateDead {
		t.Fatalf("sidecar %+v after the stop", final.TaskStates["side"])
	}
	eventually(t, "containers removed", func() bool { return len(allocContainers(t, cli, al.ID)) == 0 })
}

func sameSet(a, b []string) bool {
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return len(a) == len(b)
}
