package state

import "github.com/gantry-project/gantry/internal/structs"

// Node usage: each node's group in the allocation table (alloctable.go)
// carries the resources its live allocations use (those that are not
// Terminal). The scheduler and the plan applier read it instead of summing
// a node's allocations on every visit (Placer.usage was ~8% of the server's
// CPU in c1m-like, and a node's cost grew with its allocations). The
// table's writes keep it in step (allocTxn.link and unlink), so no write
// path can forget it; it is rebuilt with the table on restore, not
// persisted.

// NodeUsage returns the resources the node's live (not Terminal)
// allocations use: the sum a scan of AllocsByNode would give, in O(log n).
func (s *Snapshot) NodeUsage(nodeID string) structs.Resources {
	if g := s.allocs.nodeGroup(nodeID); g != nil {
		return g.used
	}
	return structs.Resources{}
}
