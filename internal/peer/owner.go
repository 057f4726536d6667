package peer

import (
	"time"
)

// The owner goroutine of a Cluster: the only code that touches the Node.
// run takes one input (or a tick) and whatever else is queued, steps the
// node, then flush handles the node's Ready (persist, publish, send,
// Advance) and answer replies to the callers. The simulation (sim_test.go)
// calls handle, tick and flush itself, so it drives the same code.

// run is the owner goroutine. It ticks the node when the node has
// something to do (NextDeadline; untilTick), not on a fixed period: an
// idle peer's owner wakes for its heartbeats and its peers', not every
// TickInterval.
func (c *Cluster) run() {
	last := c.now()
	t := time.NewTimer(c.untilTick(last, last))
	defer t.Stop()
	var waiting []pending
	for {
		select {
		case <-c.done:
			if c.node.HasReady() {
				_ = c.flush() // a failure is logged; nobody waits for it
			}
			return
		case <-t.C:
			waiting, last = c.onTimer(waiting)
		case in := <-c.inputs:
			waiting = c.handle(in, c.now(), waiting)
			waiting = c.drain(waiting)
		}
		err := c.flush()
		c.answer(waiting, err)
		clear(waiting)
		waiting = waiting[:0]
		t.Reset(c.untilTick(last, c.now()))
	}
}

// onTimer is the owner's tick when its timer fires: what was heard
// before is stepped first, then the node ticks (returned: when). The tick
// judges silence (PFAIL), and a heartbeat queued here while this
// goroutine waited for the CPU (a saturated peer, its work ahead in the
// Go scheduler) is not silence: ticking first suspected its sender.
func (c *Cluster) onTimer(waiting []pending) ([]pending, time.Time) {
	waiting = c.drain(waiting)
	now := c.now()
	c.tick(now)
	return waiting, now
}

// drain steps the node with the inputs queued now: at most a queue's
// worth, and at most maxBatch waiting for an answer in all.
func (c *Cluster) drain(waiting []pending) []pending {
	for n := 0; n < inputsQueue && len(waiting) < maxBatch; n++ {
		select {
		case in := <-c.inputs:
			waiting = c.handle(in, c.now(), waiting)
		default:
			return waiting
		}
	}
	return waiting
}

// untilTick is how long the owner waits, at now, for its next Tick when
// the last one was at last: until the node's next deadline, but not
// sooner than TickInterval after the last Tick (a deadline that is
// always due cannot make the owner spin) and not later than
// MaxTickInterval after it (the store's replication offset is copied in
// at each Tick).
func (c *Cluster) untilTick(last, now time.Time) time.Duration {
	at := c.node.NextDeadline(now)
	if lo := last.Add(c.cfg.TickInterval); at.Before(lo) {
		at = lo
	}
	if hi := last.Add(c.cfg.MaxTickInterval); at.After(hi) {
		at = hi
	}
	return max(at.Sub(now), 0)
}

// tick advances the node's clock, with the store's replication offset
// copied in first (it ranks replicas in elections).
func (c *Cluster) tick(now time.Time) {
	if c.repl != nil {
		_, _ = c.node.Apply(Op{Kind: OpSetOffset, Offset: uint64(c.repl.ReplOffset())}, now)
	}
	c.node.Tick(now)
}

// handle steps the node with one input; what needs an answer waits in
// the returned list until the step is durable.
func (c *Cluster) handle(in input, now time.Time, waiting []pending) []pending {
	p := pending{in: in}
	switch {
	case in.msg != nil:
		if err := c.node.Step(*in.msg, now); err != nil {
			c.logger.Printf("cluster: %v", err)
		}
	case in.op != nil:
		p.res, p.err = c.node.Apply(*in.op, now)
		if p.err != nil && in.reply == nil {
			c.logger.Printf("cluster: %v", p.err)
		}
	case in.repl != nil:
		c.repl = in.repl
		_, _ = c.node.Apply(Op{Kind: OpSetOffset, Offset: uint64(in.repl.ReplOffset())}, now)
	}
	if in.reply == nil {
		return waiting
	}
	return append(waiting, p)
}

// flush handles the node's Ready, in this order:
//
//  1. persist the state, when it changed, and wait until it is durable;
//     if that fails, drop the messages (they may depend on the state)
//     and stop: nothing of the step takes effect outside the node, and
//     the next Ready asks to persist again;
//  2. make the store's replication follow the node's role, then publish
//     the routing snapshot: a replica that won an election is a writable
//     primary before the router sends it a command;
//  3. send the messages;
//  4. delete the keys of dirty slots (the snapshot already redirects
//     them, so none is created here afterwards);
//  5. Advance.
func (c *Cluster) flush() error {
	n := c.node
	if !n.HasReady() {
		c.publish(false) // ClusterOK may change with time (PFAIL)
		return nil
	}
	rd := n.Ready()
	if rd.MustSave && c.cfg.Store != nil {
		if err := c.cfg.Store.Save(*rd.State); err != nil {
			if !c.saveFailed {
				c.logger.Printf("cluster: %v (messages held back until a save succeeds)", err)
			}
			c.saveFailed = true
			n.Advance(Ready{Messages: rd.Messages})
			return err
		}
		if c.saveFailed {
			c.logger.Printf("cluster: state saved again")
			c.saveFailed = false
		}
	}
	c.syncRepl()
	c.publish(rd.MustSave)
	for _, m := range rd.Messages {
		c.tr.Send(m)
	}
	c.deleteDirty(rd.DirtySlots)
	n.Advance(rd)
	return nil
}

// publish replaces the routing snapshot when the node's persistent view
// changed (every change that routing depends on is one) or its
// cluster_state flipped.
func (c *Cluster) publish(changed bool) {
	ok := c.node.ClusterOK(c.cfg.RequireFullCoverage)
	if !changed && c.routes.Load().ok == ok {
		return
	}
	c.routes.Store(buildRoutes(c.node, c.cfg.RequireFullCoverage))
	if f := c.onRoutes.Load(); f != nil {
		(*f)()
	}
}

// answer replies to the inputs of the step; err is the step's save error.
func (c *Cluster) answer(waiting []pending, err error) {
	now := c.now()
	var status *Status
	var state *State
	var members *Members
	for _, p := range waiting {
		r := result{res: p.res, err: p.err}
		if r.err == nil && err != nil && p.in.op != nil {
			r.err = err
		}
		switch p.in.query {
		case queryStatus:
			if status == nil {
				st := c.node.Status(now, c.cfg.RequireFullCoverage)
				status = &st
			}
			r.status = status
		case queryMembers:
			if members == nil {
				members = c.node.Members(c.cfg.RequireFullCoverage)
			}
			r.members = members
		case queryState:
			if state == nil {
				st := c.node.State()
				state = &st
			}
			r.state = state
		}
		p.in.reply <- r // buffered: never blocks
	}
}

// deleteDirty deletes the keys this primary still holds of slots another
// primary took over by a newer claim (Ready.DirtySlots), as Redis does, so
// that a key never lives on two primaries; the store logs the deletion as
// DELs to its append-only log and replicas. It runs on the owner after
// the routing snapshot that sends the slot's commands to the new owner is
// published (the store routes a command with its shards locked), so no
// key of the slot is created here afterwards. A node that is a replica by
// now (it full-syncs from its primary) deletes nothing.
func (c *Cluster) deleteDirty(slots []uint16) {
	if c.repl == nil || len(slots) == 0 || c.node.Self().Role != RolePrimary {
		return
	}
	for _, s := range slots {
		owner := c.node.SlotOwner(s)
		if owner == c.node.ID() {
			continue
		}
		n, err := c.repl.DeleteKeysInSlot(int(s))
		switch {
		case err != nil:
			c.logger.Printf("cluster: slot %d moved to %s: deleting its keys here: %v", s, owner, err)
		case n > 0:
			c.logger.Printf("cluster: slot %d is served by %s now: deleted the %d keys of it held here", s, owner, n)
		}
	}
}
