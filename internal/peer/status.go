package peer

import (
	"time"
)

// Status is a copy of a node's view for the CLUSTER commands that report
// it (NODES, SLOTS, SHARDS, INFO, REPLICAS, COUNT-FAILURE-REPORTS), the
// manual failover and the gossip's reconnects. The owner takes it on
// request (Cluster.Status); nothing in it aliases the node.
type Status struct {
	ID           NodeID
	CurrentEpoch uint64
	// MyEpoch is the config epoch of this node's shard (its primary's for
	// a replica), as CLUSTER INFO reports it.
	MyEpoch uint64
	// OK is cluster_state:ok under the cluster's coverage rule.
	OK bool
	// SlotsAssigned, SlotsPFail and SlotsFail count the slots with an
	// owner, and those whose owner is suspected or failed; Size is the
	// number of primaries that own slots (CLUSTER INFO).
	SlotsAssigned, SlotsPFail, SlotsFail, Size int
	// Peers are every known node, this one included, sorted by ID.
	Peers []PeerStatus
	// Migrating and Importing are this node's open slots (CLUSTER
	// SETSLOT): slot to destination, slot to source.
	Migrating map[uint16]NodeID
	Importing map[uint16]NodeID
	// Electing is set while this replica's failover election runs or a
	// forced one is scheduled.
	Electing bool
	// NodeTimeout is the node's setting.
	NodeTimeout time.Duration
}

// PeerStatus is one peer in a Status.
type PeerStatus struct {
	PeerInfo
	// Slots are the slots a primary owns, as sorted ranges.
	Slots []SlotRange
	// FailureReports counts the valid reports of other primaries that
	// this peer failed.
	FailureReports int
}

// Self returns this node's entry.
func (s *Status) Self() PeerStatus {
	p, _ := s.Peer(s.ID)
	return p
}

// Peer returns the entry of id.
func (s *Status) Peer(id NodeID) (PeerStatus, bool) {
	for _, p := range s.Peers {
		if p.ID == id {
			return p, true
		}
	}
	return PeerStatus{}, false
}

// Members is the membership part of a Status: this node's ID, OK, and
// every known node (this one included, sorted by ID) with its role and
// whether it failed.
type Members struct {
	ID    NodeID
	OK    bool
	Peers []Member
}

// Member is one node in Members.
type Member struct {
	ID      NodeID
	Role    Role
	Primary NodeID // of a replica
	Fail    bool
}

// Members returns the node's membership; requireFull is the coverage
// rule of OK.
func (n *Node) Members(requireFull bool) *Members {
	m := &Members{ID: n.id, OK: n.ClusterOK(requireFull), Peers: make([]Member, 0, len(n.peers))}
	for _, id := range n.sortedPeerIDs() {
		p := n.peers[id]
		m.Peers = append(m.Peers, Member{ID: p.ID, Role: p.Role, Primary: p.Primary, Fail: p.Fail})
	}
	return m
}

// Status returns a copy of the node's view at now; requireFull is the
// coverage rule of OK.
func (n *Node) Status(now time.Time, requireFull bool) Status {
	st := Status{
		ID: n.id, CurrentEpoch: n.currentEpoch, MyEpoch: n.myEpoch(), OK: n.ClusterOK(requireFull),
		Size: n.primaryCount(), Electing: n.el.asking || n.el.forced, NodeTimeout: n.cfg.NodeTimeout,
	}
	ranges := n.slots.ranges()
	for o, rs := range ranges {
		c := 0
		for _, r := range rs {
			c += r.Len()
		}
		st.SlotsAssigned += c
		if p := n.peers[o]; p != nil && p.Fail {
			st.SlotsFail += c
		} else if p != nil && p.PFail {
			st.SlotsPFail += c
		}
	}
	for _, p := range n.Peers() {
		ps := PeerStatus{PeerInfo: p, FailureReports: n.FailureReports(p.ID, now)}
		if p.Role == RolePrimary {
			ps.Slots = ranges[p.ID]
		}
		st.Peers = append(st.Peers, ps)
	}
	for s, dst := range n.mig.migrating {
		if _, ok := n.Migrating(s); ok {
			if st.Migrating == nil {
				st.Migrating = make(map[uint16]NodeID)
			}
			st.Migrating[s] = dst
		}
	}
	for s, src := range n.mig.importing {
		if _, ok := n.Importing(s); ok {
			if st.Importing == nil {
				st.Importing = make(map[uint16]NodeID)
			}
			st.Importing[s] = src
		}
	}
	return st
}

// myEpoch is the config epoch of this node's shard (its primary's for a
// replica).
func (n *Node) myEpoch() uint64 {
	me := n.self()
	if me.Role == RoleReplica {
		if p, ok := n.peers[me.Primary]; ok {
			return p.ConfigEpoch
		}
	}
	return me.ConfigEpoch
}
