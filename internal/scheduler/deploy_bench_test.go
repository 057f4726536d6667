package scheduler_test

import (
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// deployView is a test view that keeps one deployment per job
// (scheduler.DeploymentReader).
type deployView struct {
	*schedtest.View
	deps map[string]*structs.Deployment
}

func (v *deployView) LatestDeployment(jobID string) *structs.Deployment { return v.deps[jobID] }

// BenchmarkUpdateCost is the scheduler's cost of one pass over a 100-copy
// job whose version changed, on 1,000 nodes half full: "plain" replaces
// every copy at once (no update block); "deployment" is a pass of a
// rolling update with max_parallel 10 (reconcile with the deployment, 10
// stops and placements); "deployment-wave-in-flight" is the pass while a
// wave is not healthy yet (nothing to do: the common case of a rolling
// update's passes). ns/copy divides by the copies the pass replaced.
func BenchmarkUpdateCost(b *testing.B) {
	ns, jobs, allocs := benchCluster(1000)
	v1 := schedtest.Job("web", 100, 100, 128)
	for i := range 100 {
		allocs = append(allocs, schedtest.Alloc(v1, i, ns[i*7%len(ns)].ID))
	}
	for _, a := range allocs {
		if a.JobID == "web" {
			a.ClientStatus = structs.AllocClientRunning
		}
	}
	v2 := v1.Copy()
	v2.Version = 2
	v2.Env = map[string]string{"V": "2"}
	rolling := v2.Copy()
	rolling.Update = &structs.UpdateStrategy{MaxParallel: 10, MinHealthyTime: structs.Duration(time.Second), HealthyDeadline: structs.Duration(time.Minute)}
	dep := &structs.Deployment{ID: "d", JobID: "web", JobVersion: 2, Status: structs.DeploymentRunning, Strategy: *rolling.Update}

	run := func(b *testing.B, v scheduler.State, wantPlaced int) {
		r := rng(1)
		b.ReportAllocs()
		placed := 0
		for b.Loop() {
			res, err := scheduler.ComputePlan(scheduler.Options{Rand: r, Now: fixedNow}, v, "web")
			if err != nil {
				b.Fatal(err)
			}
			if res.Placed != wantPlaced {
				b.Fatalf("placed %d, want %d", res.Placed, wantPlaced)
			}
			placed += res.Placed
		}
		if placed > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(placed), "ns/copy")
		}
	}
	b.Run("plain", func(b *testing.B) {
		run(b, schedtest.NewView(1, ns, append(jobs, v2), allocs), 100)
	})
	b.Run("deployment", func(b *testing.B) {
		run(b, &deployView{View: schedtest.NewView(1, ns, append(jobs, rolling), allocs), deps: map[string]*structs.Deployment{"web": dep}}, 10)
	})
	b.Run("deployment-wave-in-flight", func(b *testing.B) {
		var inFlight []*structs.Allocation
		for _, a := range allocs {
			if a.JobID == "web" && a.Index < 10 {
				a = a.Copy()
				a.DesiredStatus = structs.AllocDesiredStop
			}
			inFlight = append(inFlight, a)
		}
		for i := range 10 {
			a := schedtest.Alloc(rolling, i, ns[i].ID)
			a.ID += "-v2"
			inFlight = append(inFlight, a)
		}
		run(b, &deployView{View: schedtest.NewView(1, ns, append(jobs, rolling), inFlight), deps: map[string]*structs.Deployment{"web": dep}}, 0)
	})
}

// BenchmarkReconcileRolling is the reconciler alone for a 100-copy job:
// Reconcile (no update block, all replaced) against ReconcileRolling (a
// wave of 10).
func BenchmarkReconcileRolling(b *testing.B) {
	job := schedtest.Job("web", 100, 100, 128)
	var allocs []*structs.Allocation
	for i := range 100 {
		a := schedtest.Alloc(job, i, "n1")
		a.ClientStatus = structs.AllocClientRunning
		allocs = append(allocs, a)
	}
	job.Version = 2
	node := &structs.Node{ID: "n1", Status: structs.NodeStatusReady}
	nodeByID := func(string) *structs.Node { return node }
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := scheduler.Reconcile(job, allocs, nodeByID, fixedNow()); len(r.Place) != 100 {
				b.Fatal(len(r.Place))
			}
		}
	})
	rolling := job.Copy()
	rolling.Update = &structs.UpdateStrategy{MaxParallel: 10}
	dep := &structs.Deployment{JobID: "web", JobVersion: 2, Status: structs.DeploymentRunning}
	b.Run("deployment", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := scheduler.ReconcileRolling(rolling, allocs, dep, true, nodeByID, fixedNow()); len(r.Place) != 10 {
				b.Fatal(len(r.Place))
			}
		}
	})
}
