package scheduler_test

import (
	"fmt"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestFeasibilityCache: with a cache, placements still respect
// constraints, failures count the nodes the cache filtered, and a node
// whose object changed (relabelled, drained) is evaluated again.
func TestFeasibilityCache(t *testing.T) {
	st := schedtest.NewState()
	for i := range 10 {
		zone := "zone=a"
		if i < 3 {
			zone = "zone=b"
		}
		st.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 1000, 1024, zone))
	}
	job := schedtest.Job("db", 4, 1000, 1024)
	job.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: "b"}}
	st.UpsertJob(job)
	cache := scheduler.NewFeasibilityCache(2)
	opts := scheduler.Options{Rand: rng(1), Now: fixedNow, Cache: cache}

	res, err := scheduler.ComputePlan(opts, st.Snapshot(), "db")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Plan.Placements {
		if a.NodeID > "n2" {
			t.Fatalf("placed on %s, which is in zone a", a.NodeID)
		}
	}
	f := res.Plan.Failure
	if res.Placed != 3 || f == nil || f.NodesEvaluated != 10 || f.NodesFiltered["constraint zone = b"] != 7 || f.NodesExhausted["cpu"] != 3 {
		t.Fatalf("placed %d, failure %+v", res.Placed, f)
	}
	if _, err := schedtest.NewPlanner(st).SubmitPlan(t.Context(), res.Plan); err != nil {
		t.Fatal(err)
	}

	// Relabel one node into zone b and drain another: the cache sees new
	// node objects and re-evaluates them. The copy on n0 moves to n9;
	// the fourth copy still fits nowhere.
	n := st.Snapshot().NodeByID("n9").Copy()
	n.Labels["zone"] = "b"
	st.UpsertNode(n)
	if err := st.SetDrain("n0", true); err != nil {
		t.Fatal(err)
	}
	res, err = scheduler.ComputePlan(opts, st.Snapshot(), "db")
	if err != nil {
		t.Fatal(err)
	}
	if res.Placed != 1 || res.Plan.Placements[0].NodeID != "n9" || len(res.Plan.Stops) != 1 || res.Plan.Placements[0].PreviousAllocation != res.Plan.Stops[0].AllocID {
		t.Fatalf("placements %+v stops %+v", *res.Plan.Placements[0], res.Plan.Stops)
	}
	if f := res.Plan.Failure; f == nil || f.NodesFiltered["draining"] != 1 || f.NodesFiltered["constraint zone = b"] != 6 {
		t.Fatalf("failure %+v", f)
	}

	// Other constraint sets evict the least recently used class without
	// changing answers.
	for _, z := range []string{"x", "y", "b"} {
		j := schedtest.Job("z"+z, 1, 1, 1)
		j.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: z}}
		st.UpsertJob(j)
		res, err := scheduler.ComputePlan(opts, st.Snapshot(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if (res.Placed == 1) != (z == "b") {
			t.Fatalf("zone %s: placed %d", z, res.Placed)
		}
	}
}

// TestCacheMatchesLazyFailure: the failure record is the same with and
// without the cache.
func TestCacheMatchesLazyFailure(t *testing.T) {
	st := schedtest.NewState()
	for i := range 20 {
		n := schedtest.Node(fmt.Sprintf("n%02d", i), 1000, 1024, fmt.Sprintf("zone=%c", 'a'+i%3))
		n.Drain = i%7 == 0
		st.UpsertNode(n)
	}
	job := schedtest.Job("db", 2, 1000, 2048)
	job.Constraints = []structs.Constraint{{Label: "zone", Operator: "in", Values: []string{"a", "b"}}}
	st.UpsertJob(job)
	var got []*structs.PlacementFailure
	for _, cache := range []*scheduler.FeasibilityCache{nil, scheduler.NewFeasibilityCache(0)} {
		res, err := scheduler.ComputePlan(scheduler.Options{Rand: rng(5), Now: fixedNow, Cache: cache}, st.Snapshot(), "db")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res.Plan.Failure)
	}
	if !scheduler.SameFailure(got[0], got[1]) {
		t.Fatalf("lazy %+v\ncached %+v", got[0], got[1])
	}
}
