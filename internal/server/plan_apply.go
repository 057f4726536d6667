package server

import (
	"slices"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

var _ scheduler.Planner = (*Server)(nil)

// retryIfNodesChanged re-enqueues a job whose plan recorded a placement
// failure although nodes changed after the plan's snapshot (Nomad's blocked
// evaluations). A node that registered in that window ran its
// enqueueBlockedJobs before this failure was committed and so missed the
// job; without this the job would wait for the next reconcile interval.
// Node writes committed after this check see the failure themselves.
func (s *Server) retryIfNodesChanged(plan *structs.Plan, req *structs.ApplyPlanRequest) {
	if req.Failure == nil {
		return
	}
	if s.state.Snapshot().TableIndex(state.TableNodes) > plan.SnapshotIndex {
		s.metrics.blockedRetries.Inc()
		s.sched.Enqueue(plan.JobID, plan.Priority)
	}
}

// evaluatePlan checks a plan against snap and builds the entry to commit
// (nil when there is nothing to commit). It is pure so it can be tested
// without Raft.
//
// Rules: stops are always committed. A node's placements are committed only
// if the node exists, is ready and not draining, and its live allocations,
// minus the plan's stops and preemptions there, plus the placements, fit its
// capacity. Preemptions are committed only with the placements on their
// node. With AllOrNothing, one rejected node rejects every placement.
func evaluatePlan(snap planView, plan *structs.Plan, now int64) (*structs.PlanResult, *structs.ApplyPlanRequest) {
	result := &structs.PlanResult{}
	var allocs []*structs.Allocation

	// Stops: always committed; allocations that vanished are skipped.
	stopping := map[string][]*structs.Allocation{} // by node
	for _, st := range plan.Stops {
		a := snap.AllocByID(st.AllocID)
		if a == nil {
			continue
		}
		stopping[a.NodeID] = append(stopping[a.NodeID], a)
		c := a.Copy()
		c.DesiredStatus = st.Desired
		if c.DesiredStatus != structs.AllocDesiredEvict {
			c.DesiredStatus = structs.AllocDesiredStop
		}
		c.DesiredDescription = st.Description
		c.ModifyTime = now
		allocs = append(allocs, c)
	}

	byNode := map[string][]*structs.Allocation{}
	for _, p := range plan.Placements {
		if p != nil {
			if p.JobID == "" {
				c := p.Copy()
				c.JobID = plan.JobID
				p = c
			}
			byNode[p.NodeID] = append(byNode[p.NodeID], p)
		}
	}
	preemptByNode := map[string][]structs.AllocStop{}
	for _, pr := range plan.Preemptions {
		preemptByNode[pr.NodeID] = append(preemptByNode[pr.NodeID], pr)
	}
	nodes := make([]string, 0, len(byNode))
	for id := range byNode {
		nodes = append(nodes, id)
	}
	slices.Sort(nodes)

	job := snap.JobByID(plan.JobID)
	jobGone := job == nil || job.Stop

	var placed, evicted []*structs.Allocation
	for _, nodeID := range nodes {
		if jobGone {
			result.RejectedNodes = append(result.RejectedNodes, nodeID)
			continue
		}
		node := snap.NodeByID(nodeID)
		ok, nodeEvicted := nodeFits(snap, node, byNode[nodeID], preemptByNode[nodeID], stopping[nodeID])
		if !ok {
			result.RejectedNodes = append(result.RejectedNodes, nodeID)
			continue
		}
		for _, pr := range nodeEvicted {
			c := pr.alloc.Copy()
			c.DesiredStatus = structs.AllocDesiredEvict
			c.DesiredDescription = pr.stop.Description
			if c.DesiredDescription == "" {
				c.DesiredDescription = "preempted by " + pr.stop.PreemptedBy
			}
			c.PreemptedBy = pr.stop.PreemptedBy
			c.ModifyTime = now
			evicted = append(evicted, c)
		}
		for _, p := range byNode[nodeID] {
			c := p.Copy()
			c.NodeName = node.Name
			if c.JobID == "" {
				c.JobID = plan.JobID
			}
			if c.Job == nil {
				c.Job = job
			}
			if c.JobVersion == 0 {
				c.JobVersion = c.Job.Version
			}
			if sameJob(c.Job, job) {
				// The FSM embeds the stored job again (state.UpsertAllocs),
				// so the entry need not repeat it per allocation.
				c.Job = nil
			}
			if c.DesiredStatus == "" {
				c.DesiredStatus = structs.AllocDesiredRun
			}
			if c.ClientStatus == "" {
				c.ClientStatus = structs.AllocClientPending
			}
			if c.CreateTime == 0 {
				c.CreateTime = now
			}
			c.ModifyTime = now
			placed = append(placed, c)
		}
	}
	if plan.AllOrNothing && len(result.RejectedNodes) > 0 {
		result.RejectedNodes = nodes
		placed, evicted = nil, nil
	}
	for _, p := range placed {
		result.Placed = append(result.Placed, p.ID)
	}
	allocs = append(allocs, evicted...)
	allocs = append(allocs, placed...)

	req := &structs.ApplyPlanRequest{Allocs: allocs, JobID: plan.JobID, Failure: plan.Failure, Time: now}
	if len(placed) > 0 {
		req.JobVersion = job.Version
	}
	// A job is fully placed only if nothing was rejected; otherwise the
	// scheduler retries and decides again.
	req.ClearFailure = plan.ClearFailure && len(result.RejectedNodes) == 0
	if req.Failure != nil && req.Failure.JobID == "" {
		f := *req.Failure
		f.JobID = plan.JobID
		req.Failure = &f
	}
	if len(req.Allocs) == 0 && req.Failure == nil && !req.ClearFailure {
		return result, nil
	}
	return result, req
}

type preemption struct {
	stop  structs.AllocStop
	alloc *structs.Allocation
}

// nodeFits checks one node's part of a plan and returns the preemptions to
// commit with it.
func nodeFits(snap planView, node *structs.Node, placements []*structs.Allocation,
	preempts []structs.AllocStop, stopping []*structs.Allocation) (bool, []preemption) {
	if node == nil || !node.Ready() {
		return false, nil
	}
	// The node's usage row, minus the live allocations the plan stops,
	// evicts or replaces there, plus the placements.
	gone := map[string]*structs.Allocation{}
	for _, a := range stopping {
		gone[a.ID] = a
	}
	var evict []preemption
	for _, pr := range preempts {
		a := snap.AllocByID(pr.AllocID)
		if a == nil || a.NodeID != node.ID {
			continue // gone or elsewhere: frees nothing here
		}
		gone[a.ID] = a
		if !a.Terminal() {
			evict = append(evict, preemption{stop: pr, alloc: a})
		}
	}
	used := snap.NodeUsage(node.ID)
	for _, p := range placements {
		if p.Resources.CPU < 0 || p.Resources.MemoryMB < 0 {
			return false, nil // a negative ask would hide real usage
		}
		old := snap.AllocByID(p.ID)
		if old != nil && (old.JobID != p.JobID || old.NodeID != node.ID) {
			// An ID that names another job's or node's allocation (a
			// scheduler's random source repeated itself) would overwrite
			// it and lose it.
			return false, nil
		}
		if old != nil {
			gone[old.ID] = old
		}
		used = used.Add(p.Resources)
	}
	for _, a := range gone {
		if !a.Terminal() {
			used = used.Sub(a.Resources)
		}
	}
	ok, _ := node.Capacity.Fits(used)
	return ok, evict
}

// sameJob reports whether a and b are the same stored version of a job.
func sameJob(a, b *structs.Job) bool {
	return a != nil && b != nil && a.ID == b.ID && a.Version == b.Version && a.ModifyIndex == b.ModifyIndex
}
