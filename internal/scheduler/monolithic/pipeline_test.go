package monolithic

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// gatedPlanner is a PipelinedPlanner over a schedtest planner: a plan is
// checked and applied at once (so the next snapshot sees it, as the
// server's overlay does), and its commit is reported only when the test
// sends an outcome on the job's gate (nil = committed).
type gatedPlanner struct {
	*schedtest.Planner
	gates map[string]chan error // by job; set before the scheduler runs
}

var _ scheduler.PipelinedPlanner = (*gatedPlanner)(nil)

func (g *gatedPlanner) SubmitPlanPipelined(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, func() (*structs.PlanResult, error), error) {
	res, err := g.SubmitPlan(ctx, plan)
	if err != nil {
		return nil, nil, err
	}
	return res, func() (*structs.PlanResult, error) {
		if err := <-g.gates[plan.JobID]; err != nil {
			return nil, err
		}
		return res, nil
	}, nil
}

func newPipelinedHarness(t *testing.T) (*harness, *gatedPlanner) {
	h := newHarness(t, Config{})
	g := &gatedPlanner{Planner: h.planner, gates: map[string]chan error{"a": make(chan error), "b": make(chan error)}}
	h.s = New(Config{Now: h.clock.Now, Seed: 1}, h.st.SnapshotFunc(), g)
	h.s.processed = func(id string) { h.processed <- id }
	h.s.retries.AfterFunc = func(d time.Duration, f func()) stopper {
		h.timersMu.Lock()
		defer h.timersMu.Unlock()
		ft := &schedtest.FakeTimer{D: d, F: f}
		h.timers = append(h.timers, ft)
		return ft
	}
	return h, g
}

// TestPipelinedDoesNotWaitForCommit: with a pipelined planner the loop
// decides the next job while the previous plan's commit is outstanding,
// counts placements only once committed, and retries a job whose commit
// failed after the error backoff.
func TestPipelinedDoesNotWaitForCommit(t *testing.T) {
	h, g := newPipelinedHarness(t)
	h.st.UpsertNode(schedtest.Node("n1", 10000, 10000))
	h.addJob("a", 2, 50, 100)
	h.addJob("b", 1, 50, 100)
	h.s.Enqueue("a", 50)
	h.s.Enqueue("b", 50)
	h.start()
	// Both are decided although no commit has been reported.
	if x, y := h.next(), h.next(); x != "a" || y != "b" {
		t.Fatalf("processed %s, %s", x, y)
	}
	if st := h.s.Status(); st.Placements != 0 || st.Evaluations != 2 {
		t.Fatalf("status before commits %+v, want 0 placements and 2 evaluations", st)
	}
	g.gates["a"] <- nil                      // a's plan commits
	g.gates["b"] <- errors.New("raft: lost") // b's does not
	waitUntil(t, "a's placements counted and b's retry timer set", func() bool {
		h.timersMu.Lock()
		n := len(h.timers)
		h.timersMu.Unlock()
		return h.s.Status().Placements == 2 && n == 1
	})
	h.timersMu.Lock()
	ft := h.timers[0]
	h.timersMu.Unlock()
	if ft.D != errorBackoff {
		t.Fatalf("retry after %s, want %s", ft.D, errorBackoff)
	}
	// The retry decides b again; its copy is already in the (test) state,
	// so there is nothing left to do.
	ft.F()
	if id := h.next(); id != "b" {
		t.Fatalf("retried %s, want b", id)
	}
	if n := len(h.planner.Plans()); n != 2 {
		t.Fatalf("%d plans, want 2", n)
	}
}

// TestPipelinedRunWaitsForCommits: Run returns only after every
// outstanding commit has been answered, so no watcher outlives it.
func TestPipelinedRunWaitsForCommits(t *testing.T) {
	h, g := newPipelinedHarness(t)
	h.st.UpsertNode(schedtest.Node("n1", 10000, 10000))
	h.addJob("a", 1, 50, 100)
	h.s.Enqueue("a", 50)
	h.start()
	h.next()
	h.cancel()
	select {
	case <-h.done:
		t.Fatal("Run returned with a commit outstanding")
	case <-time.After(50 * time.Millisecond):
	}
	g.gates["a"] <- nil
	<-h.done
	h.cancel = nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
