package peer

import (
	"errors"
	"fmt"
	"time"
)

// Slot migration (CLUSTER SETSLOT) and the operator commands that come
// with resharding (FORGET's blacklist, RESET), as Redis Cluster has them:
//
//   - SETSLOT s MIGRATING dst on the owner and SETSLOT s IMPORTING src on
//     the receiver are local states, never gossiped; they change how
//     commands are routed (ASK, TRYAGAIN, ASKING; see Router.Route) while
//     MIGRATE moves the keys;
//   - SETSLOT s NODE self on the receiver takes the slot with a config
//     epoch above every epoch it knows (BumpEpoch, without agreement, as
//     Redis does), so its claim wins everywhere once gossiped; SETSLOT s
//     NODE dst on the old owner (once it holds no key of s) and on the
//     other nodes just records the new owner; the highest epoch wins in
//     any order;
//   - a primary that gives away its last slot follows the new owner as a
//     replica (Redis's cluster-allow-replica-migration default).

// migration is the node's local migration state.
type migration struct {
	migrating map[uint16]NodeID // slot -> destination
	importing map[uint16]NodeID // slot -> source
	// forgotten are peers removed by CLUSTER FORGET: their messages and
	// any mention of them are ignored until the time given (Redis's
	// 60-second blacklist), so a peer being deleted does not come back
	// through gossip before it is reset.
	forgotten map[NodeID]time.Time
}

// ForgetTTL is how long a forgotten peer is ignored (Redis: 60 s).
const ForgetTTL = 60 * time.Second

// ErrSetSlotReplica is the reply to SETSLOT on a replica (redis-cli
// ignores it on a source that became a replica of the new owner).
var ErrSetSlotReplica = errors.New("Please use SETSLOT only with masters.")

// Migrating returns the destination of a slot this node is migrating.
func (n *Node) Migrating(s uint16) (NodeID, bool) {
	id, ok := n.mig.migrating[s]
	return id, ok && n.slots.owners[s].Node == n.id
}

// Importing returns the source of a slot this node is importing.
func (n *Node) Importing(s uint16) (NodeID, bool) {
	id, ok := n.mig.importing[s]
	return id, ok && n.slots.owners[s].Node != n.id
}

func (n *Node) setSlotTarget(id NodeID) (*PeerInfo, error) {
	if n.self().Role != RolePrimary {
		return nil, ErrSetSlotReplica
	}
	p, ok := n.peers[id]
	if !ok {
		return nil, fmt.Errorf("I don't know about node %s", id)
	}
	if p.Role != RolePrimary {
		return nil, errors.New("Target node is not a master")
	}
	return p, nil
}

// setSlotMigrating marks slot s as moving to dst (CLUSTER SETSLOT s
// MIGRATING dst): this node must own it.
func (n *Node) setSlotMigrating(s uint16, dst NodeID) error {
	if _, err := n.setSlotTarget(dst); err != nil {
		return err
	}
	if n.slots.owners[s].Node != n.id {
		return fmt.Errorf("I'm not the owner of hash slot %d", s)
	}
	if dst == n.id {
		return errors.New("Can't migrate a slot to myself")
	}
	if n.mig.migrating == nil {
		n.mig.migrating = make(map[uint16]NodeID)
	}
	n.mig.migrating[s] = dst
	n.mustSave = true
	return nil
}

// setSlotImporting marks slot s as arriving from src (CLUSTER SETSLOT s
// IMPORTING src): this node must not own it.
func (n *Node) setSlotImporting(s uint16, src NodeID) error {
	if _, err := n.setSlotTarget(src); err != nil {
		return err
	}
	if n.slots.owners[s].Node == n.id {
		return fmt.Errorf("I'm already the owner of hash slot %d", s)
	}
	if src == n.id {
		return errors.New("Can't import a slot from myself")
	}
	if n.mig.importing == nil {
		n.mig.importing = make(map[uint16]NodeID)
	}
	n.mig.importing[s] = src
	n.mustSave = true
	return nil
}

// setSlotStable clears the migration state of slot s (CLUSTER SETSLOT s
// STABLE).
func (n *Node) setSlotStable(s uint16) error {
	if n.self().Role != RolePrimary {
		return ErrSetSlotReplica
	}
	delete(n.mig.migrating, s)
	delete(n.mig.importing, s)
	n.mustSave = true
	return nil
}

// setSlotNode assigns slot s to node (CLUSTER SETSLOT s NODE id). The
// caller (Apply, with the key count Op.KeysHeld) first checks that this
// node holds no key of s when it gives s away. Taking a slot that was being imported, or that another
// primary owned, bumps this node's config epoch without agreement, as
// Redis does at the end of a migration, so that the new ownership wins
// everywhere. A primary that gives away its last slot becomes a replica
// of the new owner.
func (n *Node) setSlotNode(s uint16, node NodeID) error {
	p, err := n.setSlotTarget(node)
	if err != nil {
		return err
	}
	prev := n.slots.owners[s].Node
	delete(n.mig.migrating, s)
	if node == n.id {
		_, importing := n.mig.importing[s]
		delete(n.mig.importing, s)
		if importing || (prev != n.id && prev != "") {
			n.bumpEpoch()
		}
		n.slots.Set(s, n.id, n.self().ConfigEpoch)
		n.mustSave = true
		return nil
	}
	// keep the current epoch of the slot if the view of the new owner is
	// older: its own claim (bumped) replaces this one when it arrives
	n.slots.Set(s, node, max(p.ConfigEpoch, n.slots.owners[s].Epoch))
	if prev == n.id && !n.ownsSlots(n.id) {
		me := n.self()
		me.Role, me.Primary = RoleReplica, node
		n.el = election{retryAt: n.el.retryAt}
	}
	n.mustSave = true
	return nil
}

// forgetUntil removes a peer (CLUSTER FORGET) and ignores it until the
// given time.
func (n *Node) forgetUntil(id NodeID, until time.Time) error {
	if err := n.forget(id); err != nil {
		return err
	}
	if n.mig.forgotten == nil {
		n.mig.forgotten = make(map[NodeID]time.Time)
	}
	n.mig.forgotten[id] = until
	for s, dst := range n.mig.migrating {
		if dst == id {
			delete(n.mig.migrating, s)
		}
	}
	for s, src := range n.mig.importing {
		if src == id {
			delete(n.mig.importing, s)
		}
	}
	return nil
}

// isForgotten reports whether id is blacklisted at now (and drops expired
// entries).
func (n *Node) isForgotten(id NodeID, now time.Time) bool {
	until, ok := n.mig.forgotten[id]
	if !ok {
		return false
	}
	if now.After(until) {
		delete(n.mig.forgotten, id)
		return false
	}
	return true
}

// reset forgets every peer and slot (CLUSTER RESET): the node becomes a
// slot-less primary that knows only itself, and ignores the peers it knew
// for ForgetTTL, as they ignore it after CLUSTER FORGET, so neither side
// gossips the other back. A hard reset also takes the new ID and sets
// every epoch to 0. The caller checks that the store holds no keys and
// restarts the gossip under the (new) ID.
func (n *Node) reset(hard bool, newID NodeID, now time.Time) error {
	if hard && !ValidNodeID(string(newID)) {
		return fmt.Errorf("reset: bad node id %q", newID)
	}
	me := *n.self()
	if n.mig.forgotten == nil {
		n.mig.forgotten = make(map[NodeID]time.Time)
	}
	for id := range n.peers {
		if id != n.id {
			n.mig.forgotten[id] = now.Add(ForgetTTL)
		}
	}
	if hard {
		n.id, n.cfg.ID = newID, newID
		n.currentEpoch, n.lastVoteEpoch = 0, 0
		me.ConfigEpoch = 0
	}
	n.peers = map[NodeID]*PeerInfo{n.id: {ID: n.id, Addr: me.Addr, BusPort: me.BusPort, Role: RolePrimary,
		ConfigEpoch: me.ConfigEpoch, Offset: me.Offset}}
	n.slots = SlotMap{}
	n.mig = migration{forgotten: n.mig.forgotten} // still ignored after a reset
	n.el = election{}
	n.mustSave = true
	return nil
}

// savedMigration returns the migration state for State (nil maps stay
// out of the JSON).
func (n *Node) savedMigration() (mig, imp map[uint16]NodeID) {
	for s, id := range n.mig.migrating {
		if mig == nil {
			mig = make(map[uint16]NodeID)
		}
		mig[s] = id
	}
	for s, id := range n.mig.importing {
		if imp == nil {
			imp = make(map[uint16]NodeID)
		}
		imp[s] = id
	}
	return mig, imp
}

// restoreMigration loads the migration state of a State.
func (n *Node) restoreMigration(st State) error {
	n.mig = migration{}
	for s, id := range st.Migrating {
		if int(s) >= NumSlots || !ValidNodeID(string(id)) {
			return fmt.Errorf("saved migrating slot %d -> %q: %w", s, id, ErrBadSlot)
		}
		if n.mig.migrating == nil {
			n.mig.migrating = make(map[uint16]NodeID)
		}
		n.mig.migrating[s] = id
	}
	for s, id := range st.Importing {
		if int(s) >= NumSlots || !ValidNodeID(string(id)) {
			return fmt.Errorf("saved importing slot %d <- %q: %w", s, id, ErrBadSlot)
		}
		if n.mig.importing == nil {
			n.mig.importing = make(map[uint16]NodeID)
		}
		n.mig.importing[s] = id
	}
	return nil
}
