package twolevel

import (
	"context"
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedstat"
	"github.com/gantry-project/gantry/internal/structs"
)

// Feeding the allocator. The allocator keeps each node's usage itself, so
// a round costs what changed, not the cluster: usage is re-read from a
// view only for nodes marked dirty, which are
//   - the nodes of every plan the architecture submits (it knows them);
//   - the nodes of the state's change feed of node allocations (placed,
//     stopped, evicted, lost), when the view offers it (the server's does);
//   - the nodes of agents' reports that ended an allocation (AllocsReported);
//   - a slice of SweepNodes nodes every SweepInterval, in turn, so that no
//     missed change lingers (a plan whose commit failed, say).
// Nodes themselves are diffed by object (state stores replace a node
// object on every change) only when the view's node list is a new one.

// syncState is what the architecture remembers of the last views it fed
// to the allocator. Guarded by Scheduler.mu.
type syncState struct {
	nodes     map[string]*structs.Node // node objects last seen
	lastList  []*structs.Node          // the list they came from
	ids       []string                 // sorted node IDs, for sweeps
	sweepAt   int
	nextSweep time.Time
	cursor    uint64 // of the change feed
	dirty     map[string]bool
}

// feedReader is the state's change feed of node allocations
// (state.Snapshot has it, and the server's views embed one).
type feedReader interface {
	NodeAllocChangesSince(after uint64, fn func(nodeID string, index uint64) bool)
}

type roundStats struct {
	n   uint64
	lat schedstat.Window
}

// markDirtyLocked asks for a node's usage to be read again next round.
func (s *Scheduler) markDirtyLocked(ids ...string) {
	if s.sync.dirty == nil {
		s.sync.dirty = map[string]bool{}
	}
	for _, id := range ids {
		s.sync.dirty[id] = true
	}
}

// allocLoop runs allocation rounds when poked, at most one per
// AllocationInterval (changes in between are handled by the same round).
func (s *Scheduler) allocLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		if d := s.cfg.AllocationInterval; d > 0 && !s.sleep(ctx, d) {
			return
		}
		s.round(ctx)
	}
}

// round feeds the allocator what changed and runs an allocation round.
func (s *Scheduler) round(ctx context.Context) {
	start := time.Now()
	view, err := s.env.Snapshot()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || ctx.Err() != nil {
		return
	}
	if err != nil || view == nil {
		s.log.Warn("allocation round without a view of state; retrying", "error", err)
		s.armLocked(s.now().Add(scheduler.ErrorBackoff))
		return
	}
	// The view was taken before the lock: take it again under the lock,
	// so no usage read here is older than a change marked before it.
	if v, err := s.env.Snapshot(); err == nil && v != nil {
		view = v
	}
	now := s.now()
	s.syncNodesLocked(view)
	s.readFeedLocked(view)
	if !now.Before(s.sync.nextSweep) {
		s.sweepLocked()
		s.sync.nextSweep = now.Add(s.cfg.SweepInterval)
	}
	s.syncDirtyLocked(view)
	s.alloc.Allocate(now)
	s.flushLocked()
	d := time.Since(start)
	s.rounds.n++
	s.rounds.lat.Add(d)
	if s.m != nil {
		s.m.rounds.Inc()
		s.m.roundSeconds.Observe(d.Seconds())
		s.gaugesLocked()
	}
	next := s.sync.nextSweep
	if t, ok := s.alloc.NextDeadline(); ok && t.Before(next) {
		next = t
	}
	s.armLocked(next)
	if s.tasksQ.len() > 0 {
		s.tasksQ.signal()
	}
}

// armLocked makes sure a round runs by at.
func (s *Scheduler) armLocked(at time.Time) {
	if s.timer != nil && !s.timerAt.After(at) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerAt = at
	s.timer = s.env.AfterFunc(max(at.Sub(s.now()), 0), func() {
		s.mu.Lock()
		if s.timerAt.Equal(at) {
			s.timer = nil
		}
		s.mu.Unlock()
		s.poke()
	})
}

// syncAllLocked loads every node and its usage (a run starts).
func (s *Scheduler) syncAllLocked(view scheduler.State) {
	s.syncNodesLocked(view)
	for _, id := range s.sync.ids {
		s.markDirtyLocked(id)
	}
	if _, ok := view.(feedReader); ok {
		s.sync.cursor = view.Index()
	}
	s.syncDirtyLocked(view)
	s.sync.nextSweep = s.now().Add(s.cfg.SweepInterval)
}

// syncNodesLocked tells the allocator about nodes added, changed or gone
// since the last view; only a new node list is walked.
func (s *Scheduler) syncNodesLocked(view scheduler.State) {
	list := view.Nodes()
	last := s.sync.lastList
	if len(list) == len(last) && (len(list) == 0 || &list[0] == &last[0]) {
		return
	}
	if s.sync.nodes == nil {
		s.sync.nodes = map[string]*structs.Node{}
	}
	seen := make(map[string]bool, len(list))
	changed := false
	var lost []string
	for _, n := range list {
		seen[n.ID] = true
		old := s.sync.nodes[n.ID]
		if old == n {
			continue
		}
		if old == nil {
			changed = true
		}
		s.sync.nodes[n.ID] = n
		reason := ""
		switch {
		case n.Status != structs.NodeStatusReady:
			reason = "node down"
		case n.Drain:
			reason = "node draining"
		}
		s.alloc.UpsertNode(NodeInfo{ID: n.ID, Name: n.Name, Capacity: n.Capacity, Labels: n.Labels, Ready: n.Ready()}, reason)
		s.markDirtyLocked(n.ID)
		if old != nil && old.Status == structs.NodeStatusReady && n.Status != structs.NodeStatusReady {
			lost = append(lost, n.ID)
		}
	}
	for id := range s.sync.nodes {
		if !seen[id] {
			changed = true
			delete(s.sync.nodes, id)
			delete(s.sync.dirty, id)
			s.alloc.RemoveNode(id, "node removed")
			lost = append(lost, id)
		}
	}
	if changed {
		s.sync.ids = slices.Sorted(mapKeys(s.sync.nodes))
	}
	s.sync.lastList = list
	if len(lost) > 0 {
		// The rescinds of the nodes' offers go out before FAILURE.
		s.flushLocked()
		slices.Sort(lost)
		for _, id := range lost {
			s.nodeLostLocked(id)
		}
	}
}

// readFeedLocked marks the nodes the state's change feed names.
func (s *Scheduler) readFeedLocked(view scheduler.State) {
	fr, ok := view.(feedReader)
	if !ok {
		return
	}
	if idx := view.Index(); idx < s.sync.cursor {
		// The state was restored from a snapshot: start over.
		s.sync.cursor = 0
		s.sweepAllLocked()
	}
	fr.NodeAllocChangesSince(s.sync.cursor, func(id string, index uint64) bool {
		s.markDirtyLocked(id)
		s.sync.cursor = max(s.sync.cursor, index)
		return true
	})
}

func (s *Scheduler) sweepAllLocked() {
	for _, id := range s.sync.ids {
		s.markDirtyLocked(id)
	}
}

// sweepLocked marks the next SweepNodes nodes.
func (s *Scheduler) sweepLocked() {
	ids := s.sync.ids
	for k := 0; k < min(s.cfg.SweepNodes, len(ids)); k++ {
		if s.sync.sweepAt >= len(ids) {
			s.sync.sweepAt = 0
		}
		s.markDirtyLocked(ids[s.sync.sweepAt])
		s.sync.sweepAt++
	}
}

// syncDirtyLocked re-reads the usage of the dirty nodes, in ID order (so
// runs are deterministic).
func (s *Scheduler) syncDirtyLocked(view scheduler.State) {
	if len(s.sync.dirty) == 0 {
		return
	}
	ids := slices.Sorted(mapKeys(s.sync.dirty))
	clear(s.sync.dirty)
	for _, id := range ids {
		s.syncUsageLocked(view, id)
	}
}

// syncUsageLocked reads one node's live allocations from view and gives
// the allocator their sum per framework.
func (s *Scheduler) syncUsageLocked(view scheduler.State, id string) {
	if _, ok := s.sync.nodes[id]; !ok {
		return
	}
	var total structs.Resources
	var by []Use
	for _, a := range view.AllocsByNode(id) {
		if a.Terminal() {
			continue
		}
		total = total.Add(a.Resources)
		fw, role := s.frameworkOf(view, a)
		i := slices.IndexFunc(by, func(u Use) bool { return u.Framework == fw })
		if i < 0 {
			by = append(by, Use{Framework: fw, Role: role})
			i = len(by) - 1
		}
		by[i].Resources = by[i].Resources.Add(a.Resources)
	}
	s.alloc.SetNodeUsage(id, total, by)
}

// frameworkOf says which framework an allocation's resources count for.
func (s *Scheduler) frameworkOf(view scheduler.State, a *structs.Allocation) (string, string) {
	j := a.Job
	if j == nil {
		j = view.JobByID(a.JobID)
	}
	if j != nil && j.FrameworkTask != nil {
		role := j.FrameworkTask.Role
		if role == "" {
			role = structs.DefaultRole
		}
		return j.FrameworkTask.FrameworkID, role
	}
	b := s.builtin(structs.FrameworkFor(j))
	if b == nil {
		b = s.builtins[0]
		if j != nil && j.Type == structs.JobTypeBatch {
			b = s.builtins[1]
		}
	}
	return b.name, b.role
}

// AllocsReported is told of agents' status reports once applied: nodes
// where an allocation ended are read again, and external tasks' new
// states go to their frameworks.
func (s *Scheduler) AllocsReported(reqs []structs.AllocClientUpdateRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	freed := false
	for _, r := range reqs {
		for _, u := range r.Updates {
			if u == nil {
				continue
			}
			switch u.ClientStatus {
			case structs.AllocClientComplete, structs.AllocClientFailed, structs.AllocClientLost:
				s.markDirtyLocked(r.NodeID)
				freed = true
			}
			if t := s.taskByAllocLocked(u.ID); t != nil {
				s.tasksQ.add(t.jobID)
			}
		}
	}
	if freed || s.tasksQ.len() > 0 {
		s.poke()
	}
}

// flushLocked delivers the allocator's outputs: offers and rescinds to the
// built-in frameworks directly, to external ones as events (one OFFERS
// event per framework per flush).
func (s *Scheduler) flushLocked() {
	outs := s.alloc.TakeOutputs()
	if len(outs) == 0 {
		s.observeLocked()
		return
	}
	var offers map[string][]structs.Offer
	var bOffers map[*builtin][]heldOffer
	var bGone map[*builtin][]string
	for _, o := range outs {
		b := s.builtin(o.Framework)
		switch {
		case o.Kind == OutputOffer && b != nil:
			if bOffers == nil {
				bOffers = map[*builtin][]heldOffer{}
			}
			bOffers[b] = append(bOffers[b], heldOffer{id: o.OfferID, node: o.NodeID, res: o.Resources})
		case o.Kind == OutputRescind && b != nil:
			if bGone == nil {
				bGone = map[*builtin][]string{}
			}
			bGone[b] = append(bGone[b], o.OfferID)
		case o.Kind == OutputOffer:
			if offers == nil {
				offers = map[string][]structs.Offer{}
			}
			offers[o.Framework] = append(offers[o.Framework], o.Wire())
		case o.Kind == OutputRescind:
			if f := s.fws[o.Framework]; f != nil && f.sub != nil {
				s.sendLocked(f, structs.FrameworkEvent{Type: structs.EventTypeRescind,
					Rescind: &structs.EventRescind{OfferID: o.OfferID, Reason: o.Reason}})
			}
		}
	}
	for _, b := range s.builtins {
		if len(bGone[b]) > 0 || len(bOffers[b]) > 0 {
			b.receive(bOffers[b], bGone[b])
		}
	}
	for _, id := range slices.Sorted(mapKeys(offers)) {
		if f := s.fws[id]; f != nil && f.sub != nil {
			s.sendLocked(f, structs.FrameworkEvent{Type: structs.EventTypeOffers, Offers: &structs.EventOffers{Offers: offers[id]}})
		}
	}
	s.observeLocked()
}
