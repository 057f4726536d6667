package keyspace

import (
	"strconv"
	"testing"
)

// lazyValue builds a value of n elements of each collection kind; len
// reads its size back (0 once the freer released it).
type lazyValue struct {
	name string
	make func(n int) (*Entry, func() int)
}

var lazyValues = []lazyValue{
	{"list", func(n int) (*Entry, func() int) {
		l := &List{} // elements of 600 bytes: 13 a node, 1,000 take 77 nodes
		for i := range n {
			l.PushBack(append(make([]byte, 600), strconv.Itoa(i)...))
		}
		return Lists.NewEntry(l), l.Len
	}},
	{"set", func(n int) (*Entry, func() int) {
		s := NewSet()
		for i := range n {
			s.Add([]byte("m" + strconv.Itoa(i)))
		}
		return Sets.NewEntry(s), s.Len
	}},
	{"hash", func(n int) (*Entry, func() int) {
		h := NewHash()
		for i := range n {
			h.Set([]byte("f"+strconv.Itoa(i)), []byte("v"))
		}
		return Hashes.NewEntry(h), h.Len
	}},
	{"zset", func(n int) (*Entry, func() int) {
		z := NewZSet()
		for i := range n {
			z.Add("m"+strconv.Itoa(i), float64(i))
		}
		return ZSets.NewEntry(z), func() int { return z.length }
	}},
	{"stream", func(n int) (*Entry, func() int) {
		s := NewStream()
		for i := range n {
			s.Append(StreamID{uint64(i + 1), 0}, [][]byte{[]byte("f"), []byte("v")}, DefaultNodeLimits)
		}
		return Streams.NewEntry(s), s.Len
	}},
}

// drain runs the freer until its queue is empty.
func drain(lf *LazyFree) {
	done := make(chan struct{})
	close(done)
	lf.Run(done)
}

// TestUnlinkLazyFree checks which deleted values go to the freer (more
// than LazyFreeThreshold allocations, by UnlinkLocked only), that it
// takes them apart, and its counters.
func TestUnlinkLazyFree(t *testing.T) {
	for _, v := range lazyValues {
		for _, tc := range []struct {
			n        int
			unlink   bool
			wantLazy bool
		}{
			{1000, true, true},
			{10, true, false},
			{1000, false, false}, // DeleteLocked: at once
		} {
			t.Run(v.name+"/"+strconv.Itoa(tc.n)+"/unlink="+strconv.FormatBool(tc.unlink), func(t *testing.T) {
				ks := New()
				lf := NewLazyFree()
				ks.SetLazyFree(lf)
				key := []byte("k")
				e, size := v.make(tc.n)
				ks.LockShard(ShardOf(key))
				ks.AddLocked(key, e)
				var ok bool
				if tc.unlink {
					ok = ks.UnlinkLocked(key)
				} else {
					ok = ks.DeleteLocked(key)
				}
				ks.UnlockShard(ShardOf(key))
				if !ok {
					t.Fatal("key not deleted")
				}
				want := int64(0)
				if tc.wantLazy {
					want = 1
				}
				if got := lf.Pending(); got != want {
					t.Errorf("pending %d, want %d", got, want)
				}
				drain(lf)
				if lf.Pending() != 0 || lf.Freed() != want {
					t.Errorf("after the freer: pending %d, freed %d, want 0 and %d", lf.Pending(), lf.Freed(), want)
				}
				if released := size() == 0; released != tc.wantLazy {
					t.Errorf("value released %v (size %d), want %v", released, size(), tc.wantLazy)
				}
				lf.ResetStats()
				if lf.Freed() != 0 {
					t.Errorf("freed %d after ResetStats", lf.Freed())
				}
			})
		}
	}
}

// TestLazyFreeStreamEffort: a stream's groups and pending entries count,
// as in Redis (a stream of one entry with a big PEL is freed lazily).
func TestLazyFreeStreamEffort(t *testing.T) {
	s := NewStream()
	s.Append(StreamID{1, 0}, [][]byte{[]byte("f"), []byte("v")}, DefaultNodeLimits)
	if got := s.freeEffort(); got != 1 {
		t.Fatalf("effort %d, want 1", got)
	}
	g := s.CreateGroup([]byte("g"), StreamID{}, 0)
	c := g.CreateConsumer([]byte("c"), 1)
	for i := range 100 {
		g.Deliver(c, StreamID{uint64(i + 1), 0}, 1)
	}
	if got := s.freeEffort(); got != 1+1+100 {
		t.Fatalf("effort %d, want 102", got)
	}
}

// TestFlushAsync checks that FlushAsyncLocked empties the keyspace at
// once and the freer counts every key, and that lazy expiry hands big
// values over only with its setting.
func TestFlushAsync(t *testing.T) {
	ks := New()
	lf := NewLazyFree()
	ks.SetLazyFree(lf)
	for i := range NumShards {
		ks.LockShard(i)
	}
	for i := range 300 {
		e, _ := lazyValues[1].make(i % 3)
		ks.AddLocked([]byte("k"+strconv.Itoa(i)), e)
	}
	ks.FlushAsyncLocked()
	for i := range NumShards {
		ks.UnlockShard(i)
	}
	if ks.Len() != 0 || lf.Pending() != 300 {
		t.Fatalf("after the flush: %d keys, %d pending, want 0 and 300", ks.Len(), lf.Pending())
	}
	drain(lf)
	if lf.Pending() != 0 || lf.Freed() != 300 {
		t.Fatalf("pending %d, freed %d, want 0 and 300", lf.Pending(), lf.Freed())
	}

	for _, lazy := range []bool{false, true} {
		lf.ResetStats()
		lf.Expire.Store(lazy)
		key := []byte("exp")
		e, _ := lazyValues[1].make(1000)
		ks.LockShard(ShardOf(key))
		ks.AddLocked(key, e)
		ks.SetExpireLocked(key, e, 10)
		if ks.LookupLocked(key, 20) != nil {
			t.Fatal("expired key found")
		}
		ks.UnlockShard(ShardOf(key))
		drain(lf)
		if want := map[bool]int64{false: 0, true: 1}[lazy]; lf.Freed() != want {
			t.Errorf("lazyfree-lazy-expire %v: freed %d, want %d", lazy, lf.Freed(), want)
		}
	}
}

// TestFlushRelease: a flush of at least SetRelease's bytes asks the freer
// to give the memory back (a synchronous one at once, an ASYNC one once
// the freer has dropped the keys); a smaller one does not.
func TestFlushRelease(t *testing.T) {
	ks := New()
	lf := NewLazyFree()
	ks.SetLazyFree(lf)
	released := 0
	lf.SetRelease(100_000, func() { released++ })
	fill := func(n int) {
		for i := range NumShards {
			ks.LockShard(i)
		}
		for i := range n {
			ks.AddLocked([]byte("k"+strconv.Itoa(i)), NewString(make([]byte, 100), 0))
		}
		for i := range NumShards {
			ks.UnlockShard(i)
		}
	}
	flush := func(async bool) {
		for i := range NumShards {
			ks.LockShard(i)
		}
		if async {
			ks.FlushAsyncLocked()
		} else {
			ks.FlushLocked()
		}
		for i := range NumShards {
			ks.UnlockShard(i)
		}
	}
	// the freer's work, one job at a time (Run would also take the
	// release requests)
	freeJobs := func() {
		for len(lf.jobs) > 0 {
			lf.do(<-lf.jobs)
		}
	}
	for _, async := range []bool{false, true} {
		released = 0
		fill(10) // about 2 KB
		flush(async)
		freeJobs()
		if len(lf.wantRelease) != 0 || ks.UsedMemory() != 0 {
			t.Errorf("async %v: a small flush asked for a release (used %d)", async, ks.UsedMemory())
		}
		fill(2000) // over 100 KB
		if ks.UsedMemory() < 100_000 {
			t.Fatalf("2,000 keys of 100 bytes: used %d", ks.UsedMemory())
		}
		flush(async)
		if async {
			if len(lf.wantRelease) != 0 {
				t.Errorf("an ASYNC flush asked for a release before the freer dropped the keys")
			}
			freeJobs()
		}
		if len(lf.wantRelease) != 1 {
			t.Fatalf("async %v: no release asked for after a big flush", async)
		}
		<-lf.wantRelease
		lf.Release()
		if released != 1 {
			t.Errorf("async %v: released %d times, want 1", async, released)
		}
	}
}
