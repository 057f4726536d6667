package scheduler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// FailureReader is implemented by State views that store placement
// failures (the server's state store, schedtest). With it ComputePlan clears
// a stored failure exactly when one exists and skips rewriting one that has
// not changed; without it, it clears whenever a non-empty plan placed
// everything.
type FailureReader interface {
	PlacementFailure(jobID string) *structs.PlacementFailure
}

// Options holds the injected parts of one scheduling pass.
type Options struct {
	SampleSize int              // 0 = DefaultSampleSize
	Rand       *rand.Rand       // required
	Now        func() time.Time // nil = time.Now
	// Cache, when set, keeps feasibility verdicts across passes (see
	// FeasibilityCache); the caller owns it and must not share it between
	// goroutines.
	Cache *FeasibilityCache
}

// Result is the outcome of ComputePlan.
type Result struct {
	Plan *structs.Plan
	// RetryAt, when not zero, is when the job must be looked at again (a
	// failed copy's reschedule delay ends).
	RetryAt time.Time
	// Victims are the allocations the plan evicts; their jobs need
	// scheduling again once the plan commits.
	Victims []*structs.Allocation
	// Placed and Unplaced count the copies the plan places and could not.
	Placed, Unplaced int
}

// ErrNoRand is returned when Options.Rand is missing.
var ErrNoRand = errors.New("scheduler: Options.Rand is required")

// ComputePlan runs the whole pipeline for one job on a state view:
// reconcile, then place each copy that is needed, then record or clear the
// placement failure. It does not submit the plan.
func ComputePlan(opts Options, state State, jobID string) (*Result, error) {
	if opts.Rand == nil {
		return nil, ErrNoRand
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	job := state.JobByID(jobID)
	allocs := state.AllocsByJob(jobID)
	rec := Reconcile(job, allocs, state.NodeByID, opts.Now())

	plan := &structs.Plan{JobID: jobID, SnapshotIndex: state.Index(), Stops: rec.Stops}
	res := &Result{Plan: plan, RetryAt: rec.RetryAt}
	var stored *structs.PlacementFailure
	fr, haveFailures := state.(FailureReader)
	if haveFailures {
		stored = fr.PlacementFailure(jobID)
	}
	if job == nil {
		plan.ClearFailure = stored != nil || (!haveFailures && len(plan.Stops) > 0)
		return res, nil
	}
	plan.Priority = job.Priority
	plan.AllOrNothing = job.Gang
	if job.Stop {
		plan.ClearFailure = stored != nil || (!haveFailures && len(plan.Stops) > 0)
		return res, nil
	}

	if len(rec.Place) > 0 {
		if r := job.Resources; r.CPU < 0 || r.MemoryMB < 0 || r.IsZero() {
			// Validate rejects these; state from elsewhere must not let a
			// negative ask hide usage and over-commit a node.
			return nil, fmt.Errorf("job %s: invalid resources %s", jobID, r)
		}
		known := allocs
		if known == nil {
			known = []*structs.Allocation{} // read: the job has none
		}
		pl := newPlacer(PlacerConfig(opts), state, job, plan, known)
		for _, req := range rec.Place {
			if pl.Place(req) != nil {
				res.Placed++
			}
		}
		res.Victims = pl.Victims()
		f := pl.Failure()
		pl.release()
		if f != nil {
			if job.Gang {
				// All or nothing: a gang that does not fit entirely
				// places nothing and evicts nobody.
				plan.Placements, plan.Preemptions, res.Victims = nil, nil, nil
				res.Placed = 0
				f = gangFailure(f, len(rec.Place))
			}
			res.Unplaced = f.Unplaced
			if !SameFailure(f, stored) {
				plan.Failure = f
			}
			return res, nil
		}
	}
	switch {
	case haveFailures:
		plan.ClearFailure = stored != nil
	default:
		plan.ClearFailure = len(plan.Placements) > 0 || len(plan.Stops) > 0
	}
	return res, nil
}

// gangFailure rewrites a placement failure for a gang: every copy of the
// pass is unplaced, since none is committed without the others.
func gangFailure(f *structs.PlacementFailure, copies int) *structs.PlacementFailure {
	g := *f
	g.Unplaced = copies
	g.Message = fmt.Sprintf("gang of %d not placed: %s", copies, f.Message)
	return &g
}
