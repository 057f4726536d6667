package architecture_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkArchitectures compares monolithic and shared-state (1, 2, 4, 8
// workers) over the schedtest harness: 500 nodes, 100 jobs of 10 copies
// per operation, a fresh cluster each time. The harness's planner applies
// plans under one lock (the applier's serialization) without Raft, so this
// isolates the schedulers' decision work; the server's BenchmarkArchitectures
// adds Raft and batching.
func BenchmarkArchitectures(b *testing.B) {
	cases := []struct {
		name    string
		workers int // 0 = monolithic
	}{{"monolithic", 0}, {"shared-state/workers=1", 1}, {"shared-state/workers=2", 2}, {"shared-state/workers=4", 4}, {"shared-state/workers=8", 8}}
	const nodes, jobs, copies = 500, 100, 10
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var placed, conflicts, commits float64
			for b.Loop() {
				b.StopTimer()
				st := schedtest.NewState()
				for i := range nodes {
					st.UpsertNode(schedtest.Node(fmt.Sprintf("n%03d", i), 8000, 16384))
				}
				for j := range jobs {
					st.UpsertJob(schedtest.Job(fmt.Sprintf("j%03d", j), copies, 500, 256))
				}
				planner := schedtest.NewPlanner(st)
				cfg := architecture.DefaultConfig()
				cfg.Seed = 1
				if tc.workers > 0 {
					cfg.Architecture, cfg.SharedState.Workers = architecture.SharedState, tc.workers
				}
				a, err := architecture.New(cfg, scheduler.Env{Snapshot: st.SnapshotFunc(), Planner: planner})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				b.StartTimer()
				go func() { defer close(done); a.Run(ctx) }()
				for j := range jobs {
					a.Enqueue(fmt.Sprintf("j%03d", j), 50)
				}
				deadline := time.Now().Add(time.Minute)
				var s structs.SchedulerStatus
				for s = a.Status(); s.Evaluations < jobs || s.QueueDepth > 0; s = a.Status() {
					if time.Now().After(deadline) {
						b.Fatalf("not done after 1m: %+v", s)
					}
					time.Sleep(100 * time.Microsecond)
				}
				b.StopTimer()
				cancel()
				<-done
				placed += float64(s.Placements)
				conflicts += float64(s.Conflicts)
				commits += float64(s.PlansSubmitted - s.Conflicts)
				b.StartTimer()
			}
			b.ReportMetric(placed/b.Elapsed().Seconds(), "placements/s")
			if commits > 0 {
				b.ReportMetric(conflicts/commits, "conflict-fraction")
			}
		})
	}
}
