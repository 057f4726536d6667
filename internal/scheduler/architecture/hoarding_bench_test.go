package architecture_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/scheduler/sharedstate"
	"github.com/gantry-project/gantry/internal/structs"
)

// hoardingScale is model seconds per real second: a decision of 1 s in
// the model takes 50 ms here, so the experiment runs in seconds.
const hoardingScale = 20

// BenchmarkOfferHoarding is Omega's experiment on the cost of slow
// second-level decisions (Schwarzkopf et al., EuroSys 2013, section 5): a
// service scheduler that spends 1 s or 10 s on each job, beside a quick
// batch scheduler, and the time batch jobs wait to be placed.
//
//   - two-level: the built-in service framework's DecisionDelay; it holds
//     the offers it got while it decides, so the batch framework is
//     offered only what service has not been offered;
//   - shared-state: a service scheduler and a batch scheduler (one worker
//     each) on their own snapshots; the service plan is submitted after
//     the delay;
//   - monolithic: one loop, the same delay before each service plan.
//
// 50 nodes of 4 cores; a batch job (20 copies of 100m) arrives every 2 s
// (model), 40 in all; meanwhile 8 service jobs (20 copies of 500m) arrive
// one after another, each once the previous is placed, so the service
// scheduler is busy for 8 decisions. Everything fits (160 of 200 cores).
// Reported in model seconds:
//
//	go test -run '^$' -bench OfferHoarding -benchtime 1x ./internal/scheduler/architecture
func BenchmarkOfferHoarding(b *testing.B) {
	for _, arch := range []string{architecture.Monolithic, architecture.SharedState, architecture.TwoLevel} {
		for _, delay := range []time.Duration{0, time.Second, 10 * time.Second} {
			b.Run(fmt.Sprintf("%s/service-decision=%s", arch, delay), func(b *testing.B) {
				var waits []time.Duration
				for range b.N {
					waits = append(waits, hoardingRun(b, arch, delay/hoardingScale)...)
				}
				slices.Sort(waits)
				model := func(q float64) float64 {
					return waits[min(int(q*float64(len(waits))), len(waits)-1)].Seconds() * hoardingScale
				}
				b.ReportMetric(model(0.5), "batch-wait-p50-s")
				b.ReportMetric(model(0.9), "batch-wait-p90-s")
				b.ReportMetric(model(1), "batch-wait-max-s")
			})
		}
	}
}

// delayPlanner spends a decision time before submitting the plans of
// service jobs (the architectures without a setting for it).
type delayPlanner struct {
	scheduler.Planner
	st    *schedtest.State
	delay time.Duration
}

func (p delayPlanner) SubmitPlan(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, error) {
	if j := p.st.Snapshot().JobByID(plan.JobID); j != nil && j.Type == structs.JobTypeService && len(plan.Placements) > 0 {
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p.Planner.SubmitPlan(ctx, plan)
}

// hoardingRun runs the workload once and returns each batch job's wait
// (enqueued to every copy placed), in real time.
func hoardingRun(b *testing.B, arch string, delay time.Duration) []time.Duration {
	b.Helper()
	st := schedtest.NewState()
	for i := range 50 {
		st.UpsertNode(schedtest.Node(fmt.Sprintf("n%02d", i), 4000, 8192))
	}
	const batchJobs, copies = 40, 20
	var mu sync.Mutex
	enqueued, placed := map[string]time.Time{}, map[string]time.Time{}
	pl := schedtest.NewPlanner(st)
	pl.OnApply = func(p *structs.Plan, _ *structs.PlanResult) {
		if len(st.LiveAllocs(p.JobID)) < copies {
			return
		}
		mu.Lock()
		if _, ok := placed[p.JobID]; !ok {
			placed[p.JobID] = time.Now()
		}
		mu.Unlock()
	}
	cfg := architecture.DefaultConfig()
	cfg.Architecture, cfg.Seed = arch, 1
	var planner scheduler.Planner = pl
	switch arch {
	case architecture.SharedState:
		cfg.SharedState.Pools = sharedstate.ServiceBatchPools(1, 1)
		planner = delayPlanner{Planner: pl, st: st, delay: delay}
	case architecture.TwoLevel:
		cfg.TwoLevel.Service.DecisionDelay = delay
	default:
		planner = delayPlanner{Planner: pl, st: st, delay: delay}
	}
	a, err := architecture.New(cfg, scheduler.Env{Snapshot: st.SnapshotFunc(), Planner: planner})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	// Service jobs: one more as soon as the last is placed.
	wg.Go(func() {
		for i := 0; i < 8 && ctx.Err() == nil; i++ {
			j := schedtest.Job(fmt.Sprintf("svc-%03d", i), copies, 500, 256)
			j.Priority = 60
			st.UpsertJob(j)
			a.Enqueue(j.ID, j.Priority)
			for ctx.Err() == nil && len(st.LiveAllocs(j.ID)) < copies {
				time.Sleep(time.Millisecond)
			}
		}
	})
	for i := range batchJobs {
		j := schedtest.Job(fmt.Sprintf("batch-%03d", i), copies, 100, 64)
		j.Type, j.Priority = structs.JobTypeBatch, 40
		st.UpsertJob(j)
		mu.Lock()
		enqueued[j.ID] = time.Now()
		mu.Unlock()
		a.Enqueue(j.ID, j.Priority)
		time.Sleep(2 * time.Second / hoardingScale)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := 0
		for id := range enqueued {
			if _, ok := placed[id]; ok {
				n++
			}
		}
		mu.Unlock()
		if n == batchJobs || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	var waits []time.Duration
	for id, at := range enqueued {
		end, ok := placed[id]
		if !ok {
			end = deadline // not placed in the run: counted at its end
		}
		waits = append(waits, end.Sub(at))
	}
	return waits
}
