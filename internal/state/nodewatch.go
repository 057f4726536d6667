package state

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// The change feed of node allocations.
//
// The node alloc index (nodeindex.go) keeps one row per node: the index of
// the last server-side change to the node's allocations. Ordered by that
// index (allocTable.feed) the rows are a change feed: the rows above X are
// exactly the nodes whose allocations changed after X, each once, however
// many commits touched it. A watcher that serves many nodes (the multiplexed
// watch, internal/server/http_node_watch.go) keeps a cursor, reads the
// rows above it after each wake-up and filters them by its own nodes: its
// work is proportional to the nodes that changed, not to the nodes it
// serves nor to the number of commits. The feed needs no ring buffer and
// cannot overflow: a slow reader sees each changed node once, with its
// latest index.

// NodeAllocChangesSince calls fn for every node whose allocations the
// server changed after index after, in increasing index order, until fn
// returns false. It does not watch: see NodeAllocFeedWatch.
func (s *Snapshot) NodeAllocChangesSince(after uint64, fn func(nodeID string, index uint64) bool) {
	if after == ^uint64(0) {
		return
	}
	s.allocs.feed.AscendGreaterOrEqual(nodeIndexItem{index: after + 1}, func(r nodeIndexItem) bool {
		return fn(r.node, r.index)
	})
}

// NodeAllocFeedWatch adds to ws a channel that fires on the next
// server-side change to any node's allocations (and on Restore).
func (s *Snapshot) NodeAllocFeedWatch(ws memdb.WatchSet) {
	if ws == nil {
		return
	}
	s.watchAbandon(ws)
	s.watchAllocs(ws, watchFeed, "")
}

// NodeAllocIndex returns the index of the last server-side change to the
// node's allocations, and whether the node has such a row at all (a node
// that never held an allocation has none).
func (s *Snapshot) NodeAllocIndex(nodeID string) (uint64, bool) {
	return s.allocs.nodeAllocIndex(nodeID)
}

// Abandoned returns a channel closed when a Restore replaces the state
// this snapshot reads. Long-lived watchers that keep a cursor into the
// change feed must start over then: the restored feed is not a
// continuation of the old one.
func (s *Snapshot) Abandoned() <-chan struct{} { return s.abandonCh }

// EachAllocOfNode calls fn for every allocation on the node until fn
// returns false, without collecting them (the node watch reads a changed
// node's allocations once per change; a slice per read is garbage).
func (s *Snapshot) EachAllocOfNode(nodeID string, fn func(*structs.Allocation) bool) {
	s.allocs.nodeGroup(nodeID).each(fn)
}

// NodeAllocDelta is what a node watch needs of a changed node without
// reading each of its allocations: it calls fn, in ID order, for the
// allocations on the node whose AllocModifyIndex is above since, and
// returns how many of the node's allocations were created at or before
// since (fewer than the caller holds: some were removed) and how many the
// node has. The indexes are kept in the node's group next to the IDs, so
// only the changed allocations are touched (a scan with EachAllocOfNode
// loads every allocation of the node: ~19% of the server in c1m-like).
func (s *Snapshot) NodeAllocDelta(nodeID string, since uint64, fn func(*structs.Allocation)) (held, total int) {
	return s.allocs.nodeGroup(nodeID).delta(since, fn)
}
