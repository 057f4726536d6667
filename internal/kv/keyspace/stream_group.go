package keyspace

import (
	"slices"

	"github.com/google/btree"
)

// InvalidEntriesRead is a group's entries-read counter when it is unknown.
const InvalidEntriesRead int64 = -1

// StreamGroup is a consumer group: the last ID delivered, its logical read
// counter, its pending entries list (PEL: delivered, not acknowledged) and
// its consumers.
type StreamGroup struct {
	Name        string
	LastID      StreamID
	EntriesRead int64
	pel         *btree.BTreeG[pelItem]
	consumers   map[string]*StreamConsumer
}

// StreamConsumer is a consumer of a group with its own view of the PEL.
type StreamConsumer struct {
	Name string
	// SeenTime is the last time (Unix ms) the consumer tried to read or
	// claim; ActiveTime the last time it got an entry (-1: never).
	SeenTime   int64
	ActiveTime int64
	pel        *btree.BTreeG[pelItem]
}

// PendingEntry is an entry of a PEL: delivered to Consumer at
// DeliveryTime (Unix ms), DeliveryCount times.
type PendingEntry struct {
	Consumer      *StreamConsumer
	DeliveryTime  int64
	DeliveryCount int64
}

type pelItem struct {
	id StreamID
	p  *PendingEntry
}

func lessPEL(a, b pelItem) bool { return a.id.Less(b.id) }

func newPEL() *btree.BTreeG[pelItem] { return btree.NewG(8, lessPEL) }

// Group returns the group named name, nil if none.
func (s *Stream) Group(name []byte) *StreamGroup {
	return s.groups[string(name)]
}

// CreateGroup adds a group; it returns nil when the name is taken.
func (s *Stream) CreateGroup(name []byte, last StreamID, entriesRead int64) *StreamGroup {
	if s.groups == nil {
		s.groups = make(map[string]*StreamGroup)
	}
	if _, ok := s.groups[string(name)]; ok {
		return nil
	}
	g := &StreamGroup{Name: string(name), LastID: last, EntriesRead: entriesRead,
		pel: newPEL(), consumers: make(map[string]*StreamConsumer)}
	s.groups[g.Name] = g
	return g
}

// DestroyGroup removes a group and reports whether it existed.
func (s *Stream) DestroyGroup(name []byte) bool {
	if _, ok := s.groups[string(name)]; !ok {
		return false
	}
	delete(s.groups, string(name))
	return true
}

// Groups returns the groups sorted by name (Redis lists them in the order
// of its radix tree).
func (s *Stream) Groups() []*StreamGroup {
	out := make([]*StreamGroup, 0, len(s.groups))
	for _, g := range s.groups {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *StreamGroup) int { return compareStrings(a.Name, b.Name) })
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Consumer returns the consumer named name, nil if none.
func (g *StreamGroup) Consumer(name []byte) *StreamConsumer { return g.consumers[string(name)] }

// CreateConsumer adds a consumer seen at now; nil when it exists.
func (g *StreamGroup) CreateConsumer(name []byte, now int64) *StreamConsumer {
	if _, ok := g.consumers[string(name)]; ok {
		return nil
	}
	c := &StreamConsumer{Name: string(name), SeenTime: now, ActiveTime: -1, pel: newPEL()}
	g.consumers[c.Name] = c
	return c
}

// DeleteConsumer removes a consumer and its pending entries; it returns
// how many entries it had pending, -1 if it did not exist.
func (g *StreamGroup) DeleteConsumer(name []byte) int {
	c := g.consumers[string(name)]
	if c == nil {
		return -1
	}
	n := c.pel.Len()
	c.pel.Ascend(func(it pelItem) bool {
		g.pel.Delete(it)
		return true
	})
	delete(g.consumers, c.Name)
	return n
}

// Consumers returns the consumers sorted by name.
func (g *StreamGroup) Consumers() []*StreamConsumer {
	out := make([]*StreamConsumer, 0, len(g.consumers))
	for _, c := range g.consumers {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *StreamConsumer) int { return compareStrings(a.Name, b.Name) })
	return out
}

// NumConsumers returns the number of consumers.
func (g *StreamGroup) NumConsumers() int { return len(g.consumers) }

// PendingLen returns the number of entries in the group's PEL.
func (g *StreamGroup) PendingLen() int { return g.pel.Len() }

// PendingLen returns the number of entries pending for the consumer.
func (c *StreamConsumer) PendingLen() int { return c.pel.Len() }

// Pending returns the group's pending entry id, nil if none.
func (g *StreamGroup) Pending(id StreamID) *PendingEntry {
	it, ok := g.pel.Get(pelItem{id: id})
	if !ok {
		return nil
	}
	return it.p
}

// PendingRange calls fn for the group's pending entries from start to end
// (or the consumer's when c is not nil) until fn returns false.
func (g *StreamGroup) PendingRange(c *StreamConsumer, start, end StreamID, fn func(id StreamID, p *PendingEntry) bool) {
	pel := g.pel
	if c != nil {
		pel = c.pel
	}
	if end.Less(start) {
		return
	}
	pel.AscendGreaterOrEqual(pelItem{id: start}, func(it pelItem) bool {
		if end.Less(it.id) {
			return false
		}
		return fn(it.id, it.p)
	})
}

// FirstPending and LastPending return the ends of the group's PEL.
func (g *StreamGroup) FirstPending() (StreamID, bool) {
	it, ok := g.pel.Min()
	return it.id, ok
}

// LastPending returns the largest pending ID.
func (g *StreamGroup) LastPending() (StreamID, bool) {
	it, ok := g.pel.Max()
	return it.id, ok
}

// Deliver records that entry id was delivered to c at now: a new pending
// entry, or one moved from another consumer with its count reset to 1
// (after XGROUP SETID an entry can be delivered again). It returns the
// pending entry.
func (g *StreamGroup) Deliver(c *StreamConsumer, id StreamID, now int64) *PendingEntry {
	if it, ok := g.pel.Get(pelItem{id: id}); ok {
		p := it.p
		p.Consumer.pel.Delete(it)
		p.Consumer, p.DeliveryTime, p.DeliveryCount = c, now, 1
		c.pel.ReplaceOrInsert(it)
		return p
	}
	p := &PendingEntry{Consumer: c, DeliveryTime: now, DeliveryCount: 1}
	it := pelItem{id: id, p: p}
	g.pel.ReplaceOrInsert(it)
	c.pel.ReplaceOrInsert(it)
	return p
}

// Ack removes id from the PEL and reports whether it was pending.
func (g *StreamGroup) Ack(id StreamID) bool {
	it, ok := g.pel.Delete(pelItem{id: id})
	if !ok {
		return false
	}
	it.p.Consumer.pel.Delete(it)
	return true
}

// Claim gives pending entry id (created when p is nil: XCLAIM FORCE) to c
// and returns it.
func (g *StreamGroup) Claim(c *StreamConsumer, id StreamID) *PendingEntry {
	it, ok := g.pel.Get(pelItem{id: id})
	if !ok {
		it = pelItem{id: id, p: &PendingEntry{DeliveryCount: 1}} // as Redis creates a NACK
		g.pel.ReplaceOrInsert(it)
	}
	if it.p.Consumer != c {
		if it.p.Consumer != nil {
			it.p.Consumer.pel.Delete(it)
		}
		it.p.Consumer = c
		c.pel.ReplaceOrInsert(it)
	}
	return it.p
}

// RangeHasTombstones reports whether an entry between start and end (end
// nil: the end of the stream) was deleted, as far as the largest deleted
// ID tells.
func (s *Stream) RangeHasTombstones(start StreamID, end *StreamID) bool {
	if s.Len() == 0 || s.maxDeleted.IsZero() || s.maxDeleted.Less(s.FirstID()) {
		return false
	}
	e := MaxStreamID
	if end != nil {
		e = *end
	}
	return !s.maxDeleted.Less(start) && !e.Less(s.maxDeleted)
}

// EstimateDistance returns the logical read counter of id (how many
// entries were added up to it), or InvalidEntriesRead when it cannot be
// known (Redis's streamEstimateDistanceFromFirstEverEntry).
func (s *Stream) EstimateDistance(id StreamID) int64 {
	if s.entriesAdded == 0 {
		return 0
	}
	if s.Len() == 0 && id.Compare(s.lastID) < 1 {
		return s.entriesAdded
	}
	switch id.Compare(s.lastID) {
	case 0:
		return s.entriesAdded
	case 1:
		return InvalidEntriesRead
	}
	first := s.FirstID()
	if s.maxDeleted.IsZero() || s.maxDeleted.Less(first) {
		switch id.Compare(first) {
		case -1:
			return s.entriesAdded - int64(s.Len())
		case 0:
			return s.entriesAdded - int64(s.Len()) + 1
		}
	}
	return InvalidEntriesRead
}

// Lag returns how many entries the group has not read yet; ok is false
// when it cannot be known (Redis 7.0's rules).
func (s *Stream) Lag(g *StreamGroup) (int64, bool) {
	if s.entriesAdded == 0 {
		return 0, true
	}
	if g.EntriesRead != InvalidEntriesRead && !s.RangeHasTombstones(g.LastID, nil) {
		return s.entriesAdded - g.EntriesRead, true
	}
	if er := s.EstimateDistance(g.LastID); er != InvalidEntriesRead {
		return s.entriesAdded - er, true
	}
	return 0, false
}

// Advance moves the group's last delivered ID to id (greater than it),
// keeping its read counter as Redis 7.0 does.
func (s *Stream) Advance(g *StreamGroup, id StreamID) {
	if g.EntriesRead != InvalidEntriesRead && !s.RangeHasTombstones(id, nil) {
		g.EntriesRead++
	} else if s.entriesAdded != 0 {
		g.EntriesRead = s.EstimateDistance(id)
	}
	g.LastID = id
}

// Clone returns a deep copy of the stream (COPY).
func (s *Stream) Clone() *Stream {
	n := &Stream{
		entries: s.entries.Clone(), lastID: s.lastID, maxDeleted: s.maxDeleted,
		entriesAdded: s.entriesAdded, fieldBytes: s.fieldBytes,
	}
	n.nodes = slices.Clone(s.nodes)
	for _, g := range s.Groups() {
		ng := n.CreateGroup([]byte(g.Name), g.LastID, g.EntriesRead)
		for _, c := range g.Consumers() {
			nc := ng.CreateConsumer([]byte(c.Name), c.SeenTime)
			nc.ActiveTime = c.ActiveTime
		}
		g.pel.Ascend(func(it pelItem) bool {
			p := *it.p
			p.Consumer = ng.consumers[it.p.Consumer.Name]
			nit := pelItem{id: it.id, p: &p}
			ng.pel.ReplaceOrInsert(nit)
			p.Consumer.pel.ReplaceOrInsert(nit)
			return true
		})
	}
	return n
}
