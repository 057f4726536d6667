package agent

import (
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver/docker"
	"github.com/gantry-project/gantry/internal/driver/docker/dockertest"
	"github.com/gantry-project/gantry/internal/structs"
)

// withBuiltinDrivers gives the agent its real drivers (exec, mock, docker),
// the exec shim being this test binary.
func withBuiltinDrivers(c *Config) {
	c.Drivers, c.ShimCommand = nil, []string{os.Args[0]}
}

// allocContainers lists the containers of an allocation, any state.
func allocContainers(t *testing.T, cli *client.Client, allocID string) []string {
	t.Helper()
	list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", docker.LabelAlloc+"="+allocID)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

// TestDockerAgentRestartAndKill: an agent restarted while its container
// runs re-attaches to it (no second container); a container killed behind
// the agent's back is an exit the restart policy restarts; a stop removes
// it.
func TestDockerAgentRestartAndKill(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	fs := newFakeServer(t)
	dataDir := t.TempDir()
	a1 := startAgent(t, fs, dataDir, withBuiltinDrivers)
	al := testAlloc(a1.NodeID(), structs.JobTypeService, "docker",
		map[string]any{"image": image, "command": "sh", "args": []any{"-c", "echo started; exec sleep 1000"}})
	al.Job.Restart.Attempts = 1
	fs.addAlloc(al)
	fs.waitStatus(al.ID, structs.AllocClientRunning)
	if got := fs.node(a1.NodeID()).Attributes["driver.docker"]; got != "true" {
		t.Errorf("node attribute driver.docker = %q, want true", got)
	}
	first := allocContainers(t, cli, al.ID)
	if len(first) != 1 {
		t.Fatalf("containers %v, want one", first)
	}
	if err := a1.Shutdown(); err != nil {
		t.Fatal(err)
	}

	a2 := startAgent(t, fs, dataDir, withBuiltinDrivers)
	eventually(t, "re-attach event", func() bool { return hasEvent(fs.alloc(al.ID), EventReattached) })
	if ids := allocContainers(t, cli, al.ID); len(ids) != 1 || ids[0] != first[0] {
		t.Fatalf("containers after the agent restart %v, want only %v", ids, first)
	}

	if _, err := cli.ContainerKill(context.Background(), first[0], client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	var restarted []string
	eventually(t, "restart in place with a new container", func() bool {
		a := fs.alloc(al.ID)
		restarted = allocContainers(t, cli, al.ID)
		return a.TaskState.Restarts == 1 && a.ClientStatus == structs.AllocClientRunning &&
			len(restarted) == 1 && restarted[0] != first[0]
	})
	if ev := fs.alloc(al.ID).TaskState.Events; !hasEvent(fs.alloc(al.ID), EventRestarting) {
		t.Errorf("no Restarting event: %+v", ev)
	}
	// the new container's output reaches the log file a moment after it
	// runs (the log watcher copies it)
	eventually(t, "two starts in the task log", func() bool {
		logs, err := readAllocLog(a2, al.ID)
		return err == nil && logs == "started\nstarted\n"
	})

	fs.setDesired(al.ID, structs.AllocDesiredStop)
	fs.waitStatus(al.ID, structs.AllocClientComplete)
	eventually(t, "container removed", func() bool { return len(allocContainers(t, cli, al.ID)) == 0 })
}

// TestDockerAgentRemovesOrphans: a container labelled with the node but
// owned by no allocation (a crash left it) is removed when the agent
// starts.
func TestDockerAgentRemovesOrphans(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	fs := newFakeServer(t)
	dataDir := t.TempDir()
	a1 := startAgent(t, fs, dataDir, withBuiltinDrivers)
	if err := a1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	orphan, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{
		Image: image, Cmd: []string{"sleep", "1000"},
		Labels: map[string]string{docker.LabelNode: a1.NodeID(), docker.LabelAlloc: "gone", dockertest.LabelTest: "true"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(ctx, orphan.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := cli.ContainerStart(ctx, orphan.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, fs, dataDir, withBuiltinDrivers)
	eventually(t, "orphan removed", func() bool {
		_, err := cli.ContainerInspect(ctx, orphan.ID, client.ContainerInspectOptions{})
		return err != nil
	})
}

// readAllocLog reads an allocation's stdout through the agent's API.
func readAllocLog(a *Agent, allocID string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.HTTPAddr()+"/v1/agent/allocation/"+allocID+"/logs", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
