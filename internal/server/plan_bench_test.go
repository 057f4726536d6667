package server

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkSchedulePipeline measures the scheduling side of c1m-like per
// placement, without Raft: per iteration one new 1,000-copy job is decided
// by scheduler.ComputePlan on an overlay view (10,000 nodes with usage
// rows, up to 8 plans in flight laid over the snapshot), checked by
// evaluatePlan, and added to the overlay index; the oldest plan in flight
// is then committed to the store (not timed: the FSM's cost) and leaves
// the overlay. It reports ns and allocations per placement. The quota
// variant runs the jobs in a namespace with a quota (large enough for
// every placement): the cost of the quota checks of the placement core and
// the plan applier.
func BenchmarkSchedulePipeline(b *testing.B) {
	b.Run("no-quota", func(b *testing.B) { benchSchedulePipeline(b, false) })
	b.Run("quota", func(b *testing.B) { benchSchedulePipeline(b, true) })
}

func benchSchedulePipeline(b *testing.B, quota bool) {
	const nodes, copies, inflight = 10000, 1000, 8
	st, err := state.New()
	if err != nil {
		b.Fatal(err)
	}
	ns := structs.DefaultNamespace
	if quota {
		ns = "team"
		if err := st.UpsertNamespaces(1, []*structs.Namespace{{Name: ns, Quota: &structs.Quota{CPU: 1 << 50, MemoryMB: 1 << 50}}}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range nodes {
		id := fmt.Sprintf("node-%05d", i)
		if err := st.UpsertNode(1, &structs.Node{ID: id, Name: id, Status: structs.NodeStatusReady,
			Capacity: structs.Resources{CPU: 64000, MemoryMB: 131072}}); err != nil {
			b.Fatal(err)
		}
	}
	index := uint64(2)
	rng := rand.New(rand.NewPCG(1, 2))
	now := func() time.Time { return time.Unix(1e9, 0) }
	cache := scheduler.NewFeasibilityCache(0)
	var entries []*overlayEntry
	var reqs []*structs.ApplyPlanRequest
	ix := newOverlayIndex()
	placed := 0
	var mallocs uint64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		index++
		name := fmt.Sprint("job-", index)
		job := &structs.Job{ID: structs.JobKey(ns, name), Name: name, Namespace: ns, Count: copies, Driver: "mock", Version: 1,
			Resources: structs.Resources{CPU: 100, MemoryMB: 128}}
		job.Canonicalize()
		if err := st.UpsertJob(index, job); err != nil {
			b.Fatal(err)
		}
		before := heapMallocs()
		b.StartTimer()
		view := &overlayView{Snapshot: st.Snapshot(), entries: entries, index: ix}
		res, err := scheduler.ComputePlan(scheduler.Options{Rand: rng, Now: now, Cache: cache}, view, job.ID)
		if err != nil {
			b.Fatal(err)
		}
		pr, req := evaluatePlan(view, res.Plan, 1)
		if len(pr.RejectedNodes) > 0 || req == nil {
			b.Fatalf("rejected %d nodes", len(pr.RejectedNodes))
		}
		placed += len(pr.Placed)
		e := newOverlayEntry(req)
		ix = ix.add(e)
		entries = append(entries, e)
		reqs = append(reqs, req)
		if len(entries) > inflight {
			ix = ix.remove(map[*overlayEntry]bool{entries[0]: true})
			b.StopTimer()
			mallocs += heapMallocs() - before
			index++
			if err := st.UpsertAllocs(index, reqs[0].Allocs); err != nil {
				b.Fatal(err)
			}
			entries, reqs = entries[1:], reqs[1:]
			b.StartTimer()
			continue
		}
		b.StopTimer()
		mallocs += heapMallocs() - before
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(placed), "ns/placement")
	b.ReportMetric(float64(mallocs)/float64(placed), "allocs/placement")
}

// heapMallocs returns the heap allocations made so far by the process.
func heapMallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}
