package server

import (
	"slices"
	"strings"

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
// node. When the job's namespace has a quota, the namespace's live
// allocations, minus the plan's stops of its own, plus the placements
// accepted so far (nodes in ID order), must stay within it: a node whose
// placements would go over is rejected, so schedulers deciding on one
// view at once cannot together exceed a quota (the scheduler then finds
// the quota full and records why). With AllOrNothing, one rejected node
// rejects every placement.
func evaluatePlan(snap planView, plan *structs.Plan, now int64) (*structs.PlanResult, *structs.ApplyPlanRequest) {
	result := &structs.PlanResult{}
	var allocs []*structs.Allocation

	// Stops: always committed; allocations that vanished are skipped.
	var stopping map[string][]*structs.Allocation // by node
	for _, st := range plan.Stops {
		a := snap.AllocByID(st.AllocID)
		if a == nil {
			continue
		}
		if stopping == nil {
			stopping = map[string][]*structs.Allocation{}
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

	groups := groupByNode(plan.Placements)
	var preemptByNode map[string][]structs.AllocStop
	for _, pr := range plan.Preemptions {
		if preemptByNode == nil {
			preemptByNode = map[string][]structs.AllocStop{}
		}
		preemptByNode[pr.NodeID] = append(preemptByNode[pr.NodeID], pr)
	}

	job := snap.JobByID(plan.JobID)
	jobGone := job == nil || job.Stop
	quota, nsUsed := planQuota(snap, plan.JobID, stopping)

	var evicted []*structs.Allocation
	// The placements are copied into one array: the plan's own objects
	// stay as the scheduler made them, at one heap allocation per plan.
	copies := make([]structs.Allocation, 0, len(plan.Placements))
	placed := make([]*structs.Allocation, 0, len(plan.Placements))
	for _, g := range groups {
		nodeID := g.node
		if jobGone {
			result.RejectedNodes = append(result.RejectedNodes, nodeID)
			continue
		}
		node := snap.NodeByID(nodeID)
		ok, nodeEvicted, add := nodeFits(snap, plan.JobID, node, g.allocs, preemptByNode[nodeID], stopping[nodeID])
		if !ok {
			result.RejectedNodes = append(result.RejectedNodes, nodeID)
			continue
		}
		if quota != nil {
			if quota.Exceeds(nsUsed.Add(add)) != "" {
				result.RejectedNodes = append(result.RejectedNodes, nodeID)
				continue
			}
			nsUsed = nsUsed.Add(add)
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
		for _, p := range g.allocs {
			copies = append(copies, *p)
			c := &copies[len(copies)-1]
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
		result.RejectedNodes = result.RejectedNodes[:0]
		for _, g := range groups {
			result.RejectedNodes = append(result.RejectedNodes, g.node)
		}
		placed, evicted = nil, nil
	}
	if len(placed) > 0 {
		result.Placed = make([]string, len(placed))
		for i, p := range placed {
			result.Placed[i] = p.ID
		}
	}
	if len(evicted)+len(placed) > 0 {
		allocs = slices.Grow(allocs, len(evicted)+len(placed))
		allocs = append(allocs, evicted...)
		allocs = append(allocs, placed...)
	}

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

// planQuota returns the quota of the plan's namespace (nil: none, or a
// view without quotas) and what the namespace holds once the plan's
// stops of live allocations there are applied.
func planQuota(snap planView, jobID string, stopping map[string][]*structs.Allocation) (*structs.Quota, structs.Resources) {
	qr, ok := snap.(scheduler.QuotaReader)
	if !ok {
		return nil, structs.Resources{}
	}
	ns := structs.JobNamespace(jobID)
	q := qr.NamespaceQuota(ns)
	if q == nil {
		return nil, structs.Resources{}
	}
	used := qr.NamespaceUsage(ns)
	for _, as := range stopping {
		for _, a := range as {
			if !a.Terminal() && structs.JobNamespace(a.JobID) == ns {
				used = used.Sub(a.Resources)
			}
		}
	}
	return q, used
}

// nodeGroup is a plan's placements on one node.
type nodeGroup struct {
	node   string
	allocs []*structs.Allocation
}

// groupByNode groups placements by node, nodes in ID order and each
// node's placements in plan order, in one array (a counting sort: no
// slice per node).
func groupByNode(placements []*structs.Allocation) []nodeGroup {
	count := make(map[string]int, len(placements))
	for _, p := range placements {
		if p != nil {
			count[p.NodeID]++
		}
	}
	groups := make([]nodeGroup, 0, len(count))
	for id := range count {
		groups = append(groups, nodeGroup{node: id})
	}
	slices.SortFunc(groups, func(a, b nodeGroup) int { return strings.Compare(a.node, b.node) })
	flat := make([]*structs.Allocation, 0, len(placements))
	at := make(map[string]int, len(groups)) // node -> its group
	for i := range groups {
		g := &groups[i]
		g.allocs = flat[len(flat) : len(flat) : len(flat)+count[g.node]]
		flat = flat[:len(flat)+count[g.node]]
		at[g.node] = i
	}
	for _, p := range placements {
		if p != nil {
			g := &groups[at[p.NodeID]]
			g.allocs = append(g.allocs, p)
		}
	}
	return groups
}

type preemption struct {
	stop  structs.AllocStop
	alloc *structs.Allocation
}

// nodeFits checks one node's part of a plan and returns the preemptions to
// commit with it, and what its placements add to their namespace (their
// resources, less those of a live allocation a placement's ID already
// names: its use is counted already).
func nodeFits(snap planView, jobID string, node *structs.Node, placements []*structs.Allocation,
	preempts []structs.AllocStop, stopping []*structs.Allocation) (bool, []preemption, structs.Resources) {
	var add structs.Resources
	if node == nil || !node.Ready() {
		return false, nil, add
	}
	// The node's usage row, minus the live allocations the plan stops,
	// evicts or replaces there, plus the placements. gone is nearly
	// always empty: a slice, checked for repeats.
	var gone []*structs.Allocation
	leave := func(a *structs.Allocation) {
		if !slices.ContainsFunc(gone, func(g *structs.Allocation) bool { return g.ID == a.ID }) {
			gone = append(gone, a)
		}
	}
	for _, a := range stopping {
		leave(a)
	}
	var evict []preemption
	for _, pr := range preempts {
		a := snap.AllocByID(pr.AllocID)
		if a == nil || a.NodeID != node.ID {
			continue // gone or elsewhere: frees nothing here
		}
		leave(a)
		if !a.Terminal() {
			evict = append(evict, preemption{stop: pr, alloc: a})
		}
	}
	used := snap.NodeUsage(node.ID)
	for _, p := range placements {
		if p.Resources.CPU < 0 || p.Resources.MemoryMB < 0 {
			return false, nil, add // a negative ask would hide real usage
		}
		old := snap.AllocByID(p.ID)
		pj := p.JobID
		if pj == "" {
			pj = jobID
		}
		if old != nil && (old.JobID != pj || old.NodeID != node.ID) {
			// An ID that names another job's or node's allocation (a
			// scheduler's random source repeated itself) would overwrite
			// it and lose it.
			return false, nil, add
		}
		if old != nil {
			leave(old)
			if !old.Terminal() {
				add = add.Sub(old.Resources)
			}
		}
		used = used.Add(p.Resources)
		add = add.Add(p.Resources)
	}
	for _, a := range gone {
		if !a.Terminal() {
			used = used.Sub(a.Resources)
		}
	}
	ok, _ := node.Capacity.Fits(used)
	if ok && placementsHavePorts(placements) {
		// Two schedulers may pick the same host port on one node.
		isGone := func(a *structs.Allocation) bool {
			return slices.ContainsFunc(gone, func(g *structs.Allocation) bool { return g.ID == a.ID })
		}
		ok = scheduler.PortCollision(node.ID, snap.AllocsByNode(node.ID), isGone, placements) == nil
	}
	return ok, evict, add
}

// placementsHavePorts reports whether any placement holds host ports (the
// port check reads the node's allocations, so it runs only then).
func placementsHavePorts(placements []*structs.Allocation) bool {
	for _, p := range placements {
		if len(p.Ports) > 0 {
			return true
		}
	}
	return false
}

// sameJob reports whether a and b are the same stored version of a job.
func sameJob(a, b *structs.Job) bool {
	return a != nil && b != nil && a.ID == b.ID && a.Version == b.Version && a.ModifyIndex == b.ModifyIndex
}
