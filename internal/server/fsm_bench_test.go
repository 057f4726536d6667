package server

import (
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkFSMAllocs applies plan entries of 1,000 placements (spread over
// 1,000 nodes, job left out as the plan applier sends it) and then one
// report entry per plan marking each allocation running with two task
// events, through fsm.Apply as Raft calls it. It reports the FSM's time per
// allocation for each kind of entry and the live heap each stored
// allocation costs once both are applied (docs/bench.md, memory per
// allocation), wall time and the process's CPU time (GC included).
// Sub-benchmarks: "binary" is the entries the server
// proposes now (structs.EncodePlanBatch, EncodeReportBatch), "json" the
// JSON entries of older logs; both report the entry bytes per allocation.
func BenchmarkFSMAllocs(b *testing.B) {
	b.Run("binary", func(b *testing.B) { benchmarkFSMAllocs(b, encodeEntry) })
	b.Run("json", func(b *testing.B) { benchmarkFSMAllocs(b, encodeJSONEntry) })
}

func benchmarkFSMAllocs(b *testing.B, encode func(structs.MessageType, any) ([]byte, error)) {
	const batch, nodes = 1000, 1000
	st, err := state.New()
	if err != nil {
		b.Fatal(err)
	}
	f := &fsm{state: st, logger: slog.New(slog.DiscardHandler)}
	index := uint64(0)
	apply := func(mt structs.MessageType, req any) {
		index++
		data, err := encodeEntry(mt, req)
		if err != nil {
			b.Fatal(err)
		}
		if resp := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}); resp != nil {
			if err, ok := resp.(error); ok {
				b.Fatal(err)
			}
		}
	}
	nodeID := func(i int) string { return fmt.Sprintf("9b2c7e3a-0000-4000-8000-%012d", i) }
	for i := range nodes {
		n := &structs.Node{ID: nodeID(i), Name: fmt.Sprintf("node-%04d", i),
			Capacity: structs.Resources{CPU: 1 << 40, MemoryMB: 1 << 40}}
		apply(structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: n})
	}
	job := &structs.Job{ID: "web", Name: "web", Type: structs.JobTypeService, Priority: 50, Count: 1,
		Driver: "mock", Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	apply(structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job})
	version := st.Snapshot().JobByID("web").Version

	// Build every entry first so the measured part is the FSM alone.
	var plans, reports [][]byte
	for n := 0; n < b.N; n += batch {
		// Times as the server writes them (unix nanoseconds), the
		// reports a few hundred milliseconds after the placements.
		t0 := int64(1_764_000_000_000_000_000) + int64(n)*1_000_000
		req := &structs.ApplyPlanRequest{JobID: "web", JobVersion: version, Time: t0}
		upd := &structs.AllocClientUpdateBatchRequest{}
		for i := range batch {
			id := fmt.Sprintf("4f1d2c3b-%04x-4a5b-8c6d-%012d", i, n)
			node := nodeID((n/batch + i) % nodes)
			req.Allocs = append(req.Allocs, &structs.Allocation{ID: id, JobID: "web", JobVersion: version,
				Name: structs.AllocName("web", n+i), Index: n + i, NodeID: node,
				NodeName: fmt.Sprintf("node-%04d", (n/batch+i)%nodes), Resources: job.Resources,
				Priority: 50, DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending,
				CreateTime: t0, ModifyTime: t0})
			ti := t0 + 300_000_000 + int64(i)*50_000
			upd.Nodes = append(upd.Nodes, structs.AllocClientUpdateRequest{NodeID: node, Time: ti + 40_000,
				Updates: []*structs.AllocClientUpdate{{ID: id, ClientStatus: structs.AllocClientRunning,
					TaskState: structs.TaskState{State: structs.TaskStateRunning, StartedAt: ti + 20_000, PID: 1000 + i,
						Events: []structs.TaskEvent{{Time: ti, Type: "Received", Message: "task received by agent"},
							{Time: ti + 20_000, Type: "Started", Message: "task started"}}}}}})
		}
		p, err := encode(structs.ApplyPlanBatchRequestType, &structs.ApplyPlanBatchRequest{Plans: []*structs.ApplyPlanRequest{req}})
		if err != nil {
			b.Fatal(err)
		}
		r, err := encode(structs.AllocClientUpdateBatchRequestType, upd)
		if err != nil {
			b.Fatal(err)
		}
		plans, reports = append(plans, p), append(reports, r)
	}
	inserted := len(plans) * batch
	// The entries are freed as they are applied; count them out of the
	// heap measured before.
	entryBytes, planBytes, reportBytes := 0, 0, 0
	for i := range plans {
		entryBytes += cap(plans[i]) + cap(reports[i])
		planBytes += len(plans[i])
		reportBytes += len(reports[i])
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var planNs, reportNs, planCPU, reportCPU int64
	for i := range plans {
		start, startCPU := time.Now(), processCPU(b)
		index++
		if resp := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: plans[i]}); resp != nil {
			if err, ok := resp.(error); ok {
				b.Fatal(err)
			}
		}
		mid, midCPU := time.Now(), processCPU(b)
		index++
		if resp := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: reports[i]}); resp != nil {
			if err, ok := resp.(error); ok {
				b.Fatal(err)
			}
		}
		planNs += int64(mid.Sub(start))
		reportNs += int64(time.Since(mid))
		planCPU += midCPU - startCPU
		reportCPU += processCPU(b) - midCPU
		plans[i], reports[i] = nil, nil
	}
	b.StopTimer()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if got := len(st.Snapshot().AllocsByJob("web")); got != inserted {
		b.Fatalf("stored %d allocations, want %d", got, inserted)
	}
	b.ReportMetric(float64(planNs)/float64(inserted), "plan-ns/alloc")
	b.ReportMetric(float64(reportNs)/float64(inserted), "report-ns/alloc")
	b.ReportMetric(float64(planCPU)/float64(inserted), "plan-cpu-ns/alloc")
	b.ReportMetric(float64(reportCPU)/float64(inserted), "report-cpu-ns/alloc")
	b.ReportMetric(float64(planBytes)/float64(inserted), "plan-entry-B/alloc")
	b.ReportMetric(float64(reportBytes)/float64(inserted), "report-entry-B/alloc")
	b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc-uint64(entryBytes)))/float64(inserted), "heap-B/alloc")
	runtime.KeepAlive(st)
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
