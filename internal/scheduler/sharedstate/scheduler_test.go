package sharedstate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"service and batch", func(c *Config) { c.BatchWorkers = 3 }, ""},
		{"explicit pools", func(c *Config) { c.Pools = ServiceBatchPools(2, 3) }, ""},
		{"no workers", func(c *Config) { c.Workers = 0 }, "workers: must be >= 1 (got 0)"},
		{"negative batch workers", func(c *Config) { c.BatchWorkers = -1 }, "batch_workers: must be >= 0"},
		{"no plans in flight", func(c *Config) { c.MaxInflightPlans = 0 }, "max_inflight_plans: must be >= 1"},
		{"pool without workers", func(c *Config) { c.Pools = []PoolConfig{{Name: "a"}} }, `pools[0].workers: pool "a": must be >= 1`},
		{"no name", func(c *Config) { c.Pools = []PoolConfig{{Workers: 1}} }, "pools[0].name: is required"},
		{"duplicate name", func(c *Config) {
			c.Pools = []PoolConfig{{Name: "a", Workers: 1}, {Name: "a", Workers: 1, JobTypes: []structs.JobType{"batch"}}}
		}, `duplicate name "a"`},
		{"two catch-all pools", func(c *Config) { c.Pools = []PoolConfig{{Name: "a", Workers: 1}, {Name: "b", Workers: 1}} }, "only one pool may serve every other job type"},
		{"type twice", func(c *Config) {
			c.Pools = []PoolConfig{
				{Name: "a", Workers: 1, JobTypes: []structs.JobType{"batch"}},
				{Name: "b", Workers: 1, JobTypes: []structs.JobType{"batch", "service"}},
			}
		}, `job type "batch" is already served by "a"`},
		{"type unserved", func(c *Config) { c.Pools = []PoolConfig{{Name: "a", Workers: 1, JobTypes: []structs.JobType{"batch"}}} }, `job type "service" is served by no pool`},
		{"empty pools", func(c *Config) { c.Pools = []PoolConfig{} }, "at least one pool is required"},
	}
	st := schedtest.NewState()
	env := scheduler.Env{Snapshot: st.SnapshotFunc(), Planner: schedtest.NewPlanner(st)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			before := fmt.Sprintf("%+v", cfg)
			verr := cfg.Validate()
			if after := fmt.Sprintf("%+v", cfg); after != before {
				t.Fatalf("Validate changed the config: %s -> %s", before, after)
			}
			_, err := New(scheduler.DefaultConfig(), cfg, env)
			switch {
			case tt.want == "" && (err != nil || verr != nil):
				t.Fatalf("unexpected error: %v / %v", verr, err)
			case tt.want != "" && (verr == nil || !strings.Contains(verr.Error(), tt.want)):
				t.Fatalf("Validate: %v, want it to contain %q", verr, tt.want)
			case tt.want != "" && !errors.Is(err, scheduler.ErrInvalidConfig):
				t.Fatalf("New: %v does not wrap scheduler.ErrInvalidConfig", err)
			}
		})
	}
}

// TestConflictPartialCommitAndRetry forces a conflict deterministically:
// two workers decide on the same snapshot; job a takes node n1; job b's
// plan (n1 and n2) is committed on n2 and rejected on n1 (partial, node
// granular commit); b's worker retries on a newer snapshot and places its
// second copy on n3.
func TestConflictPartialCommitAndRetry(t *testing.T) {
	h := newHarness(t, workers(2))
	for _, n := range []*structs.Node{
		schedtest.Node("n1", 1000, 1024, "zone=a"),
		schedtest.Node("n2", 1000, 1024, "zone=b"),
		schedtest.Node("n3", 1000, 1024, "zone=b"),
	} {
		h.State.UpsertNode(n)
	}
	// Fillers make binpack prefer n1 (fullest), then n2; n3 is empty.
	f1, f2 := schedtest.Job("fill1", 1, 350, 64), schedtest.Job("fill2", 1, 300, 64)
	h.State.UpsertAllocs(schedtest.Alloc(f1, 0, "n1"), schedtest.Alloc(f2, 0, "n2"))
	a := h.AddJob("a", structs.JobTypeService, 1, 50, 600)
	a.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: "a"}}
	h.State.UpsertJob(a)
	h.AddJob("b", structs.JobTypeService, 2, 50, 600)

	// Both workers' first snapshot is the same one.
	frozen := h.State.Snapshot()
	var mu sync.Mutex
	calls := 0
	h.Snapshot = func() (scheduler.State, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			return frozen, nil
		}
		return h.State.Snapshot(), nil
	}
	// b submits only once a's plan is applied.
	aApplied := make(chan struct{})
	h.Planner.OnApply = func(p *structs.Plan, _ *structs.PlanResult) {
		if p.JobID == "a" {
			close(aApplied)
		}
	}
	h.Planner.BeforeApply = func(p *structs.Plan) {
		if p.JobID == "b" {
			<-aApplied
		}
	}
	h.s.Enqueue("a", 50)
	h.s.Enqueue("b", 50)
	h.start()
	h.Next()
	h.Next()

	plans, results := h.Planner.Plans(), h.Planner.Results()
	var bResults []*structs.PlanResult
	for i, p := range plans {
		if p.JobID == "b" {
			bResults = append(bResults, results[i])
			if i == 1 && p.SnapshotIndex != frozen.Index() {
				t.Fatalf("b's first plan decided at %d, want the shared snapshot %d", p.SnapshotIndex, frozen.Index())
			}
		}
	}
	if len(plans) != 3 || len(bResults) != 2 {
		t.Fatalf("%d plans (%d of b), want 3 (2 of b)", len(plans), len(bResults))
	}
	first := bResults[0]
	if !slices.Equal(first.RejectedNodes, []string{"n1"}) || len(first.Placed) != 1 || first.RefreshIndex == 0 {
		t.Fatalf("b's first result %+v: want n1 rejected, one placement committed, a refresh index", first)
	}
	if second := bResults[1]; len(second.RejectedNodes) != 0 || len(second.Placed) != 1 {
		t.Fatalf("b's retry %+v: want one placement, no conflict", second)
	}
	nodes := func(job string) []string {
		var out []string
		for _, a := range h.State.LiveAllocs(job) {
			out = append(out, a.NodeID)
		}
		slices.Sort(out)
		return out
	}
	if got := nodes("a"); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("a on %v, want [n1]", got)
	}
	if got := nodes("b"); !slices.Equal(got, []string{"n2", "n3"}) {
		t.Fatalf("b on %v, want [n2 n3]", got)
	}
	if err := h.State.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	st := h.s.Status()
	if st.PlansSubmitted != 3 || st.Conflicts != 1 || st.Retries != 1 || st.ConflictFraction != 0.5 || st.Placements != 3 || st.Evaluations != 2 {
		t.Fatalf("status %+v", st)
	}
}

// TestOneWorkerPerJob: a job enqueued while a worker holds it is not
// picked up by another worker; it is processed again afterwards.
func TestOneWorkerPerJob(t *testing.T) {
	h := newHarness(t, workers(4))
	h.State.UpsertNode(schedtest.Node("n1", 100000, 100000))
	h.AddJob("web", structs.JobTypeService, 1, 50, 100)
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	var mu sync.Mutex
	holding := 0
	h.Planner.BeforeApply = func(*structs.Plan) {
		mu.Lock()
		holding++
		if holding > 1 {
			mu.Unlock()
			t.Error("two workers hold the same job")
			return
		}
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		holding--
		mu.Unlock()
	}
	h.s.Enqueue("web", 50)
	h.start()
	<-entered
	// Held by one worker: enqueueing again (even many times) queues it
	// nowhere and only marks it for another pass.
	for range 5 {
		h.s.Enqueue("web", 50)
	}
	h.s.mu.Lock()
	queued := h.s.pools[0].queue.Len()
	_, again := h.s.again["web"]
	h.s.mu.Unlock()
	if queued != 0 || !again {
		t.Fatalf("queued %d, again %v: want 0 and true", queued, again)
	}
	close(release)
	h.Next()
	h.Next() // the second pass: nothing left to place
	if n := len(h.State.LiveAllocs("web")); n != 1 {
		t.Fatalf("%d live, want 1", n)
	}
	if n := len(h.Planner.Plans()); n != 1 {
		t.Fatalf("%d plans, want 1 (the second pass is a no-op)", n)
	}
}

// TestSpecialisedPools: batch jobs go to the batch scheduler (two-choice
// sample), others to the service scheduler; each counts its own work.
func TestSpecialisedPools(t *testing.T) {
	h := newHarness(t, func(_ *scheduler.Config, c *Config, _ *scheduler.Env) { c.Workers, c.BatchWorkers = 2, 1 })
	for i := range 4 {
		h.State.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 4000, 4096))
	}
	for i := range 3 {
		h.AddJob(fmt.Sprintf("svc%d", i), structs.JobTypeService, 2, 50, 100)
		h.s.Enqueue(fmt.Sprintf("svc%d", i), 50)
	}
	for i := range 2 {
		h.AddJob(fmt.Sprintf("bat%d", i), structs.JobTypeBatch, 3, 50, 100)
		h.s.Enqueue(fmt.Sprintf("bat%d", i), 50)
	}
	h.s.mu.Lock()
	svcQ, batQ := h.s.pools[0].queue.Len(), h.s.pools[1].queue.Len()
	h.s.mu.Unlock()
	if svcQ != 3 || batQ != 2 {
		t.Fatalf("queues service=%d batch=%d, want 3 and 2", svcQ, batQ)
	}
	h.start()
	for range 5 {
		h.Next()
	}
	st := h.s.Status()
	if len(st.Schedulers) != 2 {
		t.Fatalf("schedulers %+v", st.Schedulers)
	}
	svc, bat := st.Schedulers[0], st.Schedulers[1]
	if svc.Name != "service" || svc.Evaluations != 3 || svc.Placements != 6 || svc.Workers != 2 || len(svc.WorkerBusy) != 2 {
		t.Fatalf("service %+v", svc)
	}
	if bat.Name != "batch" || bat.Evaluations != 2 || bat.Placements != 6 || !slices.Equal(bat.JobTypes, []string{"batch"}) {
		t.Fatalf("batch %+v", bat)
	}
	if st.Placements != 12 || st.Architecture != Architecture {
		t.Fatalf("status %+v", st)
	}
}

// TestGangAllOrNothing: a gang that does not fit entirely places nothing
// and records why; an incremental job of the same size places what fits.
func TestGangAllOrNothing(t *testing.T) {
	h := newHarness(t, workers(2))
	h.State.UpsertNode(schedtest.Node("n1", 1000, 4096))
	h.State.UpsertNode(schedtest.Node("n2", 1000, 4096))
	gang := h.AddJob("gang", structs.JobTypeBatch, 5, 50, 400)
	gang.Gang = true
	h.State.UpsertJob(gang)
	h.s.Enqueue("gang", 50)
	h.start()
	h.Next()
	if n := len(h.State.LiveAllocs("gang")); n != 0 {
		t.Fatalf("gang placed %d of 5, want none", n)
	}
	f := h.State.Failure("gang")
	if f == nil || f.Unplaced != 5 || !strings.Contains(f.Message, "gang of 5 not placed") {
		t.Fatalf("gang failure %+v", f)
	}
	for _, p := range h.Planner.Plans() {
		if len(p.Placements) != 0 || !p.AllOrNothing {
			t.Fatalf("gang plan %+v: want all-or-nothing, no placements", p)
		}
	}
	// Shrunk to what fits, the gang is placed whole.
	gang.Count = 4
	h.State.UpsertJob(gang)
	h.s.Enqueue("gang", 50)
	h.Next()
	if n := len(h.State.LiveAllocs("gang")); n != 4 {
		t.Fatalf("gang placed %d of 4", n)
	}
	if h.State.Failure("gang") != nil {
		t.Fatal("failure not cleared")
	}
}

// TestGangConflictRejectsWhole: the applier rejects a gang plan entirely
// when one node conflicts, and the retry places the whole gang.
func TestGangConflictRejectsWhole(t *testing.T) {
	h := newHarness(t, workers(1))
	for i := range 3 {
		h.State.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 1000, 4096))
	}
	gang := h.AddJob("gang", structs.JobTypeBatch, 3, 50, 600)
	gang.Gang = true
	h.State.UpsertJob(gang)
	var mu sync.Mutex
	rejectOnce := true
	h.Planner.Reject = func(node string) bool {
		mu.Lock()
		defer mu.Unlock()
		r := rejectOnce
		rejectOnce = false
		return r
	}
	h.s.Enqueue("gang", 50)
	h.start()
	h.Next()
	res := h.Planner.Results()
	if len(res) != 2 || len(res[0].Placed) != 0 || len(res[0].RejectedNodes) != 3 || len(res[1].Placed) != 3 {
		t.Fatalf("results %+v: want the first wholly rejected, the retry placing 3", res)
	}
	if st := h.s.Status(); st.Conflicts != 1 || st.Retries != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestMetricsAndStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(_ *scheduler.Config, c *Config, env *scheduler.Env) { c.Workers, env.Registerer = 2, reg })
	// A second scheduler on the same registry (leadership regained) must
	// not fail to register.
	if _, err := New(scheduler.DefaultConfig(), DefaultConfig(), scheduler.Env{Snapshot: h.State.SnapshotFunc(), Planner: h.Planner, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	h.State.UpsertNode(schedtest.Node("n1", 4000, 4096))
	for i := range 4 {
		id := fmt.Sprintf("j%d", i)
		h.AddJob(id, structs.JobTypeService, 2, 50, 300)
		h.s.Enqueue(id, 50)
	}
	h.start()
	for range 4 {
		h.Next()
	}
	h.Clock.Advance(2 * 1e9) // 2s of wall time
	st := h.s.Status()
	if st.Evaluations != 4 || st.Placements != 8 || st.PlansSubmitted != 4 || st.DecisionsPerSec != 2 || st.QueueDepth != 0 {
		t.Fatalf("status %+v", st)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				got[mf.GetName()] += m.Counter.GetValue()
			case m.Histogram != nil:
				got[mf.GetName()] += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"gantry_sharedstate_placements_total":      8,
		"gantry_sharedstate_evaluations_total":     4,
		"gantry_sharedstate_plans_submitted_total": 4,
		"gantry_sharedstate_conflicts_total":       0,
		"gantry_sharedstate_latency_seconds":       4,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
