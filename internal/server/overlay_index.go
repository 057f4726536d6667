package server

import (
	"hash/maphash"

	"github.com/google/btree"

	"github.com/gantry-project/gantry/internal/structs"
)

// overlayIndex finds the uncommitted plans that touch a node or an
// allocation without visiting every plan in flight (with hundreds of plans
// in flight, scanning them per node visit was ~18% of the server's CPU in
// c1m-like). It is immutable: a view keeps the index it was built with,
// and the pipeline replaces its index on every change.
//
// Both maps are copy-on-write B-trees (google/btree's Clone): adding a
// plan copies only the tree nodes it touches, once per plan, and a view
// reads its version without locks. They replaced go-immutable-radix
// trees, whose every new node carries a watch channel and whose
// transactions track written nodes in an LRU: ~50 heap allocations per
// placement for upkeep alone, against ~2 now (docs/bench.md).
type overlayIndex struct {
	nodes  *btree.BTreeG[nodeItem]  // by node ID
	allocs *btree.BTreeG[allocItem] // by allocation ID
	// nsAdds is what the entries' new placements (not Terminal) add per
	// namespace, for the quota checks; a few namespaces, so copied whole
	// on every change, and never modified once built.
	nsAdds map[string]structs.Resources
}

// nodeItem and allocItem are the trees' items: a key and a pointer, by
// value so a lookup's key does not escape to the heap. The trees are only
// looked up, never listed, so they are ordered by a hash of the key (h)
// first: a search compares integers, and strings only to confirm the item
// it lands on (node IDs are often names with long common prefixes, which
// made every comparison a string compare).
type nodeItem struct {
	h  uint64
	id string
	n  *nodeOverlay
}

type allocItem struct {
	h  uint64
	id string
	a  *allocOverlay
}

var overlaySeed = maphash.MakeSeed()

func mkNodeItem(id string, n *nodeOverlay) nodeItem {
	return nodeItem{h: maphash.String(overlaySeed, id), id: id, n: n}
}

func mkAllocItem(id string, a *allocOverlay) allocItem {
	return allocItem{h: maphash.String(overlaySeed, id), id: id, a: a}
}

func lessNodeItem(x, y nodeItem) bool {
	if x.h != y.h {
		return x.h < y.h
	}
	return x.id < y.id
}

func lessAllocItem(x, y allocItem) bool {
	if x.h != y.h {
		return x.h < y.h
	}
	return x.id < y.id
}

// nodeOverlay is what the uncommitted plans do on one node. It is never
// modified once in a tree: a change inserts a new one.
type nodeOverlay struct {
	id      string
	entries []*overlayEntry   // entries touching the node, in check order
	stops   []*overlayEntry   // the entries among them that stop or evict there
	adds    structs.Resources // what their new placements (not Terminal) add
}

// allocOverlay holds the uncommitted plans' versions of one allocation, in
// check order (nearly always one). Never modified once in a tree.
type allocOverlay struct {
	id    string
	first allocVersion
	more  []allocVersion
}

// allocVersion is one uncommitted plan's version of an allocation.
type allocVersion struct {
	entry *overlayEntry
	alloc *structs.Allocation
}

func (a *allocOverlay) latest() *structs.Allocation {
	if n := len(a.more); n > 0 {
		return a.more[n-1].alloc
	}
	return a.first.alloc
}

// each calls f for every version, oldest first.
func (a *allocOverlay) each(f func(allocVersion)) {
	f(a.first)
	for _, v := range a.more {
		f(v)
	}
}

// overlayDegree is the B-trees' degree: nodes of up to 63 items, so a
// copy-on-write copy of a tree node stays ~1.5 KB.
const overlayDegree = 32

func newOverlayIndex() overlayIndex {
	return overlayIndex{
		nodes:  btree.NewG(overlayDegree, lessNodeItem),
		allocs: btree.NewG(overlayDegree, lessAllocItem),
	}
}

// indexed reports whether the index was built (views built by hand in
// tests may have none).
func (x overlayIndex) indexed() bool { return x.nodes != nil }

func (x overlayIndex) node(id string) *nodeOverlay {
	if x.nodes == nil {
		return nil
	}
	it, _ := x.nodes.Get(mkNodeItem(id, nil))
	return it.n
}

func (x overlayIndex) alloc(id string) *allocOverlay {
	if x.allocs == nil {
		return nil
	}
	it, _ := x.allocs.Get(mkAllocItem(id, nil))
	return it.a
}

// add returns the index with e appended.
func (x overlayIndex) add(e *overlayEntry) overlayIndex {
	if !x.indexed() {
		x = newOverlayIndex()
	}
	out := overlayIndex{nodes: x.nodes.Clone(), allocs: x.allocs.Clone(), nsAdds: addNamespaces(x.nsAdds, e.nsAdds, 1)}
	for id, part := range e.nodes {
		n := &nodeOverlay{id: id}
		if old := out.node(id); old != nil {
			*n = *old
		}
		n.entries = append(n.entries[:len(n.entries):len(n.entries)], e)
		if part.stops {
			n.stops = append(n.stops[:len(n.stops):len(n.stops)], e)
		}
		n.adds = n.adds.Add(part.adds)
		out.nodes.ReplaceOrInsert(mkNodeItem(id, n))
	}
	for _, a := range e.allocs {
		// One descent when the allocation is new to the overlay (nearly
		// always); a second to put back a merged item otherwise.
		v := allocVersion{entry: e, alloc: a}
		old, found := out.allocs.ReplaceOrInsert(mkAllocItem(a.ID, &allocOverlay{id: a.ID, first: v}))
		if !found {
			continue
		}
		n := *old.a
		n.more = append(n.more[:len(n.more):len(n.more)], v)
		out.allocs.ReplaceOrInsert(mkAllocItem(a.ID, &n))
	}
	return out
}

// remove returns the index without the entries in gone.
func (x overlayIndex) remove(gone map[*overlayEntry]bool) overlayIndex {
	if !x.indexed() {
		return x
	}
	out := overlayIndex{nodes: x.nodes.Clone(), allocs: x.allocs.Clone(), nsAdds: x.nsAdds}
	for e := range gone {
		out.nsAdds = addNamespaces(out.nsAdds, e.nsAdds, -1)
		for id, part := range e.nodes {
			old := out.node(id)
			if old == nil {
				continue // dropped with another gone entry's last visit
			}
			// Every gone entry leaves the lists now; each takes off its
			// own adds on its own visit.
			n := &nodeOverlay{id: id, adds: old.adds.Sub(part.adds)}
			for _, o := range old.entries {
				if !gone[o] {
					n.entries = append(n.entries, o)
				}
			}
			if len(n.entries) == 0 {
				out.nodes.Delete(mkNodeItem(id, nil))
				continue
			}
			for _, o := range old.stops {
				if !gone[o] {
					n.stops = append(n.stops, o)
				}
			}
			out.nodes.ReplaceOrInsert(mkNodeItem(id, n))
		}
		for _, a := range e.allocs {
			old := out.alloc(a.ID)
			if old == nil {
				continue
			}
			var keep []allocVersion
			old.each(func(v allocVersion) {
				if !gone[v.entry] {
					keep = append(keep, v)
				}
			})
			if len(keep) == 0 {
				out.allocs.Delete(mkAllocItem(a.ID, nil))
				continue
			}
			out.allocs.ReplaceOrInsert(mkAllocItem(a.ID, &allocOverlay{id: a.ID, first: keep[0], more: keep[1:]}))
		}
	}
	return out
}

// addNamespaces returns base with adds added (sign 1) or taken off (-1),
// as a new map when adds has anything (base is shared by views); zero
// rows are dropped.
func addNamespaces(base, adds map[string]structs.Resources, sign int64) map[string]structs.Resources {
	if len(adds) == 0 {
		return base
	}
	out := make(map[string]structs.Resources, len(base)+len(adds))
	for ns, r := range base {
		out[ns] = r
	}
	for ns, r := range adds {
		v := out[ns]
		v.CPU += sign * r.CPU
		v.MemoryMB += sign * r.MemoryMB
		if v.IsZero() {
			delete(out, ns)
		} else {
			out[ns] = v
		}
	}
	return out
}

// nodeEntries returns the entries that touch a node, in check order.
func (x overlayIndex) nodeEntries(node string) []*overlayEntry {
	if n := x.node(node); n != nil {
		return n.entries
	}
	return nil
}

// latest returns the newest uncommitted version of an allocation, or nil.
func (x overlayIndex) latest(id string) *structs.Allocation {
	if a := x.alloc(id); a != nil {
		return a.latest()
	}
	return nil
}

// placed reports whether an uncommitted entry places the allocation (so
// its resources are in the node's added usage).
func (x overlayIndex) placed(id string) bool {
	a := x.alloc(id)
	if a == nil {
		return false
	}
	found := false
	a.each(func(v allocVersion) {
		if isPlacement(v.alloc) && !v.alloc.Terminal() {
			found = true
		}
	})
	return found
}
