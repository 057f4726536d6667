package kv

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFlushReleasesMemory: a big FLUSHALL or FLUSHDB (SYNC or ASYNC) has
// the server hand the freed memory back to the system, and MEMORY PURGE
// does it at once (here counted instead of run).
func TestFlushReleasesMemory(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	var n atomic.Int32
	done := make(chan struct{}, 10)
	e.srv.lazy.SetRelease(100_000, func() {
		n.Add(1)
		done <- struct{}{}
	})
	wait := func(what string, want int32) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no release", what)
		}
		if got := n.Load(); got != want {
			t.Fatalf("%s: %d releases, want %d", what, got, want)
		}
	}
	fill := func() {
		pipe := e.rdb.Pipeline()
		for i := range 2000 {
			pipe.Set(ctx, "k"+strconv.Itoa(i), strings.Repeat("v", 100), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	fill()
	e.run([]step{{"flushall sync", "OK"}})
	wait("FLUSHALL SYNC", 1)
	fill()
	e.run([]step{{"flushdb async", "OK"}})
	wait("FLUSHDB ASYNC", 2)
	e.run([]step{{"set small 1", "OK"}, {"flushall", "OK"}, {"memory purge", "OK"}})
	wait("MEMORY PURGE", 3)
}
