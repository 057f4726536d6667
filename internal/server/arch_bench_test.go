package server

import (
	"cmp"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkArchitectures runs the same workload through the monolithic
// scheduler and the shared-state one with 1, 2, 4 and 8 workers (and 8
// without plan batching) on a real in-process server: Raft on disk, the
// plan applier, 1,000 nodes. One operation registers 200 jobs of 5 copies
// (4 submitters, one Raft entry per job) and waits until all 1,000 copies
// are placed. Run with -benchtime Nx (e.g. 3x); the figures depend on the
// machine's load and are for comparing the cases of one run.
func BenchmarkArchitectures(b *testing.B) {
	cases := []struct {
		name      string
		scheduler string
		workers   int
		planBatch int
	}{
		{"monolithic", architecture.Monolithic, 0, 0},
		{"shared-state/workers=1", architecture.SharedState, 1, 0},
		{"shared-state/workers=2", architecture.SharedState, 2, 0},
		{"shared-state/workers=4", architecture.SharedState, 4, 0},
		{"shared-state/workers=8", architecture.SharedState, 8, 0},
		{"shared-state/workers=8/plan-batch=1", architecture.SharedState, 8, 1},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.DataDir = b.TempDir()
			cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
			cfg.RaftTimeout = 100 * time.Millisecond
			cfg.HeartbeatTTL, cfg.ReconcileInterval = time.Hour, time.Hour
			cfg.Scheduler.Architecture, cfg.PlanBatch = tc.scheduler, cmp.Or(tc.planBatch, DefaultPlanBatch)
			if tc.workers > 0 {
				cfg.Scheduler.SharedState.Workers = tc.workers
			}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown()
			for !s.Leader() {
				time.Sleep(10 * time.Millisecond) // LeaderCh belongs to the server
			}
			for i := range 1000 {
				id := fmt.Sprintf("n%04d", i)
				if _, _, err := s.raftApply(structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: &structs.Node{
					ID: id, Name: id, Capacity: structs.Resources{CPU: 16000, MemoryMB: 65536},
					Attributes: map[string]string{"os": "linux", "arch": "amd64"}}}); err != nil {
					b.Fatal(err)
				}
			}
			const jobs, copies, submitters = 200, 5, 4
			round := 0
			b.ResetTimer()
			for b.Loop() {
				round++
				target := s.sched.Status().Placements + jobs*copies
				var wg sync.WaitGroup
				for w := range submitters {
					wg.Go(func() {
						for j := w; j < jobs; j += submitters {
							job := mockJob(fmt.Sprintf("r%d-j%d", round, j), copies)
							if _, err := s.registerJob(job); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				deadline := time.Now().Add(2 * time.Minute)
				for s.sched.Status().Placements < target {
					if time.Now().After(deadline) {
						b.Fatalf("round %d: %d of %d placed after 2m", round, s.sched.Status().Placements, target)
					}
					time.Sleep(time.Millisecond)
				}
			}
			st := s.sched.Status()
			b.ReportMetric(float64(st.Placements)/b.Elapsed().Seconds(), "placements/s")
			b.ReportMetric(st.LatencyP99Ms, "sched-p99-ms")
			b.ReportMetric(st.ConflictFraction, "conflict-fraction")
			b.ReportMetric(st.BusyFraction, "busy")
		})
	}
}
