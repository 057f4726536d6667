package keyspace

import (
	"slices"
	"unsafe"
)

// List is the value of a list key. A small list is packed in one byte
// slice, as Redis packs one in a listpack: each element as its length,
// its bytes and its length again (one byte each for an element under 128
// bytes, two up to 32 KB), so that the slice is walked from either end.
// RPUSH k a b c takes the List (48 bytes) and a slice of 16. A list that
// outgrows listNodeMax elements or listPackBytes bytes of them moves to a
// deque of nodes (d), for good.
//
// An element handed out (At, PopFront, PopBack) aliases sd and stays
// valid and unchanged for its holder: a byte of sd once part of an
// element is never written again. A push writes into room never used,
// sd[:room] at the front or past len(sd) at the back, and only next to
// the elements (room == slo, shi == len(sd)); else, when that is full or
// after a pop at that end, it copies the elements into a new slice twice
// their size, O(1) amortised. A change in the middle (Set, InsertAt, Remove)
// copies them into a new slice: O(n) as in a listpack, for n <= 128.
// Access by index walks from the nearer end or from the last position
// found, so a sequential walk (LRANGE, LPOS, DUMP) is O(1) an element.
type List struct {
	d        *deque // the list once too big for sd; sd is nil then
	sd       []byte // the elements, packed in sd[slo:shi]
	slo, shi uint16
	room     uint16 // sd[:room] was never written: room <= slo
	sn       uint16 // elements
	slive    uint16 // bytes of the elements
	ci, co   uint16 // cursor: element ci starts at sd[co]; ci == noCursor for none
	grown    uint8  // growFront, growBoth: how the last new slice was placed
}

const (
	noCursor  = 1<<16 - 1
	growFront = 1 << iota // the last new slice had its room at the front
	growBack              // ... at the back
	growBoth              // pushes came at both ends: room at both
)

// listPackBytes is the most bytes of elements the packed form holds: a
// node's (listNodeBytes), at most 8 KB, so that offsets fit 16 bits.
func listPackBytes() int { return min(listNodeBytes, 8<<10) }

// listCost is the List's header.
const listCost = int(unsafe.Sizeof(List{}))

// packedSize is the size of an element of n bytes in sd.
func packedSize(n int) int {
	if n < 128 {
		return n + 2
	}
	return n + 4
}

// putPacked writes v packed at b[0:packedSize(len(v))].
func putPacked(b []byte, v []byte) {
	n := len(v)
	if n < 128 {
		b[0] = byte(n)
		copy(b[1:], v)
		b[1+n] = byte(n)
		return
	}
	b[0], b[1] = 0x80|byte(n>>8), byte(n)
	copy(b[2:], v)
	b[2+n], b[3+n] = byte(n), 0x80|byte(n>>8)
}

// packedAt returns the element that starts at sd[off] and the offset of
// the next.
func packedAt(sd []byte, off int) ([]byte, int) {
	n, w := int(sd[off]), 1
	if n >= 0x80 {
		n, w = (n&0x7f)<<8|int(sd[off+1]), 2
	}
	s := off + w
	return sd[s : s+n : s+n], s + n + w
}

// packedBefore returns the element that ends at sd[end] and its offset.
func packedBefore(sd []byte, end int) ([]byte, int) {
	n, w := int(sd[end-1]), 1
	if n >= 0x80 {
		n, w = (n&0x7f)<<8|int(sd[end-2]), 2
	}
	s := end - w - n
	return sd[s : s+n : s+n], s - w
}

// packFits reports whether the packed form can take k more elements of
// size more bytes in all.
func (l *List) packFits(k, size int) bool {
	return int(l.sn)+k <= listNodeMax && int(l.slive)+size <= listPackBytes()
}

// packedElems returns the elements of the packed form (aliasing sd).
func (l *List) packedElems(extra int) [][]byte {
	out := make([][]byte, 0, int(l.sn)+extra)
	for off := int(l.slo); off < int(l.shi); {
		var v []byte
		v, off = packedAt(l.sd, off)
		out = append(out, v)
	}
	return out
}

// toDeque moves the packed elements into a deque.
func (l *List) toDeque() {
	d := &deque{}
	if l.sn > 0 {
		elems := l.packedElems(0)
		d.nodes = packNodes(elems)
		d.n, d.live = len(elems), int(l.slive)
		d.mem = cap(d.nodes) * 8
		for _, nd := range d.nodes {
			d.mem += nd.footprint()
		}
	}
	*l = List{d: d}
}

// repack copies elems into a new slice of their size, with no room.
func (l *List) repack(elems [][]byte) {
	size, live := 0, 0
	for _, v := range elems {
		size += packedSize(len(v))
		live += len(v)
	}
	l.sd, l.slo, l.shi, l.room = nil, 0, 0, 0
	if size > 0 {
		l.sd = slices.Grow([]byte(nil), size)[:size]
	}
	off := 0
	for _, v := range elems {
		putPacked(l.sd[off:], v)
		off += packedSize(len(v))
	}
	l.shi = uint16(size)
	l.sn, l.slive, l.ci = uint16(len(elems)), uint16(live), noCursor
}

// grow copies the elements into a new slice with room for one more of
// packed size k at the front (front) or back, twice the elements' size
// in all (as append grows a slice), and returns where the new one goes.
func (l *List) grow(k int, front bool) int {
	live := int(l.shi - l.slo)
	g := uint8(growBack)
	if front {
		g = growFront
	}
	if l.grown != 0 && l.grown != g {
		g = growBoth
	}
	nb := slices.Grow([]byte(nil), max(2*live, live+k, 8))
	nb = nb[:cap(nb)]
	free := len(nb) - live - k
	lo := 0 // where the elements go
	switch g {
	case growFront:
		lo = free + k
	case growBoth:
		lo = free/2 + k
		if !front {
			lo = free / 2
		}
	}
	copy(nb[lo:], l.sd[l.slo:l.shi])
	at, end := lo+live, lo+live+k
	if front {
		at, end = lo-k, lo+live
		l.slo, l.room = uint16(at), uint16(at)
	} else {
		l.slo, l.room = uint16(lo), uint16(lo)
	}
	l.sd, l.shi, l.grown, l.ci = nb[:end], uint16(end), g, noCursor
	return at
}

// shrink copies the elements into a new slice when they take under a
// quarter of sd (after pops or a trim).
func (l *List) shrink() {
	if c := cap(l.sd); c > 64 && 4*int(l.shi-l.slo) < c {
		l.repack(l.packedElems(0))
	}
}

func (l *List) packPushBack(v []byte) {
	k := packedSize(len(v))
	at := int(l.shi)
	if at == len(l.sd) && at+k <= cap(l.sd) {
		l.sd = l.sd[:at+k]
		l.shi += uint16(k)
	} else {
		at = l.grow(k, false)
	}
	putPacked(l.sd[at:], v)
	l.sn++
	l.slive += uint16(len(v))
}

func (l *List) packPushFront(v []byte) {
	k := packedSize(len(v))
	at := int(l.slo) - k
	if l.room == l.slo && at >= 0 {
		l.slo, l.room = uint16(at), uint16(at)
	} else {
		at = l.grow(k, true)
	}
	putPacked(l.sd[at:], v)
	l.sn++
	l.slive += uint16(len(v))
	l.ci = noCursor
}

func (l *List) packPopFront() []byte {
	v, next := packedAt(l.sd, int(l.slo))
	l.slo = uint16(next)
	l.sn--
	l.slive -= uint16(len(v))
	l.ci = noCursor
	l.shrink()
	return v
}

func (l *List) packPopBack() []byte {
	v, start := packedBefore(l.sd, int(l.shi))
	l.shi = uint16(start)
	l.sn--
	l.slive -= uint16(len(v))
	if l.ci >= l.sn {
		l.ci = noCursor
	}
	l.shrink()
	return v
}

// packSeek returns the offset of element i (0 <= i < sn), walking from
// the nearest of the front, the back and the cursor.
func (l *List) packSeek(i int) int {
	k, off := 0, int(l.slo)
	if int(l.sn)-i < i {
		k, off = int(l.sn), int(l.shi)
	}
	if l.ci != noCursor && abs(i-int(l.ci)) < abs(i-k) {
		k, off = int(l.ci), int(l.co)
	}
	for ; k < i; k++ {
		_, off = packedAt(l.sd, off)
	}
	for ; k > i; k-- {
		_, off = packedBefore(l.sd, off)
	}
	l.ci, l.co = uint16(i), uint16(off)
	return off
}

func (l *List) packTrim(start, stop int) {
	keep := stop - start + 1
	for ; start > 0; start-- {
		v, next := packedAt(l.sd, int(l.slo))
		l.slo = uint16(next)
		l.sn--
		l.slive -= uint16(len(v))
	}
	for drop := int(l.sn) - keep; drop > 0; drop-- {
		v, s := packedBefore(l.sd, int(l.shi))
		l.shi = uint16(s)
		l.sn--
		l.slive -= uint16(len(v))
	}
	l.ci = noCursor
	l.shrink()
}

// packRemove is Remove on the packed form.
func (l *List) packRemove(v []byte, count int) int {
	elems := l.packedElems(0)
	budget := count
	if count < 0 {
		budget = -count
	}
	keep := elems[:0:0]
	removed := 0
	for k := range elems {
		i := k
		if count < 0 {
			i = len(elems) - 1 - k
		}
		if string(elems[i]) == string(v) && (count == 0 || removed < budget) {
			removed++
			elems[i] = nil
		}
	}
	if removed == 0 {
		return 0
	}
	for _, e := range elems {
		if e != nil {
			keep = append(keep, e)
		}
	}
	l.repack(keep)
	return removed
}

func (l *List) Len() int {
	if l.d != nil {
		return l.d.n
	}
	return int(l.sn)
}

// Bytes returns the bytes of the elements.
func (l *List) Bytes() int {
	if l.d != nil {
		return l.d.live
	}
	return int(l.slive)
}

// Nodes returns the number of nodes (one for a packed list).
func (l *List) Nodes() int {
	if l.d != nil {
		return l.d.Nodes()
	}
	return min(int(l.sn), 1)
}

// At returns element i, 0 <= i < len. The slice stays valid and
// unchanged whatever happens to the list later.
func (l *List) At(i int) []byte {
	if d := l.d; d != nil {
		nd, _, j := d.locate(i)
		return nd.at(j)
	}
	v, _ := packedAt(l.sd, l.packSeek(i))
	return v
}

// Range calls fn with elements i to j in order (0 <= i <= j < len), as
// At would return them, without a lookup per element (LRANGE); fn must not
// change the list.
func (l *List) Range(i, j int, fn func(v []byte)) {
	if d := l.d; d != nil {
		nd, k, x := d.locate(i)
		for n := j - i + 1; ; {
			for ; x < nd.count() && n > 0; x++ {
				fn(nd.at(x))
				n--
			}
			if n == 0 {
				return
			}
			k++
			nd, x = d.nodes[k], 0
		}
	}
	off := l.packSeek(i)
	for ; i <= j; i++ {
		var v []byte
		v, off = packedAt(l.sd, off)
		fn(v)
	}
}

// Set replaces element i with a copy of v.
func (l *List) Set(i int, v []byte) {
	if l.d == nil {
		old, _ := packedAt(l.sd, l.packSeek(i))
		if l.packFits(0, len(v)-len(old)) {
			elems := l.packedElems(0)
			elems[i] = v
			l.repack(elems)
			return
		}
		l.toDeque()
	}
	l.d.Set(i, v)
}

// The pushes and pops of a deque are written out in List's methods, not
// called, for a big list's LPUSH and RPOP.

// PushBack appends a copy of v.
func (l *List) PushBack(v []byte) {
	d := l.d
	if d == nil {
		if l.packFits(1, len(v)) {
			l.packPushBack(v)
			return
		}
		l.toDeque()
		d = l.d
	}
	var nd *listNode
	if d.n > 0 {
		nd = d.last()
	}
	if nd == nil || !nd.fits(len(v)) {
		nd = newListNode(nd, len(v), false)
		d.pushNode(nd, false)
	}
	before := nd.footprint()
	nd.pushItemBack(nd.add(v))
	d.mem += nd.footprint() - before
	d.n++
	d.live += len(v)
	d.cok = false
}

// PushFront prepends a copy of v.
func (l *List) PushFront(v []byte) {
	d := l.d
	if d == nil {
		if l.packFits(1, len(v)) {
			l.packPushFront(v)
			return
		}
		l.toDeque()
		d = l.d
	}
	var nd *listNode
	if d.n > 0 {
		nd = d.first()
	}
	if nd == nil || !nd.fits(len(v)) {
		nd = newListNode(nd, len(v), true)
		d.pushNode(nd, true)
	}
	before := nd.footprint()
	nd.pushItemFront(nd.add(v))
	d.mem += nd.footprint() - before
	d.n++
	d.live += len(v)
	d.cok = false
}

// PopFront removes and returns the first element (len > 0).
func (l *List) PopFront() []byte {
	d := l.d
	if d == nil {
		return l.packPopFront()
	}
	nd := d.first()
	v := nd.at(0)
	nd.lo++
	nd.garbage += len(v)
	if nd.count() == 0 {
		d.dropNode(d.nlo)
	}
	d.n--
	d.live -= len(v)
	d.cok = false
	return v
}

// PopBack removes and returns the last element (len > 0).
func (l *List) PopBack() []byte {
	d := l.d
	if d == nil {
		return l.packPopBack()
	}
	nd := d.last()
	v := nd.at(nd.count() - 1)
	nd.items = nd.items[:len(nd.items)-1]
	nd.garbage += len(v)
	if nd.count() == 0 {
		d.dropNode(len(d.nodes) - 1)
	}
	d.n--
	d.live -= len(v)
	d.cok = false
	return v
}

// InsertAt inserts a copy of v before position i (0 <= i <= len).
func (l *List) InsertAt(i int, v []byte) {
	switch i {
	case 0:
		l.PushFront(v)
		return
	case l.Len():
		l.PushBack(v)
		return
	}
	if l.d == nil {
		if l.packFits(1, len(v)) {
			l.repack(slices.Insert(l.packedElems(1), i, v))
			return
		}
		l.toDeque()
	}
	l.d.InsertAt(i, v)
}

// Remove removes up to count elements equal to v, from the head when
// count > 0, from the tail when count < 0, all when count is 0 (LREM);
// it returns how many it removed.
func (l *List) Remove(v []byte, count int) int {
	if l.d != nil {
		return l.d.Remove(v, count)
	}
	return l.packRemove(v, count)
}

// Trim keeps elements start to stop (0 <= start <= stop < len), LTRIM.
func (l *List) Trim(start, stop int) {
	if l.d != nil {
		l.d.Trim(start, stop)
		return
	}
	l.packTrim(start, stop)
}
