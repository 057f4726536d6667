package keyspace

import "slices"

// entryChunkMax is the most entries a chunk of a stream's entry list holds.
const entryChunkMax = 128

// streamEntries holds a stream's entries in ID order, in chunks of at most
// entryChunkMax entries: a sorted list of sorted arrays, close to Redis's
// radix tree of listpacks. Streams grow at their end (XADD) and shrink at
// their start (XTRIM), which costs O(1) here, where a B-tree descends and
// rebalances on every append; a lookup by ID is two binary searches.
// No chunk is empty.
type streamEntries struct {
	chunks []*entryChunk
	n      int
}

type entryChunk struct{ items []StreamEntry }

func (l *streamEntries) last() *entryChunk { return l.chunks[len(l.chunks)-1] }

// Len returns the number of entries.
func (l *streamEntries) Len() int { return l.n }

// Min returns the first entry.
func (l *streamEntries) Min() (StreamEntry, bool) {
	if l.n == 0 {
		return StreamEntry{}, false
	}
	return l.chunks[0].items[0], true
}

// Max returns the last entry.
func (l *streamEntries) Max() (StreamEntry, bool) {
	if l.n == 0 {
		return StreamEntry{}, false
	}
	items := l.last().items
	return items[len(items)-1], true
}

// seek returns the position of the first entry whose ID is id or after
// it: chunk ci, index i; ci is len(l.chunks) when every entry is before id.
func (l *streamEntries) seek(id StreamID) (ci, i int) {
	lo, hi := 0, len(l.chunks)
	for lo < hi { // the first chunk whose last entry is not before id
		m := int(uint(lo+hi) >> 1)
		items := l.chunks[m].items
		if items[len(items)-1].ID.Less(id) {
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
		if items[m].ID.Less(id) {
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
	return ci, i, ci < len(l.chunks) && l.chunks[ci].items[i].ID == id
}

// Get returns the entry with key's ID.
func (l *streamEntries) Get(key StreamEntry) (StreamEntry, bool) {
	ci, i, ok := l.find(key.ID)
	if !ok {
		return StreamEntry{}, false
	}
	return l.chunks[ci].items[i], true
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
		for _, e := range l.chunks[ci].items[i:] {
			if !fn(e) {
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
		items := l.chunks[ci].items
		if i < 0 {
			i = len(items) - 1
		}
		for ; i >= 0; i-- {
			if !fn(items[i]) {
				return
			}
		}
	}
}

// ReplaceOrInsert adds e, or replaces the entry with its ID.
func (l *streamEntries) ReplaceOrInsert(e StreamEntry) {
	if last, ok := l.Max(); !ok || last.ID.Less(e.ID) { // an append: the usual case
		if len(l.chunks) == 0 || len(l.last().items) == entryChunkMax {
			c := 4 // a small stream stays small
			if len(l.chunks) > 0 {
				c = entryChunkMax
			}
			l.chunks = append(l.chunks, &entryChunk{items: make([]StreamEntry, 0, c)})
		}
		ch := l.last()
		ch.items = append(ch.items, e)
		l.n++
		return
	}
	ci, i, ok := l.find(e.ID)
	ch := l.chunks[ci] // ci is in range: e is before the last entry
	if ok {
		ch.items[i] = e
		return
	}
	ch.items = slices.Insert(ch.items, i, e)
	l.n++
	if len(ch.items) > entryChunkMax { // split it in halves
		half := len(ch.items) / 2
		next := &entryChunk{items: slices.Clone(ch.items[half:])}
		clear(ch.items[half:])
		ch.items = ch.items[:half]
		l.chunks = slices.Insert(l.chunks, ci+1, next)
	}
}

// Delete removes the entry with key's ID.
func (l *streamEntries) Delete(key StreamEntry) (StreamEntry, bool) {
	ci, i, ok := l.find(key.ID)
	if !ok {
		return StreamEntry{}, false
	}
	ch := l.chunks[ci]
	e := ch.items[i]
	switch {
	case len(ch.items) == 1:
		l.chunks = slices.Delete(l.chunks, ci, ci+1)
	case i == 0: // trimming: the chunk's array is dropped with the chunk
		ch.items[0] = StreamEntry{}
		ch.items = ch.items[1:]
	default:
		ch.items = slices.Delete(ch.items, i, i+1)
	}
	l.n--
	return e, true
}

// Clone returns a copy of the list; the entries' data is shared (it is
// never changed in place).
func (l *streamEntries) Clone() *streamEntries {
	out := &streamEntries{chunks: make([]*entryChunk, len(l.chunks)), n: l.n}
	for i, ch := range l.chunks {
		out.chunks[i] = &entryChunk{items: slices.Clone(ch.items)}
	}
	return out
}
