package state

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// The node alloc index holds, per node, the Raft index of the last
// server-side change to the node's allocations (placed, stopped, evicted,
// lost, purged). Agents' blocking queries watch this one row instead of
// the node's allocations, which also change with the agents' own status
// reports: with 10,000 nodes every commit woke thousands of queries
// (docs/bench.md). The rows live in the allocation table (allocTable
// nodeIndex and feed), written in the same transaction as the allocations.
// It is derived state: rebuilt on restore, not persisted.

// nodeBumper records the nodes whose allocations a transaction changed and
// writes their rows once at the end.
type nodeBumper map[string]bool

func (b nodeBumper) add(nodeID string) {
	if nodeID != "" {
		b[nodeID] = true
	}
}

func (b nodeBumper) write(x *allocTxn, index uint64) error {
	for id := range b {
		x.bumpNode(id, index)
	}
	return nil
}

// rebuildNodeAllocIndex fills the rows from the allocations (restore).
func rebuildNodeAllocIndex(x *allocTxn) {
	latest := map[string]uint64{}
	x.view().each(func(a *structs.Allocation) bool {
		latest[a.NodeID] = max(latest[a.NodeID], a.AllocModifyIndex, a.CreateIndex)
		return true
	})
	for id, idx := range latest {
		x.bumpNode(id, idx)
	}
}

// NodeAllocIndexWatch returns the index of the last server-side change to
// the node's allocations (0 if none) and adds that row to ws, so a watch
// wakes only for such changes on this node.
func (s *Snapshot) NodeAllocIndexWatch(ws memdb.WatchSet, nodeID string) uint64 {
	s.watchAbandon(ws)
	s.watchAllocs(ws, watchNodeIndex, nodeID)
	idx, _ := s.allocs.nodeAllocIndex(nodeID)
	return idx
}
