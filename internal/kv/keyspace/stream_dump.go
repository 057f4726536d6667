package keyspace

import (
	"encoding/binary"
)

// The DUMP body of a stream (type 0xC5), all integers varints:
//
//	stream   = uvarint(n) entry*n  lastID  uvarint(entriesAdded)  maxDeletedID
//	           uvarint(groups) group*
//	entry    = id uvarint(pairs) (string string)*pairs      ids ascending
//	id       = uvarint(ms) uvarint(seq)
//	group    = string(name) id(last) varint(entriesRead)
//	           uvarint(consumers) consumer*  uvarint(pending) pending*
//	consumer = string(name) varint(seenTime) varint(activeTime)
//	pending  = id uvarint(consumer index) varint(deliveryTime) uvarint(deliveryCount)
//
// Node boundaries are not kept: a restored stream is rebuilt with
// DefaultNodeLimits, which only changes how a later "~" trim rounds.

// DefaultNodeLimits are Redis's default stream-node-max-entries and
// stream-node-max-bytes.
var DefaultNodeLimits = NodeLimits{MaxEntries: 100, MaxBytes: 4096}

func appendID(b []byte, id StreamID) []byte {
	b = binary.AppendUvarint(b, id.Ms)
	return binary.AppendUvarint(b, id.Seq)
}

func appendDumpStream(b []byte, s *Stream) []byte {
	b = binary.AppendUvarint(b, uint64(s.Len()))
	s.entries.Ascend(func(e StreamEntry) bool {
		b = appendID(b, e.ID)
		b = binary.AppendUvarint(b, uint64(e.Pairs()))
		e.Fields(func(f, v []byte) {
			b = appendDumpString(b, f)
			b = appendDumpString(b, v)
		})
		return true
	})
	b = appendID(b, s.lastID)
	b = binary.AppendUvarint(b, uint64(s.entriesAdded))
	b = appendID(b, s.maxDeleted)
	groups := s.Groups()
	b = binary.AppendUvarint(b, uint64(len(groups)))
	for _, g := range groups {
		b = appendDumpString(b, []byte(g.Name))
		b = appendID(b, g.LastID)
		b = binary.AppendVarint(b, g.EntriesRead)
		cons := g.Consumers()
		index := make(map[*StreamConsumer]int, len(cons))
		b = binary.AppendUvarint(b, uint64(len(cons)))
		for i, c := range cons {
			index[c] = i
			b = appendDumpString(b, []byte(c.Name))
			b = binary.AppendVarint(b, c.SeenTime)
			b = binary.AppendVarint(b, c.ActiveTime)
		}
		b = binary.AppendUvarint(b, uint64(g.pel.Len()))
		g.pel.Ascend(func(it pelItem) bool {
			b = appendID(b, it.id)
			b = binary.AppendUvarint(b, uint64(index[it.p.Consumer]))
			b = binary.AppendVarint(b, it.p.DeliveryTime)
			b = binary.AppendUvarint(b, uint64(it.p.DeliveryCount))
			return true
		})
	}
	return b
}

func (r *dumpReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *dumpReader) id() StreamID {
	return StreamID{Ms: r.uvarint(), Seq: r.uvarint()}
}

// countOrZero reads a count that may be zero; every element takes at
// least min bytes.
func (r *dumpReader) countOrZero(min int) int {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)/min) {
		r.err = true
		r.b = nil
		return 0
	}
	return int(n)
}

// stream decodes a stream body; any inconsistency (IDs out of order or
// past the last ID, duplicate names, a pending entry of an unknown
// consumer) is an error.
func (r *dumpReader) stream() *Stream {
	s := NewStream()
	var prev StreamID
	n := r.countOrZero(3)
	for i := 0; i < n && !r.err; i++ {
		id := r.id()
		pairs := r.count(2)
		if r.err || (i > 0 && !prev.Less(id)) || id.IsZero() {
			r.err = true
			return nil
		}
		fv := make([][]byte, 0, 2*pairs)
		for j := 0; j < 2*pairs && !r.err; j++ {
			fv = append(fv, r.bytes())
		}
		if r.err {
			return nil
		}
		s.Append(id, fv, DefaultNodeLimits)
		prev = id
	}
	last, added, maxDel := r.id(), r.uvarint(), r.id()
	if r.err || (n > 0 && last.Less(prev)) || added < uint64(n) || added > 1<<62 || last.Less(maxDel) {
		r.err = true
		return nil
	}
	s.SetMeta(last, int64(added), maxDel)
	groups := r.countOrZero(6)
	for i := 0; i < groups && !r.err; i++ {
		name := r.bytes()
		glast := r.id()
		read := r.varint()
		if r.err || read < InvalidEntriesRead {
			r.err = true
			return nil
		}
		g := s.CreateGroup(name, glast, read)
		if g == nil {
			r.err = true
			return nil
		}
		ncons := r.countOrZero(3)
		cons := make([]*StreamConsumer, 0, ncons)
		for j := 0; j < ncons && !r.err; j++ {
			cname := r.bytes()
			seen, active := r.varint(), r.varint()
			c := g.CreateConsumer(cname, seen)
			if r.err || c == nil {
				r.err = true
				return nil
			}
			c.ActiveTime = active
			cons = append(cons, c)
		}
		npel := r.countOrZero(5)
		var prevPel StreamID
		for j := 0; j < npel && !r.err; j++ {
			id := r.id()
			ci := r.uvarint()
			t, cnt := r.varint(), r.uvarint()
			if r.err || ci >= uint64(len(cons)) || (j > 0 && !prevPel.Less(id)) || cnt > 1<<62 {
				r.err = true
				return nil
			}
			p := g.Claim(cons[ci], id)
			p.DeliveryTime, p.DeliveryCount = t, int64(cnt)
			prevPel = id
		}
	}
	if r.err {
		return nil
	}
	return s
}
