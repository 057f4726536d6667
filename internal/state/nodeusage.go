package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// tableNodeUsage holds, per node, the resources its live allocations use
// (those that are not Terminal). The scheduler and the plan applier read
// it instead of summing a node's allocations on every visit (Placer.usage
// was ~8% of the server's CPU in c1m-like, and a node's cost grew with its
// allocations). Every write transaction keeps it in step from the
// transaction's own changes (Store.write), so no write path can forget it.
// It is derived state: rebuilt on restore, not persisted.
const tableNodeUsage = "node_usage"

// nodeUsage is a row of tableNodeUsage.
type nodeUsage struct {
	NodeID string
	Used   structs.Resources
	Live   int // live allocations
}

func nodeUsageSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableNodeUsage, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "NodeID"}},
	}}
}

type usageDelta struct {
	used structs.Resources
	live int
}

func (d *usageDelta) add(a *structs.Allocation, sign int64) {
	if a == nil || a.Terminal() {
		return
	}
	d.used.CPU += sign * a.Resources.CPU
	d.used.MemoryMB += sign * a.Resources.MemoryMB
	d.live += int(sign)
}

// updateNodeUsage folds the transaction's allocation changes into the
// usage rows. The transaction must track changes.
func updateNodeUsage(txn *memdb.Txn) error {
	var deltas map[string]*usageDelta
	get := func(node string) *usageDelta {
		if deltas == nil {
			deltas = map[string]*usageDelta{}
		}
		d := deltas[node]
		if d == nil {
			d = &usageDelta{}
			deltas[node] = d
		}
		return d
	}
	for _, ch := range txn.Changes() {
		if ch.Table != TableAllocs {
			continue
		}
		if before, ok := ch.Before.(*structs.Allocation); ok && before != nil {
			get(before.NodeID).add(before, -1)
		}
		if after, ok := ch.After.(*structs.Allocation); ok && after != nil {
			get(after.NodeID).add(after, 1)
		}
	}
	for node, d := range deltas {
		if d.used.IsZero() && d.live == 0 {
			continue
		}
		if err := addNodeUsage(txn, node, *d); err != nil {
			return err
		}
	}
	return nil
}

func addNodeUsage(txn *memdb.Txn, node string, d usageDelta) error {
	row := &nodeUsage{NodeID: node}
	raw, err := txn.First(tableNodeUsage, "id", node)
	if err != nil {
		return fmt.Errorf("node usage of %s: %w", node, err)
	}
	if raw != nil {
		*row = *raw.(*nodeUsage)
	}
	row.Used = row.Used.Add(d.used)
	row.Live += d.live
	if row.Live == 0 && row.Used.IsZero() {
		if raw != nil {
			if err := txn.Delete(tableNodeUsage, raw); err != nil {
				return fmt.Errorf("node usage of %s: %w", node, err)
			}
		}
		return nil
	}
	if err := txn.Insert(tableNodeUsage, row); err != nil {
		return fmt.Errorf("node usage of %s: %w", node, err)
	}
	return nil
}

// rebuildNodeUsage fills the table from the allocations (restore).
func rebuildNodeUsage(txn *memdb.Txn) error {
	it, err := txn.Get(TableAllocs, "id")
	if err != nil {
		return err
	}
	deltas := map[string]*usageDelta{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*structs.Allocation)
		d := deltas[a.NodeID]
		if d == nil {
			d = &usageDelta{}
			deltas[a.NodeID] = d
		}
		d.add(a, 1)
	}
	for node, d := range deltas {
		if err := addNodeUsage(txn, node, *d); err != nil {
			return err
		}
	}
	return nil
}

// NodeUsage returns the resources the node's live (not Terminal)
// allocations use: the sum a scan of AllocsByNode would give, in O(1).
func (s *Snapshot) NodeUsage(nodeID string) structs.Resources {
	raw := s.first(nil, tableNodeUsage, "id", nodeID)
	if raw == nil {
		return structs.Resources{}
	}
	return raw.(*nodeUsage).Used
}
