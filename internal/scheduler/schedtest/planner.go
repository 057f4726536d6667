package schedtest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// Planner applies plans to a State the way the server's plan applier does:
// per node, with scheduler.CheckNodeFit against current state, committing
// the nodes that fit and rejecting the others. It records every plan and
// result. Safe for concurrent use.
type Planner struct {
	State *State

	// Reject, when set, is asked per node with placements before the fit
	// check; returning true rejects that node's part (to test conflicts).
	Reject func(nodeID string) bool
	// BeforeApply, when set, is called with each plan before it is
	// checked, outside the lock (tests hold submitters there to line
	// them up).
	BeforeApply func(*structs.Plan)
	// OnApply, when set, is called after each plan is applied, outside the
	// lock.
	OnApply func(*structs.Plan, *structs.PlanResult)

	mu      sync.Mutex
	plans   []*structs.Plan
	results []*structs.PlanResult
}

var _ scheduler.Planner = (*Planner)(nil)

// NewPlanner returns a planner over s.
func NewPlanner(s *State) *Planner { return &Planner{State: s} }

// Plans returns the plans submitted so far.
func (p *Planner) Plans() []*structs.Plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.plans)
}

// Results returns the results returned so far.
func (p *Planner) Results() []*structs.PlanResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.results)
}

// SubmitPlan checks and applies a plan. Stops always apply (they only free
// room); a node's placements and preemptions apply together or not at all;
// with AllOrNothing any rejected node rejects every placement.
func (p *Planner) SubmitPlan(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("submit plan for job %s: %w", plan.JobID, err)
	}
	if p.BeforeApply != nil {
		p.BeforeApply(plan)
	}
	res := p.State.apply(plan, p.Reject)
	p.mu.Lock()
	p.plans = append(p.plans, plan)
	p.results = append(p.results, res)
	p.mu.Unlock()
	if p.OnApply != nil {
		p.OnApply(plan, res)
	}
	return res, nil
}

func (s *State) apply(plan *structs.Plan, reject func(string) bool) *structs.PlanResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	byNode := map[string][]*structs.Allocation{}
	var order []string
	for _, a := range plan.Placements {
		if _, ok := byNode[a.NodeID]; !ok {
			order = append(order, a.NodeID)
		}
		byNode[a.NodeID] = append(byNode[a.NodeID], a)
	}
	removed := map[string]bool{}
	for _, st := range plan.Stops {
		removed[st.AllocID] = true
	}
	for _, st := range plan.Preemptions {
		removed[st.AllocID] = true
	}
	allocsOn := func(nodeID string) []*structs.Allocation {
		var out []*structs.Allocation
		for _, a := range s.allocs {
			if a.NodeID == nodeID {
				out = append(out, a)
			}
		}
		return out
	}
	rejected := map[string]bool{}
	for _, id := range order {
		if reject != nil && reject(id) {
			rejected[id] = true
			continue
		}
		if err := scheduler.CheckNodeFit(s.nodes[id], allocsOn(id), removed, byNode[id]); err != nil {
			rejected[id] = true
		}
	}
	if plan.AllOrNothing && len(rejected) > 0 {
		for _, id := range order {
			rejected[id] = true
		}
	}

	idx := s.bumpLocked()
	now := s.now()
	res := &structs.PlanResult{Index: idx}
	stopAlloc := func(st structs.AllocStop) {
		a := s.allocs[st.AllocID]
		if a == nil || a.Terminal() {
			return
		}
		u := a.Copy()
		u.DesiredStatus, u.DesiredDescription, u.PreemptedBy = st.Desired, st.Description, st.PreemptedBy
		u.ModifyIndex, u.ModifyTime = idx, now
		s.allocs[u.ID] = u
	}
	for _, st := range plan.Stops {
		stopAlloc(st)
	}
	for _, st := range plan.Preemptions {
		if !rejected[st.NodeID] {
			stopAlloc(st)
		}
	}
	for _, a := range plan.Placements {
		if rejected[a.NodeID] {
			continue
		}
		c := a.Copy()
		c.CreateIndex, c.ModifyIndex = idx, idx
		s.allocs[c.ID] = c
		res.Placed = append(res.Placed, c.ID)
	}
	for _, id := range order {
		if rejected[id] {
			res.RejectedNodes = append(res.RejectedNodes, id)
		}
	}
	if len(res.RejectedNodes) > 0 {
		res.RefreshIndex = idx
	}
	switch {
	case plan.Failure != nil:
		s.failures[plan.JobID] = plan.Failure
	case plan.ClearFailure:
		delete(s.failures, plan.JobID)
	}
	return res
}
