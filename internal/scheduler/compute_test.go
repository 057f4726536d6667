package scheduler_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// schedule computes and applies one pass for a job.
func schedule(t *testing.T, st *schedtest.State, jobID string, seed uint64) (*scheduler.Result, *structs.PlanResult) {
	t.Helper()
	res, err := scheduler.ComputePlan(scheduler.Options{Rand: rng(seed), Now: fixedNow}, st.Snapshot(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.IsNoOp() {
		return res, nil
	}
	pr, err := schedtest.NewPlanner(st).SubmitPlan(t.Context(), res.Plan)
	if err != nil {
		t.Fatal(err)
	}
	return res, pr
}

// TestFailureLifecycle: a failure is recorded when copies do not fit, not
// rewritten while unchanged, and cleared once everything is placed.
func TestFailureLifecycle(t *testing.T) {
	st := schedtest.NewState()
	st.UpsertNode(schedtest.Node("n1", 1000, 1024))
	st.UpsertJob(schedtest.Job("web", 3, 400, 100))

	res, _ := schedule(t, st, "web", 1)
	if res.Placed != 2 || res.Unplaced != 1 || res.Plan.Failure == nil {
		t.Fatalf("first pass: placed %d unplaced %d failure %+v", res.Placed, res.Unplaced, res.Plan.Failure)
	}
	if f := st.Failure("web"); f == nil || f.Message != "1 node excluded by cpu" {
		t.Fatalf("stored failure = %+v", f)
	}

	res, _ = schedule(t, st, "web", 2)
	if !res.Plan.IsNoOp() {
		t.Fatalf("unchanged failure rewritten: %+v", res.Plan)
	}

	st.UpsertNode(schedtest.Node("n2", 1000, 1024))
	res, _ = schedule(t, st, "web", 3)
	if res.Placed != 1 || !res.Plan.ClearFailure || res.Plan.Failure != nil {
		t.Fatalf("third pass: %+v", res.Plan)
	}
	if f := st.Failure("web"); f != nil {
		t.Fatalf("failure not cleared: %+v", f)
	}
	res, _ = schedule(t, st, "web", 4)
	if !res.Plan.IsNoOp() {
		t.Fatalf("steady state plan not a no-op: %+v", res.Plan)
	}
}

// wrappedView decorates a view through the State interface alone, as an
// architecture narrowing what a scheduler sees (an offer's nodes) does.
type wrappedView struct{ scheduler.State }

// TestFailureThroughWrappedView: failures are decided the same through a
// decorated view: an unchanged failure is not rewritten, a stored one is
// cleared once everything is placed, and a plan never clears a failure
// that is not stored.
func TestFailureThroughWrappedView(t *testing.T) {
	st := schedtest.NewState()
	st.UpsertNode(schedtest.Node("n1", 1000, 1024))
	st.UpsertJob(schedtest.Job("web", 3, 400, 100))
	schedule(t, st, "web", 1) // 2 placed, the failure stored
	opts := scheduler.Options{Rand: rng(2), Now: fixedNow}
	res, err := scheduler.ComputePlan(opts, wrappedView{st.Snapshot()}, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Plan.IsNoOp() {
		t.Fatalf("unchanged failure rewritten through a wrapped view: %+v", res.Plan)
	}

	st.UpsertNode(schedtest.Node("n2", 1000, 1024))
	res, err = scheduler.ComputePlan(opts, wrappedView{st.Snapshot()}, "web")
	if err != nil {
		t.Fatal(err)
	}
	if res.Placed != 1 || !res.Plan.ClearFailure {
		t.Fatalf("stored failure not cleared through a wrapped view: %+v", res.Plan)
	}

	st.UpsertJob(schedtest.Job("api", 1, 100, 100)) // fits: no failure ever
	res, err = scheduler.ComputePlan(opts, wrappedView{st.Snapshot()}, "api")
	if err != nil {
		t.Fatal(err)
	}
	if res.Placed != 1 || res.Plan.ClearFailure {
		t.Fatalf("plan clears a failure that is not stored: %+v", res.Plan)
	}
}

func TestComputePlanRejectsBadInput(t *testing.T) {
	st := schedtest.NewState()
	st.UpsertNode(schedtest.Node("n1", 1000, 1024))
	bad := schedtest.Job("neg", 1, 100, 100)
	bad.Resources.CPU = -5
	st.UpsertJob(bad)
	if _, err := scheduler.ComputePlan(scheduler.Options{Rand: rng(1)}, st.Snapshot(), "neg"); err == nil {
		t.Fatal("negative resources accepted")
	}
	if _, err := scheduler.ComputePlan(scheduler.Options{}, st.Snapshot(), "neg"); !errors.Is(err, scheduler.ErrNoRand) {
		t.Fatalf("err = %v, want ErrNoRand", err)
	}
}

// TestNeverOverCommits is a randomized property test: many jobs of random
// shapes and priorities, scaled, updated, stopped, with nodes draining and
// going down and copies failing, scheduled on a small cluster; after every
// applied plan no node holds more than its capacity. Fixed seeds make any
// failure replayable.
func TestNeverOverCommits(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			st := schedtest.NewState()
			now := epoch
			st.Now = func() time.Time { return now }
			for i := range 12 {
				st.UpsertNode(schedtest.Node(fmt.Sprintf("n%02d", i), int64(1000+r.IntN(4)*1000), int64(1024+r.IntN(4)*1024), fmt.Sprintf("zone=%c", 'a'+r.IntN(3))))
			}
			var jobs []*structs.Job
			for i := range 15 {
				j := schedtest.Job(fmt.Sprintf("j%02d", i), 1+r.IntN(6), int64(100+r.IntN(20)*100), int64(128+r.IntN(16)*128))
				j.Priority = 1 + r.IntN(100)
				if r.IntN(3) == 0 {
					j.Placement = structs.PlacementSpread
				}
				if r.IntN(4) == 0 {
					j.Constraints = []structs.Constraint{{Label: "zone", Operator: "!=", Value: "c"}}
				}
				jobs = append(jobs, j)
				st.UpsertJob(j)
			}
			planner := schedtest.NewPlanner(st)
			for step := range 300 {
				now = now.Add(time.Second)
				j := jobs[r.IntN(len(jobs))]
				switch r.IntN(10) {
				case 0:
					j = j.Copy()
					j.Count = r.IntN(8)
					jobs[slicesIndex(jobs, j.ID)] = j
					st.UpsertJob(j)
				case 1:
					j = j.Copy()
					j.Version++
					j.Resources.CPU = int64(100 + r.IntN(20)*100)
					jobs[slicesIndex(jobs, j.ID)] = j
					st.UpsertJob(j)
				case 2:
					id := fmt.Sprintf("n%02d", r.IntN(12))
					_ = st.SetDrain(id, r.IntN(2) == 0)
				case 3:
					id := fmt.Sprintf("n%02d", r.IntN(12))
					status := structs.NodeStatusReady
					if r.IntN(2) == 0 {
						status = structs.NodeStatusDown
					}
					_ = st.SetNodeStatus(id, status)
				case 4:
					if live := st.LiveAllocs(j.ID); len(live) > 0 {
						a := live[r.IntN(len(live))]
						status := []string{structs.AllocClientFailed, structs.AllocClientComplete, structs.AllocClientRunning}[r.IntN(3)]
						_ = st.SetClientStatus(a.ID, status)
					}
				}
				// Plans are computed on a snapshot and sometimes applied
				// after a later one, as racing schedulers would.
				snap := st.Snapshot()
				res, err := scheduler.ComputePlan(scheduler.Options{Rand: r, Now: func() time.Time { return now }, SampleSize: 1 + r.IntN(8)}, snap, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				if r.IntN(4) == 0 {
					other := jobs[r.IntN(len(jobs))]
					res2, err := scheduler.ComputePlan(scheduler.Options{Rand: r, Now: func() time.Time { return now }}, st.Snapshot(), other.ID)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := planner.SubmitPlan(t.Context(), res2.Plan); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := planner.SubmitPlan(t.Context(), res.Plan); err != nil {
					t.Fatal(err)
				}
				if err := st.CheckInvariants(); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				// Planned state itself never over-commits a ready node.
				checkPlanAgainstSnapshot(t, snap, res.Plan)
			}
			var placed, rejected, evicted int
			for i, pr := range planner.Results() {
				placed += len(pr.Placed)
				rejected += len(pr.RejectedNodes)
				evicted += len(planner.Plans()[i].Preemptions)
			}
			t.Logf("placed %d, rejected nodes %d, preemptions planned %d", placed, rejected, evicted)
			if placed == 0 {
				t.Fatal("nothing placed: the test exercises nothing")
			}
		})
	}
}

func slicesIndex(jobs []*structs.Job, id string) int {
	for i, j := range jobs {
		if j.ID == id {
			return i
		}
	}
	return -1
}

// checkPlanAgainstSnapshot verifies the scheduler's own arithmetic: on the
// snapshot it decided on, every node it placed on fits.
func checkPlanAgainstSnapshot(t *testing.T, snap scheduler.State, plan *structs.Plan) {
	t.Helper()
	removed := map[string]bool{}
	for _, s := range plan.Stops {
		removed[s.AllocID] = true
	}
	for _, s := range plan.Preemptions {
		removed[s.AllocID] = true
	}
	byNode := map[string][]*structs.Allocation{}
	for _, a := range plan.Placements {
		byNode[a.NodeID] = append(byNode[a.NodeID], a)
	}
	for id, ps := range byNode {
		if err := scheduler.CheckNodeFit(snap.NodeByID(id), snap.AllocsByNode(id), removed, ps); err != nil {
			t.Fatalf("plan for %s does not fit its own snapshot: %v", plan.JobID, err)
		}
	}
}

// The server's go-memdb snapshot is the production State.
var _ scheduler.State = (*state.Snapshot)(nil)

// TestDriverIsAnImplicitConstraint: a job is placed only on nodes that run
// its driver, with or without constraints (the feasibility cache's path
// and the plain one), and the failure names the missing driver.
func TestDriverIsAnImplicitConstraint(t *testing.T) {
	for _, withConstraint := range []bool{false, true} {
		st := schedtest.NewState()
		plain := schedtest.Node("plain", 4000, 4096, "zone=a")
		plain.Attributes["driver.exec"], plain.Attributes["driver.mock"] = "true", "true"
		legacy := schedtest.Node("legacy", 4000, 4096, "zone=a") // no driver attributes: exec and mock
		docker := schedtest.Node("docker", 1000, 1024, "zone=a")
		docker.Attributes["driver.docker"] = "true"
		for _, n := range []*structs.Node{plain, legacy, docker} {
			st.UpsertNode(n)
		}
		job := schedtest.Job("web", 3, 400, 100)
		job.Driver = "docker"
		if withConstraint {
			job.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: "a"}}
		}
		st.UpsertJob(job)
		res, _ := schedule(t, st, "web", 1)
		if res.Placed != 2 || res.Unplaced != 1 {
			t.Fatalf("constraint %v: placed %d unplaced %d, want 2 and 1 (one docker node with room for 2)", withConstraint, res.Placed, res.Unplaced)
		}
		for _, a := range res.Plan.Placements {
			if a.NodeID != "docker" {
				t.Fatalf("constraint %v: a docker copy on %s", withConstraint, a.NodeID)
			}
		}
		f := res.Plan.Failure
		if f == nil || f.NodesFiltered[scheduler.ReasonDriver("docker")] != 2 {
			t.Fatalf("constraint %v: failure %+v, want 2 nodes filtered by %q", withConstraint, f, scheduler.ReasonDriver("docker"))
		}
	}
}
