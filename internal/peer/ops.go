package peer

import (
	"errors"
	"fmt"
	"time"
)

// Operator errors that the CLUSTER commands turn into Redis's replies.
var (
	ErrSlotBusy      = errors.New("slot is already busy")
	ErrNotPrimary    = errors.New("this node is not a master")
	ErrNotReplica    = errors.New("this node is not a replica")
	ErrEpochNotEmpty = errors.New("the user can assign a config epoch only when the node does not know any other node")
)

// OpKind is the kind of an Op.
type OpKind uint8

// The operator commands and local events a Node applies. Append only.
const (
	// OpAddSlots assigns unassigned Slots to this node (CLUSTER ADDSLOTS).
	OpAddSlots OpKind = iota + 1
	// OpDelSlots unassigns Slots in this node's view (CLUSTER DELSLOTS).
	OpDelSlots
	// OpAddPeer makes Node (at Addr, which may be empty) known: CLUSTER
	// MEET or the membership layer reported it.
	OpAddPeer
	// OpForget removes Node and ignores it for ForgetTTL (CLUSTER FORGET).
	OpForget
	// OpSetConfigEpoch sets a fresh node's config epoch to Epoch (CLUSTER
	// SET-CONFIG-EPOCH).
	OpSetConfigEpoch
	// OpBumpEpoch takes a config epoch above every epoch seen (CLUSTER
	// BUMPEPOCH); the result says whether it bumped.
	OpBumpEpoch
	// OpReplicate makes this node a replica of Node (CLUSTER REPLICATE).
	OpReplicate
	// OpFailover starts a manual failover of Mode (CLUSTER FAILOVER).
	OpFailover
	// OpSetSlot changes Slot by Action (CLUSTER SETSLOT).
	OpSetSlot
	// OpReset forgets every peer and slot (CLUSTER RESET); Hard also takes
	// the new ID Node and epoch 0.
	OpReset
	// OpMergeView applies another peer's view View (gossip push-pull).
	OpMergeView
	// OpSetOffset records this node's replication Offset.
	OpSetOffset
)

// SetSlotAction is the action of CLUSTER SETSLOT.
type SetSlotAction uint8

const (
	SlotMigrating SetSlotAction = iota + 1 // to Node
	SlotImporting                          // from Node
	SlotStable                             // clear the slot's migration state
	SlotNode                               // assign the slot to Node
)

// Op is an input that is not a peer's message: an operator command or a
// local event. It enters the Node only through Apply; which fields a kind
// reads is said at its constant.
type Op struct {
	Kind   OpKind
	Slots  []SlotRange
	Slot   uint16
	Action SetSlotAction
	Node   NodeID
	Addr   string
	Epoch  uint64
	Mode   FailoverMode
	// Until ends a FailoverForce election that a manual failover holds
	// while its primary is paused: a vote that arrives after it promotes
	// nothing, since the primary may be taking writes again (zero: no
	// end but the election's own timeout, as CLUSTER FAILOVER FORCE).
	Until  time.Time
	Hard   bool
	View   *State
	Offset uint64
	// KeysHeld is how many keys of Slot the store holds (SETSLOT NODE:
	// an owner holding keys refuses to give the slot away). The caller
	// counts them, since the Node knows nothing of the store.
	KeysHeld int
}

// OpResult is what an Op reports besides its error.
type OpResult struct {
	// Bumped and ConfigEpoch answer OpBumpEpoch.
	Bumped      bool
	ConfigEpoch uint64
	// ID is this node's ID after the op (a hard reset changes it).
	ID NodeID
}

// Apply applies op at now. Like Step it only changes the node; the
// output waits in Ready.
func (n *Node) Apply(op Op, now time.Time) (OpResult, error) {
	var res OpResult
	var err error
	if op.Kind == OpBumpEpoch {
		res.Bumped = n.bumpEpoch()
	} else {
		err = n.apply(op, now)
	}
	res.ConfigEpoch, res.ID = n.self().ConfigEpoch, n.id
	return res, err
}

func (n *Node) apply(op Op, now time.Time) error {
	switch op.Kind {
	case OpAddSlots:
		return n.addSlots(op.Slots)
	case OpDelSlots:
		return n.delSlots(op.Slots)
	case OpAddPeer:
		n.addPeer(op.Node, op.Addr, now)
		return nil
	case OpForget:
		return n.forgetUntil(op.Node, now.Add(ForgetTTL))
	case OpSetConfigEpoch:
		return n.assignConfigEpoch(op.Epoch)
	case OpReplicate:
		return n.replicate(op.Node)
	case OpFailover:
		return n.failover(op.Mode, op.Until, now)
	case OpSetSlot:
		return n.setSlot(op)
	case OpReset:
		return n.reset(op.Hard, op.Node, now)
	case OpMergeView:
		if op.View == nil {
			return errors.New("merge view: no view")
		}
		return n.mergeView(*op.View, now)
	case OpSetOffset:
		n.setOffset(op.Offset)
		return nil
	}
	return fmt.Errorf("unknown op kind %d", op.Kind)
}

// setSlot runs CLUSTER SETSLOT.
func (n *Node) setSlot(op Op) error {
	if int(op.Slot) >= NumSlots {
		return fmt.Errorf("slot %d: %w", op.Slot, ErrBadSlot)
	}
	switch op.Action {
	case SlotMigrating:
		return n.setSlotMigrating(op.Slot, op.Node)
	case SlotImporting:
		return n.setSlotImporting(op.Slot, op.Node)
	case SlotStable:
		return n.setSlotStable(op.Slot)
	case SlotNode:
		if _, ok := n.peers[op.Node]; !ok {
			return unknownNode(op.Node)
		}
		if n.slots.owners[op.Slot].Node == n.id && op.Node != n.id && op.KeysHeld > 0 {
			return fmt.Errorf("Can't assign hashslot %d to a different node while I still hold keys for this hash slot.", op.Slot)
		}
		return n.setSlotNode(op.Slot, op.Node)
	}
	return fmt.Errorf("setslot: unknown action %d", op.Action)
}

// addSlots assigns unassigned slots to this node (CLUSTER ADDSLOTS).
func (n *Node) addSlots(ranges []SlotRange) error {
	if n.self().Role != RolePrimary {
		return ErrNotPrimary
	}
	if err := checkRanges(ranges); err != nil {
		return err
	}
	for _, r := range ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			if n.slots.owners[s].Node != "" {
				return fmt.Errorf("slot %d: %w", s, ErrSlotBusy)
			}
		}
	}
	for _, r := range ranges {
		n.slots.setRange(r, n.id, n.self().ConfigEpoch)
	}
	n.mustSave = true
	return nil
}

// delSlots unassigns slots in this node's view only (CLUSTER DELSLOTS).
func (n *Node) delSlots(ranges []SlotRange) error {
	if err := checkRanges(ranges); err != nil {
		return err
	}
	for _, r := range ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			if n.slots.owners[s].Node == "" {
				return fmt.Errorf("slot %d is already unassigned", s)
			}
		}
	}
	for _, r := range ranges {
		n.slots.setRange(r, "", 0)
	}
	n.mustSave = true
	return nil
}

func checkRanges(ranges []SlotRange) error {
	for _, r := range ranges {
		if r.Start > r.End || int(r.End) >= NumSlots {
			return fmt.Errorf("slot range %d-%d: %w", r.Start, r.End, ErrBadSlot)
		}
	}
	return nil
}

// bumpEpoch gives this node a config epoch above every epoch it has seen
// unless its epoch already is the unique highest (CLUSTER BUMPEPOCH);
// it reports whether it bumped.
func (n *Node) bumpEpoch() bool {
	me := n.self()
	unique := me.ConfigEpoch > 0
	for _, p := range n.peers {
		if p.ID != n.id && p.ConfigEpoch >= me.ConfigEpoch {
			unique = false
		}
	}
	if unique && me.ConfigEpoch == n.currentEpoch {
		return false
	}
	n.currentEpoch++
	n.setConfigEpoch(n.currentEpoch)
	return true
}

// assignConfigEpoch sets the config epoch of a fresh node (CLUSTER
// SET-CONFIG-EPOCH), as redis-cli --cluster create does for every node.
func (n *Node) assignConfigEpoch(e uint64) error {
	if len(n.peers) > 1 {
		return ErrEpochNotEmpty
	}
	if n.self().ConfigEpoch != 0 {
		return errors.New("Node config epoch is already non-zero")
	}
	n.setConfigEpoch(e)
	n.observeEpoch(e)
	return nil
}

// replicate makes this node a replica of primary (CLUSTER REPLICATE); a
// primary must own no slots to become a replica.
func (n *Node) replicate(primary NodeID) error {
	if primary == n.id {
		return errors.New("Can't replicate myself")
	}
	p, ok := n.peers[primary]
	if !ok {
		return unknownNode(primary)
	}
	if p.Role != RolePrimary {
		return errors.New("I can only replicate a master, not a replica.")
	}
	if n.self().Role == RolePrimary && n.ownsSlots(n.id) {
		return errors.New("To set a master the node must be empty and without assigned slots.")
	}
	me := n.self()
	me.Role, me.Primary = RoleReplica, primary
	n.el = election{}
	n.mustSave = true
	return nil
}

// FailoverMode selects the kind of manual failover.
type FailoverMode uint8

const (
	// FailoverForce holds an election without waiting for the primary to
	// fail (CLUSTER FAILOVER FORCE).
	FailoverForce FailoverMode = iota + 1
	// FailoverTakeover takes the slots without any vote, with a new epoch
	// (CLUSTER FAILOVER TAKEOVER).
	FailoverTakeover
)

// failover starts a manual failover on this replica. The default mode,
// which first waits for the replica to catch up with a paused primary,
// needs the replication layer (Cluster.ManualFailover, which then applies
// FailoverForce) and is refused with ErrFailoverNeedsSync.
func (n *Node) failover(mode FailoverMode, until, now time.Time) error {
	me := n.self()
	if me.Role != RoleReplica {
		return errors.New("You should send CLUSTER FAILOVER to a replica")
	}
	switch mode {
	case FailoverTakeover:
		n.currentEpoch++
		n.promote(n.currentEpoch, now)
		return nil
	case FailoverForce:
		n.el = election{forced: true, until: until}
		return nil
	}
	return ErrFailoverNeedsSync
}

// ErrFailoverNeedsSync is returned by the Node for a plain CLUSTER
// FAILOVER: the catch-up with a paused primary is the replication layer's.
var ErrFailoverNeedsSync = errors.New("CLUSTER FAILOVER without FORCE or TAKEOVER needs the replication layer")

// State is the persisted view of a node: what a restarted peer needs to
// come back with its view and without voting twice in one epoch.
type State struct {
	ID            NodeID      `json:"id"`
	CurrentEpoch  uint64      `json:"current_epoch"`
	LastVoteEpoch uint64      `json:"last_vote_epoch"`
	Peers         []SavedPeer `json:"peers"`
	// Migrating and Importing are this node's open slots (CLUSTER SETSLOT)
	Migrating map[uint16]NodeID `json:"migrating,omitempty"`
	Importing map[uint16]NodeID `json:"importing,omitempty"`
}

// SavedPeer is one peer in a State.
type SavedPeer struct {
	ID          NodeID      `json:"id"`
	Addr        string      `json:"addr"`
	BusPort     int         `json:"bus_port,omitempty"`
	Role        Role        `json:"role"`
	Primary     NodeID      `json:"primary,omitempty"`
	ConfigEpoch uint64      `json:"config_epoch"`
	Slots       []SlotRange `json:"slots,omitempty"`
}

// State returns the node's persistent state.
func (n *Node) State() State {
	st := State{ID: n.id, CurrentEpoch: n.currentEpoch, LastVoteEpoch: n.lastVoteEpoch}
	st.Migrating, st.Importing = n.savedMigration()
	ranges := n.slots.ranges()
	for _, id := range n.sortedPeerIDs() {
		p := n.peers[id]
		st.Peers = append(st.Peers, SavedPeer{
			ID: p.ID, Addr: p.Addr, BusPort: p.BusPort, Role: p.Role, Primary: p.Primary,
			ConfigEpoch: p.ConfigEpoch, Slots: ranges[id],
		})
	}
	return st
}

// Restore loads a saved state into a node created with the same ID; every
// peer starts as last seen at now.
func (n *Node) Restore(st State, now time.Time) error {
	if st.ID != n.id {
		return fmt.Errorf("saved state is of node %s, not %s", st.ID, n.id)
	}
	n.currentEpoch, n.lastVoteEpoch = st.CurrentEpoch, st.LastVoteEpoch
	n.peers = make(map[NodeID]*PeerInfo)
	n.slots = SlotMap{}
	for _, sp := range st.Peers {
		if !ValidNodeID(string(sp.ID)) {
			return fmt.Errorf("saved peer %q: bad node id", sp.ID)
		}
		n.peers[sp.ID] = &PeerInfo{ID: sp.ID, Addr: sp.Addr, BusPort: sp.BusPort, Role: sp.Role, Primary: sp.Primary,
			ConfigEpoch: sp.ConfigEpoch, LastSeen: now}
		for _, r := range sp.Slots {
			if r.Start > r.End || int(r.End) >= NumSlots {
				return fmt.Errorf("saved peer %s: slot range %v: %w", sp.ID, r, ErrBadSlot)
			}
			n.slots.setRange(r, sp.ID, sp.ConfigEpoch)
		}
	}
	me, ok := n.peers[n.id]
	if !ok {
		return fmt.Errorf("saved state of %s does not list the node itself", n.id)
	}
	if err := n.restoreMigration(st); err != nil {
		return err
	}
	me.Addr, me.BusPort = n.cfg.Addr, n.cfg.BusPort
	return nil
}

// mergeView applies another peer's saved view (memberlist push-pull):
// every peer it lists becomes known, and its primaries' slot claims apply
// under the usual rule that the highest epoch wins.
func (n *Node) mergeView(st State, now time.Time) error {
	n.observeEpoch(st.CurrentEpoch)
	for _, sp := range st.Peers {
		if !ValidNodeID(string(sp.ID)) {
			return fmt.Errorf("remote view of %s: peer %q: bad node id", st.ID, sp.ID)
		}
		if sp.ID == n.id || n.isForgotten(sp.ID, now) {
			continue
		}
		_, known := n.peers[sp.ID]
		n.addPeer(sp.ID, sp.Addr, now)
		if !known {
			p := n.peers[sp.ID]
			p.Role, p.Primary, p.ConfigEpoch, p.BusPort = sp.Role, sp.Primary, sp.ConfigEpoch, sp.BusPort
		}
		if sp.Role == RolePrimary {
			for _, r := range sp.Slots {
				if r.Start > r.End || int(r.End) >= NumSlots {
					return fmt.Errorf("remote view of %s: %w", st.ID, ErrBadSlot)
				}
			}
			n.applyClaims(sp.ID, sp.ConfigEpoch, sp.Slots)
		}
	}
	return nil
}
