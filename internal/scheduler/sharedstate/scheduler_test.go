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
		cfg  Config
		want string // "" = valid
	}{
		{"defaults", Config{}, ""},
		{"service and batch", Config{Pools: ServiceBatchPools(2, 3)}, ""},
		{"negative workers", Config{Workers: -1}, "workers must be >= 0"},
		{"pool without workers", Config{Pools: []PoolConfig{{Name: "a"}}}, `pool "a": workers must be >= 1`},
		{"no name", Config{Pools: []PoolConfig{{Workers: 1}}}, "pools[0]: name is required"},
		{"duplicate name", Config{Pools: []PoolConfig{{Name: "a", Workers: 1}, {Name: "a", Workers: 1, JobTypes: []structs.JobType{"batch"}}}}, `duplicate name "a"`},
		{"two catch-all pools", Config{Pools: []PoolConfig{{Name: "a", Workers: 1}, {Name: "b", Workers: 1}}}, "only one pool may serve every other job type"},
		{"type twice", Config{Pools: []PoolConfig{
			{Name: "a", Workers: 1, JobTypes: []structs.JobType{"batch"}},
			{Name: "b", Workers: 1, JobTypes: []structs.JobType{"batch", "service"}},
		}}, `job type "batch" is already served by "a"`},
		{"type unserved", Config{Pools: []PoolConfig{{Name: "a", Workers: 1, JobTypes: []structs.JobType{"batch"}}}}, `job type "service" is served by no pool`},
		{"empty pools", Config{Pools: []PoolConfig{}}, "at least one pool is required"},
	}
	st := schedtest.NewState()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, st.SnapshotFunc(), schedtest.NewPlanner(st))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			case tt.want != "" && !errors.Is(err, ErrInvalidConfig):
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
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
	h := newHarness(t, Config{Workers: 2})
	for _, n := range []*structs.Node{
		schedtest.Node("n1", 1000, 1024, "zone=a"),
		schedtest.Node("n2", 1000, 1024, "zone=b"),
		schedtest.Node("n3", 1000, 1024, "zone=b"),
	} {
		h.st.UpsertNode(n)
	}
	// Fillers make binpack prefer n1 (fullest), then n2; n3 is empty.
	f1, f2 := schedtest.Job("fill1", 1, 350, 64), schedtest.Job("fill2", 1, 300, 64)
	h.st.UpsertAllocs(schedtest.Alloc(f1, 0, "n1"), schedtest.Alloc(f2, 0, "n2"))
	a := h.addJob("a", structs.JobTypeService, 1, 50, 600)
	a.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: "a"}}
	h.st.UpsertJob(a)
	h.addJob("b", structs.JobTypeService, 2, 50, 600)

	// Both workers' first snapshot is the same one.
	frozen := h.st.Snapshot()
	var mu sync.Mutex
	calls := 0
	fresh := h.s.snapshot
	h.s.snapshot = func() (scheduler.State, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			return frozen, nil
		}
		return fresh()
	}
	// b submits only once a's plan is applied.
	aApplied := make(chan struct{})
	h.planner.OnApply = func(p *structs.Plan, _ *structs.PlanResult) {
		if p.JobID == "a" {
			close(aApplied)
		}
	}
	h.s.beforeSubmit = func(jobID string) {
		if jobID == "b" {
			<-aApplied
		}
	}
	h.s.Enqueue("a", 50)
	h.s.Enqueue("b", 50)
	h.start()
	h.next()
	h.next()

	plans, results := h.planner.Plans(), h.planner.Results()
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
		for _, a := range h.st.LiveAllocs(job) {
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
	if err := h.st.CheckInvariants(); err != nil {
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
	h := newHarness(t, Config{Workers: 4})
	h.st.UpsertNode(schedtest.Node("n1", 100000, 100000))
	h.addJob("web", structs.JobTypeService, 1, 50, 100)
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	var mu sync.Mutex
	holding := 0
	h.s.beforeSubmit = func(string) {
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
	h.next()
	h.next() // the second pass: nothing left to place
	if n := len(h.st.LiveAllocs("web")); n != 1 {
		t.Fatalf("%d live, want 1", n)
	}
	if n := len(h.planner.Plans()); n != 1 {
		t.Fatalf("%d plans, want 1 (the second pass is a no-op)", n)
	}
}

// TestSpecialisedPools: batch jobs go to the batch scheduler (two-choice
// sample), others to the service scheduler; each counts its own work.
func TestSpecialisedPools(t *testing.T) {
	h := newHarness(t, Config{Pools: ServiceBatchPools(2, 1)})
	for i := range 4 {
		h.st.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 4000, 4096))
	}
	for i := range 3 {
		h.addJob(fmt.Sprintf("svc%d", i), structs.JobTypeService, 2, 50, 100)
		h.s.Enqueue(fmt.Sprintf("svc%d", i), 50)
	}
	for i := range 2 {
		h.addJob(fmt.Sprintf("bat%d", i), structs.JobTypeBatch, 3, 50, 100)
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
		h.next()
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
	h := newHarness(t, Config{Workers: 2})
	h.st.UpsertNode(schedtest.Node("n1", 1000, 4096))
	h.st.UpsertNode(schedtest.Node("n2", 1000, 4096))
	gang := h.addJob("gang", structs.JobTypeBatch, 5, 50, 400)
	gang.Gang = true
	h.st.UpsertJob(gang)
	h.s.Enqueue("gang", 50)
	h.start()
	h.next()
	if n := len(h.st.LiveAllocs("gang")); n != 0 {
		t.Fatalf("gang placed %d of 5, want none", n)
	}
	f := h.st.Failure("gang")
	if f == nil || f.Unplaced != 5 || !strings.Contains(f.Message, "gang of 5 not placed") {
		t.Fatalf("gang failure %+v", f)
	}
	for _, p := range h.planner.Plans() {
		if len(p.Placements) != 0 || !p.AllOrNothing {
			t.Fatalf("gang plan %+v: want all-or-nothing, no placements", p)
		}
	}
	// Shrunk to what fits, the gang is placed whole.
	gang.Count = 4
	h.st.UpsertJob(gang)
	h.s.Enqueue("gang", 50)
	h.next()
	if n := len(h.st.LiveAllocs("gang")); n != 4 {
		t.Fatalf("gang placed %d of 4", n)
	}
	if h.st.Failure("gang") != nil {
		t.Fatal("failure not cleared")
	}
}

// TestGangConflictRejectsWhole: the applier rejects a gang plan entirely
// when one node conflicts, and the retry places the whole gang.
func TestGangConflictRejectsWhole(t *testing.T) {
	h := newHarness(t, Config{Workers: 1})
	for i := range 3 {
		h.st.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 1000, 4096))
	}
	gang := h.addJob("gang", structs.JobTypeBatch, 3, 50, 600)
	gang.Gang = true
	h.st.UpsertJob(gang)
	var mu sync.Mutex
	rejectOnce := true
	h.planner.Reject = func(node string) bool {
		mu.Lock()
		defer mu.Unlock()
		r := rejectOnce
		rejectOnce = false
		return r
	}
	h.s.Enqueue("gang", 50)
	h.start()
	h.next()
	res := h.planner.Results()
	if len(res) != 2 || len(res[0].Placed) != 0 || len(res[0].RejectedNodes) != 3 || len(res[1].Placed) != 3 {
		t.Fatalf("results %+v: want the first wholly rejected, the retry placing 3", res)
	}
	if st := h.s.Status(); st.Conflicts != 1 || st.Retries != 1 {
		t.Fatalf("status %+v", st)
	}
}

// TestConflictsGiveUpAndRequeue: a job that keeps conflicting is retried
// MaxPlanRetries times, then queued again after a backoff timer.
func TestConflictsGiveUpAndRequeue(t *testing.T) {
	h := newHarness(t, Config{Workers: 1, MaxPlanRetries: 2})
	h.st.UpsertNode(schedtest.Node("n1", 1000, 1024))
	h.addJob("web", structs.JobTypeService, 1, 50, 100)
	h.planner.Reject = func(string) bool { return true }
	h.s.Enqueue("web", 50)
	h.start()
	h.next()
	if n := len(h.planner.Plans()); n != 3 {
		t.Fatalf("%d plans, want 3 (first + 2 retries)", n)
	}
	h.timersMu.Lock()
	if len(h.timers) != 1 || h.timers[0].D != conflictBackoff {
		h.timersMu.Unlock()
		t.Fatalf("timers %+v, want one of %s", h.timers, conflictBackoff)
	}
	fire := h.timers[0].F
	h.timersMu.Unlock()
	h.planner.Reject = nil // the loop is idle: no race with the planner
	fire()
	h.next()
	if n := len(h.st.LiveAllocs("web")); n != 1 {
		t.Fatalf("%d live, want 1", n)
	}
	if st := h.s.Status(); st.Conflicts != 3 || st.Retries != 2 || st.PlansSubmitted != 4 || st.ConflictFraction != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestMetricsAndStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, Config{Workers: 2, Registerer: reg})
	// A second scheduler on the same registry (leadership regained) must
	// not fail to register.
	if _, err := New(Config{Registerer: reg}, h.st.SnapshotFunc(), h.planner); err != nil {
		t.Fatal(err)
	}
	h.st.UpsertNode(schedtest.Node("n1", 4000, 4096))
	for i := range 4 {
		id := fmt.Sprintf("j%d", i)
		h.addJob(id, structs.JobTypeService, 2, 50, 300)
		h.s.Enqueue(id, 50)
	}
	h.start()
	for range 4 {
		h.next()
	}
	h.clock.Advance(2 * 1e9) // 2s of wall time
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
