package keyspace

import (
	"encoding/binary"
	"math"
	"strconv"
	"unsafe"
)

// Streams is the value type of Redis streams (XADD ...).
var Streams = NewType[Stream]("stream")

// StreamID is the ID of a stream entry: milliseconds and a sequence number.
type StreamID struct{ Ms, Seq uint64 }

// MaxStreamID is the largest ID ("+").
var MaxStreamID = StreamID{math.MaxUint64, math.MaxUint64}

// Less reports whether a sorts before b.
func (a StreamID) Less(b StreamID) bool {
	return a.Ms < b.Ms || (a.Ms == b.Ms && a.Seq < b.Seq)
}

// Compare returns -1, 0 or 1 as a is before, equal to or after b.
func (a StreamID) Compare(b StreamID) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// IsZero reports whether the ID is 0-0.
func (a StreamID) IsZero() bool { return a.Ms == 0 && a.Seq == 0 }

// Next returns the ID after a; ok is false when a is the largest ID.
func (a StreamID) Next() (StreamID, bool) {
	switch {
	case a.Seq < math.MaxUint64:
		return StreamID{a.Ms, a.Seq + 1}, true
	case a.Ms < math.MaxUint64:
		return StreamID{a.Ms + 1, 0}, true
	}
	return StreamID{}, false
}

// Prev returns the ID before a; ok is false when a is 0-0.
func (a StreamID) Prev() (StreamID, bool) {
	switch {
	case a.Seq > 0:
		return StreamID{a.Ms, a.Seq - 1}, true
	case a.Ms > 0:
		return StreamID{a.Ms - 1, math.MaxUint64}, true
	}
	return StreamID{}, false
}

// AppendTo appends the ID as "ms-seq".
func (a StreamID) AppendTo(b []byte) []byte {
	b = strconv.AppendUint(b, a.Ms, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, a.Seq, 10)
}

// String returns the ID as "ms-seq".
func (a StreamID) String() string { return string(a.AppendTo(nil)) }

// StreamEntry is an entry of a stream: its ID and its fields and values.
// The entry's fields start at data[off:]. When names is not 0 the entry
// has its chunk's master field names, data[:names] (uvarint(count) then
// uvarint(len) bytes per name), and its fields are the values alone,
// uvarint(len) bytes each; otherwise they are uvarint(pairs) then
// uvarint(len) bytes for each field and value. data is the chunk's (it
// runs on past the entry), whose bytes are never changed in place, so an
// entry stays valid after the stream changes.
type StreamEntry struct {
	ID    StreamID
	data  []byte
	off   uint32
	names uint32
}

// Pairs returns the number of field-value pairs.
func (e StreamEntry) Pairs() int {
	b := e.data[e.off:]
	if e.names != 0 {
		b = e.data
	}
	n, _ := binary.Uvarint(b)
	return int(n)
}

// Fields calls fn for each field and value, in order; the slices alias
// the entry.
func (e StreamEntry) Fields(fn func(f, v []byte)) {
	next := func(b []byte) ([]byte, []byte) {
		l, k := binary.Uvarint(b)
		return b[k : k+int(l)], b[k+int(l):]
	}
	var f, v []byte
	if e.names != 0 {
		n, p := binary.Uvarint(e.data)
		names, b := e.data[p:e.names], e.data[e.off:]
		for ; n > 0; n-- {
			f, names = next(names)
			v, b = next(b)
			fn(f, v)
		}
		return
	}
	n, p := binary.Uvarint(e.data[e.off:])
	b := e.data[int(e.off)+p:]
	for ; n > 0; n-- {
		f, b = next(b)
		v, b = next(b)
		fn(f, v)
	}
}

// fieldValues returns the entry's fields and values, alternating
// (aliasing the entry).
func (e StreamEntry) fieldValues() [][]byte {
	fv := make([][]byte, 0, 2*e.Pairs())
	e.Fields(func(f, v []byte) { fv = append(fv, f, v) })
	return fv
}

// streamNode mirrors one listpack node of Redis's stream: Redis trims with
// "~" and LIMIT by whole nodes and reports the node count in XINFO, so a
// stream keeps the boundaries Redis would have (a node is full after
// stream-node-max-entries entries, live or deleted, or about
// stream-node-max-bytes bytes) and trims the same entries.
type streamNode struct {
	master, last  StreamID
	live, deleted int
	bytes         int      // estimated listpack size of the entries
	fields        [][]byte // the master entry's field names (for the size estimate)
	// head is the estimated size of what does not change once the node
	// is made: the listpack's header and the master entry's fields and
	// their count (every XADD measured them again)
	head int
}

// Stream is the value of a stream: its entries in ID order,
// the node boundaries Redis would have, its metadata and its consumer
// groups.
type Stream struct {
	entries      *streamEntries
	nodes        []streamNode // oldest first
	lastID       StreamID
	maxDeleted   StreamID
	entriesAdded int64
	groups       map[string]*StreamGroup
	fieldBytes   int // the nodes' field names (fieldsFootprint), for Size
}

// NewStream returns an empty stream.
func NewStream() *Stream {
	return &Stream{entries: &streamEntries{}}
}

// Len returns the number of entries.
func (s *Stream) Len() int { return s.entries.Len() }

// LastID returns the last ID ever added (or set with XSETID).
func (s *Stream) LastID() StreamID { return s.lastID }

// MaxDeletedID returns the largest ID deleted with XDEL.
func (s *Stream) MaxDeletedID() StreamID { return s.maxDeleted }

// EntriesAdded returns how many entries were ever added.
func (s *Stream) EntriesAdded() int64 { return s.entriesAdded }

// SetMeta sets the last ID, the added count and the largest deleted ID
// (XSETID, loading a dump).
func (s *Stream) SetMeta(last StreamID, added int64, maxDeleted StreamID) {
	s.lastID, s.entriesAdded, s.maxDeleted = last, added, maxDeleted
}

// FirstID returns the ID of the first entry, 0-0 when empty.
func (s *Stream) FirstID() StreamID {
	if e, ok := s.entries.Min(); ok {
		return e.ID
	}
	return StreamID{}
}

// LastEntryID returns the ID of the last live entry (0-0 when empty).
func (s *Stream) LastEntryID() StreamID {
	if e, ok := s.entries.Max(); ok {
		return e.ID
	}
	return StreamID{}
}

// Nodes returns the number of listpack nodes Redis would use.
func (s *Stream) Nodes() int { return len(s.nodes) }

// Get returns the entry id.
func (s *Stream) Get(id StreamID) (StreamEntry, bool) {
	return s.entries.Get(StreamEntry{ID: id})
}

// Has reports whether entry id exists.
func (s *Stream) Has(id StreamID) bool { return s.entries.Has(StreamEntry{ID: id}) }

// Range calls fn for the entries from start to end inclusive (in reverse
// order when rev) until fn returns false.
func (s *Stream) Range(start, end StreamID, rev bool, fn func(e StreamEntry) bool) {
	if end.Less(start) {
		return
	}
	if rev {
		s.entries.DescendLessOrEqual(StreamEntry{ID: end}, func(e StreamEntry) bool {
			if e.ID.Less(start) {
				return false
			}
			return fn(e)
		})
		return
	}
	s.entries.AscendGreaterOrEqual(StreamEntry{ID: start}, func(e StreamEntry) bool {
		if end.Less(e.ID) {
			return false
		}
		return fn(e)
	})
}

// NodeLimits are the sizes at which a stream starts a new node
// (stream-node-max-entries, stream-node-max-bytes; 0 means no limit).
type NodeLimits struct {
	MaxEntries int64
	MaxBytes   int64
}

// streamListpackMax is the largest node Redis builds whatever the limits.
const streamListpackMax = 1 << 30

// Append adds an entry with a new id (greater than LastID, which the caller
// checked) and fields and values fv (alternating), which it copies.
func (s *Stream) Append(id StreamID, fv [][]byte, lim NodeLimits) {
	total := 0
	for _, x := range fv {
		total += len(x)
	}
	var n *streamNode
	if len(s.nodes) > 0 {
		n = &s.nodes[len(s.nodes)-1]
		maxBytes := lim.MaxBytes
		if maxBytes <= 0 || maxBytes > streamListpackMax {
			maxBytes = streamListpackMax
		}
		if int64(n.size()+total) >= maxBytes ||
			(lim.MaxEntries > 0 && int64(n.live+n.deleted) >= lim.MaxEntries) {
			n = nil
		}
	}
	if n == nil {
		fields := make([][]byte, 0, len(fv)/2)
		for i := 0; i < len(fv); i += 2 {
			fields = append(fields, CopyBytes(fv[i]))
		}
		head := 7 + lpIntSize(int64(len(fields))) + lpIntSize(0)
		for _, f := range fields {
			head += lpStrSize(f)
		}
		s.nodes = append(s.nodes, streamNode{master: id, fields: fields, head: head})
		n = &s.nodes[len(s.nodes)-1]
		s.fieldBytes += n.fieldsFootprint()
	}
	n.bytes += n.entrySize(id, fv)
	n.live++
	n.last = id
	s.entries.Append(id, fv)
	s.lastID = id
	s.entriesAdded++
}

// size estimates the node's listpack bytes: header, master entry, entries.
func (n *streamNode) size() int {
	return n.head + lpIntSize(int64(n.live)) + lpIntSize(int64(n.deleted)) + n.bytes
}

// entrySize estimates the listpack bytes of an entry in node n.
func (n *streamNode) entrySize(id StreamID, fv [][]byte) int {
	same := len(fv)/2 == len(n.fields)
	for i := 0; same && i < len(n.fields); i++ {
		same = string(n.fields[i]) == string(fv[2*i])
	}
	sz := lpIntSize(2) + lpIntSize(int64(id.Ms-n.master.Ms)) + lpIntSize(int64(id.Seq-n.master.Seq))
	parts := 3 + len(fv)/2
	if !same {
		sz += lpIntSize(int64(len(fv) / 2))
		parts += len(fv)/2 + 1
	}
	for i, x := range fv {
		if i%2 == 0 && same {
			continue
		}
		sz += lpStrSize(x)
	}
	return sz + lpIntSize(int64(parts))
}

// lpIntSize is the size of an integer element of a listpack (encoding and
// back length).
func lpIntSize(v int64) int {
	switch {
	case v >= 0 && v <= 127:
		return 2
	case v >= -4096 && v <= 4095:
		return 3
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return 4
	case v >= -(1<<23) && v < 1<<23:
		return 5
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return 6
	}
	return 10
}

// lpStrSize is the size of a string element of a listpack; strings that
// are canonical integers are stored as integers.
func lpStrSize(s []byte) int {
	if v, ok := canonicalInt(s); ok {
		return lpIntSize(v)
	}
	l := len(s)
	var enc int
	switch {
	case l < 64:
		enc = 1 + l
	case l < 4096:
		enc = 2 + l
	default:
		enc = 5 + l
	}
	switch {
	case enc <= 127:
		return enc + 1
	case enc < 16383:
		return enc + 2
	case enc < 2097151:
		return enc + 3
	case enc < 268435455:
		return enc + 4
	}
	return enc + 5
}

// canonicalInt parses s if it is an int64 written the canonical way (no
// sign '+', no leading zeros, not "-0"), as a listpack stores it.
func canonicalInt(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	neg := s[0] == '-'
	d := s
	if neg {
		d = s[1:]
	}
	if len(d) == 0 || (d[0] == '0' && (len(d) > 1 || neg)) {
		return 0, false
	}
	var u uint64
	for _, ch := range d {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(ch-'0')
	}
	switch {
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	case neg && u <= 1<<63:
		return -int64(u), true
	}
	return 0, false
}

// nodeOf returns the index of the node holding id (the last node whose
// master ID is at most id), -1 if none.
func (s *Stream) nodeOf(id StreamID) int {
	lo, hi := 0, len(s.nodes)
	for lo < hi {
		m := (lo + hi) / 2
		if id.Less(s.nodes[m].master) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// markDeleted records that an entry of node i is gone; a node without live
// entries is dropped, as Redis frees its listpack.
func (s *Stream) markDeleted(i int) {
	n := &s.nodes[i]
	n.live--
	n.deleted++
	if n.live == 0 {
		s.dropNodes(i, i+1)
	}
}

// Delete removes entry id (XDEL) and reports whether it existed; it
// updates the largest deleted ID.
func (s *Stream) Delete(id StreamID) bool {
	if _, ok := s.entries.Delete(StreamEntry{ID: id}); !ok {
		return false
	}
	if i := s.nodeOf(id); i >= 0 {
		s.markDeleted(i)
	}
	if s.maxDeleted.Less(id) {
		s.maxDeleted = id
	}
	return true
}

// TrimArgs are the trimming options of XADD and XTRIM.
type TrimArgs struct {
	MaxLen bool // MAXLEN (else MINID)
	N      int64
	MinID  StreamID
	Approx bool
	Limit  int64 // 0: none
}

// Trim removes entries from the head as Redis's streamTrim does (whole
// nodes first; with Approx only whole nodes; at most Limit entries) and
// returns how many it removed.
func (s *Stream) Trim(a TrimArgs) int64 {
	var deleted int64
	for len(s.nodes) > 0 {
		if a.MaxLen && int64(s.Len()) <= a.N {
			break
		}
		n := &s.nodes[0]
		live := int64(n.live)
		if a.Limit > 0 && deleted+live > a.Limit {
			break
		}
		var whole bool
		if a.MaxLen {
			whole = int64(s.Len())-live >= a.N
		} else {
			whole = n.last.Less(a.MinID)
		}
		if whole { // the first node's entries are the stream's first ones
			deleted += int64(s.entries.DeleteThrough(n.last))
			s.dropNodes(0, 1)
			continue
		}
		if a.Approx {
			break
		}
		// exact: delete the node's entries up to the bound, keep the node
		var victims int
		var through StreamID
		left := int64(s.Len())
		s.Range(n.master, n.last, false, func(e StreamEntry) bool {
			if a.MaxLen {
				if left <= a.N {
					return false
				}
			} else if !e.ID.Less(a.MinID) {
				return false
			}
			victims++
			through = e.ID
			left--
			return true
		})
		if victims > 0 {
			s.entries.DeleteThrough(through)
		}
		n.live -= victims
		n.deleted += victims
		deleted += int64(victims)
		if n.live == 0 { // not reachable: the whole-node case covers it
			s.dropNodes(0, 1)
		}
		break
	}
	if len(s.nodes) == 0 {
		s.nodes = nil // let the backing array go
	}
	return deleted
}

// Memory is the estimated size of a stream (Size): without it a stream
// counted as an empty object in used_memory and to maxmemory, whatever
// its entries. Groups and consumers are counted one by one, so a stream
// with very many of them costs a little more per command.
func (s *Stream) Memory() int64 { return int64(s.Size()) }

// Size estimates the value's memory in bytes (entries, nodes, groups and
// their pending entries), for memory accounting.
func (s *Stream) Size() int {
	const pelItemSize = 48 // a pending entry's slot in a B-tree (its share of a node)
	sz := streamHeader + s.entries.bytes + cap(s.nodes)*streamNodeSize + s.fieldBytes
	for name, g := range s.groups {
		sz += 96 + len(name) + g.pel.Len()*(pelItemSize+40)
		for cn, c := range g.consumers {
			sz += 80 + len(cn) + c.pel.Len()*pelItemSize
		}
	}
	return sz
}

// streamHeader is the Stream and its streamEntries; streamNodeSize a
// streamNode in the nodes array.
const (
	streamHeader   = 96 + 48
	streamNodeSize = int(unsafe.Sizeof(streamNode{}))
)

// fieldsFootprint estimates the heap of a node's field names: the array
// and a copy of each, rounded up as small allocations are.
func (n *streamNode) fieldsFootprint() int {
	sz := roundAlloc(cap(n.fields) * 24)
	for _, f := range n.fields {
		sz += roundAlloc(len(f))
	}
	return sz
}

func roundAlloc(n int) int {
	if n == 0 {
		return 0
	}
	return (n + 15) &^ 15
}

// dropNodes removes nodes [from, to).
func (s *Stream) dropNodes(from, to int) {
	for i := from; i < to; i++ {
		s.fieldBytes -= s.nodes[i].fieldsFootprint()
	}
	if from == 0 {
		s.nodes = s.nodes[to:]
	} else {
		s.nodes = append(s.nodes[:from], s.nodes[to:]...)
	}
}

// RaxNodes returns the number of radix tree nodes Redis's stream would
// have for its listpack keys (the 128-bit big-endian master IDs): XINFO
// reports it. It counts the nodes of the compressed trie of those keys.
func (s *Stream) RaxNodes() int {
	keys := make([][16]byte, len(s.nodes))
	for i, n := range s.nodes {
		binary.BigEndian.PutUint64(keys[i][:8], n.master.Ms)
		binary.BigEndian.PutUint64(keys[i][8:], n.master.Seq)
	}
	if len(keys) == 0 {
		return 1
	}
	return raxCount(keys, 0)
}

// raxCount counts the trie nodes below depth of sorted, distinct keys: a
// run of bytes they all share is one compressed node, a byte where they
// differ a branching node, and each key ends in a leaf.
func raxCount(keys [][16]byte, depth int) int {
	if depth == 16 {
		return 1
	}
	if keys[0][depth] == keys[len(keys)-1][depth] { // sorted: all share it
		d := depth
		for d < 16 && keys[0][d] == keys[len(keys)-1][d] {
			d++
		}
		return 1 + raxCount(keys, d)
	}
	n := 1
	for i := 0; i < len(keys); {
		j := i
		for j < len(keys) && keys[j][depth] == keys[i][depth] {
			j++
		}
		n += raxCount(keys[i:j], depth+1)
		i = j
	}
	return n
}
