package keyspace

import (
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
				e := StreamEntry{ID: next, data: []byte{byte(step)}}
				l.ReplaceOrInsert(e)
				ref = append(ref, e)
			case op < 5: // insert or replace anywhere
				e := StreamEntry{ID: id(), data: []byte{byte(step)}}
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
			mn, okMin := l.Min()
			mx, okMax := l.Max()
			if okMin != (len(ref) > 0) || okMax != (len(ref) > 0) ||
				(len(ref) > 0 && (mn.ID != ref[0].ID || mx.ID != ref[len(ref)-1].ID)) {
				t.Fatalf("seed %d step %d: Min/Max wrong", seed, step)
			}
		}
		var all []StreamEntry
		l.Clone().Ascend(func(e StreamEntry) bool { all = append(all, e); return true })
		if !slices.EqualFunc(all, ref, func(a, b StreamEntry) bool { return a.ID == b.ID && string(a.data) == string(b.data) }) {
			t.Fatalf("seed %d: the clone's entries differ", seed)
		}
		for _, ch := range l.chunks {
			if len(ch.items) == 0 || len(ch.items) > entryChunkMax {
				t.Fatalf("seed %d: a chunk of %d entries", seed, len(ch.items))
			}
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
