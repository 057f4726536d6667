package scheduler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// fillUntilFull places random jobs (bin-pack, a third spread) on 400 nodes
// of mixed sizes until one does not fit entirely, and returns the share of
// the cluster's CPU and memory then in use, and the node visits per copy.
func fillUntilFull(t *testing.T, seed uint64) (cpu, mem, visits float64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 77))
	st := schedtest.NewState()
	var capCPU, capMem int64
	for i := range 400 {
		c, m := int64(2000+2000*r.IntN(4)), int64(2048*(1+r.IntN(8)))
		capCPU, capMem = capCPU+c, capMem+m
		st.UpsertNode(schedtest.Node(fmt.Sprintf("n%03d", i), c, m))
	}
	pl := schedtest.NewPlanner(st)
	rng := rand.New(rand.NewPCG(seed, 5))
	copies, visited := 0, 0
	for j := 0; ; j++ {
		job := schedtest.Job(fmt.Sprint("j", j), 1+r.IntN(150), int64(100+r.IntN(1500)), int64(128+r.IntN(3000)))
		if r.IntN(3) == 0 {
			job.Placement = structs.PlacementSpread
		}
		st.UpsertJob(job)
		plan := &structs.Plan{JobID: job.ID}
		p, err := scheduler.NewPlacer(scheduler.Options{Rand: rng, Now: fixedNow}, st.Snapshot(), job, plan)
		if err != nil {
			t.Fatal(err)
		}
		failed := false
		for i := range job.Count {
			if p.Place(scheduler.PlaceRequest{Index: i}) == nil {
				failed = true
				break
			}
		}
		copies += len(plan.Placements)
		visited += p.NodesVisited()
		if _, err := pl.SubmitPlan(context.Background(), plan); err != nil {
			t.Fatal(err)
		}
		if failed {
			break
		}
	}
	if err := st.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	var uc, um int64
	snap := st.Snapshot()
	for _, n := range snap.Nodes() {
		for _, a := range snap.AllocsByNode(n.ID) {
			if !a.Terminal() {
				uc, um = uc+a.Resources.CPU, um+a.Resources.MemoryMB
			}
		}
	}
	return float64(uc) / float64(capCPU), float64(um) / float64(capMem), float64(visited) / float64(copies)
}

// TestKeptCandidatesPackAsWell: keeping the best half of the unchosen
// candidates for the next copy fills a cluster as far as ranking a fresh
// sample for every copy does, with fewer node visits per copy.
func TestKeptCandidatesPackAsWell(t *testing.T) {
	const seeds = 3
	run := func(keep func(int) int) (cpu, mem, visits float64) {
		defer scheduler.SetKeepCandidates(keep)()
		for seed := uint64(1); seed <= seeds; seed++ {
			c, m, v := fillUntilFull(t, seed)
			cpu, mem, visits = cpu+c/seeds, mem+m/seeds, visits+v/seeds
		}
		return cpu, mem, visits
	}
	noneCPU, noneMem, noneVisits := run(func(int) int { return 0 })
	cpu, mem, visits := run(func(s int) int { return s / 2 })
	t.Logf("fresh sample per copy: cpu %.3f mem %.3f, %.1f visits per copy", noneCPU, noneMem, noneVisits)
	t.Logf("best half kept:        cpu %.3f mem %.3f, %.1f visits per copy", cpu, mem, visits)
	if cpu < noneCPU-0.01 || mem < noneMem-0.01 {
		t.Errorf("keeping candidates packs worse: cpu %.3f mem %.3f, against %.3f %.3f", cpu, mem, noneCPU, noneMem)
	}
	if visits > 0.8*noneVisits {
		t.Errorf("%.1f node visits per copy, against %.1f without keeping: nothing saved", visits, noneVisits)
	}
}
