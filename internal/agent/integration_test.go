package agent

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/server"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestWithRealServer runs an agent against an in-process gantry server:
// a job is placed on the agent's node, runs, its log is read through the
// server's proxy, and stopping the job kills the task.
func TestWithRealServer(t *testing.T) {
	srv := startRealServer(t)

	acfg := DefaultConfig()
	acfg.Servers, acfg.DataDir, acfg.Name = []string{srv.HTTPAddr()}, t.TempDir(), "n1"
	acfg.CPU, acfg.MemoryMB, acfg.Drivers = 2000, 1024, testDrivers(t)
	a, err := New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })

	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: "http://" + srv.HTTPAddr(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Register the job once the node is ready. (Registering it earlier
	// races in the server: a placement failure committed from a snapshot
	// taken just before the node registered is only retried at the next
	// ReconcileInterval.)
	eventually(t, "node ready", func() bool {
		n, _, err := c.Node(ctx, a.NodeID(), nil)
		return err == nil && n.Status == structs.NodeStatusReady
	})
	job := &structs.Job{Name: "hello", Type: structs.JobTypeService, Count: 1, Driver: "exec",
		Config:    map[string]any{"command": "/bin/sh", "args": []any{"-c", `echo "hi from $GANTRY_JOB"; sleep 300`}},
		Resources: structs.Resources{CPU: 100, MemoryMB: 32}}
	if _, err := c.RegisterJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	var alloc *structs.Allocation
	t.Cleanup(func() {
		if t.Failed() {
			st, _, err := c.JobStatus(ctx, "hello", nil)
			if err == nil {
				t.Logf("job status: summary %v failure %+v", st.Summary, st.PlacementFailure)
				for _, al := range st.Allocations {
					t.Logf("alloc %s node %s desired %s client %s %q", al.ID, al.NodeID, al.DesiredStatus, al.ClientStatus, al.ClientDescription)
				}
			}
			n, _, err := c.Node(ctx, a.NodeID(), nil)
			t.Logf("node %+v %v", n, err)
		}
	})
	eventually(t, "allocation running", func() bool {
		allocs, _, err := c.JobAllocations(ctx, "hello", nil)
		if err != nil || len(allocs) != 1 {
			return false
		}
		alloc = allocs[0]
		return alloc.ClientStatus == structs.AllocClientRunning && alloc.NodeID == a.NodeID()
	})
	eventually(t, "log through the server", func() bool {
		rc, err := c.AllocLogs(ctx, alloc.ID, api.LogOptions{})
		if err != nil {
			return false
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b) == "hi from hello\n"
	})
	if _, err := c.StopJob(ctx, "hello", false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "allocation complete", func() bool {
		got, _, err := c.Allocation(ctx, alloc.ID, nil)
		return err == nil && got.ClientStatus == structs.AllocClientComplete &&
			strings.Contains(got.ClientDescription, "stopped by the server")
	})
}

// startRealServer starts a single in-process server that has elected
// itself leader, stopped when the test ends.
func startRealServer(t *testing.T) *server.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.NodeName = "s1"
	cfg.RaftTimeout = 100 * time.Millisecond
	cfg.HeartbeatTTL = 5 * time.Second
	cfg.ReconcileInterval = time.Minute
	cfg.Scheduler.Seed = 1
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown() })
	eventually(t, "server leadership", srv.Leader)
	return srv
}
