package scheduler_test

import (
	"fmt"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"

	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestComputePerNodePlan: a system job's copies go to their nodes when
// they fit; a full node's copy is counted in the failure by the resource
// it lacks (nodes the constraint excludes are not failures), and once it
// fits the copy is placed and the failure cleared; a later pass is a no-op.
func TestComputePerNodePlan(t *testing.T) {
	st := schedtest.NewState()
	st.UpsertNode(schedtest.Node("n1", 1000, 1024, "zone=a"))
	st.UpsertNode(schedtest.Node("n2", 1000, 1024, "zone=a"))
	st.UpsertNode(schedtest.Node("n3", 1000, 1024, "zone=b"))
	filler := schedtest.Job("filler", 0, 800, 10)
	st.UpsertJob(filler)
	st.UpsertAllocs(schedtest.Alloc(filler, 0, "n2"))
	j := schedtest.Job("agent", 0, 400, 100)
	j.Type = structs.JobTypeSystem
	j.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: "a"}}
	st.UpsertJob(j)

	res, _ := schedule(t, st, "agent", 1)
	if res.Placed != 1 || res.Unplaced != 1 || res.Plan.Placements[0].NodeID != "n1" {
		t.Fatalf("first pass: %+v", res.Plan)
	}
	if f := st.Failure("agent"); f == nil || f.Message != "1 node excluded by cpu" {
		t.Fatalf("failure %+v", f)
	}
	res, _ = schedule(t, st, "agent", 2)
	if !res.Plan.IsNoOp() {
		t.Fatalf("unchanged failure rewritten: %+v", res.Plan)
	}
	st.PurgeJob("filler")
	res, _ = schedule(t, st, "agent", 3)
	if res.Placed != 1 || res.Plan.Placements[0].NodeID != "n2" || !res.Plan.ClearFailure {
		t.Fatalf("after room freed: %+v", res.Plan)
	}
	if err := st.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	res, _ = schedule(t, st, "agent", 4)
	if !res.Plan.IsNoOp() {
		t.Fatalf("converged job planned again: %+v", res.Plan)
	}
}

// BenchmarkComputePerNodePlan computes a system job's first plan (one
// copy per zone=a node: nine in ten nodes) on a cluster filled to ~50%,
// against a service job of as many copies.
func BenchmarkComputePerNodePlan(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, typ := range []structs.JobType{structs.JobTypeSystem, structs.JobTypeService} {
			b.Run(fmt.Sprintf("%s/nodes=%d", typ, n), func(b *testing.B) {
				ns, jobs, allocs := benchCluster(n)
				j := schedtest.Job("agent", n*9/10, 100, 64)
				j.Type = typ
				if typ == structs.JobTypeSystem {
					j.Count = 0
				}
				j.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: "a"}}
				v := schedtest.NewView(1, ns, append(jobs, j), allocs)
				r := rng(1)
				b.ReportAllocs()
				placed := 0
				for b.Loop() {
					res, err := scheduler.ComputePlan(scheduler.Options{Rand: r, Now: fixedNow}, v, "agent")
					if err != nil {
						b.Fatal(err)
					}
					placed += res.Placed
				}
				if placed == 0 {
					b.Fatal("nothing placed")
				}
				b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
			})
		}
	}
}
