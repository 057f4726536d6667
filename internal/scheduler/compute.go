package scheduler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// Options holds the injected parts of one scheduling pass. ComputePlan and
// NewPlacer take the same; an evaluation loop keeps one per goroutine (its
// own random source and cache).
type Options struct {
	// SampleSize is how many feasible nodes with room are ranked per
	// placement; 0 = DefaultSampleSize.
	SampleSize int
	// Rand shuffles nodes and draws allocation IDs; required, so every
	// run can be replayed from its seed.
	Rand *rand.Rand
	// Now stamps new allocations and failures; nil = time.Now.
	Now func() time.Time
	// Cache, when set, keeps feasibility verdicts across passes (see
	// FeasibilityCache); the caller owns it and must not share it between
	// goroutines. nil evaluates constraints lazily per pass.
	Cache *FeasibilityCache
}

// complete returns o with its zero optional parts replaced, or ErrNoRand.
func (o Options) complete() (Options, error) {
	if o.Rand == nil {
		return o, ErrNoRand
	}
	if o.SampleSize <= 0 {
		o.SampleSize = DefaultSampleSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
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
	opts, err := opts.complete()
	if err != nil {
		return nil, err
	}
	job := state.JobByID(jobID)
	if job != nil && job.Type.PerNode() && !job.Stop {
		return computePerNodePlan(opts, state, job), nil // pernode.go
	}
	allocs := state.AllocsByJob(jobID)
	if job != nil && job.HasGroups() && !job.Stop && !job.IsParent() {
		return computeGroupsPlan(opts, state, job, allocs) // groups.go
	}
	rec := ReconcileJob(state, job, allocs, opts.Now())

	plan := &structs.Plan{JobID: jobID, SnapshotIndex: state.Index(), Stops: rec.Stops}
	res := &Result{Plan: plan, RetryAt: rec.RetryAt}
	// A stored failure is cleared exactly when there is one and the pass
	// leaves nothing unplaced; an unchanged one is not written again.
	stored := state.PlacementFailure(jobID)
	plan.ClearFailure = stored != nil
	if job == nil {
		return res, nil
	}
	plan.Priority = job.Priority
	plan.AllOrNothing = job.Gang
	if job.Stop {
		return res, nil
	}

	if len(rec.Place) > 0 {
		if r := job.TotalResources(); r.CPU < 0 || r.MemoryMB < 0 || r.IsZero() {
			// Validate rejects these; state from elsewhere must not let a
			// negative ask hide usage and over-commit a node.
			return nil, fmt.Errorf("job %s: invalid resources %s", jobID, r)
		}
		known := allocs
		if known == nil {
			known = []*structs.Allocation{} // read: the job has none
		}
		pl := newPlacer(opts, state, job, plan, known)
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
			plan.ClearFailure = false
			if !SameFailure(f, stored) {
				plan.Failure = f
			}
			return res, nil
		}
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
