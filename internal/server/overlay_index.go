package server

import (
	iradix "github.com/hashicorp/go-immutable-radix"

	"github.com/gantry-project/gantry/internal/structs"
)

// overlayIndex finds the uncommitted plans that touch a node or an
// allocation without visiting every plan in flight (with hundreds of plans
// in flight, scanning them per node visit was ~18% of the server's CPU in
// c1m-like). It is immutable: a view keeps the index it was built with,
// and the pipeline replaces its index on every change.
type overlayIndex struct {
	byNode  *iradix.Tree // node ID -> []*overlayEntry, in check order
	byAlloc *iradix.Tree // alloc ID -> []allocVersion, in check order
	adds    *iradix.Tree // node ID -> structs.Resources the entries' new placements add
	stops   *iradix.Tree // node ID -> []*overlayEntry that stop or evict there
}

// allocVersion is one uncommitted plan's version of an allocation.
type allocVersion struct {
	entry *overlayEntry
	alloc *structs.Allocation
}

func newOverlayIndex() overlayIndex {
	return overlayIndex{byNode: iradix.New(), byAlloc: iradix.New(), adds: iradix.New(), stops: iradix.New()}
}

// add returns the index with e appended.
func (x overlayIndex) add(e *overlayEntry) overlayIndex {
	nt := x.byNode.Txn()
	for node := range e.byNode {
		old, _ := nt.Get([]byte(node))
		list, _ := old.([]*overlayEntry)
		nt.Insert([]byte(node), append(list[:len(list):len(list)], e))
	}
	at := x.byAlloc.Txn()
	for id, a := range e.allocs {
		old, _ := at.Get([]byte(id))
		list, _ := old.([]allocVersion)
		at.Insert([]byte(id), append(list[:len(list):len(list)], allocVersion{entry: e, alloc: a}))
	}
	st := x.stops.Txn()
	for node := range e.stops {
		old, _ := st.Get([]byte(node))
		list, _ := old.([]*overlayEntry)
		st.Insert([]byte(node), append(list[:len(list):len(list)], e))
	}
	return overlayIndex{byNode: nt.CommitOnly(), byAlloc: at.CommitOnly(), adds: addUsage(x.adds, e, 1), stops: st.CommitOnly()}
}

// addUsage returns t with e's added usage per node added (sign 1) or
// taken away (-1).
func addUsage(t *iradix.Tree, e *overlayEntry, sign int64) *iradix.Tree {
	if len(e.adds) == 0 {
		return t
	}
	tx := t.Txn()
	for node, r := range e.adds {
		old, _ := tx.Get([]byte(node))
		sum, _ := old.(structs.Resources)
		sum.CPU += sign * r.CPU
		sum.MemoryMB += sign * r.MemoryMB
		if sum.IsZero() {
			tx.Delete([]byte(node))
		} else {
			tx.Insert([]byte(node), sum)
		}
	}
	return tx.CommitOnly()
}

// remove returns the index without the entries in gone.
func (x overlayIndex) remove(gone map[*overlayEntry]bool) overlayIndex {
	nt := x.byNode.Txn()
	at := x.byAlloc.Txn()
	st := x.stops.Txn()
	adds := x.adds
	for e := range gone {
		adds = addUsage(adds, e, -1)
		for node := range e.stops {
			dropEntries(st, node, gone)
		}
		for node := range e.byNode {
			dropEntries(nt, node, gone)
		}
		for id := range e.allocs {
			old, _ := at.Get([]byte(id))
			list, _ := old.([]allocVersion)
			var keep []allocVersion
			for _, v := range list {
				if !gone[v.entry] {
					keep = append(keep, v)
				}
			}
			if len(keep) == 0 {
				at.Delete([]byte(id))
			} else {
				at.Insert([]byte(id), keep)
			}
		}
	}
	return overlayIndex{byNode: nt.CommitOnly(), byAlloc: at.CommitOnly(), adds: adds, stops: st.CommitOnly()}
}

// stopEntries returns the entries that stop or evict on a node.
func (x overlayIndex) stopEntries(node string) []*overlayEntry {
	if x.stops == nil {
		return nil
	}
	v, _ := x.stops.Get([]byte(node))
	list, _ := v.([]*overlayEntry)
	return list
}

// added returns what the entries' new placements add to a node.
func (x overlayIndex) added(node string) structs.Resources {
	if x.adds == nil {
		return structs.Resources{}
	}
	v, _ := x.adds.Get([]byte(node))
	r, _ := v.(structs.Resources)
	return r
}

// nodeEntries returns the entries that touch a node, in check order.
func (x overlayIndex) nodeEntries(node string) []*overlayEntry {
	if x.byNode == nil {
		return nil
	}
	v, _ := x.byNode.Get([]byte(node))
	list, _ := v.([]*overlayEntry)
	return list
}

// latest returns the newest uncommitted version of an allocation, or nil.
func (x overlayIndex) latest(id string) *structs.Allocation {
	if x.byAlloc == nil {
		return nil
	}
	v, _ := x.byAlloc.Get([]byte(id))
	list, _ := v.([]allocVersion)
	if len(list) == 0 {
		return nil
	}
	return list[len(list)-1].alloc
}

// dropEntries removes the entries in gone from the list kept under node,
// deleting the key when nothing is left.
func dropEntries(t *iradix.Txn, node string, gone map[*overlayEntry]bool) {
	old, _ := t.Get([]byte(node))
	list, _ := old.([]*overlayEntry)
	var keep []*overlayEntry
	for _, o := range list {
		if !gone[o] {
			keep = append(keep, o)
		}
	}
	if len(keep) == 0 {
		t.Delete([]byte(node))
	} else {
		t.Insert([]byte(node), keep)
	}
}
