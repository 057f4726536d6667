package state

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

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
		ids[i] = structs.NewUUIDFrom(rng)
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
		nodes[i] = structs.NewUUIDFrom(rng)
	}
	for i := range 1_000_000 {
		a := &structs.Allocation{ID: structs.NewUUIDFrom(rng), NodeID: nodes[rng.IntN(len(nodes))], JobID: "j",
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

// BenchmarkAllocTableC1M writes allocations as c1m-like does (docs/bench.md):
// 10,000 nodes named like the bench's simulated ones ("sim-0-00042", IDs
// with a long common prefix), jobs of 1,000 tasks, random UUIDs, each plan
// placing a new job's 1,000 allocations on random nodes and then one
// report batch marking them running, on a table that already holds
// 100,000 allocations. b.N counts allocations; it reports the time per
// placed and per reported allocation, wall and process CPU (GC included).
func BenchmarkAllocTableC1M(b *testing.B) {
	const nodes, batch, preload = 10000, 1000, 100
	s, _ := New()
	for i := range nodes {
		id := fmt.Sprintf("sim-0-%05d", i)
		_ = s.UpsertNode(1, &structs.Node{ID: id, Name: id, Status: structs.NodeStatusReady,
			Capacity: structs.Resources{CPU: 64000, MemoryMB: 262144}})
	}
	rng := rand.New(rand.NewPCG(7, 11))
	uuid := func() string {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	index := uint64(2)
	// place writes one job's plan and its report batch.
	place := func(jobNo int) (plan, report func() error) {
		job := testJob(fmt.Sprintf("c1m-%d", jobNo))
		job.Count = batch
		_ = s.UpsertJob(index, job)
		index++
		allocs := make([]*structs.Allocation, batch)
		byNode := map[string]*structs.AllocClientUpdateRequest{}
		for i := range allocs {
			node := fmt.Sprintf("sim-0-%05d", rng.IntN(nodes))
			allocs[i] = testAlloc(uuid(), job.ID, node, i)
			r := byNode[node]
			if r == nil {
				r = &structs.AllocClientUpdateRequest{NodeID: node, Time: 2e18}
				byNode[node] = r
			}
			r.Updates = append(r.Updates, &structs.AllocClientUpdate{ID: allocs[i].ID,
				ClientStatus: structs.AllocClientRunning,
				TaskState:    structs.TaskState{State: structs.TaskStateRunning, StartedAt: 2e18}})
		}
		reqs := make([]structs.AllocClientUpdateRequest, 0, len(byNode))
		for _, r := range byNode {
			reqs = append(reqs, *r)
		}
		planIndex, reportIndex := index, index+1
		index += 2
		return func() error { return s.UpsertAllocs(planIndex, allocs) },
			func() error { _, err := s.UpdateAllocsFromClientBatch(reportIndex, reqs); return err }
	}
	for j := range preload {
		plan, report := place(j)
		if plan() != nil || report() != nil {
			b.Fatal("preload failed")
		}
	}
	var plans, reports []func() error
	for n := 0; n < b.N; n += batch {
		p, r := place(preload + n/batch)
		plans, reports = append(plans, p), append(reports, r)
	}
	runtime.GC()
	b.ResetTimer()
	var planNs, reportNs time.Duration
	var planCPU, reportCPU int64
	for i := range plans {
		start, startCPU := time.Now(), processCPU(b)
		if err := plans[i](); err != nil {
			b.Fatal(err)
		}
		mid, midCPU := time.Now(), processCPU(b)
		if err := reports[i](); err != nil {
			b.Fatal(err)
		}
		planNs += mid.Sub(start)
		reportNs += time.Since(mid)
		planCPU += midCPU - startCPU
		reportCPU += processCPU(b) - midCPU
	}
	b.StopTimer()
	placed := float64(len(plans) * batch)
	b.ReportMetric(float64(planNs)/placed, "plan-ns/alloc")
	b.ReportMetric(float64(reportNs)/placed, "report-ns/alloc")
	b.ReportMetric(float64(planCPU)/placed, "plan-cpu-ns/alloc")
	b.ReportMetric(float64(reportCPU)/placed, "report-cpu-ns/alloc")
}

// processCPU is the CPU time the process has used (every thread, the
// garbage collector's included), in nanoseconds: on a shared machine it
// moves less with other work than wall time does.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
