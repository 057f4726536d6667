package state

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkUpsertAllocs inserts allocations in plan-sized batches of 1,000,
// decoded from JSON as the FSM does (without the job, which the plan
// applier leaves out and the store re-embeds), and reports the heap each
// stored allocation costs.
func BenchmarkUpsertAllocs(b *testing.B) {
	s, _ := New()
	job := testJob("web")
	job.Env = map[string]string{"A": "1", "B": "2"}
	job.Config = map[string]any{"run_for": "10s", "exit_code": 0}
	_ = s.UpsertJob(1, job)
	stored := s.Snapshot().JobByID("web")
	batch := make([]*structs.Allocation, 1000)
	for i := range batch {
		a := testAlloc("", "web", fmt.Sprintf("n%04d", i), i)
		a.JobVersion = stored.Version
		batch[i] = a
	}
	raw, _ := json.Marshal(batch)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	index := uint64(2)
	for n := 0; n < b.N; n += len(batch) {
		var allocs []*structs.Allocation
		_ = json.Unmarshal(raw, &allocs)
		for i, a := range allocs {
			a.ID = fmt.Sprintf("%08d-%04d", n, i)
		}
		if err := s.UpsertAllocs(index, allocs); err != nil {
			b.Fatal(err)
		}
		index++
	}
	b.StopTimer()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	inserted := (b.N + len(batch) - 1) / len(batch) * len(batch)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(inserted), "heap-B/alloc")
	runtime.KeepAlive(s)
}

// BenchmarkBlockingQueryRead measures one read of a job's status data
// (job, allocations, failure) on a store of 10,000 allocations.
func BenchmarkBlockingQueryRead(b *testing.B) {
	s, _ := New()
	_ = s.UpsertJob(1, testJob("web"))
	var allocs []*structs.Allocation
	for i := range 10000 {
		allocs = append(allocs, testAlloc(fmt.Sprint("a", i), fmt.Sprint("job", i%100), "n1", i))
	}
	_ = s.UpsertAllocs(2, allocs)
	read := func(ws memdb.WatchSet, snap *Snapshot) (uint64, error) {
		snap.JobByIDWatch(ws, "job7")
		snap.AllocsByJobWatch(ws, "job7")
		snap.PlacementFailureWatch(ws, "job7")
		return snap.TableIndex(TableJobs, TableAllocs), nil
	}
	for b.Loop() {
		if _, err := s.BlockingQuery(b.Context(), 0, 0, read); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocTableGet looks up random-UUID allocations in a table of
// 1,000,000 (as the FSM does for every report and stop).
func BenchmarkAllocTableGet(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := newAllocTxn(newAllocTable(), 1)
	ids := make([]string, 1_000_000)
	for i := range ids {
		ids[i] = scheduler.NewID(rng)
		if err := x.put(&structs.Allocation{ID: ids[i], NodeID: ids[i%10000], JobID: ids[i%1000]}); err != nil {
			b.Fatal(err)
		}
	}
	t := x.result()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if t.get(ids[(i*7919)%len(ids)]) == nil {
			b.Fatal("missing")
		}
	}
}

// BenchmarkNodeDelta compares the node watch's two ways to find a changed
// node's new allocations in a table of 1,000,000 on 10,000 nodes: a scan
// reading each allocation (EachAllocOfNode) and NodeAllocDelta.
func BenchmarkNodeDelta(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := newAllocTxn(newAllocTable(), 1)
	nodes := make([]string, 10000)
	for i := range nodes {
		nodes[i] = scheduler.NewID(rng)
	}
	for i := range 1_000_000 {
		a := &structs.Allocation{ID: scheduler.NewID(rng), NodeID: nodes[rng.IntN(len(nodes))], JobID: "j",
			CreateIndex: uint64(i / 1000), AllocModifyIndex: uint64(i / 1000)}
		if err := x.put(a); err != nil {
			b.Fatal(err)
		}
	}
	snap := &Snapshot{allocs: x.result()}
	since := uint64(990)
	b.Run("scan", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			n := 0
			snap.EachAllocOfNode(nodes[(i*7919)%len(nodes)], func(a *structs.Allocation) bool {
				if a.CreateIndex <= since {
					n++
				}
				if a.AllocModifyIndex > since {
					n--
				}
				return true
			})
		}
	})
	b.Run("delta", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			snap.NodeAllocDelta(nodes[(i*7919)%len(nodes)], since, func(*structs.Allocation) {})
		}
	})
}
