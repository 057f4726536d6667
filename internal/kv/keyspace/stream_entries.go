package keyspace

import (
	"encoding/binary"
	"math"
	"slices"
)

// entryChunkMax is the most entries a chunk of a stream's entry list holds.
const entryChunkMax = 128

// chunkArenaMax is the most bytes of entry data a chunk holds: offsets
// into it are 32-bit. A variable so tests can lower it.
var chunkArenaMax = math.MaxUint32

// arenaHintMax caps the capacity a new chunk's arena is given from the
// chunk before it, so one chunk of big entries does not reserve as much
// for the next entry, whatever its size.
const arenaHintMax = 64 << 10

// streamEntries holds a stream's entries in ID order, in chunks of at most
// entryChunkMax entries: a sorted list of sorted arrays, close to Redis's
// radix tree of listpacks. Streams grow at their end (XADD) and shrink at
// their start (XTRIM), which costs O(1) here, where a B-tree descends and
// rebalances on every append; a lookup by ID is two binary searches.
// No chunk is empty.
type streamEntries struct {
	chunks []*entryChunk
	n      int
	bytes  int // heap estimate of the chunks (Stream.Size)
}

// entryChunk keeps its entries' encoded fields back to back in one byte
// slice, as a listpack node does, and per entry only its ID and where its
// data is: a million entries are a few thousand heap objects, and items
// has no pointer, so the GC neither marks an object per entry nor scans
// the items.
//
// The bytes of data below len(data) are never written again: an entry
// handed out aliases them and stays valid whatever happens to the chunk
// later. Appends write past len(data); compaction and splits copy into a
// new slice; data is never shortened.
type entryChunk struct {
	items   []chunkItem
	data    []byte
	garbage int // bytes of data no item refers to (deleted or replaced entries)
}

type chunkItem struct {
	id     StreamID
	off, n uint32
}

// chunkItemSize is the size of a chunkItem; chunkOverhead the chunk's
// header, its slot in chunks and the size-class rounding of both.
const (
	chunkItemSize = 24
	chunkOverhead = 80
)

func (ch *entryChunk) entry(i int) StreamEntry {
	it := ch.items[i]
	end := it.off + it.n
	return StreamEntry{ID: it.id, data: ch.data[it.off:end:end]}
}

func (ch *entryChunk) lastID() StreamID { return ch.items[len(ch.items)-1].id }

// footprint estimates the chunk's heap bytes.
func (ch *entryChunk) footprint() int {
	return chunkOverhead + cap(ch.items)*chunkItemSize + cap(ch.data)
}

// live returns the bytes of data the items refer to.
func (ch *entryChunk) live() int { return len(ch.data) - ch.garbage }

// compact copies the live entries' data into a new slice of their size.
func (ch *entryChunk) compact() {
	data := make([]byte, 0, ch.live())
	for i := range ch.items {
		it := &ch.items[i]
		off := len(data)
		data = append(data, ch.data[it.off:it.off+it.n]...)
		it.off = uint32(off)
	}
	ch.data, ch.garbage = data, 0
}

// newChunk returns a chunk of entries es (their data copied), which fit.
func newChunk(es []StreamEntry, items int) *entryChunk {
	size := 0
	for _, e := range es {
		size += len(e.data)
	}
	ch := &entryChunk{items: make([]chunkItem, 0, max(items, len(es))), data: make([]byte, 0, size)}
	for _, e := range es {
		ch.items = append(ch.items, chunkItem{id: e.ID, off: uint32(len(ch.data)), n: uint32(len(e.data))})
		ch.data = append(ch.data, e.data...)
	}
	return ch
}

// fits reports whether entries of size bytes in all fit one chunk.
func fits(n, size int) bool { return n <= entryChunkMax && size <= chunkArenaMax }

func (l *streamEntries) last() *entryChunk { return l.chunks[len(l.chunks)-1] }

// Len returns the number of entries.
func (l *streamEntries) Len() int { return l.n }

// Min returns the first entry.
func (l *streamEntries) Min() (StreamEntry, bool) {
	if l.n == 0 {
		return StreamEntry{}, false
	}
	return l.chunks[0].entry(0), true
}

// Max returns the last entry.
func (l *streamEntries) Max() (StreamEntry, bool) {
	if l.n == 0 {
		return StreamEntry{}, false
	}
	ch := l.last()
	return ch.entry(len(ch.items) - 1), true
}

// seek returns the position of the first entry whose ID is id or after
// it: chunk ci, index i; ci is len(l.chunks) when every entry is before id.
func (l *streamEntries) seek(id StreamID) (ci, i int) {
	lo, hi := 0, len(l.chunks)
	for lo < hi { // the first chunk whose last entry is not before id
		m := int(uint(lo+hi) >> 1)
		if l.chunks[m].lastID().Less(id) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(l.chunks) {
		return lo, 0
	}
	items := l.chunks[lo].items
	a, b := 0, len(items)
	for a < b {
		m := int(uint(a+b) >> 1)
		if items[m].id.Less(id) {
			a = m + 1
		} else {
			b = m
		}
	}
	return lo, a
}

// find returns the position of entry id.
func (l *streamEntries) find(id StreamID) (ci, i int, ok bool) {
	ci, i = l.seek(id)
	return ci, i, ci < len(l.chunks) && l.chunks[ci].items[i].id == id
}

// Get returns the entry with key's ID.
func (l *streamEntries) Get(key StreamEntry) (StreamEntry, bool) {
	ci, i, ok := l.find(key.ID)
	if !ok {
		return StreamEntry{}, false
	}
	return l.chunks[ci].entry(i), true
}

// Has reports whether an entry has key's ID.
func (l *streamEntries) Has(key StreamEntry) bool {
	_, _, ok := l.find(key.ID)
	return ok
}

// Ascend calls fn for every entry in order until fn returns false.
func (l *streamEntries) Ascend(fn func(StreamEntry) bool) {
	l.ascendFrom(0, 0, fn)
}

// AscendGreaterOrEqual calls fn in order for the entries from pivot's ID
// on until fn returns false.
func (l *streamEntries) AscendGreaterOrEqual(pivot StreamEntry, fn func(StreamEntry) bool) {
	ci, i := l.seek(pivot.ID)
	l.ascendFrom(ci, i, fn)
}

func (l *streamEntries) ascendFrom(ci, i int, fn func(StreamEntry) bool) {
	for ; ci < len(l.chunks); ci, i = ci+1, 0 {
		ch := l.chunks[ci]
		for ; i < len(ch.items); i++ {
			if !fn(ch.entry(i)) {
				return
			}
		}
	}
}

// DescendLessOrEqual calls fn in reverse order for the entries up to
// pivot's ID until fn returns false.
func (l *streamEntries) DescendLessOrEqual(pivot StreamEntry, fn func(StreamEntry) bool) {
	ci, i, ok := l.find(pivot.ID)
	if !ok { // start before the first entry after pivot
		if i > 0 {
			i--
		} else {
			ci--
			if ci < 0 {
				return
			}
			i = len(l.chunks[ci].items) - 1
		}
	}
	for ; ci >= 0; ci-- {
		ch := l.chunks[ci]
		if i < 0 {
			i = len(ch.items) - 1
		}
		for ; i >= 0; i-- {
			if !fn(ch.entry(i)) {
				return
			}
		}
	}
}

// tail returns the chunk an entry of size bytes is appended to, a new one
// when the last is full.
func (l *streamEntries) tail(size int) *entryChunk {
	if len(l.chunks) > 0 {
		ch := l.last()
		if len(ch.items) < entryChunkMax && len(ch.data)+size <= chunkArenaMax {
			return ch
		}
		l.seal(ch)
	}
	ch := &entryChunk{}
	if len(l.chunks) == 0 {
		ch.items = make([]chunkItem, 0, 4) // a small stream stays small
	} else {
		// the chunk before is full: the next one likely holds as much
		prev := l.last()
		ch.items = make([]chunkItem, 0, entryChunkMax)
		hint := min(prev.live()*entryChunkMax/len(prev.items), arenaHintMax, chunkArenaMax)
		ch.data = make([]byte, 0, max(size, hint))
	}
	l.chunks = append(l.chunks, ch)
	l.bytes += ch.footprint()
	return ch
}

// seal gives back the spare capacity of a chunk no entry is appended to
// any more, when it is worth a copy.
func (l *streamEntries) seal(ch *entryChunk) {
	if cap(ch.data)-ch.live() <= ch.live()/8 {
		return
	}
	l.bytes -= ch.footprint()
	ch.compact()
	l.bytes += ch.footprint()
}

// Append adds an entry with fields and values fv (alternating), encoded
// as StreamEntry's data, after the last entry (id is greater than every
// ID).
func (l *streamEntries) Append(id StreamID, fv [][]byte) {
	size := fieldsSize(fv)
	ch := l.tail(size)
	before := ch.footprint()
	off := len(ch.data)
	ch.data = appendFields(slices.Grow(ch.data, size), fv)
	ch.items = append(ch.items, chunkItem{id: id, off: uint32(off), n: uint32(len(ch.data) - off)})
	l.bytes += ch.footprint() - before
	l.n++
}

// ReplaceOrInsert adds e (its data copied), or replaces the entry with
// its ID. Only tests insert before the last entry: a stream's IDs grow.
func (l *streamEntries) ReplaceOrInsert(e StreamEntry) {
	if last, ok := l.Max(); !ok || last.ID.Less(e.ID) { // an append: the usual case
		ch := l.tail(len(e.data))
		before := ch.footprint()
		off := len(ch.data)
		ch.data = append(ch.data, e.data...)
		ch.items = append(ch.items, chunkItem{id: e.ID, off: uint32(off), n: uint32(len(e.data))})
		l.bytes += ch.footprint() - before
		l.n++
		return
	}
	ci, i, ok := l.find(e.ID)
	ch := l.chunks[ci] // ci is in range: e is before the last entry
	es := make([]StreamEntry, 0, len(ch.items)+1)
	for j := range ch.items {
		es = append(es, ch.entry(j))
	}
	if ok {
		es[i] = e
	} else {
		es = slices.Insert(es, i, e)
		l.n++
	}
	l.replaceChunk(ci, es)
}

// replaceChunk puts entries es in place of chunk ci, in as many chunks as
// the limits need (halves, as a full chunk splits).
func (l *streamEntries) replaceChunk(ci int, es []StreamEntry) {
	l.bytes -= l.chunks[ci].footprint()
	var out []*entryChunk
	var split func(es []StreamEntry)
	split = func(es []StreamEntry) {
		size := 0
		for _, e := range es {
			size += len(e.data)
		}
		if fits(len(es), size) || len(es) == 1 {
			out = append(out, newChunk(es, 0))
			return
		}
		split(es[:len(es)/2])
		split(es[len(es)/2:])
	}
	split(es)
	for _, ch := range out {
		l.bytes += ch.footprint()
	}
	l.chunks = slices.Insert(slices.Delete(l.chunks, ci, ci+1), ci, out...)
}

// Delete removes the entry with key's ID.
func (l *streamEntries) Delete(key StreamEntry) (StreamEntry, bool) {
	ci, i, ok := l.find(key.ID)
	if !ok {
		return StreamEntry{}, false
	}
	ch := l.chunks[ci]
	e := ch.entry(i)
	l.n--
	if len(ch.items) == 1 {
		l.dropChunks(ci, ci+1)
		return e, true
	}
	before := ch.footprint()
	if i == 0 { // trimming: the chunk's array is dropped with the chunk
		ch.items = ch.items[1:]
	} else {
		ch.items = slices.Delete(ch.items, i, i+1)
	}
	ch.garbage += len(e.data)
	l.collect(ch)
	l.bytes += ch.footprint() - before
	return e, true
}

// collect compacts a chunk when most of its data is garbage: XDEL in the
// middle of a stream, or a short stream trimmed as it grows, would keep
// every deleted entry's bytes otherwise.
func (l *streamEntries) collect(ch *entryChunk) {
	if ch.garbage > len(ch.data)/2 {
		ch.compact()
	}
}

func (l *streamEntries) dropChunks(from, to int) {
	for _, ch := range l.chunks[from:to] {
		l.bytes -= ch.footprint()
	}
	l.chunks = slices.Delete(l.chunks, from, to)
	if len(l.chunks) == 0 {
		l.chunks = nil // let the backing array go
	}
}

// DeleteThrough removes the entries up to id inclusive (the first ones:
// trimming) and returns how many. Whole chunks go without a look at
// their entries.
func (l *streamEntries) DeleteThrough(id StreamID) int {
	ci, i := l.seek(id)
	if ci < len(l.chunks) && l.chunks[ci].items[i].id == id {
		i++
	}
	if ci < len(l.chunks) && i == len(l.chunks[ci].items) {
		ci, i = ci+1, 0
	}
	removed := 0
	for _, ch := range l.chunks[:ci] {
		removed += len(ch.items)
	}
	l.dropChunks(0, ci)
	if i > 0 {
		ch := l.chunks[0]
		before := ch.footprint()
		for _, it := range ch.items[:i] {
			ch.garbage += int(it.n)
		}
		ch.items = ch.items[i:]
		removed += i
		l.collect(ch)
		l.bytes += ch.footprint() - before
	}
	l.n -= removed
	return removed
}

// Clone returns a copy of the list. The chunks' data is shared, clipped
// to its length so that neither list appends into the other's entries
// (and data below the length is never written).
func (l *streamEntries) Clone() *streamEntries {
	out := &streamEntries{chunks: make([]*entryChunk, len(l.chunks)), n: l.n}
	for i, ch := range l.chunks {
		out.chunks[i] = &entryChunk{items: slices.Clone(ch.items), data: slices.Clip(ch.data), garbage: ch.garbage}
		out.bytes += out.chunks[i].footprint()
	}
	return out
}

// fieldsSize returns the size of fields and values fv encoded by
// appendFields.
func fieldsSize(fv [][]byte) int {
	size := uvarintLen(uint64(len(fv) / 2))
	for _, x := range fv {
		size += uvarintLen(uint64(len(x))) + len(x)
	}
	return size
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// appendFields appends fields and values fv (alternating) encoded as an
// entry's data.
func appendFields(b []byte, fv [][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(fv)/2))
	for _, x := range fv {
		b = binary.AppendUvarint(b, uint64(len(x)))
		b = append(b, x...)
	}
	return b
}
