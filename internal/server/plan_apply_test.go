package server

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// planState builds: n1 (1000m, holds low-1 500m and low-2 300m), n2
// draining, n3 down, n4 empty; jobs j and low; j2 stopped.
func planState(t *testing.T) *state.Store {
	t.Helper()
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		must(st.UpsertNode(1, &structs.Node{ID: id, Name: id, Status: structs.NodeStatusReady,
			Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}))
	}
	must(st.UpdateNodeDrain(2, "n2", true, 0))
	must(st.UpdateNodeStatus(3, "n3", structs.NodeStatusDown, 0))
	for _, id := range []string{"j", "low", "j2"} {
		must(st.UpsertJob(4, &structs.Job{ID: id, Name: id, Priority: 50}))
	}
	must(st.StopJob(5, "j2", 0))
	must(st.UpsertAllocs(6, []*structs.Allocation{
		{ID: "low-1", JobID: "low", NodeID: "n1", Resources: structs.Resources{CPU: 500, MemoryMB: 100}, DesiredStatus: "run", ClientStatus: "running",
			Ports: []structs.AllocPort{{Label: "http", Value: 8080}}},
		{ID: "low-2", JobID: "low", NodeID: "n1", Resources: structs.Resources{CPU: 300, MemoryMB: 100}, DesiredStatus: "run", ClientStatus: "running"},
		// Terminal: holds nothing.
		{ID: "old", JobID: "low", NodeID: "n1", Resources: structs.Resources{CPU: 900, MemoryMB: 100}, DesiredStatus: "stop", ClientStatus: "complete"},
	}))
	return st
}

func place(id, node string, cpu int64) *structs.Allocation {
	return &structs.Allocation{ID: id, JobID: "j", NodeID: node, Resources: structs.Resources{CPU: cpu, MemoryMB: 10}}
}

// withPort gives a placement a host port.
func withPort(a *structs.Allocation, port int) *structs.Allocation {
	a.Ports = []structs.AllocPort{{Label: "http", Value: port}}
	return a
}

func stop(id, node string) structs.AllocStop {
	return structs.AllocStop{AllocID: id, NodeID: node, Desired: structs.AllocDesiredStop, Description: "test"}
}

func preempt(id, node, by string) structs.AllocStop {
	return structs.AllocStop{AllocID: id, NodeID: node, Desired: structs.AllocDesiredEvict, PreemptedBy: by}
}

func TestEvaluatePlan(t *testing.T) {
	tests := []struct {
		name         string
		plan         structs.Plan
		wantPlaced   []string
		wantRejected []string
		// wantDesired maps existing allocs to their desired status in the
		// committed entry ("" = not in the entry).
		wantDesired  map[string]string
		wantClear    bool
		wantNoCommit bool
	}{
		{name: "fits", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{place("p1", "n1", 200)}},
			wantPlaced: []string{"p1"}},
		{name: "over capacity", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{place("p1", "n1", 201)}},
			wantRejected: []string{"n1"}, wantNoCommit: true},
		{name: "stop makes room", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{place("p1", "n1", 700)},
			Stops: []structs.AllocStop{stop("low-1", "n1")}},
			wantPlaced: []string{"p1"}, wantDesired: map[string]string{"low-1": "stop"}},
		{name: "preemption makes room", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{place("p1", "n1", 700)},
			Preemptions: []structs.AllocStop{preempt("low-1", "n1", "p1")}},
			wantPlaced: []string{"p1"}, wantDesired: map[string]string{"low-1": "evict"}},
		{name: "preemption needs its placement", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{place("p1", "n4", 100)},
			Preemptions: []structs.AllocStop{preempt("low-1", "n1", "p1")}},
			wantPlaced: []string{"p1"}, wantDesired: map[string]string{"low-1": ""}},
		{name: "preemption dropped with rejected node", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{place("p1", "n1", 900)},
			Preemptions: []structs.AllocStop{preempt("low-1", "n1", "p1")}},
			wantRejected: []string{"n1"}, wantNoCommit: true},
		{name: "partial commit", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{
			place("p1", "n1", 300), place("p2", "n4", 300), place("p3", "n4", 700)}},
			wantPlaced: []string{"p2", "p3"}, wantRejected: []string{"n1"}},
		{name: "stops always committed", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{place("p1", "n1", 900)},
			Stops: []structs.AllocStop{stop("low-2", "n1")}},
			wantRejected: []string{"n1"}, wantDesired: map[string]string{"low-2": "stop"}},
		{name: "draining, down and unknown nodes", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{
			place("p1", "n2", 1), place("p2", "n3", 1), place("p3", "n9", 1)}},
			wantRejected: []string{"n2", "n3", "n9"}, wantNoCommit: true},
		{name: "ID of another job's allocation", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{
			place("low-2", "n1", 100), place("p2", "n4", 100)}},
			wantPlaced: []string{"p2"}, wantRejected: []string{"n1"}},
		{name: "all or nothing", plan: structs.Plan{JobID: "j", AllOrNothing: true, Placements: []*structs.Allocation{
			place("p1", "n1", 600), place("p2", "n4", 300)}, Stops: []structs.AllocStop{stop("low-2", "n1")}},
			wantRejected: []string{"n1", "n4"}, wantDesired: map[string]string{"low-2": "stop"}},
		{name: "all or nothing that fits", plan: structs.Plan{JobID: "j", AllOrNothing: true, Placements: []*structs.Allocation{
			place("p1", "n1", 200), place("p2", "n4", 300)}, ClearFailure: true},
			wantPlaced: []string{"p1", "p2"}, wantClear: true},
		{name: "stopped job places nothing", plan: structs.Plan{JobID: "j2", Placements: []*structs.Allocation{place("p1", "n4", 1)}},
			wantRejected: []string{"n4"}, wantNoCommit: true},
		{name: "clear failure kept back when rejected", plan: structs.Plan{JobID: "j", ClearFailure: true,
			Placements: []*structs.Allocation{place("p1", "n1", 999)}},
			wantRejected: []string{"n1"}, wantNoCommit: true},
		{name: "port held on the node", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{
			withPort(place("p1", "n1", 100), 8080), withPort(place("p2", "n4", 100), 8080)}},
			wantPlaced: []string{"p2"}, wantRejected: []string{"n1"}},
		{name: "port freed by a stop", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{withPort(place("p1", "n1", 100), 8080)},
			Stops: []structs.AllocStop{stop("low-1", "n1")}},
			wantPlaced: []string{"p1"}, wantDesired: map[string]string{"low-1": "stop"}},
		{name: "two placements on one port", plan: structs.Plan{JobID: "j", Placements: []*structs.Allocation{
			withPort(place("p1", "n4", 100), 20000), withPort(place("p2", "n4", 100), 20000)}},
			wantRejected: []string{"n4"}, wantNoCommit: true},
		{name: "stop of vanished alloc", plan: structs.Plan{JobID: "j", Stops: []structs.AllocStop{stop("gone", "n1")}},
			wantNoCommit: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := planState(t).Snapshot()
			res, req := evaluatePlan(snap, &tc.plan, 99)
			if !slices.Equal(res.Placed, tc.wantPlaced) || !slices.Equal(res.RejectedNodes, tc.wantRejected) {
				t.Fatalf("placed %v rejected %v, want %v %v", res.Placed, res.RejectedNodes, tc.wantPlaced, tc.wantRejected)
			}
			if tc.wantNoCommit {
				if req != nil {
					t.Fatalf("want nothing committed, got %+v", req)
				}
				return
			}
			if req == nil {
				t.Fatal("nothing committed")
			}
			if req.ClearFailure != tc.wantClear {
				t.Errorf("clear failure %v, want %v", req.ClearFailure, tc.wantClear)
			}
			got := map[string]*structs.Allocation{}
			for _, a := range req.Allocs {
				got[a.ID] = a
			}
			for id, want := range tc.wantDesired {
				a := got[id]
				switch {
				case want == "" && a != nil:
					t.Errorf("%s committed (%s), want untouched", id, a.DesiredStatus)
				case want != "" && (a == nil || a.DesiredStatus != want || a.ModifyTime != 99):
					t.Errorf("%s: %+v, want desired %s at time 99", id, a, want)
				}
			}
			if a := got["low-1"]; a != nil && a.DesiredStatus == "evict" && a.PreemptedBy != "p1" {
				t.Errorf("evicted low-1 PreemptedBy %q", a.PreemptedBy)
			}
			for _, id := range tc.wantPlaced {
				a := got[id]
				if a == nil || a.DesiredStatus != "run" || a.ClientStatus != "pending" || a.CreateTime != 99 || a.NodeName == "" {
					t.Errorf("placement %s: %+v", id, a)
				}
			}
		})
	}
}

// TestPlanApplierNeverOverCommits submits competing plans concurrently
// through the real applier (Raft included); the node's live allocations
// never exceed its capacity.
func TestPlanApplierNeverOverCommits(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	if _, err := c.RegisterNode(bg, fakeNode("n1", 1000, 100000)); err != nil {
		t.Fatal(err)
	}
	// A job the scheduler cannot place itself (no node matches), so only
	// the plans below place allocations of it.
	job := mockJob("j", 1000)
	job.Constraints = []api.Constraint{{Label: "zone", Operator: "=", Value: "nowhere"}}
	if _, err := c.RegisterJob(bg, job); err != nil {
		t.Fatal(err)
	}
	stored := s.State().Snapshot().JobByID("j")

	const workers, perWorker = 8, 10
	var mu sync.Mutex
	placed := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				idx := w*perWorker + i
				a := place(fmt.Sprintf("w%d-%d", w, i), "n1", 100)
				a.Index, a.Name, a.JobVersion, a.Job, a.Priority = idx, structs.AllocName("j", idx), stored.Version, stored, stored.Priority
				res, err := s.SubmitPlan(bg, &structs.Plan{JobID: "j", Placements: []*structs.Allocation{a}})
				if err != nil {
					t.Error(err)
					return
				}
				if len(res.RejectedNodes) > 0 && res.RefreshIndex == 0 {
					t.Error("rejection without a refresh index")
				}
				mu.Lock()
				placed += len(res.Placed)
				mu.Unlock()
				var used int64
				for _, x := range s.State().Snapshot().AllocsByNode("n1") {
					if !x.Terminal() {
						used += x.Resources.CPU
					}
				}
				if used > 1000 {
					t.Errorf("node over-committed: %dm of 1000m", used)
				}
			}
		}()
	}
	wg.Wait()
	if placed != 10 {
		t.Fatalf("%d placements of 100m committed on a 1000m node, want 10", placed)
	}
	if got := counterValue(t, s, "gantry_plan_rejected_nodes_total"); got != workers*perWorker-10 {
		t.Errorf("rejected nodes metric %v, want %d", got, workers*perWorker-10)
	}
}

// TestPlanFailureRetriedWhenNodesChanged covers the blocked-evaluation race:
// a plan that records "no room" but was decided on a snapshot older than
// the nodes table (a node registered meanwhile) re-enqueues its job; one
// decided on a current snapshot does not.
func TestPlanFailureRetriedWhenNodesChanged(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	if _, err := c.RegisterJob(bg, mockJob("web", 1)); err != nil {
		t.Fatal(err)
	}
	before := s.state.Snapshot().Index() // the scheduler's view: no nodes
	if _, err := c.RegisterNode(bg, fakeNode("n1", 4000, 4096)); err != nil {
		t.Fatal(err)
	}
	nodesIndex := s.state.Snapshot().TableIndex(state.TableNodes)
	// Let the real scheduler settle first (it may itself hit the race the
	// fix covers, which would count here).
	waitLive(t, c, "web", 1)
	tests := []struct {
		name      string
		snapIndex uint64
		retried   bool
	}{
		{"snapshot before the node", before, true},
		{"snapshot after the node", nodesIndex, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			was := counterValue(t, s, "gantry_plan_blocked_retries_total")
			_, err := s.SubmitPlan(bg, &structs.Plan{JobID: "web", SnapshotIndex: tc.snapIndex,
				Failure: &structs.PlacementFailure{Unplaced: 1, Message: "no nodes in the cluster"}})
			if err != nil {
				t.Fatal(err)
			}
			got := counterValue(t, s, "gantry_plan_blocked_retries_total") - was
			if (got == 1) != tc.retried {
				t.Fatalf("retries %v, want retried=%v", got, tc.retried)
			}
		})
	}
}
