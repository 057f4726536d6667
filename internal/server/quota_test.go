package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// quotaState: namespace team (memory quota 1000 MiB) holding job team/a
// with one live 400 MiB allocation on n1; nodes n1..n3 with room for
// everything; job team/b to place.
func quotaState(t *testing.T) *state.Store {
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
	for _, id := range []string{"n1", "n2", "n3"} {
		must(st.UpsertNode(1, &structs.Node{ID: id, Name: id, Status: structs.NodeStatusReady,
			Capacity: structs.Resources{CPU: 100000, MemoryMB: 100000}}))
	}
	must(st.UpsertNamespaces(2, []*structs.Namespace{{Name: "team", Quota: &structs.Quota{MemoryMB: 1000}}}))
	for _, name := range []string{"a", "b"} {
		must(st.UpsertJob(3, &structs.Job{ID: "team/" + name, Name: name, Namespace: "team", Priority: 50, Version: 1}))
	}
	must(st.UpsertJob(3, &structs.Job{ID: "free", Name: "free", Priority: 50, Version: 1}))
	must(st.UpsertAllocs(4, []*structs.Allocation{
		{ID: "a-1", JobID: "team/a", NodeID: "n1", Resources: structs.Resources{CPU: 100, MemoryMB: 400}, DesiredStatus: "run", ClientStatus: "running"},
	}))
	return st
}

func placeMem(id, job, node string, mem int64) *structs.Allocation {
	return &structs.Allocation{ID: id, JobID: job, NodeID: node, Resources: structs.Resources{CPU: 10, MemoryMB: mem}}
}

// TestEvaluatePlanQuota: the plan applier keeps a namespace within its
// quota, node by node in ID order; a plan's own stops free room; other
// namespaces are not touched.
func TestEvaluatePlanQuota(t *testing.T) {
	for _, tc := range []struct {
		name         string
		plan         structs.Plan
		wantPlaced   []string
		wantRejected []string
	}{
		{name: "within", plan: structs.Plan{JobID: "team/b", Placements: []*structs.Allocation{
			placeMem("b-1", "team/b", "n1", 300), placeMem("b-2", "team/b", "n2", 300)}},
			wantPlaced: []string{"b-1", "b-2"}},
		{name: "exactly full", plan: structs.Plan{JobID: "team/b", Placements: []*structs.Allocation{
			placeMem("b-1", "team/b", "n1", 600)}},
			wantPlaced: []string{"b-1"}},
		{name: "the node that goes over is rejected", plan: structs.Plan{JobID: "team/b", Placements: []*structs.Allocation{
			placeMem("b-1", "team/b", "n1", 300), placeMem("b-2", "team/b", "n2", 300), placeMem("b-3", "team/b", "n3", 300)}},
			wantPlaced: []string{"b-1", "b-2"}, wantRejected: []string{"n3"}},
		{name: "a node's placements go together", plan: structs.Plan{JobID: "team/b", Placements: []*structs.Allocation{
			placeMem("b-1", "team/b", "n1", 400), placeMem("b-2", "team/b", "n1", 400)}},
			wantRejected: []string{"n1"}},
		{name: "own stop frees room", plan: structs.Plan{JobID: "team/a", Placements: []*structs.Allocation{
			placeMem("a-2", "team/a", "n2", 1000)}, Stops: []structs.AllocStop{stop("a-1", "n1")}},
			wantPlaced: []string{"a-2"}},
		{name: "another namespace has no quota", plan: structs.Plan{JobID: "free", Placements: []*structs.Allocation{
			placeMem("f-1", "free", "n1", 5000)}},
			wantPlaced: []string{"f-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := evaluatePlan(quotaState(t).Snapshot(), &tc.plan, 1)
			if !slices.Equal(res.Placed, tc.wantPlaced) || !slices.Equal(res.RejectedNodes, tc.wantRejected) {
				t.Fatalf("placed %v rejected %v, want %v and %v", res.Placed, res.RejectedNodes, tc.wantPlaced, tc.wantRejected)
			}
		})
	}
}

// TestOverlayNamespaceUsage: the view schedulers and the applier decide on
// counts the uncommitted plans' placements in their namespace once, also
// while a committed one is still in the overlay, so two plans checked
// before either commits cannot together exceed the quota.
func TestOverlayNamespaceUsage(t *testing.T) {
	st := quotaState(t)
	first := &structs.ApplyPlanRequest{JobID: "team/b", Allocs: []*structs.Allocation{
		{ID: "b-1", JobID: "team/b", NodeID: "n2", Resources: structs.Resources{MemoryMB: 500}, DesiredStatus: "run", ClientStatus: "pending"}}}
	e := newOverlayEntry(first)
	v := &overlayView{Snapshot: st.Snapshot(), entries: []*overlayEntry{e}, index: overlayIndex{}.add(e)}
	if got := v.NamespaceUsage("team"); got.MemoryMB != 900 {
		t.Fatalf("usage with one plan in flight: %d MiB, want 400 + 500", got.MemoryMB)
	}
	if got := v.NamespaceUsage(structs.DefaultNamespace); !got.IsZero() {
		t.Fatalf("default namespace: %s, want nothing", got)
	}
	// A second plan checked on that view: 200 MiB would exceed 1000.
	res, _ := evaluatePlan(v, &structs.Plan{JobID: "team/b", Placements: []*structs.Allocation{placeMem("b-2", "team/b", "n3", 200)}}, 1)
	if len(res.Placed) != 0 {
		t.Fatalf("second plan placed %v past the quota", res.Placed)
	}
	// The first plan commits; its entry is still in the overlay for a
	// moment: counted once.
	if _, err := st.ApplyPlans(10, []*structs.ApplyPlanRequest{first}); err != nil {
		t.Fatal(err)
	}
	v.Snapshot = st.Snapshot()
	if got := v.NamespaceUsage("team"); got.MemoryMB != 900 {
		t.Fatalf("usage once committed, still in the overlay: %d MiB, want 900", got.MemoryMB)
	}
}

// TestQuotaPlacesNothingMoreAndSaysWhy is the acceptance test: a job in a
// namespace at its quota places what fits, leaves the rest pending with
// the reason in its status; more jobs there place nothing; room freed by
// stopping a job, or a raised quota, places the pending copies.
func TestQuotaPlacesNothingMoreAndSaysWhy(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	if _, err := c.RegisterNode(bg, fakeNode("n1", 64000, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyNamespace(bg, &api.Namespace{Name: "team-a", Quota: &api.Quota{MemoryMB: 4096}}); err != nil {
		t.Fatal(err)
	}
	team := c.WithNamespace("team-a")
	big := mockJob("big", 5)
	big.Resources.MemoryMB = 1000
	if _, err := team.RegisterJob(bg, big); err != nil {
		t.Fatal(err)
	}
	pending := func(job string, placed int, reason string) {
		t.Helper()
		waitFor(t, 10*time.Second, job+" placed as far as the quota allows", func() (bool, string) {
			st, _, err := team.JobStatus(bg, job, nil)
			if err != nil {
				return false, err.Error()
			}
			live := 0
			for _, a := range st.Allocations {
				if !a.Terminal() {
					live++
				}
			}
			pf := st.PlacementFailure
			if pf == nil {
				return false, "no placement failure"
			}
			return live == placed && strings.Contains(pf.Message, reason), pf.Message
		})
	}
	pending("big", 4, "quota team-a: memory 3.9/4 GiB")

	// A second job in the namespace places nothing and says why.
	small := mockJob("small", 2)
	small.Resources.MemoryMB = 100
	if _, err := team.RegisterJob(bg, small); err != nil {
		t.Fatal(err)
	}
	pending("small", 0, "quota team-a: memory 3.9/4 GiB")
	// The same job in the default namespace is not held back.
	if _, err := c.RegisterJob(bg, small); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "small in default placed", func() (bool, string) {
		n := len(liveAllocs(t, c, "small"))
		return n == 2, ""
	})

	// Stopping big frees the namespace: small places.
	if _, err := team.StopJob(bg, "big", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "small placed once big stopped", func() (bool, string) {
		allocs, _, err := team.JobAllocations(bg, "small", nil)
		live := 0
		for _, a := range allocs {
			if !a.Terminal() {
				live++
			}
		}
		return err == nil && live == 2, ""
	})
	// Raising the quota places what waited on it.
	if _, err := team.RegisterJob(bg, big); err != nil {
		t.Fatal(err)
	}
	pending("big", 3, "quota team-a: memory")
	if _, err := c.ApplyNamespace(bg, &api.Namespace{Name: "team-a", Quota: &api.Quota{MemoryMB: 8192}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "big placed whole under the raised quota", func() (bool, string) {
		st, _, err := team.JobStatus(bg, "big", nil)
		if err != nil {
			return false, err.Error()
		}
		live := 0
		for _, a := range st.Allocations {
			if !a.Terminal() {
				live++
			}
		}
		return live == 5 && st.PlacementFailure == nil, ""
	})
	nss, _, err := c.Namespaces(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if ns.Name == "team-a" && (ns.Usage.MemoryMB != 5200 || ns.Jobs != 2) {
			t.Fatalf("team-a: usage %s, %d jobs; want 5200 MiB, 2 jobs", ns.Usage, ns.Jobs)
		}
	}
	// A namespace with jobs is not deleted.
	if _, err := c.DeleteNamespace(bg, "team-a"); apiStatus(err) != 409 {
		t.Fatalf("deleting team-a with jobs: %v, want 409", err)
	}
}
