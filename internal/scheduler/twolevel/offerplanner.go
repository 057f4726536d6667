package twolevel

import (
	"context"
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// offerPlanner stands between a built-in framework's evaluation loop and
// the plan applier: it takes each node's placements out of the offer the
// framework holds on that node (allocator.Use) and rejects the nodes it
// holds no offer for, or whose offer is too small, before the plan goes
// on. After the applier answers, the launched room is settled and the
// nodes' usage re-read. It also turns a placement failure on offers into
// the stable "waiting for offers" failure stored in state (the detail,
// which changes with every set of offers, is kept in memory for `job
// status`), so a waiting job does not write its failure on every pass.
type offerPlanner struct {
	b    *builtin
	next scheduler.Planner
}

// pipelinedOfferPlanner is an offerPlanner over a pipelined applier.
type pipelinedOfferPlanner struct {
	offerPlanner
	pipe scheduler.PipelinedPlanner
}

func newOfferPlanner(b *builtin, next scheduler.Planner) scheduler.Planner {
	p := offerPlanner{b: b, next: next}
	if pp, ok := next.(scheduler.PipelinedPlanner); ok {
		return &pipelinedOfferPlanner{offerPlanner: p, pipe: pp}
	}
	return &p
}

// use is what one node's placements took from its offer.
type use struct {
	node, offer string
	res         structs.Resources
}

// take checks plan against the framework's offers and takes what it
// places from them. It returns the plan to submit (placements on
// rejected nodes removed; nil if nothing is left to submit), the uses to
// settle and the rejected nodes.
func (p *offerPlanner) take(plan *structs.Plan) (*structs.Plan, []use, []string) {
	b, s := p.b, p.b.s
	type group struct {
		node string
		sum  structs.Resources
	}
	var groups []group
	for _, a := range plan.Placements {
		i := slices.IndexFunc(groups, func(g group) bool { return g.node == a.NodeID })
		if i < 0 {
			groups = append(groups, group{node: a.NodeID})
			i = len(groups) - 1
		}
		groups[i].sum = groups[i].sum.Add(a.Resources)
	}
	freed := p.freedByStops(plan)
	var uses []use
	var rejected []string
	s.mu.Lock()
	b.mu.Lock()
	for _, g := range groups {
		need := g.sum.Sub(freed[g.node])
		need = structs.Resources{CPU: max(need.CPU, 0), MemoryMB: max(need.MemoryMB, 0)}
		h := b.offers[g.node]
		if h == nil || s.alloc == nil || s.alloc.Use(b.name, h.id, need) != nil {
			rejected = append(rejected, g.node)
			continue
		}
		h.res = h.res.Sub(need)
		h.used = true
		uses = append(uses, use{node: g.node, offer: h.id, res: need})
	}
	b.mu.Unlock()
	s.mu.Unlock()
	out := plan
	if len(rejected) > 0 {
		c := *plan
		c.Placements = slices.DeleteFunc(slices.Clone(plan.Placements), func(a *structs.Allocation) bool {
			return slices.Contains(rejected, a.NodeID)
		})
		c.Preemptions = nil // never made on offered nodes (offerView)
		out = &c
	}
	out = p.normalizeFailure(out)
	if out.IsNoOp() {
		return nil, uses, rejected
	}
	return out, uses, rejected
}

// freedByStops sums, per node, what the plan's stops of the job's own
// allocations free: a job updated in place may reuse that room beyond
// its offer (the placer counts it free).
func (p *offerPlanner) freedByStops(plan *structs.Plan) map[string]structs.Resources {
	if len(plan.Stops) == 0 || len(plan.Placements) == 0 {
		return nil
	}
	full, err := p.b.s.env.Snapshot()
	if err != nil || full == nil {
		return nil
	}
	stopped := map[string]bool{}
	for _, st := range plan.Stops {
		stopped[st.AllocID] = true
	}
	out := map[string]structs.Resources{}
	for _, a := range full.AllocsByJob(plan.JobID) {
		if stopped[a.ID] && !a.Terminal() {
			out[a.NodeID] = out[a.NodeID].Add(a.Resources)
		}
	}
	return out
}

// normalizeFailure keeps a failure's detail in memory and stores the
// stable "waiting for offers" failure instead (only when it changes).
func (p *offerPlanner) normalizeFailure(plan *structs.Plan) *structs.Plan {
	f := plan.Failure
	if f == nil {
		return plan
	}
	b := p.b
	detail := "offered nodes: " + f.Message
	if f.NodesEvaluated == 0 {
		detail = "" // no offers held
	}
	b.mu.Lock()
	if w := b.waiting[plan.JobID]; w != nil {
		w.detail = detail
	} else {
		b.waiting[plan.JobID] = &waitingJob{priority: plan.Priority, unplaced: f.Unplaced, detail: detail, since: b.s.now()}
	}
	b.mu.Unlock()
	stable := &structs.PlacementFailure{
		JobID: plan.JobID, Unplaced: f.Unplaced, Time: f.Time,
		Message: "waiting for offers from framework " + b.name,
	}
	c := *plan
	c.Failure = stable
	if full, err := b.s.env.Snapshot(); err == nil && full != nil && scheduler.SameFailure(stable, full.PlacementFailure(plan.JobID)) {
		c.Failure = nil
	}
	return &c
}

// settle ends the launches of uses once the applier answered (res; nil:
// nothing placed): the room is no longer being launched, what was placed
// is added to the nodes' usage, and offers with nothing useful left are
// closed. A failed commit marks the nodes for a new read when it is known.
func (p *offerPlanner) settle(plan *structs.Plan, uses []use, res *structs.PlanResult) {
	if len(uses) == 0 {
		return
	}
	b, s := p.b, p.b.s
	placed := map[string]structs.Resources{}
	if res != nil && len(res.Placed) > 0 {
		ok := make(map[string]bool, len(res.Placed))
		for _, id := range res.Placed {
			ok[id] = true
		}
		for _, a := range plan.Placements {
			if ok[a.ID] {
				placed[a.NodeID] = placed[a.NodeID].Add(a.Resources)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.alloc == nil {
		return
	}
	var done []string
	b.mu.Lock()
	for _, u := range uses {
		s.alloc.Settle(b.name, u.node, u.res)
		s.alloc.AddUsage(u.node, b.name, b.role, placed[u.node])
		if h := b.offers[u.node]; h != nil && h.id == u.offer {
			least := s.cfg.Allocator.MinOffer
			if h.res.CPU < max(least.CPU, 1) || h.res.MemoryMB < max(least.MemoryMB, 1) {
				done = append(done, h.id)
				b.dropLocked(u.node)
			}
		}
	}
	b.mu.Unlock()
	if len(done) > 0 {
		_ = s.alloc.Accept(b.name, done, 0, s.now())
	}
	s.flushLocked()
}

// failed marks the nodes of a plan whose commit failed.
func (p *offerPlanner) failed(uses []use) {
	s := p.b.s
	s.mu.Lock()
	for _, u := range uses {
		s.markDirtyLocked(u.node)
	}
	s.mu.Unlock()
	s.poke()
}

// answer merges the offer check's rejections into the applier's result.
func (p *offerPlanner) answer(res *structs.PlanResult, rejected []string) *structs.PlanResult {
	if res == nil {
		res = &structs.PlanResult{}
	}
	if len(rejected) == 0 {
		return res
	}
	c := *res
	c.RejectedNodes = append(slices.Clone(res.RejectedNodes), rejected...)
	if c.RefreshIndex == 0 {
		c.RefreshIndex = c.Index
	}
	return &c
}

func (p *offerPlanner) SubmitPlan(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, error) {
	out, uses, rejected := p.take(plan)
	if out == nil {
		p.settle(plan, uses, nil)
		return p.answer(nil, rejected), nil
	}
	res, err := p.next.SubmitPlan(ctx, out)
	p.settle(out, uses, res)
	if err != nil {
		p.failed(uses)
		return nil, err
	}
	return p.answer(res, rejected), nil
}

func (p *pipelinedOfferPlanner) SubmitPlanPipelined(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, func() (*structs.PlanResult, error), error) {
	out, uses, rejected := p.take(plan)
	if out == nil {
		p.settle(plan, uses, nil)
		res := p.answer(nil, rejected)
		return res, func() (*structs.PlanResult, error) { return res, nil }, nil
	}
	res, wait, err := p.pipe.SubmitPlanPipelined(ctx, out)
	// Once the check answered, the accepted part is in every later view.
	p.settle(out, uses, res)
	if err != nil {
		p.failed(uses)
		return nil, nil, err
	}
	return p.answer(res, rejected), func() (*structs.PlanResult, error) {
		r, err := wait()
		if err != nil {
			p.failed(uses)
			return nil, err
		}
		return p.answer(r, rejected), nil
	}, nil
}

// setDemand revives a built-in framework that needs offers (suppressed,
// or filtering room it declined) or suppresses one that needs none.
func (s *Scheduler) setDemand(b *builtin, want bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.alloc == nil {
		return
	}
	switch {
	case want && (b.suppressed || b.filtered):
		if err := s.alloc.Revive(b.name); err == nil {
			b.suppressed, b.filtered = false, false
			s.poke()
		}
	case !want && !b.suppressed:
		if err := s.alloc.Suppress(b.name); err == nil {
			b.suppressed = true
		}
	}
}

// declineBuiltin returns a built-in framework's offers, those it used
// (accepted) and the others (declined), what is left of them filtered for
// refuse, and suppresses it if it needs no more.
func (s *Scheduler) declineBuiltin(b *builtin, used, unused []string, refuse time.Duration, suppress bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.alloc == nil {
		return
	}
	now := s.now()
	// Offers that are gone were rescinded meanwhile: nothing to do.
	_ = s.alloc.Accept(b.name, used, refuse, now)
	_ = s.alloc.Decline(b.name, unused, refuse, now)
	if refuse > 0 && len(used)+len(unused) > 0 {
		b.filtered = true
	}
	if suppress && !b.suppressed {
		if err := s.alloc.Suppress(b.name); err == nil {
			b.suppressed = true
		}
	}
	s.flushLocked()
	s.poke()
}
