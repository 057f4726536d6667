package keyspace

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkMemoryPerKey measures the heap bytes per key of string keys as
// redis-benchmark -r writes them ("key:000000000042" -> "xxx"), and of
// small hashes. Run with: go test -run XXX -bench MemoryPerKey . -benchtime 1x
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
}

func bytesPerKey(n int, put func(ks *Keyspace, k []byte)) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ks := New()
	for i := 0; i < n; i++ {
		put(ks, []byte(fmt.Sprintf("key:%012d", i)))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ks)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}
