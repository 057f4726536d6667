package peer

import (
	"time"
)

// rank is this replica's position among the replicas of its primary: the
// number of siblings with more data (higher offset; equal offsets ordered
// by ID), so the most up-to-date replica asks first.
func (n *Node) rank() int {
	me := n.self()
	r := 0
	for _, p := range n.peers {
		if p.ID == n.id || p.Role != RoleReplica || p.Primary != me.Primary || p.Fail {
			continue
		}
		if p.Offset > me.Offset || p.Offset == me.Offset && p.ID < n.id {
			r++
		}
	}
	return r
}

// tickElection runs a replica's failover: schedule when the primary is
// FAIL, ask for votes when the delay is over, give up at the deadline.
func (n *Node) tickElection(now time.Time) {
	me := n.self()
	if me.Role != RoleReplica {
		n.el = election{}
		return
	}
	if n.el.expired(now) {
		n.el = election{}
		return
	}
	prim, ok := n.peers[me.Primary]
	failed := ok && prim.Fail && n.ownsSlots(prim.ID)
	if n.el.asking {
		if now.After(n.el.deadline) {
			n.el = election{retryAt: now.Add(2 * n.cfg.ElectionTimeout)}
		}
		return
	}
	if !failed && !n.el.forced {
		n.el.startAt = time.Time{}
		return
	}
	if now.Before(n.el.retryAt) {
		return
	}
	if n.el.startAt.IsZero() {
		n.el.rank = n.rank()
		delay := n.cfg.ElectionDelay + time.Duration(n.el.rank)*n.cfg.RankDelay
		if n.cfg.ElectionJitter > 0 && !n.el.forced {
			delay += time.Duration(n.rng.Int64N(int64(n.cfg.ElectionJitter)))
		}
		n.el.startAt = now.Add(delay)
		return
	}
	if !n.el.forced {
		// a sibling's newer offset may have arrived while waiting
		if r := n.rank(); r > n.el.rank {
			n.el.startAt = n.el.startAt.Add(time.Duration(r-n.el.rank) * n.cfg.RankDelay)
			n.el.rank = r
		}
	}
	if now.Before(n.el.startAt) {
		return
	}
	n.currentEpoch++
	n.mustSave = true
	n.el.asking = true
	n.el.epoch = n.currentEpoch
	n.el.deadline = now.Add(n.cfg.ElectionTimeout)
	n.el.votes = make(map[NodeID]bool)
	req := Message{Type: MsgVoteRequest, Subject: me.Primary, Forced: n.el.forced}
	n.send(req)
	// the request carries the slots the replica asks for: its primary's
	n.msgs[len(n.msgs)-1].Slots = n.slots.SlotsOf(me.Primary)
	n.msgs[len(n.msgs)-1].ConfigEpoch = prim.ConfigEpoch
}

// handleVoteRequest decides a vote as Redis does: only primaries with
// slots vote, once per epoch, only for a replica of a failed primary (or a
// forced manual failover), not twice for the same primary within two node
// timeouts, and never for a replica whose view of the slots is older than
// this node's.
func (n *Node) handleVoteRequest(m Message, now time.Time) {
	me := n.self()
	if me.Role != RolePrimary || !n.ownsSlots(n.id) {
		return
	}
	if m.CurrentEpoch < n.currentEpoch || n.lastVoteEpoch == n.currentEpoch {
		return
	}
	if m.Role != RoleReplica || m.Primary != m.Subject {
		return
	}
	prim, ok := n.peers[m.Subject]
	if !ok || (!prim.Fail && !m.Forced) {
		return
	}
	if !prim.votedAt.IsZero() && now.Sub(prim.votedAt) < 2*n.cfg.NodeTimeout {
		return
	}
	for _, r := range m.Slots {
		for s := int(r.Start); s <= int(r.End); s++ {
			if o := n.slots.owners[s]; o.Node != "" && o.Epoch > m.ConfigEpoch {
				return
			}
		}
	}
	n.lastVoteEpoch = n.currentEpoch
	prim.votedAt = now
	n.mustSave = true
	n.send(Message{Type: MsgVote, To: m.From, CurrentEpoch: m.CurrentEpoch})
}

// handleVote counts a vote for the running election; a majority of the
// primaries promotes this replica.
func (n *Node) handleVote(m Message, now time.Time) {
	if !n.el.asking || m.CurrentEpoch != n.el.epoch || m.Role != RolePrimary || !n.ownsSlots(m.From) || n.el.expired(now) {
		return
	}
	n.el.votes[m.From] = true
	if len(n.el.votes) >= n.quorum() {
		n.promote(n.el.epoch, now)
	}
}

// promote makes this replica the primary of its primary's slots with
// config epoch e and announces it at once (not held back by
// MinHeartbeatInterval).
func (n *Node) promote(e uint64, now time.Time) {
	me := n.self()
	old := me.Primary
	for s := range n.slots.owners {
		if n.slots.owners[s].Node == old {
			n.slots.put(uint16(s), SlotOwner{Node: n.id, Epoch: e})
		}
	}
	me.Role, me.Primary, me.ConfigEpoch = RolePrimary, "", e
	if p, ok := n.peers[old]; ok {
		// the old primary follows us when it comes back
		p.Role, p.Primary = RoleReplica, n.id
	}
	n.el = election{}
	n.mustSave = true
	n.sendHeartbeat(now)
}
