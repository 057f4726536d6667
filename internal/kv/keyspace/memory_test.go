package keyspace

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkMemoryPerKey measures the heap bytes per key of string keys as
// redis-benchmark -r writes them ("key:000000000042" -> "xxx"), and of
// small lists, sets, hashes and sorted sets. Run with: go test -run XXX -bench MemoryPerKey . -benchtime 1x
func BenchmarkMemoryPerKey(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		b.Run(fmt.Sprintf("strings-%d", n), func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(bytesPerKey(n, func(ks *Keyspace, k []byte) {
					ks.SetStringLocked(k, []byte("xxx"), 0, 0)
				}), "bytes/key")
			}
		})
	}
	for _, tt := range []struct {
		name  string
		elems []string
	}{
		{"list-3-100000", []string{"a", "b", "c"}},                                           // RPUSH k a b c
		{"list-10-ints-100000", []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}}, // RPUSH k 1 ... 10
	} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(bytesPerKey(100000, func(ks *Keyspace, k []byte) {
					l := &List{}
					for _, v := range tt.elems {
						l.PushBack([]byte(v))
					}
					ks.AddLocked(k, Lists.NewEntry(l))
				}), "bytes/key")
			}
		})
	}
	b.Run("set-3-members-100000", func(b *testing.B) {
		for b.Loop() {
			b.ReportMetric(bytesPerKey(100000, func(ks *Keyspace, k []byte) {
				s := NewSet()
				for _, m := range []string{"a", "b", "c"} {
					s.Add([]byte(m))
				}
				ks.AddLocked(k, Sets.NewEntry(s))
			}), "bytes/key")
		}
	})
	b.Run("hash-3-fields-100000", func(b *testing.B) {
		for b.Loop() {
			b.ReportMetric(bytesPerKey(100000, func(ks *Keyspace, k []byte) {
				h := NewHash()
				for _, f := range []string{"a", "b", "c"} {
					h.Set([]byte(f), []byte("1"))
				}
				ks.AddLocked(k, Hashes.NewEntry(h))
			}), "bytes/key")
		}
	})
	// ZADD key 1 a 2 b 3 c: the small form, and the big one
	// (zset-max-listpack-entries 0)
	for _, tt := range []struct {
		name string
		lim  ZSetLimits
	}{{"zset-3-members-100000", DefaultZSetLimits}, {"zset-3-members-skiplist-100000", ZSetLimits{}}} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(bytesPerKey(100000, func(ks *Keyspace, k []byte) {
					z := NewZSet()
					for i, m := range []string{"a", "b", "c"} {
						z.AddWithin([]byte(m), float64(i+1), tt.lim)
					}
					ks.AddLocked(k, ZSets.NewEntry(z))
				}), "bytes/key")
			}
		})
	}
}

func bytesPerKey(n int, put func(ks *Keyspace, k []byte)) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ks := New()
	for i := 0; i < n; i++ {
		k := []byte(fmt.Sprintf("key:%012d", i))
		ks.LockShard(ShardOf(k)) // ...Locked methods count memory when the shard is unlocked
		put(ks, k)
		ks.UnlockShard(ShardOf(k))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ks)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestMemoryEstimate compares the keyspace's estimate of its memory
// (UsedMemory, what maxmemory limits) with the Go heap it takes, for
// strings and for small and big collections of every type.
func TestMemoryEstimate(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a keyspace several times")
	}
	val := func(i int) []byte { return fmt.Appendf(nil, "value-%d", i) }
	for _, tt := range []struct {
		name string
		keys int
		put  func(ks *Keyspace, k []byte)
	}{
		{"strings-3B", 200000, func(ks *Keyspace, k []byte) { ks.SetStringLocked(k, []byte("xxx"), 0, 0) }},
		{"strings-100B-ttl", 100000, func(ks *Keyspace, k []byte) {
			ks.SetStringLocked(k, make([]byte, 100), 1e15, 0)
		}},
		{"lists-20", 20000, func(ks *Keyspace, k []byte) {
			l := &List{}
			for i := 0; i < 20; i++ {
				l.PushBack(val(i))
			}
			ks.AddLocked(k, Lists.NewEntry(l))
		}},
		{"lists-100000", 5, func(ks *Keyspace, k []byte) {
			l := &List{}
			for i := 0; i < 100000; i++ {
				l.PushBack([]byte("value-of-some-bytes!"))
			}
			ks.AddLocked(k, Lists.NewEntry(l))
		}},
		{"lists-lpush-lrem-ltrim", 5, func(ks *Keyspace, k []byte) {
			l := &List{}
			for i := 0; i < 100000; i++ {
				l.PushFront(val(i % 10))
			}
			l.Remove(val(3), 0)
			l.Trim(1000, l.Len()-1000)
			ks.AddLocked(k, Lists.NewEntry(l))
		}},
		{"sets-small-3", 50000, func(ks *Keyspace, k []byte) {
			s := NewSet()
			for i := 0; i < 3; i++ {
				s.Add(val(i))
			}
			ks.AddLocked(k, Sets.NewEntry(s))
		}},
		{"sets-intset-3", 100000, func(ks *Keyspace, k []byte) {
			s := NewSet()
			for i := 1; i <= 3; i++ {
				s.Add(strconv.AppendInt(nil, int64(i), 10))
			}
			ks.AddLocked(k, Sets.NewEntry(s))
		}},
		{"sets-intset-300", 1000, func(ks *Keyspace, k []byte) {
			s := NewSet()
			for i := 0; i < 300; i++ {
				s.Add(strconv.AppendInt(nil, int64(i)*100003, 10))
			}
			ks.AddLocked(k, Sets.NewEntry(s))
		}},
		{"sets-big-500", 200, func(ks *Keyspace, k []byte) {
			s := NewSet()
			for i := 0; i < 500; i++ {
				s.Add(val(i))
			}
			ks.AddLocked(k, Sets.NewEntry(s))
		}},
		{"hashes-small-5", 50000, func(ks *Keyspace, k []byte) {
			h := NewHash()
			for i := 0; i < 5; i++ {
				h.Set(val(i), val(i))
			}
			ks.AddLocked(k, Hashes.NewEntry(h))
		}},
		{"hashes-big-500", 200, func(ks *Keyspace, k []byte) {
			h := NewHash()
			for i := 0; i < 500; i++ {
				h.Set(val(i), val(i))
			}
			ks.AddLocked(k, Hashes.NewEntry(h))
		}},
		{"streams-5", 20000, func(ks *Keyspace, k []byte) {
			s := NewStream()
			for i := 0; i < 5; i++ {
				s.Append(StreamID{Ms: uint64(i + 1)}, [][]byte{[]byte("field"), val(i)}, DefaultNodeLimits)
			}
			ks.AddLocked(k, Streams.NewEntry(s))
		}},
		{"streams-100000", 3, func(ks *Keyspace, k []byte) {
			s := NewStream()
			for i := 0; i < 100000; i++ {
				s.Append(StreamID{Ms: uint64(i + 1)}, [][]byte{[]byte("field"), []byte("value-of-some-bytes")}, DefaultNodeLimits)
			}
			ks.AddLocked(k, Streams.NewEntry(s))
		}},
		{"streams-xdel-trim", 3, func(ks *Keyspace, k []byte) {
			s := NewStream()
			for i := 0; i < 100000; i++ {
				s.Append(StreamID{Ms: uint64(i + 1)}, [][]byte{[]byte("f"), val(i), []byte("g"), val(i)}, DefaultNodeLimits)
			}
			for i := 0; i < 100000; i += 3 {
				s.Delete(StreamID{Ms: uint64(i + 1)})
			}
			s.Trim(TrimArgs{MaxLen: true, N: 40000})
			ks.AddLocked(k, Streams.NewEntry(s))
		}},
		{"zsets-small-3", 50000, func(ks *Keyspace, k []byte) {
			z := NewZSet()
			for i := 0; i < 3; i++ {
				z.Add(string(val(i)), float64(i))
			}
			ks.AddLocked(k, ZSets.NewEntry(z))
		}},
		{"zsets-small-100", 2000, func(ks *Keyspace, k []byte) {
			z := NewZSet()
			for i := 0; i < 100; i++ {
				z.Add(string(val(i)), float64(i))
			}
			ks.AddLocked(k, ZSets.NewEntry(z))
		}},
		{"zsets-big-3", 20000, func(ks *Keyspace, k []byte) {
			z := NewZSet()
			for i := 0; i < 3; i++ {
				z.AddWithin(val(i), float64(i), ZSetLimits{})
			}
			ks.AddLocked(k, ZSets.NewEntry(z))
		}},
		{"zsets-big-500", 200, func(ks *Keyspace, k []byte) {
			z := NewZSet()
			for i := 0; i < 500; i++ {
				z.Add(string(val(i)), float64(i))
			}
			ks.AddLocked(k, ZSets.NewEntry(z))
		}},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ks := New()
		for i := 0; i < tt.keys; i++ {
			k := []byte(fmt.Sprintf("key:%012d", i))
			ks.LockShard(ShardOf(k))
			tt.put(ks, k)
			ks.UnlockShard(ShardOf(k))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(after.HeapAlloc-before.HeapAlloc) - emptyKeyspace
		est := float64(ks.UsedMemory())
		runtime.KeepAlive(ks)
		t.Logf("%-18s estimate %6.1f MB, heap %6.1f MB: %.2f", tt.name, est/1e6, heap/1e6, est/heap)
		if r := est / heap; r < 0.8 || r > 1.25 {
			t.Errorf("%s: estimate %.0f bytes, heap %.0f: ratio %.2f, want 0.8..1.25", tt.name, est, heap, r)
		}
	}
}

// emptyKeyspace is the heap of a keyspace without keys (its shards).
var emptyKeyspace = func() float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ks := New()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ks)
	return float64(after.HeapAlloc - before.HeapAlloc)
}()
