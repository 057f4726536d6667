package scheduler_test

import (
	"fmt"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// benchCluster builds n nodes of 4 cores / 8 GiB, each half full with two
// allocations of a filler job; a tenth of the nodes carry zone=b.
func benchCluster(n int) ([]*structs.Node, []*structs.Job, []*structs.Allocation) {
	filler := schedtest.Job("filler", 2*n, 1000, 2048)
	filler.Priority = 20
	nodes := make([]*structs.Node, 0, n)
	allocs := make([]*structs.Allocation, 0, 2*n)
	for i := range n {
		zone := "zone=a"
		if i%10 == 0 {
			zone = "zone=b"
		}
		node := schedtest.Node(fmt.Sprintf("node-%05d", i), 4000, 8192, zone)
		nodes = append(nodes, node)
		for k := range 2 {
			allocs = append(allocs, schedtest.Alloc(filler, 2*i+k, node.ID))
		}
	}
	return nodes, []*structs.Job{filler}, allocs
}

func benchPlace(b *testing.B, nodes int, job *structs.Job, cache *scheduler.FeasibilityCache) {
	ns, jobs, allocs := benchCluster(nodes)
	v := schedtest.NewView(1, ns, append(jobs, job), allocs)
	r := rng(1)
	b.ReportAllocs()
	b.ResetTimer()
	placed := 0
	for b.Loop() {
		plan := &structs.Plan{JobID: job.ID}
		p, err := scheduler.NewPlacer(scheduler.Options{Rand: r, Now: fixedNow, Cache: cache}, v, job, plan)
		if err != nil {
			b.Fatal(err)
		}
		for i := range job.Count {
			if p.Place(scheduler.PlaceRequest{Index: i}) != nil {
				placed++
			}
		}
	}
	if placed == 0 {
		b.Fatal("nothing placed")
	}
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
}

// BenchmarkPlace places a 100-copy job on a cluster filled to ~50%.
func BenchmarkPlace(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("nodes=%d/binpack", n), func(b *testing.B) {
			benchPlace(b, n, schedtest.Job("web", 100, 500, 1024), nil)
		})
		b.Run(fmt.Sprintf("nodes=%d/spread", n), func(b *testing.B) {
			j := schedtest.Job("web", 100, 500, 1024)
			j.Placement = structs.PlacementSpread
			benchPlace(b, n, j, nil)
		})
		b.Run(fmt.Sprintf("nodes=%d/constraint", n), func(b *testing.B) {
			// Only a tenth of the nodes qualify: the scan walks ~10x further.
			j := schedtest.Job("web", 100, 500, 1024)
			j.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: "b"}}
			benchPlace(b, n, j, nil)
		})
		b.Run(fmt.Sprintf("nodes=%d/constraint-cached", n), func(b *testing.B) {
			// The same with the equivalence-class cache kept across passes,
			// as the monolithic scheduler keeps it.
			j := schedtest.Job("web", 100, 500, 1024)
			j.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: "b"}}
			benchPlace(b, n, j, scheduler.NewFeasibilityCache(0))
		})
	}
}

// BenchmarkComputePlan runs the whole pipeline (reconcile, place, failure
// bookkeeping) for a new 100-copy job at 10,000 nodes.
func BenchmarkComputePlan(b *testing.B) {
	ns, jobs, allocs := benchCluster(10000)
	job := schedtest.Job("web", 100, 500, 1024)
	v := schedtest.NewView(1, ns, append(jobs, job), allocs)
	r := rng(1)
	b.ReportAllocs()
	placed := 0
	for b.Loop() {
		res, err := scheduler.ComputePlan(scheduler.Options{Rand: r, Now: fixedNow}, v, job.ID)
		if err != nil {
			b.Fatal(err)
		}
		placed += res.Placed
	}
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
}

// BenchmarkUnplaceable measures the worst case: a job that fits nowhere
// scans the whole cluster once, tries preemption, and records why.
func BenchmarkUnplaceable(b *testing.B) {
	ns, jobs, allocs := benchCluster(10000)
	job := schedtest.Job("huge", 100, 3500, 1024) // filler has priority 20 < 50: preemption finds room
	job.Priority = 10                             // ... unless it is less important
	v := schedtest.NewView(1, ns, append(jobs, job), allocs)
	r := rng(1)
	b.ReportAllocs()
	for b.Loop() {
		res, err := scheduler.ComputePlan(scheduler.Options{Rand: r, Now: fixedNow}, v, job.ID)
		if err != nil || res.Unplaced != 100 {
			b.Fatalf("unplaced %d, err %v", res.Unplaced, err)
		}
	}
}

// usageView is a schedtest view with usage rows kept in a map, as the
// state store keeps them, so the Placer takes its O(1) usage path and the
// benchmark measures the scheduler, not a scan.
type usageView struct {
	*schedtest.View
	usage map[string]structs.Resources
}

func (v *usageView) NodeUsage(nodeID string) structs.Resources { return v.usage[nodeID] }

// BenchmarkComputePlanBigJob runs ComputePlan for a new 1,000-copy job on
// 10,000 half-full nodes with usage rows: the c1m-like shape. It reports
// the cost per placement.
func BenchmarkComputePlanBigJob(b *testing.B) {
	ns, jobs, allocs := benchCluster(10000)
	job := schedtest.Job("web", 1000, 500, 1024)
	v := &usageView{View: schedtest.NewView(1, ns, append(jobs, job), allocs), usage: map[string]structs.Resources{}}
	for _, a := range allocs {
		v.usage[a.NodeID] = v.usage[a.NodeID].Add(a.Resources)
	}
	r := rng(1)
	cache := scheduler.NewFeasibilityCache(0)
	b.ReportAllocs()
	placed := 0
	for b.Loop() {
		res, err := scheduler.ComputePlan(scheduler.Options{Rand: r, Now: fixedNow, Cache: cache}, v, job.ID)
		if err != nil {
			b.Fatal(err)
		}
		placed += res.Placed
	}
	if placed != b.N*job.Count {
		b.Fatalf("placed %d of %d", placed, b.N*job.Count)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(placed), "ns/placement")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
		_, _ = scheduler.ComputePlan(scheduler.Options{Rand: r, Now: fixedNow, Cache: cache}, v, job.ID)
	}))/float64(job.Count), "allocs/placement")
}
