package keyspace

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestStreamEntriesModel runs random appends, inserts, deletes, lookups
// and ranges on the chunked entry list and on a sorted slice, and
// compares them after every step.
func TestStreamEntriesModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 0))
		l := &streamEntries{}
		var ref []StreamEntry
		id := func() StreamID { return StreamID{Ms: uint64(rng.IntN(2000)), Seq: uint64(rng.IntN(3))} }
		next := StreamID{Ms: 3000}
		for step := 0; step < 20000; step++ {
			switch op := rng.IntN(10); {
			case op < 4: // append, as XADD
				next.Seq++
				e := testEntry(next, step)
				l.ReplaceOrInsert(e)
				ref = append(ref, e)
			case op < 5: // insert or replace anywhere
				e := testEntry(id(), step)
				l.ReplaceOrInsert(e)
				i, found := slices.BinarySearchFunc(ref, e.ID, func(a StreamEntry, b StreamID) int { return a.ID.Compare(b) })
				if found {
					ref[i] = e
				} else {
					ref = slices.Insert(ref, i, e)
				}
			case op < 7: // delete the first (XTRIM) or a random one (XDEL)
				if len(ref) == 0 {
					continue
				}
				i := 0
				if op == 6 {
					i = rng.IntN(len(ref))
				}
				got, ok := l.Delete(StreamEntry{ID: ref[i].ID})
				if !ok || got.ID != ref[i].ID {
					t.Fatalf("seed %d step %d: Delete(%v) = %v, %v", seed, step, ref[i].ID, got.ID, ok)
				}
				ref = slices.Delete(ref, i, i+1)
			case op < 8: // a missing one
				if _, ok := l.Delete(StreamEntry{ID: StreamID{Ms: 1 << 40}}); ok {
					t.Fatalf("seed %d step %d: deleted a missing entry", seed, step)
				}
			default: // lookups and ranges
				k := id()
				i, found := slices.BinarySearchFunc(ref, k, func(a StreamEntry, b StreamID) int { return a.ID.Compare(b) })
				if got, ok := l.Get(StreamEntry{ID: k}); ok != found || (ok && got.ID != k) || l.Has(StreamEntry{ID: k}) != found {
					t.Fatalf("seed %d step %d: Get(%v) = %v, want %v", seed, step, k, ok, found)
				}
				var asc []StreamID
				l.AscendGreaterOrEqual(StreamEntry{ID: k}, func(e StreamEntry) bool {
					asc = append(asc, e.ID)
					return len(asc) < 5
				})
				var want []StreamID
				for _, e := range ref[i:min(i+5, len(ref))] {
					want = append(want, e.ID)
				}
				if !slices.Equal(asc, want) {
					t.Fatalf("seed %d step %d: ascend from %v = %v, want %v", seed, step, k, asc, want)
				}
				var desc []StreamID
				l.DescendLessOrEqual(StreamEntry{ID: k}, func(e StreamEntry) bool {
					desc = append(desc, e.ID)
					return len(desc) < 5
				})
				want = want[:0]
				j := i - 1
				if found {
					j = i
				}
				for ; j >= 0 && len(want) < 5; j-- {
					want = append(want, ref[j].ID)
				}
				if !slices.Equal(desc, want) {
					t.Fatalf("seed %d step %d: descend from %v = %v, want %v", seed, step, k, desc, want)
				}
			}
			if l.Len() != len(ref) {
				t.Fatalf("seed %d step %d: Len %d, want %d", seed, step, l.Len(), len(ref))
			}
			// every step while the list is short, then every 16th: a
			// check decodes every record
			if step < 3000 || step%16 == 0 {
				if err := checkChunks(l, step%128 == 0); err != nil {
					t.Fatalf("seed %d step %d: %v", seed, step, err)
				}
			}
			if step%128 == 0 {
				if err := sameEntries(l, ref); err != nil {
					t.Fatalf("seed %d step %d: %v", seed, step, err)
				}
			}
			mn, okMin := l.Min()
			mx, okMax := l.Max()
			if okMin != (len(ref) > 0) || okMax != (len(ref) > 0) ||
				(len(ref) > 0 && (mn.ID != ref[0].ID || mx.ID != ref[len(ref)-1].ID)) {
				t.Fatalf("seed %d step %d: Min/Max wrong", seed, step)
			}
		}
		if err := sameEntries(l, ref); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := checkChunks(l, true); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		var all []StreamEntry
		l.Clone().Ascend(func(e StreamEntry) bool { all = append(all, e); return true })
		if !slices.EqualFunc(all, ref, func(a, b StreamEntry) bool { return a.ID == b.ID && bytes.Equal(flat(a), flat(b)) }) {
			t.Fatalf("seed %d: the clone's entries differ", seed)
		}
	}
}

// BenchmarkStreamAppend is XADD's work on the stream: an entry with one
// field appended to a stream of b.N entries.
func BenchmarkStreamAppend(b *testing.B) {
	fv := [][]byte{[]byte("field"), []byte("value-of-some-bytes")}
	s := NewStream()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Append(StreamID{Ms: uint64(i/4 + 1), Seq: uint64(i % 4)}, fv, DefaultNodeLimits)
	}
}

// entryData is the value of the step-th entry of a test: 1 to 40 bytes
// that name the step.
func entryData(step int) []byte {
	return bytes.Repeat([]byte{byte(step), byte(step >> 8)}, 1+step%20)
}

// testFields returns the fields and values of the step-th entry of a
// test: mostly one field "field" (as XADD with the same fields), some
// entries with other names, two fields or a long value.
func testFields(step int) [][]byte {
	v := entryData(step)
	switch step % 7 {
	case 3:
		return [][]byte{[]byte("other"), v}
	case 5:
		return [][]byte{[]byte("field"), v, []byte("f2"), {}}
	case 6:
		if step%3 == 0 {
			return [][]byte{[]byte("field"), bytes.Repeat(v, 10)}
		}
	}
	return [][]byte{[]byte("field"), v}
}

// testEntry returns entry id with the step-th fields, encoded as an
// entry that does not share its names.
func testEntry(id StreamID, step int) StreamEntry {
	return StreamEntry{ID: id, data: appendFields(nil, testFields(step))}
}

// flat returns an entry's fields encoded without shared names.
func flat(e StreamEntry) []byte { return appendFields(nil, e.fieldValues()) }

// checkChunks checks the invariants of the chunks: none empty or over
// the limits, IDs ascending and not before the master's, every record
// inside its chunk's data, after the names and before the next record,
// each record as the chunk encodes that entry (the names shared whenever
// they are the master's), the garbage what the records leave of the
// data and at most half of it, and the heap estimate the sum of the
// chunks'. The records are encoded anew (which allocates) only when deep.
func checkChunks(l *streamEntries, deep bool) error {
	n, bytes := 0, 0
	var prev StreamID
	for ci, ch := range l.chunks {
		if len(ch.offs) == 0 || len(ch.offs) > entryChunkMax {
			return fmt.Errorf("chunk %d: %d entries", ci, len(ch.offs))
		}
		used := int(ch.names)
		end := int(ch.names)
		for i, off := range ch.offs {
			if int(off) < end {
				return fmt.Errorf("chunk %d: entry %d at %d, before %d", ci, i, off, end)
			}
			e := ch.entry(i)
			if (ci > 0 || i > 0) && !prev.Less(e.ID) {
				return fmt.Errorf("chunk %d: %v after %v", ci, e.ID, prev)
			}
			if e.ID.Less(ch.master) {
				return fmt.Errorf("chunk %d: %v before the master %v", ci, e.ID, ch.master)
			}
			prev = e.ID
			size := ch.recordLen(i)
			if int(off)+size > len(ch.data) {
				return fmt.Errorf("chunk %d: entry %v at %d+%d past %d bytes", ci, e.ID, off, size, len(ch.data))
			}
			if deep {
				want, same := ch.recordSize(e.ID, e.fieldValues())
				if want != size || same != (e.names != 0) {
					return fmt.Errorf("chunk %d: entry %v takes %d bytes, shares names %v; encoded anew %d, %v",
						ci, e.ID, size, e.names != 0, want, same)
				}
			}
			end = int(off) + size
			used += size
		}
		if used+ch.garbage != len(ch.data) {
			return fmt.Errorf("chunk %d: %d bytes used, %d garbage, %d in all", ci, used, ch.garbage, len(ch.data))
		}
		if ch.garbage*2 > len(ch.data) {
			return fmt.Errorf("chunk %d: %d bytes of %d are garbage", ci, ch.garbage, len(ch.data))
		}
		if len(ch.data) > chunkArenaMax && len(ch.offs) > 1 {
			return fmt.Errorf("chunk %d: %d bytes of data", ci, len(ch.data))
		}
		n += len(ch.offs)
		bytes += ch.footprint()
	}
	if n != l.n {
		return fmt.Errorf("%d entries in the chunks, Len %d", n, l.n)
	}
	if bytes != l.bytes {
		return fmt.Errorf("heap estimate %d, chunks' sum %d", l.bytes, bytes)
	}
	return nil
}

// sameEntries compares the list's entries, IDs and fields, with want.
func sameEntries(l *streamEntries, want []StreamEntry) error {
	var got []StreamEntry
	l.Ascend(func(e StreamEntry) bool { got = append(got, e); return true })
	if len(got) != len(want) {
		return fmt.Errorf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if g, w := flat(got[i]), flat(want[i]); got[i].ID != want[i].ID || !bytes.Equal(g, w) {
			return fmt.Errorf("entry %d: %v %x, want %v %x", i, got[i].ID, g, want[i].ID, w)
		}
	}
	return nil
}

// TestStreamEntriesArena covers what the chunks' shared data adds: XDEL
// in the middle, compaction, trimming, clones that change apart, entries
// kept by a caller while their chunk changes, and the arena's size limit.
func TestStreamEntriesArena(t *testing.T) {
	id := func(i int) StreamID { return StreamID{Ms: uint64(i)} }
	build := func(n int) (*streamEntries, []StreamEntry) {
		l := &streamEntries{}
		var ref []StreamEntry
		for i := 1; i <= n; i++ {
			e := testEntry(id(i), i)
			l.ReplaceOrInsert(e)
			ref = append(ref, e)
		}
		return l, ref
	}
	del := func(l *streamEntries, ref []StreamEntry, ids ...int) []StreamEntry {
		for _, i := range ids {
			if _, ok := l.Delete(StreamEntry{ID: id(i)}); !ok {
				panic(fmt.Sprint("no entry ", i))
			}
			ref = slices.DeleteFunc(ref, func(e StreamEntry) bool { return e.ID == id(i) })
		}
		return ref
	}
	span := func(from, to int) []int {
		var out []int
		for i := from; i <= to; i++ {
			out = append(out, i)
		}
		return out
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"delete in the middle", func(t *testing.T) {
			l, ref := build(300)
			ref = del(l, ref, 2, 50, 129, 130, 200, 299)
			if err := sameEntries(l, ref); err != nil {
				t.Fatal(err)
			}
			if ch := l.chunks[0]; ch.garbage == 0 {
				t.Fatal("a deleted entry's bytes are not counted as garbage")
			}
		}},
		{"compaction past half", func(t *testing.T) {
			l, ref := build(entryChunkMax)
			ch := l.chunks[0]
			old := ch.data
			ref = del(l, ref, span(2, 100)...) // most of the chunk's bytes
			if err := sameEntries(l, ref); err != nil {
				t.Fatal(err)
			}
			if &ch.data[0] == &old[0] || ch.garbage*2 > len(ch.data) {
				t.Fatalf("not compacted: %d bytes, %d garbage", len(ch.data), ch.garbage)
			}
			if cap(ch.data) >= cap(old)/2 {
				t.Fatalf("compacted data keeps %d bytes of capacity of %d", cap(ch.data), cap(old))
			}
		}},
		{"trim drops whole chunks", func(t *testing.T) {
			l, ref := build(5 * entryChunkMax)
			if got := l.DeleteThrough(id(2*entryChunkMax + 10)); got != 2*entryChunkMax+10 {
				t.Fatalf("DeleteThrough removed %d", got)
			}
			ref = ref[2*entryChunkMax+10:]
			if len(l.chunks) != 3 {
				t.Fatalf("%d chunks left, want 3", len(l.chunks))
			}
			if err := sameEntries(l, ref); err != nil {
				t.Fatal(err)
			}
			if got := l.DeleteThrough(StreamID{Ms: 1 << 60}); got != len(ref) || l.Len() != 0 || l.chunks != nil {
				t.Fatalf("DeleteThrough(all) removed %d, %d chunks left", got, len(l.chunks))
			}
		}},
		{"a short stream trimmed as it grows", func(t *testing.T) {
			l := &streamEntries{}
			for i := 1; i <= 10000; i++ {
				l.ReplaceOrInsert(testEntry(id(i), i))
				if i > 10 {
					l.DeleteThrough(id(i - 10))
				}
			}
			if len(l.chunks) != 1 || cap(l.chunks[0].data) > 4096 {
				t.Fatalf("10 entries take %d chunks, %d bytes", len(l.chunks), cap(l.chunks[0].data))
			}
		}},
		{"clone independence", func(t *testing.T) {
			l, ref := build(200)
			c := l.Clone()
			cref := slices.Clone(ref)
			for i := 201; i <= 240; i++ { // both append into the last chunk's data
				e := testEntry(id(i), i)
				l.ReplaceOrInsert(e)
				ref = append(ref, e)
				e = testEntry(id(i), i+7)
				c.ReplaceOrInsert(e)
				cref = append(cref, e)
			}
			ref = del(l, ref, span(130, 190)...)
			cref = del(c, cref, 1, 2, 3, 150)
			if err := sameEntries(l, ref); err != nil {
				t.Fatal("original:", err)
			}
			if err := sameEntries(c, cref); err != nil {
				t.Fatal("clone:", err)
			}
		}},
		{"kept entry after its chunk changes", func(t *testing.T) {
			l, _ := build(entryChunkMax + 5)
			// entry 2 and the last live on; entry 3 is deleted (a caller
			// may hold it still); compaction moves later entries' bytes
			// to where entry 2 was
			kept, _ := l.Get(StreamEntry{ID: id(2)})
			last, _ := l.Max()
			gone, _ := l.Delete(StreamEntry{ID: id(3)})
			want, wantLast, wantGone := flat(kept), flat(last), flat(gone)
			l.Delete(StreamEntry{ID: id(1)})
			for i := 4; i < 100; i++ { // compacts the chunk
				l.Delete(StreamEntry{ID: id(i)})
			}
			for i := entryChunkMax + 6; i < 4*entryChunkMax; i++ { // grows and seals the last
				l.ReplaceOrInsert(testEntry(id(i), i))
			}
			l.Delete(StreamEntry{ID: id(100)})
			l.ReplaceOrInsert(StreamEntry{ID: id(100), data: appendFields(nil, fv("again"))}) // splits nothing, rebuilds the chunk
			l.DeleteThrough(id(3 * entryChunkMax))
			if !bytes.Equal(flat(kept), want) || !bytes.Equal(flat(last), wantLast) || !bytes.Equal(flat(gone), wantGone) {
				t.Fatalf("kept entries changed: %x, %x, %x", flat(kept), flat(last), flat(gone))
			}
		}},
		{"arena limit", func(t *testing.T) {
			defer func(m int) { chunkArenaMax = m }(chunkArenaMax)
			chunkArenaMax = 200
			l, ref := build(300)
			if len(l.chunks) < 300*20/200 {
				t.Fatalf("%d chunks for 300 entries of up to 40 bytes in 200", len(l.chunks))
			}
			for _, i := range []int{10, 20, 30} { // rebuilds a chunk past the limit: splits it
				l.Delete(StreamEntry{ID: id(i)})
				e := StreamEntry{ID: id(i), data: appendFields(nil, [][]byte{[]byte("field"), bytes.Repeat([]byte{'x'}, 150)})}
				l.ReplaceOrInsert(e)
				ref[i-1] = e
			}
			if err := sameEntries(l, ref); err != nil {
				t.Fatal(err)
			}
			if err := checkChunks(l, true); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// TestStreamEntriesEncoding covers the records' IDs at the edges of
// their encoding (deltas past the inline range, the largest ms and seq,
// a master of 0-0) and that entries with the master's field names
// drop them: a one-field entry costs its value, its offset and a byte or
// two of ID.
func TestStreamEntriesEncoding(t *testing.T) {
	const max = 1<<64 - 1
	idSets := [][]StreamID{
		{{0, 0}, {0, 1}, {0, 62}, {0, 63}, {0, 64}, {0, 200}, {0, max}, {1, 0}, {62, max}, {63, 0}, {64, 5}, {1 << 40, 1}, {max, 0}, {max, max}},
		{{5, max - 70}, {5, max - 8}, {5, max}, {6, 0}, {max - 1, max}, {max, 7}},
	}
	for si, set := range idSets {
		l := &streamEntries{}
		var ref []StreamEntry
		for i, id := range set {
			l.Append(id, testFields(i))
			ref = append(ref, testEntry(id, i))
			if err := checkChunks(l, true); err != nil {
				t.Fatalf("set %d after %v: %v", si, id, err)
			}
		}
		if err := sameEntries(l, ref); err != nil {
			t.Fatalf("set %d: %v", si, err)
		}
		for _, e := range ref {
			if got, ok := l.Get(StreamEntry{ID: e.ID}); !ok || got.ID != e.ID {
				t.Fatalf("set %d: Get(%v) = %v, %v", si, e.ID, got.ID, ok)
			}
		}
	}

	// XADD's case: auto IDs, a few entries per millisecond, one field
	l := &streamEntries{}
	value := []byte("value-of-some-bytes")
	const n = 100 * entryChunkMax
	for i := 0; i < n; i++ {
		l.Append(StreamID{Ms: 1700000000000 + uint64(i/3), Seq: uint64(i % 3)}, [][]byte{[]byte("field"), value})
	}
	if err := checkChunks(l, true); err != nil {
		t.Fatal(err)
	}
	// offset 4, header 1-2, value 1+19; the chunks' own share under 1
	if per := float64(l.bytes) / n; per > 27 {
		t.Fatalf("%.1f bytes per one-field entry of %d bytes, want at most 27", per, len(value))
	}
	var got int
	l.Ascend(func(e StreamEntry) bool {
		if e.names == 0 {
			t.Fatalf("entry %v does not share the master's field names", e.ID)
		}
		got++
		return true
	})
	if got != n {
		t.Fatalf("%d entries, want %d", got, n)
	}
}
