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

// entryChunk keeps its entries encoded back to back in one byte slice,
// as a listpack node does, and per entry only where its record starts: a
// million entries are a few thousand heap objects, and offs has no
// pointer, so the GC neither marks an object per entry nor scans them.
//
// data starts with the field names of the chunk's master entry (its
// first when the chunk was made): uvarint(count) then uvarint(len) bytes
// per name. An entry's record is
//
//	h  [uvarint(x-63) when h>>2 == 63]  [uvarint(seq) when h&2 == 0]
//	values, when h&1 (the master's field names):  (uvarint(len) bytes)*count
//	fields, otherwise:  uvarint(pairs) (uvarint(len) bytes)*2*pairs
//
// h&2 says the entry's ms is the master's, and x (h>>2, 0-62 in h) is
// then its seq minus the master's; otherwise x is its ms minus the
// master's and its seq follows whole. Auto IDs in a chunk mostly take
// one byte or two where the IDs took 16, and one-field entries drop
// their field name: a listpack's master entry and "same fields" flag.
//
// The bytes of data below len(data) are never written again: an entry
// handed out aliases them and stays valid whatever happens to the chunk
// later. Appends write past len(data); compaction and splits copy into a
// new slice; data is never shortened.
type entryChunk struct {
	offs    []uint32 // where each entry's record starts in data
	data    []byte
	master  StreamID // the IDs in the records are relative to it
	names   uint32   // data[:names] is the master's field names
	garbage int      // bytes of data no entry refers to (deleted or replaced entries)
}

// chunkOffSize is the size of an entry's offset; chunkOverhead the
// chunk's header, its slot in chunks and the size-class rounding of both.
const (
	chunkOffSize  = 4
	chunkOverhead = 96
)

// Record header bits.
const (
	recSame   = 1 // the entry has the master's field names
	recSameMs = 2 // the entry's ms is the master's: x is a seq delta
	recInline = 63
)

// idAt decodes the ID of the record at off and returns it, whether the
// entry has the master's field names and where its fields start.
func (ch *entryChunk) idAt(off uint32) (id StreamID, same bool, p int) {
	b := ch.data[off:]
	h := b[0]
	p = 1
	x := uint64(h >> 2)
	if x == recInline {
		v, k := binary.Uvarint(b[p:])
		x += v
		p += k
	}
	if h&recSameMs != 0 {
		id = StreamID{Ms: ch.master.Ms, Seq: ch.master.Seq + x}
	} else {
		seq, k := binary.Uvarint(b[p:])
		p += k
		id = StreamID{Ms: ch.master.Ms + x, Seq: seq}
	}
	return id, h&recSame != 0, int(off) + p
}

func (ch *entryChunk) entry(i int) StreamEntry {
	id, same, p := ch.idAt(ch.offs[i])
	e := StreamEntry{ID: id, data: ch.data[:len(ch.data):len(ch.data)], off: uint32(p)}
	if same {
		e.names = ch.names
	}
	return e
}

// recordLen returns the size of entry i's record.
func (ch *entryChunk) recordLen(i int) int {
	off := ch.offs[i]
	_, same, p := ch.idAt(off)
	var names []byte
	if same {
		names = ch.data[:ch.names]
	}
	return p + fieldsLen(names, ch.data[p:]) - int(off)
}

func (ch *entryChunk) lastID() StreamID {
	id, _, _ := ch.idAt(ch.offs[len(ch.offs)-1])
	return id
}

// footprint estimates the chunk's heap bytes.
func (ch *entryChunk) footprint() int {
	return chunkOverhead + cap(ch.offs)*chunkOffSize + cap(ch.data)
}

// live returns the bytes of data the entries refer to, names included.
func (ch *entryChunk) live() int { return len(ch.data) - ch.garbage }

// compact copies the master's names and the live records into a new
// slice of their size; the records, relative to the same master, are
// copied as they are.
func (ch *entryChunk) compact() {
	data := make([]byte, 0, ch.live())
	data = append(data, ch.data[:ch.names]...)
	for i := range ch.offs {
		n := ch.recordLen(i)
		off := len(data)
		data = append(data, ch.data[ch.offs[i]:int(ch.offs[i])+n]...)
		ch.offs[i] = uint32(off)
	}
	ch.data, ch.garbage = data, 0
}

// startChunk returns an empty chunk whose master is id with fields and
// values fv, its names written, with room for items entries and size
// more bytes.
func startChunk(id StreamID, fv [][]byte, items, size int) *entryChunk {
	names := uvarintLen(uint64(len(fv) / 2))
	for i := 0; i < len(fv); i += 2 {
		names += uvarintLen(uint64(len(fv[i]))) + len(fv[i])
	}
	ch := &entryChunk{offs: make([]uint32, 0, items), master: id, names: uint32(names)}
	ch.data = make([]byte, 0, names+size)
	ch.data = binary.AppendUvarint(ch.data, uint64(len(fv)/2))
	for i := 0; i < len(fv); i += 2 {
		ch.data = binary.AppendUvarint(ch.data, uint64(len(fv[i])))
		ch.data = append(ch.data, fv[i]...)
	}
	return ch
}

// sameNames reports whether fv's field names are the master's.
func (ch *entryChunk) sameNames(fv [][]byte) bool {
	b := ch.data[:ch.names]
	k, p := binary.Uvarint(b)
	if k != uint64(len(fv)/2) {
		return false
	}
	for i := 0; i < len(fv); i += 2 {
		l, n := binary.Uvarint(b[p:])
		p += n
		if string(b[p:p+int(l)]) != string(fv[i]) {
			return false
		}
		p += int(l)
	}
	return true
}

// recordSize returns the size of the record of entry id with fields
// and values fv in the chunk, and whether it has the master's names.
func (ch *entryChunk) recordSize(id StreamID, fv [][]byte) (int, bool) {
	return ch.recordSizeFlat(id, fv, fieldsSize(fv))
}

// recordSizeFlat is recordSize given fieldsSize(fv): the values alone
// take that less the names' encoding, which it starts as.
func (ch *entryChunk) recordSizeFlat(id StreamID, fv [][]byte, flat int) (int, bool) {
	size := 1
	x := id.Ms - ch.master.Ms
	if x == 0 {
		x = id.Seq - ch.master.Seq
	} else {
		size += uvarintLen(id.Seq)
	}
	if x >= recInline {
		size += uvarintLen(x - recInline)
	}
	if ch.sameNames(fv) {
		return size + flat - int(ch.names), true
	}
	return size + flat, false
}

// appendRecord appends the record of entry id (not before the master)
// with fields and values fv.
func (ch *entryChunk) appendRecord(id StreamID, fv [][]byte, same bool) {
	ch.offs = append(ch.offs, uint32(len(ch.data)))
	var h byte
	if same {
		h |= recSame
	}
	x := id.Ms - ch.master.Ms
	if x == 0 {
		h |= recSameMs
		x = id.Seq - ch.master.Seq
	}
	b := ch.data
	if x < recInline {
		b = append(b, h|byte(x)<<2)
	} else {
		b = append(b, h|recInline<<2)
		b = binary.AppendUvarint(b, x-recInline)
	}
	if h&recSameMs == 0 {
		b = binary.AppendUvarint(b, id.Seq)
	}
	if same {
		for i := 1; i < len(fv); i += 2 {
			b = binary.AppendUvarint(b, uint64(len(fv[i])))
			b = append(b, fv[i]...)
		}
	} else {
		b = appendFields(b, fv)
	}
	ch.data = b
}

// newChunk returns a chunk of entries es (their data copied), which fit.
func newChunk(es []StreamEntry, items int) *entryChunk {
	fvs := make([][][]byte, len(es))
	size := 0
	for i, e := range es {
		fvs[i] = e.fieldValues()
		size += recordMax(fvs[i])
	}
	ch := startChunk(es[0].ID, fvs[0], max(items, len(es)), size)
	for i, e := range es {
		_, same := ch.recordSize(e.ID, fvs[i])
		ch.appendRecord(e.ID, fvs[i], same)
	}
	return ch
}

// recordMax bounds the size of a record with fields and values fv.
func recordMax(fv [][]byte) int { return 1 + 2*binary.MaxVarintLen64 + fieldsSize(fv) }

// fits reports whether n entries of at most size bytes fit one chunk.
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
	return ch.entry(len(ch.offs) - 1), true
}

// seek returns the position of the first entry whose ID is id or after
// it: chunk ci, index i; ci is len(l.chunks) when every entry is before id.
// Each step decodes one record's ID.
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
	ch := l.chunks[lo]
	a, b := 0, len(ch.offs)
	for a < b {
		m := int(uint(a+b) >> 1)
		if mid, _, _ := ch.idAt(ch.offs[m]); mid.Less(id) {
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
	if ci == len(l.chunks) {
		return ci, i, false
	}
	got, _, _ := l.chunks[ci].idAt(l.chunks[ci].offs[i])
	return ci, i, got == id
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
		for ; i < len(ch.offs); i++ {
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
			i = len(l.chunks[ci].offs) - 1
		}
	}
	for ; ci >= 0; ci-- {
		ch := l.chunks[ci]
		if i < 0 {
			i = len(ch.offs) - 1
		}
		for ; i >= 0; i-- {
			if !fn(ch.entry(i)) {
				return
			}
		}
	}
}

// tail returns the chunk entry id with fields and values fv, of at most
// size bytes, is appended to: a new one, with id as its master, when the
// last is full.
func (l *streamEntries) tail(id StreamID, fv [][]byte, size int) *entryChunk {
	if len(l.chunks) > 0 {
		ch := l.last()
		if len(ch.offs) < entryChunkMax && len(ch.data)+size <= chunkArenaMax {
			return ch
		}
		l.seal(ch)
	}
	var ch *entryChunk
	if len(l.chunks) == 0 {
		ch = startChunk(id, fv, 4, size) // a small stream stays small
	} else {
		// the chunk before is full: the next one likely holds as much
		prev := l.last()
		hint := min((prev.live()-int(prev.names))*entryChunkMax/len(prev.offs), arenaHintMax, chunkArenaMax)
		ch = startChunk(id, fv, entryChunkMax, max(size, hint))
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

// Append adds an entry with fields and values fv (alternating) after the
// last entry (id is greater than every ID).
func (l *streamEntries) Append(id StreamID, fv [][]byte) {
	flat := fieldsSize(fv)
	ch := l.tail(id, fv, 1+2*binary.MaxVarintLen64+flat)
	before := ch.footprint()
	size, same := ch.recordSizeFlat(id, fv, flat)
	ch.data = slices.Grow(ch.data, size)
	ch.appendRecord(id, fv, same)
	l.bytes += ch.footprint() - before
	l.n++
}

// ReplaceOrInsert adds e (its fields copied), or replaces the entry with
// its ID. Only tests insert before the last entry: a stream's IDs grow.
func (l *streamEntries) ReplaceOrInsert(e StreamEntry) {
	if last, ok := l.Max(); !ok || last.ID.Less(e.ID) { // an append: the usual case
		l.Append(e.ID, e.fieldValues())
		return
	}
	ci, i, ok := l.find(e.ID)
	ch := l.chunks[ci] // ci is in range: e is before the last entry
	es := make([]StreamEntry, 0, len(ch.offs)+1)
	for j := range ch.offs {
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
			size += recordMax(e.fieldValues())
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
	if len(ch.offs) == 1 {
		l.dropChunks(ci, ci+1)
		return e, true
	}
	before := ch.footprint()
	ch.garbage += ch.recordLen(i)
	if i == 0 { // trimming: the chunk's array is dropped with the chunk
		ch.offs = ch.offs[1:]
	} else {
		ch.offs = slices.Delete(ch.offs, i, i+1)
	}
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
	ci, i, ok := l.find(id)
	if ok {
		i++
	}
	if ci < len(l.chunks) && i == len(l.chunks[ci].offs) {
		ci, i = ci+1, 0
	}
	removed := 0
	for _, ch := range l.chunks[:ci] {
		removed += len(ch.offs)
	}
	l.dropChunks(0, ci)
	if i > 0 {
		ch := l.chunks[0]
		before := ch.footprint()
		for j := range i {
			ch.garbage += ch.recordLen(j)
		}
		ch.offs = ch.offs[i:]
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
		c := *ch
		c.offs, c.data = slices.Clone(ch.offs), slices.Clip(ch.data)
		out.chunks[i] = &c
		out.bytes += c.footprint()
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

// fieldsLen returns the size of the fields at the start of b: the
// values alone when names (the master's) is set, else uvarint(pairs)
// and the pairs.
func fieldsLen(names, b []byte) int {
	var n uint64
	p := 0
	if names != nil {
		n, _ = binary.Uvarint(names)
	} else {
		var k int
		n, k = binary.Uvarint(b)
		n *= 2
		p = k
	}
	for ; n > 0; n-- {
		l, k := binary.Uvarint(b[p:])
		p += k + int(l)
	}
	return p
}
