package agent

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestTaskGroupWithRealServer: through an in-process server and two
// agents, a copy that claims a host volume is placed on the node that
// declares it; its extra tasks' states travel through the server's report
// path; an extra task's log is read through the server with its name; and
// a copy claiming a volume no node has stays pending with the reason.
func TestTaskGroupWithRealServer(t *testing.T) {
	srv := startRealServer(t)
	vol := t.TempDir()
	var agents []*Agent
	for i, hv := range []map[string]HostVolume{nil, {"data": {Path: vol}}} {
		acfg := DefaultConfig()
		acfg.Servers, acfg.DataDir, acfg.Name = []string{srv.HTTPAddr()}, t.TempDir(), []string{"n1", "n2"}[i]
		acfg.CPU, acfg.MemoryMB, acfg.Drivers = 2000, 1024, testDrivers(t)
		acfg.KillTimeout, acfg.HostVolumes = 2*time.Second, hv
		a, err := New(acfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Shutdown(); killLeftovers(a) })
		agents = append(agents, a)
	}
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: "http://" + srv.HTTPAddr(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, a := range agents {
		eventually(t, "node ready", func() bool {
			n, _, err := c.Node(ctx, a.NodeID(), nil)
			return err == nil && n.Status == structs.NodeStatusReady
		})
	}
	sh := func(s string) map[string]any { return map[string]any{"command": "/bin/sh", "args": []any{"-c", s}} }
	res := structs.Resources{CPU: 100, MemoryMB: 32}
	job := &structs.Job{Name: "db", Type: structs.JobTypeService, Count: 1, Driver: "exec", Resources: res,
		Config:       sh(`cat "$GANTRY_VOLUME_DATA/schema"; while true; do sleep 0.1; done`),
		Volumes:      map[string]structs.VolumeRequest{"data": {Type: structs.VolumeTypeHost, Source: "data"}},
		VolumeMounts: []structs.VolumeMount{{Volume: "data", Destination: "/data"}},
		Tasks: []structs.Task{
			{Name: "migrate", Driver: "exec", Resources: res, Lifecycle: &structs.TaskLifecycle{Hook: structs.HookPrestart},
				Config:       sh(`echo migrated > "$GANTRY_VOLUME_DATA/schema"; echo migrate-log`),
				VolumeMounts: []structs.VolumeMount{{Volume: "data", Destination: "/data"}}},
			{Name: "proxy", Driver: "exec", Resources: res, Lifecycle: &structs.TaskLifecycle{Hook: structs.HookPrestart, Sidecar: true},
				Config: sh(`while true; do sleep 0.1; done`)},
		}}
	if _, err := c.RegisterJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	var alloc *structs.Allocation
	eventually(t, "copy running with its tasks", func() bool {
		allocs, _, err := c.JobAllocations(ctx, "db", nil)
		if err != nil || len(allocs) != 1 {
			return false
		}
		alloc, _, err = c.Allocation(ctx, allocs[0].ID, nil)
		return err == nil && alloc.ClientStatus == structs.AllocClientRunning &&
			alloc.TaskStates["migrate"].State == structs.TaskStateDead && alloc.TaskStates["proxy"].State == structs.TaskStateRunning
	})
	if alloc.NodeID != agents[1].NodeID() {
		t.Fatalf("placed on %s, want n2, the node with the volume", alloc.NodeName)
	}
	if want := (structs.Resources{CPU: 300, MemoryMB: 96}); alloc.Resources != want {
		t.Fatalf("copy resources %v, want the tasks' sum %v", alloc.Resources, want)
	}
	readLog := func(task string) string {
		rc, err := c.AllocLogs(ctx, alloc.ID, api.LogOptions{Task: task})
		if err != nil {
			t.Fatalf("logs of %q: %v", task, err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	if got := readLog("migrate"); !strings.Contains(got, "migrate-log") {
		t.Errorf("migrate's log %q", got)
	}
	eventually(t, "main task read what the prestart task wrote", func() bool { return strings.Contains(readLog(""), "migrated") })
	if _, err := c.AllocLogs(ctx, alloc.ID, api.LogOptions{Task: "nope"}); err == nil || !strings.Contains(err.Error(), `has no task "nope"`) {
		t.Errorf("logs of an unknown task: %v", err)
	}

	// `alloc restart --task proxy` restarts the sidecar alone, uncounted.
	pid := alloc.TaskStates["proxy"].PID
	if err := c.AllocRestart(ctx, alloc.ID, "proxy"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sidecar restarted", func() bool {
		a, _, err := c.Allocation(ctx, alloc.ID, nil)
		ts := a.TaskStates["proxy"]
		return err == nil && ts.State == structs.TaskStateRunning && ts.PID != pid && ts.Restarts == 0 &&
			hasTaskEvent(ts, EventRestartSignaled) && a.TaskState.PID == alloc.TaskState.PID
	})
	if err := c.AllocRestart(ctx, alloc.ID, "migrate"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("restart of a finished prestart task: %v", err)
	}

	missing := &structs.Job{Name: "lost", Type: structs.JobTypeService, Count: 1, Driver: "exec", Resources: res,
		Config:  sh("sleep 100"),
		Volumes: map[string]structs.VolumeRequest{"x": {Type: structs.VolumeTypeHost, Source: "archive"}}}
	if _, err := c.RegisterJob(ctx, missing); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pending with the missing volume", func() bool {
		st, _, err := c.JobStatus(ctx, "lost", nil)
		return err == nil && st.PlacementFailure != nil && st.PlacementFailure.NodesFiltered["host volume archive missing"] == 2
	})

	if _, err := c.StopJob(ctx, "db", false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "copy and its tasks stopped", func() bool {
		a, _, err := c.Allocation(ctx, alloc.ID, nil)
		return err == nil && a.ClientStatus == structs.AllocClientComplete && a.TaskStates["proxy"].State == structs.TaskStateDead
	})
}
