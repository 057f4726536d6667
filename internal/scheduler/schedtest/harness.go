package schedtest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/jobqueue"
	"github.com/gantry-project/gantry/internal/structs"
)

// Epoch is the harness clock's start.
var Epoch = time.Unix(1_800_000_000, 0)

// nextTimeout bounds the wait for one evaluation: generous, since the
// machine running the tests may be loaded; only a hang reaches it.
const nextTimeout = 30 * time.Second

// Harness runs a scheduling architecture over an in-memory cluster, the
// same way for every architecture: a State, a Planner that applies plans
// as the server's applier does, a manual Clock, timers the test fires by
// hand, and every evaluation reported to Next. Build the architecture over
// Env(), then Run it.
type Harness struct {
	T       testing.TB
	State   *State
	Planner *Planner
	Clock   *Clock
	// Snapshot, when set before Run (or while the architecture is idle),
	// replaces State.Snapshot as the views' source: tests inject failures
	// and delays through it.
	Snapshot func() (scheduler.State, error)

	evaluated chan scheduler.Evaluation

	timersMu sync.Mutex
	timers   []*FakeTimer

	cancel context.CancelFunc
	done   chan struct{}
}

// NewHarness returns a harness over an empty cluster at Epoch.
func NewHarness(t testing.TB) *Harness {
	h := &Harness{T: t, State: NewState(), Clock: NewClock(Epoch), evaluated: make(chan scheduler.Evaluation, 10000)}
	h.State.Now = h.Clock.Now
	h.Planner = NewPlanner(h.State)
	return h
}

// Env returns what to build an architecture over: views of State (or
// Snapshot), Planner, the manual clock, recorded timers, and evaluations
// reported to Next. Change a field of it (a PipelinedPlanner, a
// Registerer) before building.
func (h *Harness) Env() scheduler.Env {
	return scheduler.Env{
		Snapshot: func() (scheduler.State, error) {
			if h.Snapshot != nil {
				return h.Snapshot()
			}
			return h.State.Snapshot(), nil
		},
		Planner:   h.Planner,
		Now:       h.Clock.Now,
		AfterFunc: h.afterFunc,
		Evaluated: func(ev scheduler.Evaluation) { h.evaluated <- ev },
	}
}

func (h *Harness) afterFunc(d time.Duration, f func()) jobqueue.Stopper {
	h.timersMu.Lock()
	defer h.timersMu.Unlock()
	ft := &FakeTimer{D: d, F: f}
	h.timers = append(h.timers, ft)
	return ft
}

// Run starts a.Run on its own goroutine until Stop or the end of the test.
func (h *Harness) Run(a scheduler.Architecture) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); a.Run(ctx) }()
	h.T.Cleanup(h.Stop)
}

// Cancel cancels Run's context without waiting for it to return; Done
// closes when it has.
func (h *Harness) Cancel() { h.cancel() }

// Done closes once Run has returned.
func (h *Harness) Done() <-chan struct{} { return h.done }

// Stop cancels Run and waits for it to return.
func (h *Harness) Stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// NextEvaluation waits for the next evaluation to end.
func (h *Harness) NextEvaluation() scheduler.Evaluation {
	h.T.Helper()
	select {
	case ev := <-h.evaluated:
		return ev
	case <-time.After(nextTimeout):
		h.T.Fatalf("no job evaluated within %s", nextTimeout)
		return scheduler.Evaluation{}
	}
}

// Next waits for the next evaluation to end and returns its job.
func (h *Harness) Next() string {
	h.T.Helper()
	return h.NextEvaluation().JobID
}

// Timers returns the timers started so far, in order.
func (h *Harness) Timers() []*FakeTimer {
	h.timersMu.Lock()
	defer h.timersMu.Unlock()
	return slices.Clone(h.timers)
}

// TakeTimers returns the timers started since the last TakeTimers and
// forgets them.
func (h *Harness) TakeTimers() []*FakeTimer {
	h.timersMu.Lock()
	defer h.timersMu.Unlock()
	ts := h.timers
	h.timers = nil
	return ts
}

// AddJob stores a job of count copies of cpu millicores and 64 MiB.
func (h *Harness) AddJob(id string, typ structs.JobType, count, priority int, cpu int64) *structs.Job {
	j := Job(id, count, cpu, 64)
	j.Type = typ
	j.Priority = priority
	h.State.UpsertJob(j)
	return j
}

// WaitUntil polls cond until it holds, failing the test after a generous
// deadline.
func (h *Harness) WaitUntil(what string, cond func() bool) {
	h.T.Helper()
	deadline := time.Now().Add(nextTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.T.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
