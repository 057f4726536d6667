package state

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkGarbageCollect applies GC entries of 1,024 failed allocations
// each (the default GCBatchSize), spread over 100 jobs and 10,000 nodes,
// to a table that also holds 100,000 live allocations of those jobs. b.N
// counts deleted allocations; it reports wall and process CPU time per
// deleted allocation.
func BenchmarkGarbageCollect(b *testing.B) {
	const nodes, jobs, live, batch = 10000, 100, 100000, 1024
	s, _ := New()
	node := func(i int) string { return fmt.Sprintf("sim-0-%05d", i%nodes) }
	for i := range nodes {
		_ = s.UpsertNode(1, &structs.Node{ID: node(i), Name: node(i), Status: structs.NodeStatusReady,
			Capacity: structs.Resources{CPU: 64000, MemoryMB: 262144}})
	}
	index := uint64(2)
	mods := map[string]uint64{}
	for j := range jobs {
		job := testJob(fmt.Sprintf("job-%d", j))
		job.Count = live / jobs
		_ = s.UpsertJob(index, job)
		mods[job.ID] = index
		index++
		allocs := make([]*structs.Allocation, 0, live/jobs)
		for i := range live / jobs {
			allocs = append(allocs, testAlloc(fmt.Sprintf("live-%d-%d", j, i), job.ID, node(j*1000+i), i))
		}
		_ = s.UpsertAllocs(index, allocs)
		index++
	}
	// The failed allocations, as the leader lists them: by job.
	var reqs []*structs.GCRequest
	for n := 0; n < b.N; n += batch {
		byJob := map[string]int{} // index in req.Allocs
		req := &structs.GCRequest{}
		var allocs []*structs.Allocation
		for i := range min(batch, b.N-n) {
			k := n + i
			job := fmt.Sprintf("job-%d", k%jobs)
			a := testAlloc(fmt.Sprintf("dead-%08d", k), job, node(k), live/jobs+k)
			a.ClientStatus = structs.AllocClientFailed
			allocs = append(allocs, a)
			g, ok := byJob[job]
			if !ok {
				g = len(req.Allocs)
				byJob[job] = g
				req.Allocs = append(req.Allocs, structs.GCAllocs{JobID: job, ModifyIndex: mods[job]})
			}
			req.Allocs[g].IDs = append(req.Allocs[g].IDs, a.ID)
		}
		_ = s.UpsertAllocs(index, allocs)
		index++
		reqs = append(reqs, req)
	}
	runtime.GC()
	b.ResetTimer()
	deleted := 0
	start, startCPU := time.Now(), processCPU(b)
	for _, req := range reqs {
		res, err := s.GarbageCollect(index, req)
		if err != nil {
			b.Fatal(err)
		}
		deleted += res.Allocs
		index++
	}
	wall, cpu := time.Since(start), processCPU(b)-startCPU
	b.StopTimer()
	if deleted != b.N {
		b.Fatalf("deleted %d of %d", deleted, b.N)
	}
	b.ReportMetric(float64(wall)/float64(deleted), "wall-ns/alloc")
	b.ReportMetric(float64(cpu)/float64(deleted), "cpu-ns/alloc")
}
