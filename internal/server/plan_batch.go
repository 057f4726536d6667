package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// planView is what the plan check reads: a state snapshot, or a snapshot
// with the earlier plans of the same batch laid over it.
type planView interface {
	NodeByID(id string) *structs.Node
	JobByID(id string) *structs.Job
	AllocByID(id string) *structs.Allocation
	AllocsByNode(nodeID string) []*structs.Allocation
}

var _ planView = (*state.Snapshot)(nil)

// pendingPlan is one submitted plan waiting for the applier.
type pendingPlan struct {
	ctx  context.Context
	plan *structs.Plan
	res  *structs.PlanResult
	req  *structs.ApplyPlanRequest // what was committed of it, if anything
	err  error
	done chan struct{} // closed once res or err is set
}

// planQueue lets concurrent submitters share commits (group commit):
// submitters append their plan, then take turns holding the apply lock;
// whoever holds it checks and commits every queued plan (up to max) in
// one Raft entry. A submitter whose plan another one committed just
// returns. With one scheduler goroutine it degenerates to one plan per
// entry, as before.
type planQueue struct {
	max int // most plans per entry; <= 1 disables batching

	apply sync.Mutex // held while a batch is checked and committed

	mu      sync.Mutex // guards pending
	pending []*pendingPlan
}

// submit queues a plan and returns its result once some submitter's batch
// has committed it.
func (q *planQueue) submit(ctx context.Context, plan *structs.Plan, applyBatch func([]*pendingPlan)) (*structs.PlanResult, error) {
	p := &pendingPlan{ctx: ctx, plan: plan, done: make(chan struct{})}
	q.mu.Lock()
	q.pending = append(q.pending, p)
	q.mu.Unlock()
	for {
		q.apply.Lock()
		select {
		case <-p.done:
			q.apply.Unlock()
			return p.res, p.err
		default:
		}
		q.mu.Lock()
		n := min(len(q.pending), max(q.max, 1))
		batch := slices.Clone(q.pending[:n])
		q.pending = slices.Delete(q.pending, 0, n)
		q.mu.Unlock()
		if len(batch) > 0 {
			applyBatch(batch)
		}
		q.apply.Unlock()
	}
}

// applyPlanBatch checks each plan of a batch against current state plus the
// plans before it, commits the parts that fit in one Raft entry and answers
// every submitter.
func (s *Server) applyPlanBatch(batch []*pendingPlan) {
	// Job writes wait for the batch too, so the job a plan was checked
	// against is still the job when the plan applies (never allocations
	// of a purged job, and the FSM can re-embed the job it left out).
	s.jobMu.Lock()
	defer s.jobMu.Unlock()
	start := time.Now()
	defer func() { s.metrics.planApply.Observe(time.Since(start).Seconds()) }()
	s.metrics.planBatch.Observe(float64(len(batch)))

	answer := func(p *pendingPlan, err error) {
		p.err = err
		close(p.done)
	}
	if !s.Leader() {
		for _, p := range batch {
			answer(p, fmt.Errorf("plan for job %s: %w", p.plan.JobID, ErrNotLeader))
		}
		return
	}
	snap := s.state.Snapshot()
	view := newBatchView(snap)
	var reqs []*structs.ApplyPlanRequest
	var live []*pendingPlan
	now := s.now().UnixNano()
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			answer(p, fmt.Errorf("plan for job %s: %w", p.plan.JobID, err))
			continue
		}
		res, req := evaluatePlan(view, p.plan, now)
		s.metrics.planRejected.Add(float64(len(res.RejectedNodes)))
		p.res = res
		live = append(live, p)
		if req != nil {
			p.req = req
			view.add(req.Allocs)
			reqs = append(reqs, req)
		}
	}
	index := snap.Index()
	var err error
	switch len(reqs) {
	case 0:
	case 1:
		index, _, err = s.raftApply(structs.ApplyPlanRequestType, reqs[0])
	default:
		index, _, err = s.raftApply(structs.ApplyPlanBatchRequestType, &structs.ApplyPlanBatchRequest{Plans: reqs})
	}
	for _, p := range live {
		if err != nil {
			// The entry may or may not commit (leadership lost): the
			// scheduler retries on a fresh snapshot either way.
			answer(p, fmt.Errorf("plan for job %s: %w", p.plan.JobID, err))
			continue
		}
		p.res.Index = index
		if len(p.res.RejectedNodes) > 0 {
			p.res.RefreshIndex = index
		}
		if p.req != nil {
			s.retryIfNodesChanged(p.plan, p.req)
		}
		answer(p, nil)
	}
}

// batchView lays the allocations of a batch's earlier plans over a
// snapshot, so each plan is checked against the state the previous ones
// leave. Allocations never change node, so a per-node list of overlaid IDs
// is enough.
type batchView struct {
	*state.Snapshot
	allocs map[string]*structs.Allocation
	byNode map[string][]string
}

func newBatchView(snap *state.Snapshot) *batchView {
	return &batchView{Snapshot: snap, allocs: map[string]*structs.Allocation{}, byNode: map[string][]string{}}
}

// add lays allocations (new or updated) over the view.
func (v *batchView) add(allocs []*structs.Allocation) {
	for _, a := range allocs {
		if _, seen := v.allocs[a.ID]; !seen {
			v.byNode[a.NodeID] = append(v.byNode[a.NodeID], a.ID)
		}
		v.allocs[a.ID] = a
	}
}

func (v *batchView) AllocByID(id string) *structs.Allocation {
	if a, ok := v.allocs[id]; ok {
		return a
	}
	return v.Snapshot.AllocByID(id)
}

func (v *batchView) AllocsByNode(nodeID string) []*structs.Allocation {
	base := v.Snapshot.AllocsByNode(nodeID)
	ids := v.byNode[nodeID]
	if len(ids) == 0 {
		return base
	}
	out := make([]*structs.Allocation, 0, len(base)+len(ids))
	for _, a := range base {
		if _, over := v.allocs[a.ID]; !over {
			out = append(out, a)
		}
	}
	for _, id := range ids {
		out = append(out, v.allocs[id])
	}
	return out
}
