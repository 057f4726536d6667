package keyspace

import "unsafe"

// listNodeMax is the most elements a node of a list holds.
const listNodeMax = 128

// listNodeBytes is the most bytes of elements a node holds (Redis's
// list-max-listpack-size -2, 8 KB); an element bigger than that gets a
// node of its own. A variable so tests can lower it.
var listNodeBytes = 8 << 10

// deque is a list too big for the packed form (List): a deque of nodes,
// close to Redis's quicklist. A node keeps up to listNodeMax elements
// back to back in one byte slice, and per element only where it is (no
// pointer): a million elements are a few thousand heap objects, so the GC
// neither marks an object per element nor scans a pointer per element,
// and a push copies the value into its node instead of allocating it.
//
// An element handed out (At, PopFront, PopBack) aliases its node's bytes
// and stays valid and unchanged for its holder: a node's data below its
// length is never written again (see listNode). Pushes and pops at both
// ends are O(1) amortised; access by index walks the nodes by their
// counts from the nearer end or from the last position found, so a
// sequential walk (LRANGE, LPOS, DUMP) is O(1) an element.
type deque struct {
	nodes []*listNode // live: nodes[nlo:]; none is empty
	nlo   int
	n     int // elements
	live  int // bytes of the elements
	mem   int // footprint of the nodes (Memory), a running sum
	// cursor: the last node located, nodes[ci], whose first element is
	// element cs; valid while cok (every change of counts clears it)
	ci, cs int
	cok    bool
}

// listNode holds its elements' bytes in data and their places in items.
// The bytes of data below len(data) are never written again: appends
// write past len(data), compaction copies into a new slice, data is never
// shortened. items is the node's own and rewritten freely.
type listNode struct {
	items   []listItem // live: items[lo:]
	lo      int
	data    []byte
	garbage int // bytes of data no live item refers to (popped, replaced)
}

type listItem struct{ off, n uint32 }

// listItemSize is the size of a listItem; listNodeCost the node's header
// and its slot in nodes; dequeCost the deque's header.
const (
	listItemSize = 8
	listNodeCost = 64 + 8
	dequeCost    = int(unsafe.Sizeof(deque{}))
)

func (nd *listNode) count() int { return len(nd.items) - nd.lo }

// bytes returns the bytes of data the live items refer to.
func (nd *listNode) bytes() int { return len(nd.data) - nd.garbage }

func (nd *listNode) footprint() int {
	return listNodeCost + cap(nd.items)*listItemSize + cap(nd.data)
}

// at returns element j of the node, its capacity clipped so that a
// holder's append cannot write into the node.
func (nd *listNode) at(j int) []byte {
	it := nd.items[nd.lo+j]
	end := it.off + it.n
	return nd.data[it.off:end:end]
}

// fits reports whether an element of size bytes can join the node; an
// empty one (a new list's own) takes any.
func (nd *listNode) fits(size int) bool {
	return nd.count() == 0 || nd.count() < listNodeMax && nd.bytes()+size <= listNodeBytes
}

// add copies v into data and returns its item (not yet in items). When
// data is full and half of it is garbage it compacts rather than grows.
func (nd *listNode) add(v []byte) listItem {
	if len(nd.data)+len(v) > cap(nd.data) && nd.garbage > 0 && 2*nd.garbage >= len(nd.data) {
		need := nd.bytes() + len(v)
		nd.compact(max(need, min(2*need, listNodeBytes)))
	}
	off := len(nd.data)
	nd.data = append(nd.data, v...)
	return listItem{off: uint32(off), n: uint32(len(v))}
}

// compact copies the live elements into a new slice of capacity size.
func (nd *listNode) compact(size int) {
	data := make([]byte, 0, max(size, nd.bytes()))
	for i := nd.lo; i < len(nd.items); i++ {
		it := &nd.items[i]
		off := len(data)
		data = append(data, nd.data[it.off:it.off+it.n]...)
		it.off = uint32(off)
	}
	nd.data, nd.garbage = data, 0
}

// tidy compacts a node that is mostly garbage, so that elements removed
// from its middle or ends do not keep their bytes.
func (nd *listNode) tidy() {
	if nd.garbage > 64 && nd.garbage > nd.bytes() {
		nd.compact(nd.bytes())
	}
}

// room makes room for one more element at the front (front) or back of
// s[lo:] and returns the new s and lo. A slice full at the wanted end is
// re-centred in place when it has room enough, else copied into one
// twice the live length, so both ends get room for half the live
// elements again: O(1) amortised at either end, and a queue (push at
// one end, pop at the other) does not grow it.
func room[T any](s []T, lo int, front bool) ([]T, int) {
	if front && lo > 0 || !front && (len(s) < cap(s) || 4*lo < cap(s)) {
		return s, lo // room, or little dead room at the front: append grows s
	}
	n := len(s) - lo
	arr, inPlace := s[:cap(s)], 2*n+2 <= cap(s)
	if !inPlace {
		arr = make([]T, max(8, 2*n+2))
	}
	nlo := (len(arr) - n) / 2
	copy(arr[nlo:], s[lo:])
	if inPlace { // drop what is left behind
		clear(arr[:nlo])
		clear(arr[nlo+n:])
	}
	return arr[:nlo+n], nlo
}

func (nd *listNode) pushItemBack(it listItem) {
	nd.items, nd.lo = room(nd.items, nd.lo, false)
	nd.items = append(nd.items, it)
}

func (nd *listNode) pushItemFront(it listItem) {
	nd.items, nd.lo = room(nd.items, nd.lo, true)
	nd.lo--
	nd.items[nd.lo] = it
}

// newListNode returns an empty node sized after its neighbour nb (nil for
// none) for an element of size bytes; front says it grows at its front.
func newListNode(nb *listNode, size int, front bool) *listNode {
	items, data := 0, size
	if nb != nil {
		items = max(nb.count(), 1)
		data = max(size, min(nb.bytes(), listNodeBytes))
	}
	nd := &listNode{data: make([]byte, 0, data)}
	if items > 0 {
		nd.items = make([]listItem, 0, items)
		if front {
			nd.items, nd.lo = nd.items[:items], items
		}
	}
	return nd
}

// packNodes copies elems into new nodes, each as full as the limits let it.
func packNodes(elems [][]byte) []*listNode {
	var out []*listNode
	var nd *listNode
	for i, v := range elems {
		if nd == nil || !nd.fits(len(v)) {
			count, size := 0, 0
			for _, w := range elems[i:] {
				if count == listNodeMax || count > 0 && size+len(w) > listNodeBytes {
					break
				}
				count++
				size += len(w)
			}
			nd = &listNode{items: make([]listItem, 0, count), data: make([]byte, 0, size)}
			out = append(out, nd)
		}
		nd.items = append(nd.items, nd.add(v))
	}
	return out
}

// Nodes returns the number of nodes.
func (l *deque) Nodes() int { return len(l.nodes) - l.nlo }

func (l *deque) first() *listNode { return l.nodes[l.nlo] }
func (l *deque) last() *listNode  { return l.nodes[len(l.nodes)-1] }

// locate returns the node holding element i (0 <= i < len), its index in
// nodes and i's index in it.
func (l *deque) locate(i int) (*listNode, int, int) {
	if nd := l.first(); i < nd.count() {
		return nd, l.nlo, i
	}
	if nd := l.last(); i >= l.n-nd.count() {
		return nd, len(l.nodes) - 1, i - (l.n - nd.count())
	}
	// walk from the nearest of the front, the back and the cursor
	k, s := l.nlo, 0
	if l.n-i < i {
		k, s = len(l.nodes)-1, l.n-l.last().count()
	}
	if l.cok && abs(i-l.cs) < abs(i-s) {
		k, s = l.ci, l.cs
	}
	for i < s {
		k--
		s -= l.nodes[k].count()
	}
	for i >= s+l.nodes[k].count() {
		s += l.nodes[k].count()
		k++
	}
	l.ci, l.cs, l.cok = k, s, true
	return l.nodes[k], k, i - s
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Set replaces element i with a copy of v.
func (l *deque) Set(i int, v []byte) {
	nd, k, j := l.locate(i)
	old := nd.at(j)
	l.live += len(v) - len(old)
	if nd.count() > 1 && nd.bytes()-len(old)+len(v) > listNodeBytes {
		elems := l.elems(nd)
		elems[j] = v
		l.replaceNode(k, elems)
		return
	}
	before := nd.footprint()
	it := nd.add(v)
	nd.items[nd.lo+j] = it
	nd.garbage += len(old)
	nd.tidy()
	l.mem += nd.footprint() - before
}

// elems returns the node's elements (aliasing its data).
func (l *deque) elems(nd *listNode) [][]byte {
	out := make([][]byte, nd.count(), nd.count()+1)
	for j := range out {
		out[j] = nd.at(j)
	}
	return out
}

// replaceNode replaces nodes[k] with new nodes holding copies of elems.
func (l *deque) replaceNode(k int, elems [][]byte) {
	l.mem -= l.nodes[k].footprint()
	nn := packNodes(elems)
	for _, nd := range nn {
		l.mem += nd.footprint()
	}
	l.mem -= cap(l.nodes) * 8
	l.nodes = append(l.nodes[:k], append(nn, l.nodes[k+1:]...)...)
	l.mem += cap(l.nodes) * 8
	l.cok = false
}

func (l *deque) pushNode(nd *listNode, front bool) {
	l.mem -= cap(l.nodes) * 8
	l.nodes, l.nlo = room(l.nodes, l.nlo, front)
	if front {
		l.nlo--
		l.nodes[l.nlo] = nd
	} else {
		l.nodes = append(l.nodes, nd)
	}
	l.mem += cap(l.nodes)*8 + nd.footprint()
}

// dropNode removes nodes[k], which is empty or dropped whole.
func (l *deque) dropNode(k int) {
	l.mem -= l.nodes[k].footprint()
	switch k {
	case l.nlo:
		l.nodes[k] = nil
		l.nlo++
	case len(l.nodes) - 1:
		l.nodes[k] = nil
		l.nodes = l.nodes[:k]
	default:
		copy(l.nodes[k:], l.nodes[k+1:])
		l.nodes[len(l.nodes)-1] = nil
		l.nodes = l.nodes[:len(l.nodes)-1]
	}
	if l.nlo == len(l.nodes) {
		l.nodes, l.nlo = l.nodes[:0], 0
	}
	l.cok = false
}

// InsertAt inserts a copy of v before position i (0 < i < len).
func (l *deque) InsertAt(i int, v []byte) {
	nd, k, j := l.locate(i)
	l.n++
	l.live += len(v)
	l.cok = false
	if !nd.fits(len(v)) { // split the node around the new element
		elems := l.elems(nd)
		elems = append(elems[:j+1], elems[j:]...)
		elems[j] = v
		l.replaceNode(k, elems)
		return
	}
	before := nd.footprint()
	it := nd.add(v)
	nd.items, nd.lo = room(nd.items, nd.lo, false)
	nd.items = append(nd.items, listItem{})
	copy(nd.items[nd.lo+j+1:], nd.items[nd.lo+j:])
	nd.items[nd.lo+j] = it
	l.mem += nd.footprint() - before
}

// Remove removes up to count elements equal to v, from the head when
// count > 0, from the tail when count < 0, all when count is 0 (LREM);
// it returns how many it removed.
func (l *deque) Remove(v []byte, count int) int {
	budget := count
	if count < 0 {
		budget = -count
	}
	removed := 0
	changed := false
	for step := 0; step < l.Nodes(); step++ {
		k := l.nlo + step
		if count < 0 {
			k = len(l.nodes) - 1 - step
		}
		nd := l.nodes[k]
		before := nd.footprint()
		r := nd.remove(v, count < 0, budget-removed, count == 0)
		if r == 0 {
			continue
		}
		removed += r
		changed = true
		nd.tidy()
		l.mem += nd.footprint() - before
		if count != 0 && removed == budget {
			break
		}
	}
	if changed {
		l.n -= removed
		l.live -= removed * len(v)
		l.cok = false
		l.repack()
	}
	return removed
}

// remove removes up to budget elements equal to v (all if every), from
// the node's back when back; it returns how many.
func (nd *listNode) remove(v []byte, back bool, budget int, every bool) int {
	removed := 0
	match := func(it listItem) bool {
		return (every || removed < budget) && string(nd.data[it.off:it.off+it.n]) == string(v)
	}
	if !back {
		w := nd.lo
		for r := nd.lo; r < len(nd.items); r++ {
			if it := nd.items[r]; match(it) {
				removed++
				nd.garbage += int(it.n)
				continue
			}
			nd.items[w] = nd.items[r]
			w++
		}
		nd.items = nd.items[:w]
		return removed
	}
	w := len(nd.items) - 1
	for r := len(nd.items) - 1; r >= nd.lo; r-- {
		if it := nd.items[r]; match(it) {
			removed++
			nd.garbage += int(it.n)
			continue
		}
		nd.items[w] = nd.items[r]
		w--
	}
	nd.lo = w + 1
	return removed
}

// repack drops empty nodes and merges neighbours that together fit one
// node when either is under a quarter full, so that removals from the
// middle do not leave a trail of small nodes.
func (l *deque) repack() {
	out := l.nodes[l.nlo:l.nlo]
	for _, nd := range l.nodes[l.nlo:] {
		if nd.count() == 0 {
			l.mem -= nd.footprint()
			continue
		}
		if len(out) > 0 {
			p := out[len(out)-1]
			small := p.count() < listNodeMax/4 || nd.count() < listNodeMax/4
			if small && p.count()+nd.count() <= listNodeMax && p.bytes()+nd.bytes() <= listNodeBytes {
				elems := append(l.elems(p), l.elems(nd)...)
				m := packNodes(elems)[0]
				l.mem += m.footprint() - p.footprint() - nd.footprint()
				out[len(out)-1] = m
				continue
			}
		}
		out = append(out, nd)
	}
	clear(l.nodes[l.nlo+len(out):])
	l.nodes = l.nodes[:l.nlo+len(out)]
	if l.nlo == len(l.nodes) {
		l.nodes, l.nlo = l.nodes[:0], 0
	}
	l.cok = false
}

// Trim keeps elements start to stop (0 <= start <= stop < len), LTRIM.
func (l *deque) Trim(start, stop int) {
	drop := start
	for drop > 0 {
		nd := l.first()
		if nd.count() <= drop {
			drop -= nd.count()
			l.n -= nd.count()
			l.live -= nd.bytes()
			l.dropNode(l.nlo)
			continue
		}
		before := nd.footprint()
		for ; drop > 0; drop-- {
			it := nd.items[nd.lo]
			nd.lo++
			nd.garbage += int(it.n)
			l.n--
			l.live -= int(it.n)
		}
		nd.tidy()
		l.mem += nd.footprint() - before
	}
	drop = l.n - (stop - start + 1)
	for drop > 0 {
		nd := l.last()
		if nd.count() <= drop {
			drop -= nd.count()
			l.n -= nd.count()
			l.live -= nd.bytes()
			l.dropNode(len(l.nodes) - 1)
			continue
		}
		before := nd.footprint()
		for ; drop > 0; drop-- {
			it := nd.items[len(nd.items)-1]
			nd.items = nd.items[:len(nd.items)-1]
			nd.garbage += int(it.n)
			l.n--
			l.live -= int(it.n)
		}
		nd.tidy()
		l.mem += nd.footprint() - before
	}
	l.cok = false
}
