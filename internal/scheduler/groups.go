package scheduler

import (
	"fmt"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// DescGroupRemoved is the stop description of a copy whose task group the
// job no longer has.
const DescGroupRemoved = "group removed from the job"

// GroupReconciliation is one group's part of a job's reconciliation.
type GroupReconciliation struct {
	Group string
	// Job is the group's view (structs.Job.GroupView).
	Job *structs.Job
	*Reconciliation
}

// ReconcileGroups reconciles each group of a job with groups on its own:
// Reconcile on the group's view (Job.GroupView) with the group's
// allocations, so copy indexes count per group. Live allocations of no
// group of the job (a group removed, or the implicit group of a version
// without groups) are stopped; those stops are in the first group's
// part. Rolling updates are not per group yet (Validate refuses update
// blocks on jobs with groups).
func ReconcileGroups(job *structs.Job, allocs []*structs.Allocation, nodeByID func(string) *structs.Node, now time.Time) []GroupReconciliation {
	byGroup := make(map[string][]*structs.Allocation, len(job.Groups))
	var orphans []structs.AllocStop
	for _, a := range allocs {
		if job.LookupGroup(a.Group) == nil {
			if !a.Terminal() {
				orphans = append(orphans, structs.AllocStop{AllocID: a.ID, NodeID: a.NodeID,
					Desired: structs.AllocDesiredStop, Description: DescGroupRemoved})
			}
			continue
		}
		byGroup[a.Group] = append(byGroup[a.Group], a)
	}
	out := make([]GroupReconciliation, len(job.Groups))
	for i := range job.Groups {
		name := job.Groups[i].Name
		v := job.GroupView(name)
		out[i] = GroupReconciliation{Group: name, Job: v, Reconciliation: Reconcile(v, byGroup[name], nodeByID, now)}
	}
	if len(out) > 0 && len(orphans) > 0 {
		out[0].Stops = append(orphans, out[0].Stops...)
	}
	return out
}

// computeGroupsPlan is ComputePlan for a job with groups: one plan for the
// whole job, each group reconciled (ReconcileGroups) and placed with its
// own view (resources, ports, volumes, constraints). The groups' stops
// all come first, so every group's placements see the room they free;
// each group's placer counts the placements of the groups before it.
func computeGroupsPlan(opts Options, state State, job *structs.Job, allocs []*structs.Allocation) (*Result, error) {
	recs := ReconcileGroups(job, allocs, state.NodeByID, opts.Now())
	plan := &structs.Plan{JobID: job.ID, SnapshotIndex: state.Index(), Priority: job.Priority, AllOrNothing: job.Gang}
	res := &Result{Plan: plan}
	stored := state.PlacementFailure(job.ID)
	plan.ClearFailure = stored != nil
	places := 0
	for _, r := range recs {
		plan.Stops = append(plan.Stops, r.Stops...)
		if !r.RetryAt.IsZero() && (res.RetryAt.IsZero() || r.RetryAt.Before(res.RetryAt)) {
			res.RetryAt = r.RetryAt
		}
		places += len(r.Place)
	}
	if places == 0 {
		return res, nil
	}
	known := allocs
	if known == nil {
		known = []*structs.Allocation{}
	}
	full := job.Copy() // shared by every allocation of the pass
	var failure *structs.PlacementFailure
	for _, r := range recs {
		if len(r.Place) == 0 {
			continue
		}
		if t := r.Job.TotalResources(); t.CPU < 0 || t.MemoryMB < 0 || t.IsZero() {
			return nil, fmt.Errorf("job %s group %s: invalid resources %s", job.ID, r.Group, t)
		}
		pl := newPlacer(opts, state, r.Job, plan, known)
		pl.jobCopy, pl.group, pl.namePrefix = full, r.Group, job.ID+"."+r.Group
		for _, req := range r.Place {
			if pl.Place(req) != nil {
				res.Placed++
			}
		}
		res.Victims = append(res.Victims, pl.Victims()...)
		if f := pl.Failure(); f != nil {
			g := *f
			g.Message = "group " + r.Group + ": " + f.Message
			if failure == nil {
				failure = &g
			} else {
				failure.Unplaced += g.Unplaced
				failure.NodesEvaluated += g.NodesEvaluated
			}
		}
		pl.release()
	}
	if failure != nil {
		if job.Gang {
			plan.Placements, plan.Preemptions, res.Victims = nil, nil, nil
			res.Placed = 0
			failure = gangFailure(failure, places)
		}
		res.Unplaced = failure.Unplaced
		plan.ClearFailure = false
		if !SameFailure(failure, stored) {
			plan.Failure = failure
		}
	}
	return res, nil
}
