package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/api"
	// The drivers register their config schemas, as in the gantry binary,
	// so the API validates jobs against the real rules.
	_ "github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/testutil"
)

func TestMain(m *testing.M) {
	// A future hashicorp/raft never answers (waitApplied) keeps its waiter.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/gantry-project/gantry/internal/server.(*Server).waitApplied.func1"))
}

// testConfig is a config for an in-process server on free ports, with
// short timeouts so a single server elects itself quickly.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.NodeName = "test"
	cfg.RaftTimeout = 100 * time.Millisecond
	cfg.HeartbeatTTL = time.Minute
	cfg.ReconcileInterval = time.Minute
	cfg.Scheduler.Seed = 1
	// Tests restore small snapshots; a CI machine may have less free disk
	// than the production reserve (snapshot_test.go tests the reserve).
	cfg.DiskReserve = 16 << 20
	cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

// tWriter sends logs through t so they show with the failing test only.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// startServer starts a server with cfg, waits until it leads and returns
// it with an API client; both are closed when the test ends.
func startServer(t testing.TB, cfg Config) (*Server, *api.Client) {
	t.Helper()
	return startServerWith(t, cfg, nil)
}

// startServerWith is startServer with setup (if not nil) run on the
// server before it starts, so the fields it sets need no lock.
func startServerWith(t testing.TB, cfg Config, setup func(*Server)) (*Server, *api.Client) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown() })
	waitFor(t, 10*time.Second, "server to become leader", func() (bool, string) {
		return s.Leader() && s.leaderReady.Load(), "not leader"
	})
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: "http://" + s.HTTPAddr(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// waitFor polls cond with a generous deadline: the machine is shared, and
// no test asserts how fast something happened.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.WaitFor(t, timeout, 20*time.Millisecond, what, cond)
}

func mockJob(name string, count int) *api.Job {
	return &api.Job{Name: name, Count: count, Driver: "mock",
		Resources: api.Resources{CPU: 500, MemoryMB: 256}}
}

func fakeNode(id string, cpu, mem int64) *api.Node {
	return &api.Node{ID: id, Name: "node-" + id, Capacity: api.Resources{CPU: cpu, MemoryMB: mem},
		Attributes: map[string]string{"os": "linux", "arch": "amd64"}}
}

var bg = context.Background()

// liveAllocs returns the allocations the server wants running.
func liveAllocs(t *testing.T, c *api.Client, job string) []*api.Allocation {
	t.Helper()
	allocs, _, err := c.JobAllocations(bg, job, nil)
	if err != nil {
		t.Fatalf("allocations of %s: %v", job, err)
	}
	var out []*api.Allocation
	for _, a := range allocs {
		if !a.Terminal() {
			out = append(out, a)
		}
	}
	return out
}

func waitLive(t *testing.T, c *api.Client, job string, n int) []*api.Allocation {
	t.Helper()
	var live []*api.Allocation
	waitFor(t, 20*time.Second, fmt.Sprintf("%d live allocations of %s", n, job), func() (bool, string) {
		live = liveAllocs(t, c, job)
		return len(live) == n, fmt.Sprintf("%d live", len(live))
	})
	return live
}
