package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkChooseGarbage is the leader's scan when there is nothing to
// collect (the c1m shape: 200 jobs of 1,000 running copies on 10,000
// nodes): what every GCInterval costs the leader, per allocation in the
// state. It runs on the leader's own goroutine, off the placement path.
func BenchmarkChooseGarbage(b *testing.B) {
	const nodes, jobs, perJob = 10000, 200, 1000
	st, err := state.New()
	if err != nil {
		b.Fatal(err)
	}
	index := uint64(1)
	for j := range jobs {
		job := &structs.Job{Name: fmt.Sprintf("c1m-%d", j), Count: perJob, Driver: "mock", Version: 1,
			Resources: structs.Resources{CPU: 10, MemoryMB: 10}}
		job.Canonicalize()
		if err := st.UpsertJob(index, job); err != nil {
			b.Fatal(err)
		}
		index++
		allocs := make([]*structs.Allocation, perJob)
		for i := range allocs {
			allocs[i] = &structs.Allocation{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", j, i), JobID: job.ID,
				NodeID: fmt.Sprintf("sim-0-%05d", (j*perJob+i)%nodes), Index: i, Resources: job.Resources,
				DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientRunning}
		}
		if err := st.UpsertAllocs(index, allocs); err != nil {
			b.Fatal(err)
		}
		index++
	}
	snap := st.Snapshot()
	pol := DefaultConfig().gcPolicy(false)
	now := time.Now()
	b.ResetTimer()
	for range b.N {
		if items := chooseGarbage(snap, now, pol); len(items) != 0 {
			b.Fatalf("chose %d items", len(items))
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N*jobs*perJob), "ns/alloc")
}
