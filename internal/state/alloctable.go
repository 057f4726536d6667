package state

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"

	"github.com/google/btree"

	"github.com/gantry-project/gantry/internal/structs"
)

// The allocation table.
//
// Allocations are the bulk of the state (a million at c1m scale) and the
// bulk of its writes (plans of a thousand placements, batches of thousands
// of agents' reports). In go-memdb each was a leaf in three radix indexes,
// every radix node and leaf had its own watch channel, and the commit of a
// big transaction walked every touched leaf to close them (docs/bench.md).
// This table keeps them in copy-on-write B-trees instead
// (github.com/google/btree, whose Clone is O(1) and whose writes copy only
// the nodes on the path they touch, once per clone):
//
//   - byID orders every allocation by ID (lookups, prefix lookups, the
//     ID-ordered listing, Persist);
//   - byNode and byJob map a node or job ID to an allocGroup: that node's
//     or job's allocations in their own B-tree, ordered by ID, plus (for
//     nodes) the resources the live ones use.
//
// A write transaction (allocTxn) clones the three outer trees on its first
// write and each group it touches on its first touch; the group records the
// transaction that owns it (owner), so later writes in the same transaction
// change it in place. Nothing that is not touched is copied or visited, and
// commit is publishing one pointer. A published allocTable is never
// modified, so a snapshot is that pointer.
//
// Watches are not in the data: channels exist only for keys somebody
// watches (allocWatches), and a commit closes those of the keys it touched.

// Degrees of the B-trees: a node holds up to 2*degree-1 items. Small nodes
// keep the copy a write makes small, but each node costs a header and a
// children slice, and a copy keeps the capacity of the node it copies:
// group trees of degree 16 rather than 8 hold ~70 B less per allocation
// (docs/bench.md, "Memory per allocation at 1M") at no measured cost in
// FSM or placement time.
const (
	idTreeDegree    = 16
	groupTreeDegree = 16
	outerTreeDegree = 16
)

// allocItem is an entry of an ID-ordered tree. The ID is held by value so
// lookups need no probe allocation; it shares the allocation's string.
// k holds the ID's first bytes, so most comparisons in a search read the
// tree node only, not the string bytes elsewhere in the heap (a cache miss
// each, ~20 per lookup in a million).
type allocItem struct {
	k  uint64
	id string
	a  *structs.Allocation
}

func mkAllocItem(id string, a *structs.Allocation) allocItem {
	return allocItem{k: keyPrefix(id), id: id, a: a}
}

func lessAllocItem(x, y allocItem) bool {
	if x.k != y.k {
		return x.k < y.k
	}
	return x.id < y.id
}

// keyPrefix returns s's first 8 bytes as a big-endian number, padded with
// zeros: for two strings, unequal prefixes order as the strings do.
func keyPrefix(s string) uint64 {
	var b [8]byte
	copy(b[:], s)
	return binary.BigEndian.Uint64(b[:])
}

// groupEntry is an entry of a group's tree, ordered by allocation ID. It
// keeps the allocation's create and server-side modify indexes next to the
// key, so NodeAllocDelta finds a node's changed allocations reading the
// tree's nodes only. It holds no ID string: a group is only searched with
// an allocation in hand, and k settles nearly every comparison.
type groupEntry struct {
	k           uint64
	a           *structs.Allocation
	create, mod uint64 // CreateIndex, AllocModifyIndex
}

func mkGroupEntry(a *structs.Allocation) groupEntry {
	return groupEntry{k: keyPrefix(a.ID), a: a, create: a.CreateIndex, mod: a.AllocModifyIndex}
}

func lessGroupEntry(x, y groupEntry) bool {
	if x.k != y.k {
		return x.k < y.k
	}
	return x.a.ID < y.a.ID
}

// allocGroup is one node's or one job's allocations.
type allocGroup struct {
	key    string
	allocs *btree.BTreeG[groupEntry]
	used   structs.Resources // live (not Terminal) allocations' use; node groups only
	owner  uint64            // the transaction that may modify it in place
}

// groupItem is an entry of byNode or byJob. Those trees are only looked
// up, never listed, so they are ordered by a hash of the key (h) first:
// node and job IDs are often names with long common prefixes ("sim-0-00123"),
// which a prefix of the key would not tell apart, and every comparison of
// a search would compare strings.
type groupItem struct {
	h   uint64
	key string
	g   *allocGroup
}

func mkGroupItem(key string, g *allocGroup) groupItem {
	return groupItem{h: keyHash(key), key: key, g: g}
}

func lessGroupItem(x, y groupItem) bool {
	if x.h != y.h {
		return x.h < y.h
	}
	return x.key < y.key
}

// keySeed seeds keyHash. The order of hashed trees is the process's own:
// nothing persisted or listed depends on it.
var keySeed = maphash.MakeSeed()

// keyHash is the hash that orders the trees that are only looked up.
func keyHash(s string) uint64 { return maphash.String(keySeed, s) }

// Free lists shared by all trees of one item type (go-memdb's writer is
// single; the lists are locked anyway). They only ever receive nodes a
// transaction created and dropped before publishing.
var (
	allocFreeList = btree.NewFreeListG[allocItem](256)
	groupFreeList = btree.NewFreeListG[groupItem](64)
	entryFreeList = btree.NewFreeListG[groupEntry](256)
)

func newGroupTree() *btree.BTreeG[groupEntry] {
	return btree.NewWithFreeListG(groupTreeDegree, lessGroupEntry, entryFreeList)
}

func newIDTree() *btree.BTreeG[allocItem] {
	return btree.NewWithFreeListG(idTreeDegree, lessAllocItem, allocFreeList)
}

func newOuterTree() *btree.BTreeG[groupItem] {
	return btree.NewWithFreeListG(outerTreeDegree, lessGroupItem, groupFreeList)
}

// allocTable is one immutable version of the allocations.
type allocTable struct {
	byID   *btree.BTreeG[allocItem]
	byNode *btree.BTreeG[groupItem]
	byJob  *btree.BTreeG[groupItem]
	// The node alloc index (nodeindex.go): per node, the index of the last
	// server-side change to its allocations, by node and by index (the
	// change feed, nodewatch.go). A node keeps its row when its last
	// allocation is purged.
	nodeIndex *btree.BTreeG[nodeIndexItem] // by node
	feed      *btree.BTreeG[nodeIndexItem] // by index, then node
	// nsUsed is, per namespace, what its live (not Terminal) allocations
	// hold (namespace.go); namespaces without any have no entry. Never
	// modified once published: a transaction copies it on its first
	// change (a few namespaces, and only placements and terminations
	// change it, never status reports of live allocations).
	nsUsed map[string]structs.Resources
}

// nodeIndexItem is a row of the node alloc index. h is the node's
// keyHash: the by-node tree is only looked up, so it is ordered by h first
// (as byNode).
type nodeIndexItem struct {
	h     uint64
	node  string
	index uint64
}

func mkNodeIndexItem(node string, index uint64) nodeIndexItem {
	return nodeIndexItem{h: keyHash(node), node: node, index: index}
}

func lessNodeIndexByNode(x, y nodeIndexItem) bool {
	if x.h != y.h {
		return x.h < y.h
	}
	return x.node < y.node
}

// lessNodeIndexByIndex orders the feed: by index, then (a plan bumps
// hundreds of nodes to one index) as the by-node tree.
func lessNodeIndexByIndex(x, y nodeIndexItem) bool {
	if x.index != y.index {
		return x.index < y.index
	}
	return lessNodeIndexByNode(x, y)
}

var nodeIndexFreeList = btree.NewFreeListG[nodeIndexItem](64)

func newAllocTable() *allocTable {
	return &allocTable{
		byID: newIDTree(), byNode: newOuterTree(), byJob: newOuterTree(),
		nodeIndex: btree.NewWithFreeListG(outerTreeDegree, lessNodeIndexByNode, nodeIndexFreeList),
		feed:      btree.NewWithFreeListG(outerTreeDegree, lessNodeIndexByIndex, nodeIndexFreeList),
	}
}

// nodeAllocIndex returns the node's row: its index and whether it has one.
func (t *allocTable) nodeAllocIndex(nodeID string) (uint64, bool) {
	it, ok := t.nodeIndex.Get(mkNodeIndexItem(nodeID, 0))
	return it.index, ok
}

// feedTop returns the highest index in the feed (0 if empty).
func (t *allocTable) feedTop() uint64 {
	it, _ := t.feed.Max()
	return it.index
}

// get returns the allocation with the ID, or nil.
func (t *allocTable) get(id string) *structs.Allocation {
	it, _ := t.byID.Get(mkAllocItem(id, nil))
	return it.a
}

func (t *allocTable) nodeGroup(nodeID string) *allocGroup {
	it, _ := t.byNode.Get(mkGroupItem(nodeID, nil))
	return it.g
}

func (t *allocTable) jobGroup(jobID string) *allocGroup {
	it, _ := t.byJob.Get(mkGroupItem(jobID, nil))
	return it.g
}

// len returns the number of allocations.
func (t *allocTable) len() int { return t.byID.Len() }

// each calls fn for every allocation in ID order until fn returns false.
func (t *allocTable) each(fn func(*structs.Allocation) bool) {
	t.byID.Ascend(func(it allocItem) bool { return fn(it.a) })
}

// eachWithPrefix calls fn for the allocations whose ID starts with prefix,
// in ID order, until fn returns false.
func (t *allocTable) eachWithPrefix(prefix string, fn func(*structs.Allocation) bool) {
	t.byID.AscendGreaterOrEqual(mkAllocItem(prefix, nil), func(it allocItem) bool {
		return strings.HasPrefix(it.id, prefix) && fn(it.a)
	})
}

// each calls fn for the group's allocations in ID order until fn returns
// false. A nil group has none.
func (g *allocGroup) each(fn func(*structs.Allocation) bool) {
	if g == nil {
		return
	}
	g.allocs.Ascend(func(e groupEntry) bool { return fn(e.a) })
}

// delta calls fn, in ID order, for the group's allocations whose
// AllocModifyIndex is above since, and counts the allocations created at
// or before since and all of them. Only the allocations passed to fn are
// read; the rest is the tree's own memory.
func (g *allocGroup) delta(since uint64, fn func(*structs.Allocation)) (held, total int) {
	if g == nil {
		return 0, 0
	}
	g.allocs.Ascend(func(e groupEntry) bool {
		if e.create <= since {
			held++
		}
		if e.mod > since {
			fn(e.a)
		}
		return true
	})
	return held, g.allocs.Len()
}

// list returns the group's allocations in ID order (nil if none).
func (g *allocGroup) list() []*structs.Allocation {
	if g == nil || g.allocs.Len() == 0 {
		return nil
	}
	out := make([]*structs.Allocation, 0, g.allocs.Len())
	g.allocs.Ascend(func(e groupEntry) bool {
		out = append(out, e.a)
		return true
	})
	return out
}

// watchKind says what a watched key names.
type watchKind uint8

const (
	watchTable     watchKind = iota // any change to any allocation
	watchID                         // one allocation
	watchNode                       // a node's allocations
	watchJob                        // a job's allocations
	watchNodeIndex                  // a node's row of the node alloc index
	watchFeed                       // any row of the node alloc index
	numWatchKinds
)

// allocTxn is a write transaction on the allocation table. It is used by
// one goroutine (the store's writer).
type allocTxn struct {
	base *allocTable
	t    *allocTable // nil until the first write
	seq  uint64      // ownership mark of this transaction, never 0
	// What the transaction touched, for the watches: allocation IDs (with
	// repeats) and the groups it copied or created (each once).
	ids    []string
	groups []watchKey
	bumped []string // nodes whose alloc index row moved
	// The group each kind (node, job) touched last, owned by this
	// transaction: a plan's allocations share one job and an agent's
	// reports one node, so most puts find their group here instead of
	// searching the outer tree.
	last [2]*allocGroup
	// nsOwned says t.nsUsed is this transaction's own copy.
	nsOwned bool
	// record keeps the allocations put in written (Store.
	// RecordAllocWrites); again says one was put twice.
	record  bool
	written []*structs.Allocation
	again   bool
}

// lastSlot returns the index of kind's entry in allocTxn.last.
func lastSlot(kind watchKind) int {
	if kind == watchJob {
		return 1
	}
	return 0
}

func newAllocTxn(base *allocTable, seq uint64) *allocTxn {
	return &allocTxn{base: base, seq: seq}
}

// view returns the table as the transaction sees it.
func (x *allocTxn) view() *allocTable {
	if x.t != nil {
		return x.t
	}
	return x.base
}

// changed reports whether the transaction wrote anything.
func (x *allocTxn) changed() bool { return x.t != nil }

// result returns the table to publish: the base if nothing was written.
func (x *allocTxn) result() *allocTable { return x.view() }

func (x *allocTxn) get(id string) *structs.Allocation { return x.view().get(id) }

func (x *allocTxn) mutable() *allocTable {
	if x.t == nil {
		b := x.base
		x.t = &allocTable{byID: b.byID.Clone(), byNode: b.byNode.Clone(), byJob: b.byJob.Clone(),
			nodeIndex: b.nodeIndex.Clone(), feed: b.feed.Clone(), nsUsed: b.nsUsed}
	}
	return x.t
}

// group returns the transaction's own copy of the node's or job's group,
// creating it if create is set; nil if it does not exist and create is not.
func (x *allocTxn) group(kind watchKind, key string, create bool) *allocGroup {
	if g := x.last[lastSlot(kind)]; g != nil && g.key == key {
		return g
	}
	g := x.findGroup(kind, key, create)
	if g != nil {
		x.last[lastSlot(kind)] = g
	}
	return g
}

// findGroup is group without the last-group shortcut.
func (x *allocTxn) findGroup(kind watchKind, key string, create bool) *allocGroup {
	t := x.mutable()
	outer := t.byNode
	if kind == watchJob {
		outer = t.byJob
	}
	it, ok := outer.Get(mkGroupItem(key, nil))
	if ok && it.g.owner == x.seq {
		return it.g
	}
	var g *allocGroup
	switch {
	case ok:
		c := *it.g
		c.allocs = it.g.allocs.Clone()
		c.owner = x.seq
		g = &c
	case create:
		g = &allocGroup{key: key, allocs: newGroupTree(), owner: x.seq}
	default:
		return nil
	}
	outer.ReplaceOrInsert(mkGroupItem(key, g))
	x.groups = append(x.groups, watchKey{kind: kind, key: key})
	return g
}

// dropIfEmpty removes an empty group from its outer tree.
func (x *allocTxn) dropIfEmpty(kind watchKind, g *allocGroup) {
	if g.allocs.Len() > 0 {
		return
	}
	outer := x.t.byNode
	if kind == watchJob {
		outer = x.t.byJob
	}
	outer.Delete(mkGroupItem(g.key, nil))
	if x.last[lastSlot(kind)] == g {
		x.last[lastSlot(kind)] = nil
	}
}

func addUsage(g *allocGroup, a *structs.Allocation, sign int64) {
	if a == nil || a.Terminal() {
		return
	}
	g.used.CPU += sign * a.Resources.CPU
	g.used.MemoryMB += sign * a.Resources.MemoryMB
}

// put inserts a or replaces the allocation with its ID. a must not be
// modified afterwards. Like go-memdb's indexes, it requires the node and
// job IDs.
func (x *allocTxn) put(a *structs.Allocation) error {
	if a.NodeID == "" || a.JobID == "" {
		return fmt.Errorf("alloc %s: node ID and job ID are required", a.ID)
	}
	t := x.mutable()
	item := mkAllocItem(a.ID, a)
	old, _ := t.byID.ReplaceOrInsert(item)
	x.ids = append(x.ids, a.ID)
	if x.record {
		x.written = append(x.written, a)
		x.again = x.again || old.a != nil && old.a.ModifyIndex == a.ModifyIndex
	}
	x.link(watchNode, old.a, item)
	x.link(watchJob, old.a, item)
	if !sameUsage(old.a, a) {
		x.addNamespaceUsage(old.a, -1)
		x.addNamespaceUsage(a, 1)
	}
	return nil
}

// sameUsage reports whether two versions of an allocation hold the same
// in the same namespace (an agent's report on a live allocation), which
// leaves the namespace usage as it is.
func sameUsage(old, cur *structs.Allocation) bool {
	if old == nil {
		return cur.Terminal()
	}
	if old.Terminal() || cur.Terminal() {
		return old.Terminal() == cur.Terminal()
	}
	return old.Resources == cur.Resources && old.JobID == cur.JobID
}

// addNamespaceUsage adds (sign 1) or takes off (sign -1) what a live
// allocation holds to its namespace's usage.
func (x *allocTxn) addNamespaceUsage(a *structs.Allocation, sign int64) {
	if a == nil || a.Terminal() {
		return
	}
	t := x.mutable()
	if !x.nsOwned {
		m := make(map[string]structs.Resources, len(t.nsUsed)+1)
		for k, v := range t.nsUsed {
			m[k] = v
		}
		t.nsUsed, x.nsOwned = m, true
	}
	ns := structs.JobNamespace(a.JobID)
	r := t.nsUsed[ns]
	r.CPU += sign * a.Resources.CPU
	r.MemoryMB += sign * a.Resources.MemoryMB
	if r.IsZero() {
		delete(t.nsUsed, ns)
	} else {
		t.nsUsed[ns] = r
	}
}

func groupKey(kind watchKind, a *structs.Allocation) string {
	if kind == watchNode {
		return a.NodeID
	}
	return a.JobID
}

// link puts item into its node or job group, taking prev (the version it
// replaces, or nil) out of its group first if that is another one.
func (x *allocTxn) link(kind watchKind, prev *structs.Allocation, item allocItem) {
	key := groupKey(kind, item.a)
	if prev != nil && groupKey(kind, prev) != key {
		x.unlink(kind, prev)
		prev = nil
	}
	g := x.group(kind, key, true)
	g.allocs.ReplaceOrInsert(mkGroupEntry(item.a))
	if kind == watchNode {
		addUsage(g, prev, -1)
		addUsage(g, item.a, 1)
	}
}

// unlink takes a out of its node or job group.
func (x *allocTxn) unlink(kind watchKind, a *structs.Allocation) {
	g := x.group(kind, groupKey(kind, a), false)
	if g == nil {
		return
	}
	if _, ok := g.allocs.Delete(groupEntry{k: keyPrefix(a.ID), a: a}); ok && kind == watchNode {
		addUsage(g, a, -1)
	}
	x.dropIfEmpty(kind, g)
}

// remove deletes the allocation with the ID; it reports whether there was
// one.
func (x *allocTxn) remove(id string) bool {
	old, had := x.view().byID.Get(mkAllocItem(id, nil))
	if !had {
		return false
	}
	x.mutable().byID.Delete(old)
	x.ids = append(x.ids, id)
	x.unlink(watchNode, old.a)
	x.unlink(watchJob, old.a)
	x.addNamespaceUsage(old.a, -1)
	return true
}

// bumpNode sets the node's alloc index row to index (a server-side change
// to its allocations); a repeat in the same transaction costs a lookup.
func (x *allocTxn) bumpNode(nodeID string, index uint64) {
	if nodeID == "" {
		return
	}
	row := mkNodeIndexItem(nodeID, index)
	old, had := x.view().nodeIndex.Get(row)
	if had && old.index == index {
		return
	}
	t := x.mutable()
	t.nodeIndex.ReplaceOrInsert(row)
	if had {
		t.feed.Delete(old)
	}
	t.feed.ReplaceOrInsert(row)
	x.bumped = append(x.bumped, nodeID)
}

// allocWatches hands out the channels of watched allocation keys. A channel
// is made only when somebody watches the key; a commit closes (and
// forgets) the channels of the keys it touched.
//
// The check that a key did not change between the reader's snapshot and
// the registration, and the committer's close, both run under mu, and the
// committer publishes its table before taking mu: a registration either
// sees the new table (and compares the key in both versions) or happens
// before the close.
//
// A channel stays until its key changes, so keys that never change (an ID
// nobody will place, asked for in a loop) would pile up: past
// maxWatchChans the registry closes every channel and starts over. A
// blocking query takes the wake-up as spurious, re-reads and registers
// again.
type allocWatches struct {
	mu    sync.Mutex
	chans map[watchKey]chan struct{} // guarded by mu
	count [numWatchKinds]int         // guarded by mu: len(chans) by kind
}

// maxWatchChans bounds the channels of allocWatches.
const maxWatchChans = 1 << 18

type watchKey struct {
	kind watchKind
	key  string
}

// closedCh is added to a watch set for a key that already changed.
var closedCh = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// register returns the channel for the key, or closedCh if the key changed
// between snap and cur (the current table).
func (w *allocWatches) register(snap *allocTable, cur func() *allocTable, kind watchKind, key string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := cur(); c != snap && keyChanged(snap, c, kind, key) {
		return closedCh
	}
	k := watchKey{kind: kind, key: key}
	ch := w.chans[k]
	if ch == nil {
		if len(w.chans) >= maxWatchChans {
			w.closeAll()
		}
		if w.chans == nil {
			w.chans = map[watchKey]chan struct{}{}
		}
		ch = make(chan struct{})
		w.chans[k] = ch
		w.count[kind]++
	}
	return ch
}

// keyChanged reports whether what the key names differs between two
// versions of the table (conservatively: a group touched without a net
// change counts as changed).
func keyChanged(old, cur *allocTable, kind watchKind, key string) bool {
	switch kind {
	case watchID:
		return old.get(key) != cur.get(key)
	case watchNode:
		return old.nodeGroup(key) != cur.nodeGroup(key)
	case watchJob:
		return old.jobGroup(key) != cur.jobGroup(key)
	case watchNodeIndex:
		a, _ := old.nodeAllocIndex(key)
		b, _ := cur.nodeAllocIndex(key)
		return a != b
	case watchFeed:
		return old.feedTop() != cur.feedTop()
	}
	return true
}

// notify closes the channels of the keys x touched. It is called after x's
// table is published.
func (w *allocWatches) notify(x *allocTxn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.chans) == 0 {
		return
	}
	w.fire(watchKey{kind: watchTable})
	if w.count[watchID] > 0 {
		for _, id := range x.ids {
			w.fire(watchKey{kind: watchID, key: id})
		}
	}
	if w.count[watchNode]+w.count[watchJob] > 0 {
		for _, g := range x.groups {
			w.fire(g)
		}
	}
	if len(x.bumped) > 0 {
		w.fire(watchKey{kind: watchFeed})
		if w.count[watchNodeIndex] > 0 {
			for _, n := range x.bumped {
				w.fire(watchKey{kind: watchNodeIndex, key: n})
			}
		}
	}
}

func (w *allocWatches) fire(k watchKey) {
	if ch, ok := w.chans[k]; ok {
		close(ch)
		delete(w.chans, k)
		w.count[k.kind]--
	}
}

// reset closes every channel (Restore replaced the table).
func (w *allocWatches) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closeAll()
}

func (w *allocWatches) closeAll() {
	for _, ch := range w.chans {
		close(ch)
	}
	w.chans = nil
	w.count = [numWatchKinds]int{}
}
