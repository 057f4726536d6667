package scheduler

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantry-project/gantry/internal/scheduler/jobqueue"
)

// Env is what an architecture runs over: where views of state come from,
// where plans go, and the clock, timers, logs and metrics. The server, the
// test harness (schedtest.Harness) and the simulator each build one.
type Env struct {
	// Snapshot returns a consistent view of current state (required).
	Snapshot func() (State, error)
	// Planner takes plans (required). A PipelinedPlanner is not waited
	// on: see Evaluator.
	Planner Planner
	// Logger receives the architecture's logs; nil = discard.
	Logger *slog.Logger
	// Registerer receives the architecture's metrics; nil = none.
	Registerer prometheus.Registerer
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// AfterFunc starts the timers of delayed re-enqueues; nil =
	// time.AfterFunc. Tests record the timers and fire them by hand.
	AfterFunc func(d time.Duration, f func()) jobqueue.Stopper
	// Evaluated, when set, is called on the evaluating goroutine after
	// each job's evaluation has been counted (tests and the simulator step
	// on it). It must not block for long.
	Evaluated func(Evaluation)
}

// ErrIncompleteEnv is returned for an Env without a snapshot source or a
// planner.
var ErrIncompleteEnv = errors.New("scheduler env: a snapshot source and a planner are required")

// Complete returns env with its nil optional parts replaced by the
// standard ones, or ErrIncompleteEnv.
func (e Env) Complete() (Env, error) {
	if e.Snapshot == nil || e.Planner == nil {
		return e, ErrIncompleteEnv
	}
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.AfterFunc == nil {
		e.AfterFunc = func(d time.Duration, f func()) jobqueue.Stopper { return time.AfterFunc(d, f) }
	}
	return e, nil
}

// Retries returns delayed re-enqueues into enqueue on env's clock and
// timers.
func (e Env) Retries(enqueue func(jobID string, priority int)) *jobqueue.Retries {
	r := jobqueue.NewRetries(e.Now, enqueue)
	r.AfterFunc = e.AfterFunc
	return r
}
