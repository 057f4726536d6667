package server

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// TestRestartKeepsState restarts a server on its data directory (once from
// the log alone, once from a snapshot plus log) and checks that jobs, nodes
// and allocations survive and the new leader places nothing twice.
func TestRestartKeepsState(t *testing.T) {
	cfg := testConfig(t)
	s, c := startServer(t, cfg)
	if _, err := c.RegisterNode(bg, fakeNode("n1", 4000, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterJob(bg, mockJob("web", 3)); err != nil {
		t.Fatal(err)
	}
	before := allocIDs(waitLive(t, c, "web", 3))
	dumpBefore := dumpState(t, s.State())

	for _, withSnapshot := range []bool{false, true} {
		if withSnapshot {
			// Raft refuses a snapshot until the restarted server has
			// applied its latest configuration entry: try again until then.
			waitFor(t, 10*time.Second, "a snapshot", func() (bool, string) {
				err := s.raft.Snapshot().Error()
				return err == nil, fmt.Sprint(err)
			})
			// A write after the snapshot is replayed from the log.
			if _, err := c.RegisterJob(bg, mockJob("batchy", 0)); err != nil {
				t.Fatal(err)
			}
			dumpBefore = dumpState(t, s.State())
		}
		if err := s.Shutdown(); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		s, c = startServer(t, cfg)
		// The restarted leader has reconciled every job once.
		waitFor(t, 10*time.Second, "scheduler to reconcile after restart", func() (bool, string) {
			st := s.sched.Status()
			return st.Evaluations >= 1 && st.QueueDepth == 0, "busy"
		})
		if got := dumpState(t, s.State()); got != dumpBefore {
			t.Fatalf("state changed across restart (snapshot %v):\nbefore %s\nafter  %s", withSnapshot, dumpBefore, got)
		}
		if after := allocIDs(liveAllocs(t, c, "web")); !slices.Equal(after, before) {
			t.Fatalf("allocations changed across restart: before %v after %v", before, after)
		}
		n, _, err := c.Node(bg, "n1", nil)
		if err != nil || n.Status != "ready" {
			t.Fatalf("node after restart: %+v %v", n, err)
		}
	}
}

func allocIDs(allocs []*api.Allocation) []string {
	var ids []string
	for _, a := range allocs {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	return ids
}
