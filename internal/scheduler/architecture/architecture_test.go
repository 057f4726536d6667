package architecture_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/scheduler/twolevel"
	"github.com/gantry-project/gantry/internal/structs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// archs are the architectures every scenario below runs on: the
// evaluation loop is one, so they must behave the same (shared-state with
// one worker, so the order of evaluations is the queue's).
var archs = []struct {
	name string
	mod  func(*architecture.Config)
}{
	{"monolithic", func(c *architecture.Config) { c.Architecture = architecture.Monolithic }},
	{"shared-state", func(c *architecture.Config) {
		c.Architecture, c.SharedState.Workers = architecture.SharedState, 1
	}},
}

// build returns the architecture over h's env, seeded, after mod.
func build(t *testing.T, h *schedtest.Harness, pick func(*architecture.Config), mod func(*architecture.Config, *scheduler.Env)) scheduler.Architecture {
	t.Helper()
	cfg, env := architecture.DefaultConfig(), h.Env()
	cfg.Seed = 1
	pick(&cfg)
	if mod != nil {
		mod(&cfg, &env)
	}
	a, err := architecture.New(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func forEachArch(t *testing.T, f func(t *testing.T, pick func(*architecture.Config))) {
	for _, a := range archs {
		t.Run(a.name, func(t *testing.T) { f(t, a.mod) })
	}
}

// TestConflictRecomputesOnViewAtRefreshIndex: a plan the planner rejects
// is recomputed on a view at least as new as the rejection's refresh
// index, even when the snapshot source still hands out older views for a
// while.
func TestConflictRecomputesOnViewAtRefreshIndex(t *testing.T) {
	forEachArch(t, func(t *testing.T, pick func(*architecture.Config)) {
		h := schedtest.NewHarness(t)
		h.State.UpsertNode(schedtest.Node("n1", 1000, 1024))
		h.AddJob("web", structs.JobTypeService, 1, 50, 100)
		var mu sync.Mutex
		var first scheduler.State
		stale := 0
		h.Snapshot = func() (scheduler.State, error) {
			mu.Lock()
			defer mu.Unlock()
			if first == nil {
				first = h.State.Snapshot()
				return first, nil
			}
			if stale < 3 { // the source lags behind the planner
				stale++
				return first, nil
			}
			return h.State.Snapshot(), nil
		}
		rejected := false
		h.Planner.Reject = func(string) bool {
			mu.Lock()
			defer mu.Unlock()
			r := !rejected
			rejected = true
			return r
		}
		a := build(t, h, pick, nil)
		a.Enqueue("web", 50)
		h.Run(a)
		ev := h.NextEvaluation()
		plans, results := h.Planner.Plans(), h.Planner.Results()
		if len(plans) != 2 {
			t.Fatalf("%d plans, want 2", len(plans))
		}
		if refresh := results[0].RefreshIndex; refresh == 0 || plans[1].SnapshotIndex < refresh {
			t.Fatalf("retry decided at index %d, want >= the refresh index %d", plans[1].SnapshotIndex, refresh)
		}
		if ev.Outcome != scheduler.OutcomeDone || ev.Plans != 2 || ev.Conflicts != 1 || ev.Retries != 1 {
			t.Fatalf("evaluation %+v", ev)
		}
		if n := len(h.State.LiveAllocs("web")); n != 1 {
			t.Fatalf("%d live, want 1", n)
		}
	})
}

// TestConflictsGiveUpAndBackOff: a job whose plans keep conflicting is
// recomputed MaxPlanRetries times, then given up with the reason recorded
// and evaluated again after ConflictBackoff.
func TestConflictsGiveUpAndBackOff(t *testing.T) {
	forEachArch(t, func(t *testing.T, pick func(*architecture.Config)) {
		h := schedtest.NewHarness(t)
		h.State.UpsertNode(schedtest.Node("n1", 1000, 1024))
		h.AddJob("web", structs.JobTypeService, 1, 50, 100)
		h.Planner.Reject = func(string) bool { return true }
		a := build(t, h, pick, func(c *architecture.Config, _ *scheduler.Env) { c.MaxPlanRetries = 2 })
		a.Enqueue("web", 50)
		h.Run(a)
		ev := h.NextEvaluation()
		if n := len(h.Planner.Plans()); n != 3 {
			t.Fatalf("%d plans, want 3 (first + 2 retries)", n)
		}
		if ev.Outcome != scheduler.OutcomeConflicted || ev.Err == nil || !strings.Contains(ev.Err.Error(), "after 2 retries") {
			t.Fatalf("evaluation %+v: want a conflicted give-up naming the retries", ev)
		}
		timers := h.TakeTimers()
		if len(timers) != 1 || timers[0].D != scheduler.ConflictBackoff {
			t.Fatalf("timers %+v, want one of %s", timers, scheduler.ConflictBackoff)
		}
		h.Planner.Reject = nil // the loop is idle: no race with the planner
		timers[0].F()
		if ev := h.NextEvaluation(); ev.Outcome != scheduler.OutcomeDone {
			t.Fatalf("second evaluation %+v", ev)
		}
		if n := len(h.State.LiveAllocs("web")); n != 1 {
			t.Fatalf("%d live, want 1", n)
		}
	})
}

// TestFailuresBackOff: a failed snapshot or submission gives up with its
// reason and evaluates the job again after ErrorBackoff; a job that cannot
// be scheduled as stored is not retried at all.
func TestFailuresBackOff(t *testing.T) {
	tests := []struct {
		name      string
		snapErr   error
		planErr   error
		badJob    bool
		want      scheduler.Outcome
		wantTimer bool
	}{
		{"snapshot", errors.New("store closed"), nil, false, scheduler.OutcomeSnapshotFailed, true},
		{"submit", nil, errors.New("not leader"), false, scheduler.OutcomeSubmitFailed, true},
		{"invalid job", nil, nil, true, scheduler.OutcomeInvalidJob, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachArch(t, func(t *testing.T, pick func(*architecture.Config)) {
				h := schedtest.NewHarness(t)
				h.State.UpsertNode(schedtest.Node("n1", 1000, 1024))
				j := h.AddJob("web", structs.JobTypeService, 1, 50, 100)
				if tt.badJob {
					j.Resources.CPU = -5 // state from elsewhere: Validate would refuse it
					h.State.UpsertJob(j)
				}
				var mu sync.Mutex
				failing := true
				h.Snapshot = func() (scheduler.State, error) {
					mu.Lock()
					defer mu.Unlock()
					if failing && tt.snapErr != nil {
						return nil, tt.snapErr
					}
					return h.State.Snapshot(), nil
				}
				a := build(t, h, pick, func(_ *architecture.Config, env *scheduler.Env) {
					if tt.planErr != nil {
						env.Planner = failingPlanner{h.Planner, &mu, &failing, tt.planErr}
					}
				})
				a.Enqueue("web", 50)
				h.Run(a)
				ev := h.NextEvaluation()
				if ev.Outcome != tt.want || ev.Err == nil {
					t.Fatalf("evaluation %+v, want outcome %s with a reason", ev, tt.want)
				}
				timers := h.TakeTimers()
				if !tt.wantTimer {
					if len(timers) != 0 {
						t.Fatalf("timers %+v, want none", timers)
					}
					return
				}
				if len(timers) != 1 || timers[0].D != scheduler.ErrorBackoff {
					t.Fatalf("timers %+v, want one of %s", timers, scheduler.ErrorBackoff)
				}
				mu.Lock()
				failing = false
				mu.Unlock()
				timers[0].F()
				h.Next()
				if n := len(h.State.LiveAllocs("web")); n != 1 {
					t.Fatalf("%d live after the retry, want 1", n)
				}
			})
		})
	}
}

// failingPlanner fails while *failing is set.
type failingPlanner struct {
	*schedtest.Planner
	mu      *sync.Mutex
	failing *bool
	err     error
}

func (p failingPlanner) SubmitPlan(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, error) {
	p.mu.Lock()
	f := *p.failing
	p.mu.Unlock()
	if f {
		return nil, p.err
	}
	return p.Planner.SubmitPlan(ctx, plan)
}

// TestPipelinedCommits: with a pipelined planner no architecture waits
// for commits: jobs are decided while earlier plans are uncommitted,
// placements count once committed, and a job whose commit failed is
// evaluated again after ErrorBackoff.
func TestPipelinedCommits(t *testing.T) {
	forEachArch(t, func(t *testing.T, pick func(*architecture.Config)) {
		h := schedtest.NewHarness(t)
		pp := schedtest.NewPipelinedPlanner(h.Planner)
		h.State.UpsertNode(schedtest.Node("n1", 10000, 10000))
		h.AddJob("a", structs.JobTypeService, 2, 50, 100)
		h.AddJob("b", structs.JobTypeService, 1, 50, 100)
		a := build(t, h, pick, func(_ *architecture.Config, env *scheduler.Env) { env.Planner = pp })
		a.Enqueue("a", 50)
		a.Enqueue("b", 50)
		h.Run(a)
		// Both are decided although no commit has been answered.
		if x, y := h.Next(), h.Next(); x != "a" || y != "b" {
			t.Fatalf("evaluated %s, %s", x, y)
		}
		if st := a.Status(); st.Placements != 0 || st.Evaluations != 2 {
			t.Fatalf("status before commits %+v, want 0 placements and 2 evaluations", st)
		}
		pp.Commit("a", nil)
		pp.Commit("b", errors.New("raft: leadership lost"))
		h.WaitUntil("a's placements counted and b's retry timer set", func() bool {
			return a.Status().Placements == 2 && len(h.Timers()) == 1
		})
		ft := h.TakeTimers()[0]
		if ft.D != scheduler.ErrorBackoff {
			t.Fatalf("retry after %s, want %s", ft.D, scheduler.ErrorBackoff)
		}
		// The retry decides b again; its copy is already in the (test)
		// state, so there is nothing left to do.
		ft.F()
		if id := h.Next(); id != "b" {
			t.Fatalf("retried %s, want b", id)
		}
		if n := len(h.Planner.Plans()); n != 2 {
			t.Fatalf("%d plans, want 2", n)
		}
	})
}

// TestRunWaitsForCommits: Run returns only after every outstanding commit
// has been answered, so no commit watcher outlives it.
func TestRunWaitsForCommits(t *testing.T) {
	forEachArch(t, func(t *testing.T, pick func(*architecture.Config)) {
		h := schedtest.NewHarness(t)
		pp := schedtest.NewPipelinedPlanner(h.Planner)
		h.State.UpsertNode(schedtest.Node("n1", 10000, 10000))
		h.AddJob("a", structs.JobTypeService, 1, 50, 100)
		a := build(t, h, pick, func(_ *architecture.Config, env *scheduler.Env) { env.Planner = pp })
		a.Enqueue("a", 50)
		h.Run(a)
		h.Next()
		h.Cancel()
		select {
		case <-h.Done():
			t.Fatal("Run returned with a commit outstanding")
		case <-time.After(50 * time.Millisecond):
		}
		pp.Commit("a", nil)
		<-h.Done()
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*architecture.Config)
		want []string // fields named; none = valid
	}{
		{"defaults", func(*architecture.Config) {}, nil},
		{"shared-state defaults", func(c *architecture.Config) { c.Architecture = architecture.SharedState }, nil},
		{"two-level defaults", func(c *architecture.Config) { c.Architecture = architecture.TwoLevel }, nil},
		{"unknown architecture", func(c *architecture.Config) { c.Architecture = "three-level" }, []string{"architecture:"}},
		{"nested two-level fields", func(c *architecture.Config) {
			c.Architecture = architecture.TwoLevel
			c.TwoLevel.Allocator.OfferTimeout, c.TwoLevel.Batch.MaxInflightPlans = -1, 0
			c.TwoLevel.Allocator.Roles = map[string]twolevel.RoleConfig{"ml": {Weight: -2}}
		}, []string{"two_level.allocator.offer_timeout:", "two_level.batch.max_inflight_plans:", "two_level.allocator.roles.ml.weight:"}},
		{"core fields", func(c *architecture.Config) { c.SampleSize, c.MaxPlanRetries = 0, -1 }, []string{"sample_size:", "max_plan_retries:"}},
		{"nested shared-state fields", func(c *architecture.Config) {
			c.Architecture, c.SharedState.Workers, c.SharedState.BatchWorkers = architecture.SharedState, 0, -1
		}, []string{"shared_state.workers:", "shared_state.batch_workers:"}},
		{"nested monolithic field", func(c *architecture.Config) { c.Monolithic.MaxInflightPlans = 0 }, []string{"monolithic.max_inflight_plans:"}},
		{"other architecture not read", func(c *architecture.Config) { c.SharedState.Workers = 0 }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := architecture.DefaultConfig()
			tt.mod(&c)
			before := fmt.Sprintf("%+v", c)
			err := c.Validate()
			if after := fmt.Sprintf("%+v", c); after != before {
				t.Fatalf("Validate changed the config: %s -> %s", before, after)
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tt.want)
			}
			for _, f := range tt.want {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			var fe structs.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v holds no structs.FieldError", err)
			}
			if _, err := architecture.New(c, scheduler.Env{}); !errors.Is(err, scheduler.ErrInvalidConfig) {
				t.Errorf("New: %v, want it to wrap scheduler.ErrInvalidConfig", err)
			}
		})
	}
}
