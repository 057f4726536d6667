package peer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gantry-project/gantry/internal/durable"
)

// Operator errors that the CLUSTER commands turn into Redis's replies.
var (
	ErrSlotBusy      = errors.New("slot is already busy")
	ErrNotPrimary    = errors.New("this node is not a master")
	ErrNotReplica    = errors.New("this node is not a replica")
	ErrEpochNotEmpty = errors.New("the user can assign a config epoch only when the node does not know any other node")
)

// AddSlots assigns unassigned slots to this node (CLUSTER ADDSLOTS).
func (n *Node) AddSlots(ranges []SlotRange) error {
	if n.self().Role != RolePrimary {
		return ErrNotPrimary
	}
	for _, r := range ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			if n.slots.owners[s].Node != "" {
				return fmt.Errorf("slot %d: %w", s, ErrSlotBusy)
			}
		}
	}
	for _, r := range ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			n.slots.Set(uint16(s), n.id, n.self().ConfigEpoch)
		}
	}
	n.mustSave = true
	return nil
}

// DelSlots unassigns slots in this node's view only (CLUSTER DELSLOTS).
func (n *Node) DelSlots(ranges []SlotRange) error {
	for _, r := range ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			if n.slots.owners[s].Node == "" {
				return fmt.Errorf("slot %d is already unassigned", s)
			}
		}
	}
	for _, r := range ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			n.slots.Set(uint16(s), "", 0)
		}
	}
	n.mustSave = true
	return nil
}

// BumpEpoch gives this node a config epoch above every epoch it has seen
// unless its epoch already is the unique highest (CLUSTER BUMPEPOCH);
// it reports whether it bumped.
func (n *Node) BumpEpoch() bool {
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

// SetConfigEpoch sets the config epoch of a fresh node (CLUSTER
// SET-CONFIG-EPOCH), as redis-cli --cluster create does for every node.
func (n *Node) SetConfigEpoch(e uint64) error {
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

// Replicate makes this node a replica of primary (CLUSTER REPLICATE); a
// primary must own no slots to become a replica.
func (n *Node) Replicate(primary NodeID) error {
	if primary == n.id {
		return errors.New("Can't replicate myself")
	}
	p, ok := n.peers[primary]
	if !ok {
		return fmt.Errorf("%s: %w", primary, ErrUnknownNode)
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

// Failover starts a manual failover on this replica. The default mode,
// which first waits for the replica to catch up with a paused primary,
// needs the replication layer and is refused with ErrFailoverNeedsSync.
func (n *Node) Failover(mode FailoverMode) error {
	me := n.self()
	if me.Role != RoleReplica {
		return errors.New("You should send CLUSTER FAILOVER to a replica")
	}
	switch mode {
	case FailoverTakeover:
		n.currentEpoch++
		n.promote(n.currentEpoch)
		return nil
	case FailoverForce:
		n.el = election{forced: true}
		return nil
	}
	return ErrFailoverNeedsSync
}

// ErrFailoverNeedsSync is returned for a plain CLUSTER FAILOVER until
// replication can pause the primary and let the replica catch up.
var ErrFailoverNeedsSync = errors.New("CLUSTER FAILOVER without FORCE or TAKEOVER is not supported yet")

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
	for _, id := range n.sortedPeerIDs() {
		p := n.peers[id]
		st.Peers = append(st.Peers, SavedPeer{
			ID: p.ID, Addr: p.Addr, BusPort: p.BusPort, Role: p.Role, Primary: p.Primary,
			ConfigEpoch: p.ConfigEpoch, Slots: n.slots.SlotsOf(id),
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
			for s := int(r.Start); s <= int(r.End); s++ {
				n.slots.Set(uint16(s), sp.ID, sp.ConfigEpoch)
			}
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

// SaveState writes st to dir/nodes.json atomically (temp file, fsync,
// rename), so a crash leaves the old or the new view, never half of one.
func SaveState(dir string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode cluster state: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, "nodes.json"), b, 0o644); err != nil {
		return fmt.Errorf("save cluster state: %w", err)
	}
	return nil
}

// LoadState reads dir/nodes.json; os.ErrNotExist (wrapped) when there is none.
func LoadState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, "nodes.json"))
	if err != nil {
		return st, fmt.Errorf("load cluster state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("load cluster state %s: %w", filepath.Join(dir, "nodes.json"), err)
	}
	return st, nil
}

// MergeView applies another peer's saved view (memberlist push-pull):
// every peer it lists becomes known, and its primaries' slot claims apply
// under the usual rule that the highest epoch wins.
func (n *Node) MergeView(st State, now time.Time) error {
	n.observeEpoch(st.CurrentEpoch)
	for _, sp := range st.Peers {
		if !ValidNodeID(string(sp.ID)) {
			return fmt.Errorf("remote view of %s: peer %q: bad node id", st.ID, sp.ID)
		}
		if sp.ID == n.id || n.isForgotten(sp.ID, now) {
			continue
		}
		_, known := n.peers[sp.ID]
		n.AddPeer(sp.ID, sp.Addr, now)
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
