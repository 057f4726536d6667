package rdbcodec

import (
	"encoding/binary"
)

// ID is a stream entry ID.
type ID struct{ Ms, Seq uint64 }

func (a ID) less(b ID) bool { return a.Ms < b.Ms || (a.Ms == b.Ms && a.Seq < b.Seq) }

// StreamEntry is a live entry of a stream: its ID and its fields and
// values, alternating.
type StreamEntry struct {
	ID     ID
	Fields [][]byte
}

// Stream is a decoded stream.
type Stream struct {
	// Entries are the live entries in ID order.
	Entries      []StreamEntry
	LastID       ID
	MaxDeletedID ID
	EntriesAdded uint64
	Groups       []Group
	// Legacy is true for a payload of Redis before 7.0 (type
	// STREAM_LISTPACKS): it holds no entries-added counter (EntriesAdded
	// is the length), maximal deleted ID (zero) or group read counters,
	// which the caller estimates as Redis 7 does.
	Legacy bool
}

// Group is a consumer group.
type Group struct {
	Name   []byte
	LastID ID
	// EntriesRead is the group's read counter, -1 when unknown; not set
	// for a Legacy stream.
	EntriesRead int64
	// Pending is the group's pending entries list in ID order.
	Pending   []Pending
	Consumers []Consumer
}

// Pending is an entry delivered to a consumer and not acknowledged.
type Pending struct {
	ID            ID
	DeliveryTime  int64 // Unix ms
	DeliveryCount uint64
	Consumer      int // index in the group's Consumers
}

// Consumer is a consumer of a group.
type Consumer struct {
	Name []byte
	// SeenTime is the last time it read (Unix ms); ActiveTime the last
	// time it got an entry (SeenTime for payloads of Redis before 7.2).
	SeenTime, ActiveTime int64
}

// Stream entry flags (t_stream.c).
const (
	flagDeleted    = 1
	flagSameFields = 2
)

// rawID decodes a 16-byte big-endian stream ID.
func rawID(b []byte) ID {
	return ID{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
}

func (r *reader) id() (ID, error) {
	ms, err := r.plainLen()
	if err != nil {
		return ID{}, err
	}
	seq, err := r.plainLen()
	return ID{ms, seq}, err
}

func (r *reader) rawID() (ID, error) {
	b, err := r.take(16)
	if err != nil {
		return ID{}, err
	}
	return rawID(b), nil
}

// millis reads a time in milliseconds: 8 bytes, little endian.
func (r *reader) millis() (int64, error) {
	b, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(b)), nil
}

// stream reads a stream of type STREAM_LISTPACKS, _2 (Redis 7.0) or _3
// (Redis 7.2): its listpack nodes keyed by master ID, length, last ID,
// (_2 and later: first ID, maximal deleted ID, entries added), and its
// consumer groups with their pending entries and consumers.
func (r *reader) stream(t byte) (*Stream, error) {
	s := &Stream{Legacy: t == typeStreamListpacks}
	nodes, err := r.count(2)
	if err != nil {
		return nil, err
	}
	var prev ID
	seen := false
	for ; nodes > 0; nodes-- {
		key, err := r.str()
		if err != nil {
			return nil, err
		}
		if len(key) != 16 {
			return nil, bad("stream node key of %d bytes", len(key))
		}
		lp, err := r.str()
		if err != nil {
			return nil, err
		}
		items, err := Listpack(lp)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, bad("empty listpack inside stream")
		}
		master := rawID(key)
		if seen && !prev.less(master) {
			return nil, bad("stream nodes out of order")
		}
		if s.Entries, prev, err = streamNode(s.Entries, items, master); err != nil {
			return nil, err
		}
		seen = true
	}
	length, err := r.plainLen()
	if err != nil {
		return nil, err
	}
	if length != uint64(len(s.Entries)) {
		return nil, bad("stream length %d, %d entries", length, len(s.Entries))
	}
	if s.LastID, err = r.id(); err != nil {
		return nil, err
	}
	if len(s.Entries) > 0 && s.LastID.less(s.Entries[len(s.Entries)-1].ID) {
		return nil, bad("stream last ID before its last entry")
	}
	s.EntriesAdded = length
	if !s.Legacy {
		if _, err = r.id(); err != nil { // first ID: the entries tell it
			return nil, err
		}
		if s.MaxDeletedID, err = r.id(); err != nil {
			return nil, err
		}
		if s.EntriesAdded, err = r.plainLen(); err != nil {
			return nil, err
		}
		if s.EntriesAdded < length || s.EntriesAdded > 1<<62 || s.LastID.less(s.MaxDeletedID) {
			return nil, bad("stream counters inconsistent")
		}
	}
	groups, err := r.count(4)
	if err != nil {
		return nil, err
	}
	names := make(map[string]struct{}, groups)
	for ; groups > 0; groups-- {
		g, err := r.group(t)
		if err != nil {
			return nil, err
		}
		if _, dup := names[string(g.Name)]; dup {
			return nil, bad("duplicate consumer group %q", g.Name)
		}
		names[string(g.Name)] = struct{}{}
		s.Groups = append(s.Groups, g)
	}
	return s, nil
}

func (r *reader) group(t byte) (Group, error) {
	var g Group
	var err error
	if g.Name, err = r.str(); err != nil {
		return g, err
	}
	if g.LastID, err = r.id(); err != nil {
		return g, err
	}
	if t != typeStreamListpacks {
		read, err := r.plainLen()
		if err != nil {
			return g, err
		}
		g.EntriesRead = int64(read)
		if g.EntriesRead < -1 {
			return g, bad("group entries-read %d", g.EntriesRead)
		}
	}
	npel, err := r.count(25)
	if err != nil {
		return g, err
	}
	g.Pending = make([]Pending, 0, npel)
	index := make(map[ID]int, npel)
	for ; npel > 0; npel-- {
		var p Pending
		if p.ID, err = r.rawID(); err != nil {
			return g, err
		}
		if p.DeliveryTime, err = r.millis(); err != nil {
			return g, err
		}
		if p.DeliveryCount, err = r.plainLen(); err != nil {
			return g, err
		}
		if p.DeliveryCount > 1<<62 {
			return g, bad("delivery count %d", p.DeliveryCount)
		}
		if n := len(g.Pending); n > 0 && !g.Pending[n-1].ID.less(p.ID) {
			return g, bad("group pending entries out of order")
		}
		p.Consumer = -1
		index[p.ID] = len(g.Pending)
		g.Pending = append(g.Pending, p)
	}
	ncons, err := r.count(10)
	if err != nil {
		return g, err
	}
	cnames := make(map[string]struct{}, ncons)
	for ; ncons > 0; ncons-- {
		var c Consumer
		if c.Name, err = r.str(); err != nil {
			return g, err
		}
		if _, dup := cnames[string(c.Name)]; dup {
			return g, bad("duplicate consumer %q", c.Name)
		}
		cnames[string(c.Name)] = struct{}{}
		if c.SeenTime, err = r.millis(); err != nil {
			return g, err
		}
		c.ActiveTime = c.SeenTime
		if t == typeStreamListpack3 {
			if c.ActiveTime, err = r.millis(); err != nil {
				return g, err
			}
		}
		n, err := r.count(16)
		if err != nil {
			return g, err
		}
		for ; n > 0; n-- {
			id, err := r.rawID()
			if err != nil {
				return g, err
			}
			i, ok := index[id]
			if !ok || g.Pending[i].Consumer != -1 {
				return g, bad("consumer pending entry %d-%d not in the group's, or twice", id.Ms, id.Seq)
			}
			g.Pending[i].Consumer = len(g.Consumers)
		}
		g.Consumers = append(g.Consumers, c)
	}
	for _, p := range g.Pending {
		if p.Consumer < 0 {
			return g, bad("group pending entry %d-%d without a consumer", p.ID.Ms, p.ID.Seq)
		}
	}
	return g, nil
}

// streamNode decodes the entries of one node's listpack and appends the
// live ones to out; it returns the last ID in the node. The listpack
// holds a master entry (count of live entries, count of deleted ones,
// the master fields, 0) then per entry: flags, ID as differences from the
// master ID, the values (same fields as the master) or a field count and
// pairs, and the entry's element count.
func streamNode(out []StreamEntry, items []Item, master ID) ([]StreamEntry, ID, error) {
	p := 0
	next := func() (Item, bool) {
		if p >= len(items) {
			return Item{}, false
		}
		p++
		return items[p-1], true
	}
	nextInt := func() (int64, bool) {
		it, ok := next()
		return it.I, ok && it.IsInt
	}
	live, ok1 := nextInt()
	deleted, ok2 := nextInt()
	nfields, ok3 := nextInt()
	if !ok1 || !ok2 || !ok3 || live < 0 || deleted < 0 || nfields < 0 || nfields > int64(len(items)) {
		return nil, ID{}, bad("stream master entry")
	}
	fields := make([][]byte, nfields)
	for i := range fields {
		it, ok := next()
		if !ok {
			return nil, ID{}, bad("stream master entry truncated")
		}
		fields[i] = it.Bytes()
	}
	if z, ok := nextInt(); !ok || z != 0 {
		return nil, ID{}, bad("stream master entry terminator")
	}
	var last ID
	var nlive, ndel int64
	for p < len(items) {
		start := p
		flags, ok1 := nextInt()
		dms, ok2 := nextInt()
		dseq, ok3 := nextInt()
		if !ok1 || !ok2 || !ok3 || flags&^(flagDeleted|flagSameFields) != 0 {
			return nil, ID{}, bad("stream entry header")
		}
		id := ID{master.Ms + uint64(dms), master.Seq + uint64(dseq)}
		if id.less(master) || (nlive+ndel > 0 && !last.less(id)) {
			return nil, ID{}, bad("stream entry IDs out of order")
		}
		var fv [][]byte
		if flags&flagSameFields != 0 {
			fv = make([][]byte, 0, 2*len(fields))
			for _, f := range fields {
				v, ok := next()
				if !ok {
					return nil, ID{}, bad("stream entry truncated")
				}
				fv = append(fv, f, v.Bytes())
			}
		} else {
			n, ok := nextInt()
			if !ok || n < 0 || n > int64(len(items)-p)/2 {
				return nil, ID{}, bad("stream entry field count")
			}
			fv = make([][]byte, 0, 2*n)
			for i := int64(0); i < 2*n; i++ {
				v, _ := next()
				fv = append(fv, v.Bytes())
			}
		}
		if len(fv) == 0 {
			return nil, ID{}, bad("stream entry without fields")
		}
		if lpc, ok := nextInt(); !ok || lpc != int64(p-start-1) {
			return nil, ID{}, bad("stream entry element count")
		}
		if flags&flagDeleted != 0 {
			ndel++
		} else {
			nlive++
			out = append(out, StreamEntry{ID: id, Fields: fv})
		}
		last = id
	}
	if nlive != live || ndel != deleted || nlive+ndel == 0 {
		return nil, ID{}, bad("stream node counts %d+%d, %d+%d entries", live, deleted, nlive, ndel)
	}
	return out, last, nil
}
