package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// checkUsage compares every node's usage row with a scan of its
// allocations.
func checkUsage(t *testing.T, snap *Snapshot, step string) {
	t.Helper()
	for _, n := range snap.Nodes() {
		var want structs.Resources
		for _, a := range snap.AllocsByNode(n.ID) {
			if !a.Terminal() {
				want = want.Add(a.Resources)
			}
		}
		if got := snap.NodeUsage(n.ID); got != want {
			t.Fatalf("%s: node %s usage %s, scan says %s", step, n.ID, got, want)
		}
	}
	nsWant := map[string]structs.Resources{}
	for _, a := range snap.Allocs() {
		if !a.Terminal() {
			ns := structs.JobNamespace(a.JobID)
			nsWant[ns] = nsWant[ns].Add(a.Resources)
		}
	}
	for _, ns := range []string{structs.DefaultNamespace, "team", "other"} {
		if got := snap.NamespaceUsage(ns); got != nsWant[ns] {
			t.Fatalf("%s: namespace %s usage %s, scan says %s", step, ns, got, nsWant[ns])
		}
	}
}

// TestNodeUsageFollowsEveryWrite is a property test: random sequences of
// every kind of allocation write (plans, agents' reports, node down, job
// stop and purge, garbage collection, restore) keep the usage rows of
// nodes and namespaces equal to a scan.
func TestNodeUsageFollowsEveryWrite(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			s := newStore(t)
			index := uint64(1)
			next := func() uint64 { index++; return index }
			for i := range 4 {
				must(t, s.UpsertNode(next(), &structs.Node{ID: fmt.Sprintf("n%d", i), Status: structs.NodeStatusReady}))
			}
			jobs := []string{"a", "team/b", "team/c"}
			upsert := func(key string) {
				must(t, s.UpsertJob(next(), &structs.Job{ID: key, Name: structs.JobName(key), Namespace: structs.JobNamespace(key), Version: 1}))
			}
			for _, j := range jobs {
				upsert(j)
			}
			var ids []string
			statuses := []string{structs.AllocClientRunning, structs.AllocClientComplete, structs.AllocClientFailed, structs.AllocClientPending}
			for step := range 120 {
				snap := s.Snapshot()
				switch op := rng.IntN(11); {
				case op < 4: // a plan: placements and a stop or eviction
					var allocs []*structs.Allocation
					for range 1 + rng.IntN(3) {
						id := fmt.Sprintf("x%d", len(ids))
						ids = append(ids, id)
						a := testAlloc(id, jobs[rng.IntN(3)], fmt.Sprintf("n%d", rng.IntN(4)), len(ids))
						a.Resources = structs.Resources{CPU: 1 + rng.Int64N(500), MemoryMB: 1 + rng.Int64N(500)}
						allocs = append(allocs, a)
					}
					if len(ids) > 0 {
						if old := snap.AllocByID(ids[rng.IntN(len(ids))]); old != nil {
							c := old.Copy()
							c.DesiredStatus = []string{structs.AllocDesiredStop, structs.AllocDesiredEvict}[rng.IntN(2)]
							allocs = append(allocs, c)
						}
					}
					_, err := s.ApplyPlans(next(), []*structs.ApplyPlanRequest{{JobID: allocs[0].JobID, Allocs: allocs}})
					must(t, err)
				case op < 7 && len(ids) > 0: // agents' reports
					var reqs []structs.AllocClientUpdateRequest
					for range 1 + rng.IntN(3) {
						a := snap.AllocByID(ids[rng.IntN(len(ids))])
						if a == nil {
							continue
						}
						reqs = append(reqs, structs.AllocClientUpdateRequest{NodeID: a.NodeID, Updates: []*structs.AllocClientUpdate{
							{ID: a.ID, ClientStatus: statuses[rng.IntN(len(statuses))]}}})
					}
					_, err := s.UpdateAllocsFromClientBatch(next(), reqs)
					must(t, err)
				case op == 7:
					must(t, s.UpdateNodeStatus(next(), fmt.Sprintf("n%d", rng.IntN(4)), structs.NodeStatusDown, 1))
				case op == 8:
					must(t, s.StopJob(next(), jobs[rng.IntN(3)], 1)) // purged jobs are registered again
				case op == 9: // garbage collection of some allocations and a job
					req := &structs.GCRequest{Time: 1}
					for _, j := range jobs {
						g := structs.GCAllocs{JobID: j}
						if job := snap.JobByID(j); job != nil {
							g.ModifyIndex = job.ModifyIndex
						}
						for _, a := range snap.AllocsByJob(j) {
							if rng.IntN(3) == 0 {
								g.IDs = append(g.IDs, a.ID)
							}
						}
						req.Allocs = append(req.Allocs, g)
					}
					if j := snap.JobByID(jobs[rng.IntN(3)]); j != nil {
						req.Jobs = append(req.Jobs, structs.GCJob{ID: j.ID, ModifyIndex: j.ModifyIndex})
					}
					_, err := s.GarbageCollect(next(), req)
					must(t, err)
					for _, j := range jobs { // a collected job is registered again
						if s.Snapshot().JobByID(j) == nil {
							must(t, s.UpsertJob(next(), &structs.Job{ID: j, Name: j, Version: 1}))
						}
					}
				default:
					j := jobs[rng.IntN(3)]
					must(t, s.PurgeJob(next(), j))
					upsert(j)
				}
				checkUsage(t, s.Snapshot(), fmt.Sprint("step ", step))
			}
			var buf bytes.Buffer
			must(t, s.Snapshot().Persist(&buf))
			r := newStore(t)
			must(t, r.Restore(&buf))
			checkUsage(t, r.Snapshot(), "after restore")
			for _, n := range s.Snapshot().Nodes() {
				if a, b := s.Snapshot().NodeUsage(n.ID), r.Snapshot().NodeUsage(n.ID); a != b {
					t.Fatalf("node %s: %s before persist, %s after restore", n.ID, a, b)
				}
			}
			if a, b := s.Snapshot().NamespaceUsage("team"), r.Snapshot().NamespaceUsage("team"); a != b {
				t.Fatalf("namespace team: %s before persist, %s after restore", a, b)
			}
		})
	}
}
