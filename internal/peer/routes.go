package peer

// routes is the routing snapshot: an immutable copy of what the router
// needs for every command, published by the Cluster's owner goroutine
// through an atomic pointer after each step that changed it, so that
// routing takes no lock and allocates nothing.
type routes struct {
	owner   [NumSlots]int32 // index into addrs and ids, -1 unassigned
	addrs   []string
	ids     []NodeID
	self    int32
	primary int32 // this replica's primary, -1 for a primary
	ok      bool  // cluster_state:ok
	// open slots of this node (nil when none): migrating to the node at
	// that index of addrs, importing
	migrating map[uint16]int32
	importing map[uint16]bool
}

// id returns this node's ID.
func (rt *routes) id() NodeID { return rt.ids[rt.self] }

// ownerOf returns the owner of slot s ("" when unassigned).
func (rt *routes) ownerOf(s uint16) NodeID {
	if o := rt.owner[s]; o >= 0 {
		return rt.ids[o]
	}
	return ""
}

// buildRoutes takes the routing snapshot of n; requireFull is Redis's
// cluster-require-full-coverage. Only the node's owner calls it.
func buildRoutes(n *Node, requireFull bool) *routes {
	rt := &routes{self: -1, primary: -1, ok: n.ClusterOK(requireFull)}
	idx := map[NodeID]int32{}
	index := func(id NodeID) int32 {
		if i, ok := idx[id]; ok {
			return i
		}
		i := int32(len(rt.addrs))
		addr := ""
		if p, ok := n.peers[id]; ok {
			addr = p.Addr
		}
		rt.addrs = append(rt.addrs, addr)
		rt.ids = append(rt.ids, id)
		idx[id] = i
		return i
	}
	rt.self = index(n.id)
	if me := n.self(); me.Role == RoleReplica {
		rt.primary = index(me.Primary)
	}
	last, li := NodeID(""), int32(-1) // slots come in runs of one owner
	for s := range n.slots.owners {
		if o := n.slots.owners[s].Node; o != last {
			last, li = o, -1
			if o != "" {
				li = index(o)
			}
		}
		rt.owner[s] = li
	}
	for s := range n.mig.migrating {
		if dst, ok := n.Migrating(s); ok {
			if rt.migrating == nil {
				rt.migrating = make(map[uint16]int32)
			}
			rt.migrating[s] = index(dst)
		}
	}
	for s := range n.mig.importing {
		if _, ok := n.Importing(s); ok {
			if rt.importing == nil {
				rt.importing = make(map[uint16]bool)
			}
			rt.importing[s] = true
		}
	}
	return rt
}
