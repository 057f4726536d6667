package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// tableNodeAllocIndex holds, per node, the Raft index of the last
// server-side change to the node's allocations (placed, stopped, evicted,
// lost, purged). Agents' blocking queries watch this one row instead of
// the node's slice of the allocation index, whose radix-tree watch also
// fires for neighbouring nodes and for the agents' own status reports:
// with 10,000 nodes every commit woke thousands of queries (docs/bench.md).
// It is derived state: rebuilt on restore, not persisted.
const tableNodeAllocIndex = "node_alloc_index"

// nodeAllocIndex is a row of tableNodeAllocIndex.
type nodeAllocIndex struct {
	NodeID string
	Index  uint64
}

func nodeAllocIndexSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableNodeAllocIndex, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "NodeID"}},
		// By index: the change feed of multiplexed node watches (nodewatch.go).
		"index": {Name: "index", Indexer: &memdb.UintFieldIndex{Field: "Index"}},
	}}
}

// nodeBumper records the nodes whose allocations a transaction changed and
// writes their rows once at the end.
type nodeBumper map[string]bool

func (b nodeBumper) add(nodeID string) {
	if nodeID != "" {
		b[nodeID] = true
	}
}

func (b nodeBumper) write(txn *memdb.Txn, index uint64) error {
	for id := range b {
		if err := txn.Insert(tableNodeAllocIndex, &nodeAllocIndex{NodeID: id, Index: index}); err != nil {
			return fmt.Errorf("node alloc index of %s: %w", id, err)
		}
	}
	return nil
}

// rebuildNodeAllocIndex fills the table from the allocations (restore).
func rebuildNodeAllocIndex(txn *memdb.Txn, allocs *allocTable) error {
	latest := map[string]uint64{}
	allocs.each(func(a *structs.Allocation) bool {
		latest[a.NodeID] = max(latest[a.NodeID], a.AllocModifyIndex, a.CreateIndex)
		return true
	})
	for id, idx := range latest {
		if err := txn.Insert(tableNodeAllocIndex, &nodeAllocIndex{NodeID: id, Index: idx}); err != nil {
			return err
		}
	}
	return nil
}

// NodeAllocIndexWatch returns the index of the last server-side change to
// the node's allocations (0 if none) and adds that row to ws, so a watch
// wakes only for such changes on this node.
func (s *Snapshot) NodeAllocIndexWatch(ws memdb.WatchSet, nodeID string) uint64 {
	s.watchAbandon(ws)
	raw := s.first(ws, tableNodeAllocIndex, "id", nodeID)
	if raw == nil {
		return 0
	}
	return raw.(*nodeAllocIndex).Index
}
