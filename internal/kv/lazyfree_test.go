package kv

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestLazyFreeInfo checks lazyfreed_objects and lazyfree_pending_objects
// through the commands that free lazily: UNLINK of a big value (not of a
// small one), DEL with lazyfree-lazy-user-del, FLUSHALL and FLUSHDB ASYNC
// (every key counts), FLUSHALL with lazyfree-lazy-user-flush, and CONFIG
// RESETSTAT.
func TestLazyFreeInfo(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	big := make([]any, 1000)
	for i := range big {
		big[i] = "m" + strconv.Itoa(i)
	}
	fill := func(key string) {
		if err := e.rdb.SAdd(ctx, key, big...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// waitFreed waits for the freer to finish and checks its count
	waitFreed := func(what string, want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for e.infoField("lazyfree_pending_objects") != "0" {
			if time.Now().After(deadline) {
				t.Fatalf("%s: lazyfree_pending_objects stays %s", what, e.infoField("lazyfree_pending_objects"))
			}
			time.Sleep(5 * time.Millisecond)
		}
		if got := e.infoField("lazyfreed_objects"); got != strconv.FormatInt(want, 10) {
			t.Fatalf("%s: lazyfreed_objects %s, want %d", what, got, want)
		}
	}
	do := func(args ...any) {
		t.Helper()
		if err := e.rdb.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}

	fill("big")
	do("sadd", "small", "a", "b")
	do("unlink", "big", "small")
	waitFreed("UNLINK", 1)
	fill("big")
	do("del", "big")
	waitFreed("DEL", 1)
	e.setConfig("lazyfree-lazy-user-del", "yes")
	fill("big")
	do("del", "big")
	waitFreed("DEL with lazyfree-lazy-user-del", 2)
	do("config", "resetstat")
	waitFreed("RESETSTAT", 0)

	fill("big")
	do("set", "s", "v")
	do("flushdb", "async")
	waitFreed("FLUSHDB ASYNC", 2) // every key
	fill("big")
	do("flushall")
	waitFreed("FLUSHALL", 2)
	e.setConfig("lazyfree-lazy-user-flush", "yes")
	fill("big")
	do("flushall")
	waitFreed("FLUSHALL with lazyfree-lazy-user-flush", 3)
	do("select", "1")
	fill("big")
	do("flushall", "sync")
	waitFreed("FLUSHALL SYNC", 3)
	if got := e.rdb.ConfigGet(ctx, "lazyfree-lazy-user-flush").Val()["lazyfree-lazy-user-flush"]; got != "yes" {
		t.Errorf("CONFIG GET lazyfree-lazy-user-flush: %q", got)
	}
	if err := e.rdb.ConfigSet(ctx, "lazyfree-lazy-expire", "maybe").Err(); err == nil {
		t.Error("lazyfree-lazy-expire maybe accepted")
	}
}
