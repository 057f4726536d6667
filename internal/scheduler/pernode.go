package scheduler

import (
	"cmp"
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// DescNodeIneligible stops a per-node copy whose node no longer passes the
// job's constraints (its labels changed, or the job's constraints did).
const DescNodeIneligible = "node no longer eligible"

// NodePlace asks for a per-node job's copy on one node.
type NodePlace struct {
	PlaceRequest
	NodeID string
}

// PerNodeReconciliation is what a system or sysbatch job needs: copies to
// stop, nodes to place a copy on, failed copies waiting for their delay.
type PerNodeReconciliation struct {
	Stops   []structs.AllocStop
	Place   []NodePlace
	Delayed []DelayedReschedule
	RetryAt time.Time
}

// ReconcilePerNode is Reconcile for system and sysbatch jobs: one live copy
// of the current version on every node that is ready, not draining,
// eligible and passes the job's constraints (and runs its driver). Pure,
// like Reconcile; nodes is every node of the view.
//
// A node marked ineligible keeps the copy it has (as Nomad: eligibility
// governs new placements) but receives none; a draining, down or missing
// node's copy is stopped and not replaced elsewhere; a node that no longer
// passes the constraints loses its copy. A sysbatch copy that completed at
// the current version is done on its node for good; a failed copy is
// replaced on its node under the reschedule policy, with its delay.
func ReconcilePerNode(job *structs.Job, allocs []*structs.Allocation, nodes []*structs.Node, now time.Time) *PerNodeReconciliation {
	r := &PerNodeReconciliation{}
	stop := func(a *structs.Allocation, desc string) {
		r.Stops = append(r.Stops, structs.AllocStop{
			AllocID: a.ID, NodeID: a.NodeID, Desired: structs.AllocDesiredStop, Description: desc,
		})
	}
	if job == nil || job.Stop || job.IsParent() {
		for _, a := range allocs {
			if !a.Terminal() {
				stop(a, DescJobStopped)
			}
		}
		return r
	}
	byNode := map[string][]*structs.Allocation{}
	for _, a := range allocs {
		byNode[a.NodeID] = append(byNode[a.NodeID], a)
	}
	cons := compileJobConstraints(job)
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b *structs.Node) int { return cmp.Compare(a.ID, b.ID) })
	known := make(map[string]bool, len(sorted))
	for _, n := range sorted {
		known[n.ID] = true
		r.reconcileNode(job, n, cons, byNode[n.ID], now, stop)
	}
	// Copies on nodes the view no longer has.
	for _, id := range slices.Sorted(mapStringKeys(byNode)) {
		if known[id] {
			continue
		}
		for _, a := range byNode[id] {
			if !a.Terminal() {
				stop(a, DescNodeDown)
			}
		}
	}
	return r
}

func mapStringKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (r *PerNodeReconciliation) reconcileNode(job *structs.Job, n *structs.Node, cons *Constraints,
	allocs []*structs.Allocation, now time.Time, stop func(*structs.Allocation, string)) {
	slices.SortFunc(allocs, newerFirst)
	feasible := cons.Check(n) == ""
	var keep, replaced *structs.Allocation
	for _, a := range allocs {
		if a.Terminal() {
			continue
		}
		switch {
		case n.Status != structs.NodeStatusReady:
			stop(a, DescNodeDown)
		case n.Drain:
			stop(a, DescNodeDrained)
		case !feasible:
			stop(a, DescNodeIneligible)
		case a.JobVersion < job.Version:
			stop(a, DescJobUpdated)
			replaced = pick(replaced, a)
		case keep == nil:
			keep = a
		default:
			stop(a, DescDuplicate)
		}
	}
	if keep != nil || !feasible || nodeStatusReason(n) != "" {
		return
	}
	place := func(req PlaceRequest) {
		r.Place = append(r.Place, NodePlace{PlaceRequest: req, NodeID: n.ID})
	}
	if replaced != nil {
		place(PlaceRequest{Previous: replaced.ID, RescheduleCount: replaced.RescheduleCount, Reason: "replacement"})
		return
	}
	var last *structs.Allocation
	for _, a := range allocs {
		if job.Type.RunsToCompletion() && a.JobVersion == job.Version && a.ClientStatus == structs.AllocClientComplete {
			return // this node ran the sysbatch job at this version
		}
		if last == nil && a.JobVersion == job.Version {
			last = a
		}
	}
	if last == nil {
		place(PlaceRequest{Reason: "new"})
		return
	}
	req := PlaceRequest{Previous: last.ID, RescheduleCount: last.RescheduleCount, Reason: "replacement"}
	if last.ClientStatus == structs.AllocClientFailed && last.DesiredStatus == structs.AllocDesiredRun {
		pol := job.Reschedule
		if !pol.Unlimited && last.RescheduleCount >= pol.Attempts {
			return
		}
		attempt, delay := rescheduleAttempt(pol, last)
		due := time.Unix(0, last.ModifyTime).Add(delay)
		if now.Before(due) {
			r.Delayed = append(r.Delayed, DelayedReschedule{Previous: last.ID, Attempt: attempt, Delay: delay, At: due})
			if r.RetryAt.IsZero() || due.Before(r.RetryAt) {
				r.RetryAt = due
			}
			return
		}
		req.RescheduleCount, req.Reason = attempt, "rescheduled"
	}
	place(req)
}

// computePerNodePlan is ComputePlan for system and sysbatch jobs: each copy
// goes to the node the reconciliation names if it has room there (and the
// namespace's quota allows); copies that do not fit are counted in the
// placement failure by the resource they lacked. No preemption: a system
// copy waits for room on its node.
func computePerNodePlan(opts Options, state State, job *structs.Job) *Result {
	allocs := state.AllocsByJob(job.ID)
	nodes := state.Nodes()
	rec := ReconcilePerNode(job, allocs, nodes, opts.Now())
	stored := state.PlacementFailure(job.ID)
	plan := &structs.Plan{JobID: job.ID, SnapshotIndex: state.Index(), Stops: rec.Stops,
		Priority: job.Priority, ClearFailure: stored != nil}
	res := &Result{Plan: plan, RetryAt: rec.RetryAt}
	if len(rec.Place) == 0 {
		return res
	}
	stopped := map[string]bool{}
	for _, s := range plan.Stops {
		stopped[s.AllocID] = true
	}
	freed := map[string]structs.Resources{} // node -> what the plan's stops free there
	for _, a := range allocs {
		if stopped[a.ID] && !a.Terminal() {
			freed[a.NodeID] = freed[a.NodeID].Add(a.Resources)
		}
	}
	usageRows, _ := state.(NodeUsageReader)
	usage := func(nodeID string) structs.Resources {
		if usageRows != nil {
			return usageRows.NodeUsage(nodeID).Sub(freed[nodeID])
		}
		var used structs.Resources
		for _, a := range state.AllocsByNode(nodeID) {
			if !a.Terminal() && !stopped[a.ID] {
				used = used.Add(a.Resources)
			}
		}
		return used
	}
	var quota *structs.Quota
	var quotaUsed structs.Resources
	ns := structs.JobNamespace(job.ID)
	if qr, ok := state.(QuotaReader); ok {
		if quota = qr.NamespaceQuota(ns); quota != nil {
			quotaUsed = qr.NamespaceUsage(ns)
			for _, a := range allocs {
				if stopped[a.ID] && !a.Terminal() {
					quotaUsed = quotaUsed.Sub(a.Resources)
				}
			}
		}
	}
	now := opts.Now()
	jobCopy := job.Copy()
	ask := job.TotalResources()
	f := &structs.PlacementFailure{JobID: job.ID, NodesEvaluated: len(nodes), Time: now.UnixNano()}
	for _, p := range rec.Place {
		n := state.NodeByID(p.NodeID)
		if quota != nil {
			if dim := quota.Exceeds(quotaUsed.Add(ask)); dim != "" {
				f.Unplaced++
				f.Message = "quota " + ns + ": " + quota.Describe(dim, quotaUsed)
				continue
			}
		}
		if ok, dim := n.Capacity.Sub(usage(n.ID)).Fits(ask); !ok {
			f.Unplaced++
			if f.NodesExhausted == nil {
				f.NodesExhausted = map[string]int{}
			}
			f.NodesExhausted[dim]++
			continue
		}
		quotaUsed = quotaUsed.Add(ask)
		plan.Placements = append(plan.Placements, &structs.Allocation{
			ID:                 NewID(opts.Rand),
			JobID:              job.ID,
			JobVersion:         job.Version,
			Name:               structs.AllocName(job.ID, 0),
			NodeID:             n.ID,
			NodeName:           n.Name,
			Resources:          ask,
			Priority:           job.Priority,
			Job:                jobCopy,
			DesiredStatus:      structs.AllocDesiredRun,
			ClientStatus:       structs.AllocClientPending,
			PreviousAllocation: p.Previous,
			RescheduleCount:    p.RescheduleCount,
			CreateTime:         now.UnixNano(),
			ModifyTime:         now.UnixNano(),
		})
		res.Placed++
	}
	if f.Unplaced == 0 {
		return res
	}
	if f.Message == "" {
		f.Message = FailureMessage(f)
	}
	res.Unplaced = f.Unplaced
	plan.ClearFailure = false
	if !SameFailure(f, stored) {
		plan.Failure = f
	}
	return res
}
