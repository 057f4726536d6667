package server

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// BenchmarkLogStoreAppend times one StoreLogs of one entry (what a Raft
// log write waits for, fsyncs included) on each log store as the server
// opens it, in the benchmark's temp dir (set TMPDIR to measure another
// disk). Besides the mean it reports p50 and p99 per append.
//
//	go test -run '^$' -bench LogStoreAppend -benchtime 2000x ./internal/server/
func BenchmarkLogStoreAppend(b *testing.B) {
	for _, kind := range []string{LogStoreWAL, LogStoreBoltDB} {
		for _, size := range []int{1 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("%s/%dKB", kind, size>>10), func(b *testing.B) {
				store, got, err := openLogStore(b.TempDir(), kind, hclog.NewNullLogger())
				if err != nil {
					b.Fatal(err)
				}
				defer store.Close()
				if got != kind {
					b.Fatalf("opened %s, want %s", got, kind)
				}
				data := make([]byte, size)
				for i := range data {
					data[i] = byte(i * 7)
				}
				took := make([]time.Duration, 0, b.N)
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					l := &raft.Log{Index: uint64(i) + 1, Term: 1, Type: raft.LogCommand, Data: data}
					start := time.Now()
					if err := store.StoreLogs([]*raft.Log{l}); err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(start))
				}
				b.StopTimer()
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-us")
				b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-us")
			})
		}
	}
}
