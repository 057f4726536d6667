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
