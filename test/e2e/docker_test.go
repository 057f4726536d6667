package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver/docker"
)

// TestDockerJobRunsAndLogs: a server and two agents, one of them without
// Docker (its endpoint answers nothing). A docker job constrained on
// attr.driver.docker runs only on the Docker node, its output is read with
// gantry alloc logs, and stopping the job removes its containers.
//
// GANTRY_DOCKER_COPIES=20 runs 20 copies and logs what the note measures:
// the copies' received-to-started times and the Docker agent's RSS.
func TestDockerJobRunsAndLogs(t *testing.T) {
	d := newDockerEnv(t)
	copies := 2
	if n, err := strconv.Atoi(os.Getenv("GANTRY_DOCKER_COPIES")); err == nil && n > 0 {
		copies = n
	}
	c := newCluster(t)
	c.startServer()
	withDocker := c.startAgent("docker-1", 4000, 4096)
	c.startAgentArgs("plain-1", "--cpu", "4000", "--memory", "4096",
		"--docker-endpoint", "unix://"+filepath.Join(c.dir, "no-docker.sock"))
	c.waitReadyNodes(2)
	nodes, _, err := c.client.ListNodes(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if got, want := n.Attributes["driver.docker"], map[string]string{"docker-1": "true", "plain-1": ""}[n.Name]; got != want {
			t.Errorf("node %s: attr driver.docker = %q, want %q", n.Name, got, want)
		}
	}

	job := "docker-e2e-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	spec := fmt.Sprintf(`name: %s
type: service
count: %d
placement: spread
resources: {cpu: 10, memory_mb: 16}
constraints:
  - label: attr.driver.docker
    op: "="
    value: "true"
driver: docker
config:
  image: %s
  command: sh
  args: ["-c", "echo hello-from-docker $GANTRY_ALLOC_INDEX; exec sleep 1000"]
`, job, copies, d.image)
	file := filepath.Join(c.dir, "docker.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.gantry("job", "run", "--detach", file); err != nil {
		t.Fatalf("job run: %v\n%s", err, out)
	}
	running := c.waitRunning(job, copies)
	for _, a := range running {
		if a.NodeName != "docker-1" {
			t.Errorf("alloc %s placed on %s, a node without Docker", a.Name, a.NodeName)
		}
	}
	a := running[0]
	c.waitFor(30*time.Second, "the container's output in alloc logs", func() (bool, string) {
		out, err := c.gantry("alloc", "logs", a.ID)
		return err == nil && strings.Contains(out, "hello-from-docker "+strconv.Itoa(a.Index)), out
	})
	if os.Getenv("GANTRY_DOCKER_COPIES") != "" {
		logStartTimes(t, running)
		logRSS(t, withDocker, fmt.Sprintf("docker agent with %d containers running", copies))
	}

	if out, err := c.gantry("job", "stop", job); err != nil {
		t.Fatalf("job stop: %v\n%s", err, out)
	}
	c.waitFor(60*time.Second, "the job's containers removed", func() (bool, string) {
		list, err := d.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
			Filters: make(client.Filters).Add("label", docker.LabelJob+"="+job)})
		return err == nil && len(list.Items) == 0, fmt.Sprint(len(list.Items), " containers ", err)
	})
}

// startAgentArgs starts an agent with the given flags besides the
// cluster's.
func (c *cluster) startAgentArgs(name string, extra ...string) *proc {
	c.t.Helper()
	args := append([]string{"agent",
		"--servers", fmt.Sprintf("127.0.0.1:%d", c.httpPort),
		"--data-dir", filepath.Join(c.dir, "agent-"+name),
		"--name", name,
		"--http-addr", "127.0.0.1:0",
	}, extra...)
	p := startProc(c.t, "agent "+name, args...)
	c.agents[name] = p
	return p
}

// logStartTimes logs the p50 and p99 of the copies' time from Received
// (the agent learned the allocation) to Started (the container runs).
func logStartTimes(t *testing.T, allocs []*api.Allocation) {
	var ds []time.Duration
	for _, a := range allocs {
		var recv, started int64
		for _, e := range a.TaskState.Events {
			switch e.Type {
			case "Received":
				recv = e.Time
			case "Started":
				if started == 0 {
					started = e.Time
				}
			}
		}
		if recv > 0 && started > 0 {
			ds = append(ds, time.Duration(started-recv))
		}
	}
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	pct := func(p int) time.Duration { return ds[(len(ds)-1)*p/100] }
	t.Logf("%d copies received-to-started: p50 %s p99 %s max %s", len(ds), pct(50), pct(99), ds[len(ds)-1])
}
