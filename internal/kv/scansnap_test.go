package kv

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// scanAll runs a scan from cursor 0 to its end, calling between after
// each call but the last, and returns the members (every stride-th item)
// with how often each came.
func scanAll(t *testing.T, name string, scan func(c uint64) ([]string, uint64, error), stride int,
	between func()) map[string]int {
	t.Helper()
	seen := map[string]int{}
	var cursor uint64
	for n := 0; ; n++ {
		items, next, err := scan(cursor)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(items); i += stride {
			seen[items[i]]++
		}
		if next == 0 {
			return seen
		}
		if n > 100000 {
			t.Fatalf("%s: cursor does not end", name)
		}
		cursor = next
		if between != nil {
			between()
		}
	}
}

// TestScanSnapshotChurn: a full SSCAN, HSCAN or ZSCAN of a big collection
// returns every member present during the whole scan exactly once, with
// its value or score of the time of the call, while members are added
// and removed between the calls; members added after the scan started
// are not returned (the scan continues on the snapshot its first call
// took, not on a new sort of the collection).
func TestScanSnapshotChurn(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	const constant, churn = 1500, 500
	for _, typ := range []string{"set", "hash", "zset"} {
		rng := rand.New(rand.NewSource(7))
		key := "k" + typ
		add := func(m string, v int) {
			switch typ {
			case "set":
				e.rdb.SAdd(ctx, key, m)
			case "hash":
				e.rdb.HSet(ctx, key, m, v)
			case "zset":
				e.rdb.ZAdd(ctx, key, redisZ(float64(v), m))
			}
		}
		rem := func(m string) {
			switch typ {
			case "set":
				e.rdb.SRem(ctx, key, m)
			case "hash":
				e.rdb.HDel(ctx, key, m)
			case "zset":
				e.rdb.ZRem(ctx, key, m)
			}
		}
		for i := range constant {
			add("c"+strconv.Itoa(i), i)
		}
		for i := range churn {
			add("x"+strconv.Itoa(i), i)
		}
		current := map[string]string{} // a constant member's value now
		for i := range constant {
			current["c"+strconv.Itoa(i)] = strconv.Itoa(i)
		}
		added := 0
		between := func() {
			for range 5 {
				rem("x" + strconv.Itoa(rng.Intn(churn)))
				add("x"+strconv.Itoa(rng.Intn(churn)), 1)
				add("n"+strconv.Itoa(added), 1)
				added++
				c := "c" + strconv.Itoa(rng.Intn(constant))
				v := rng.Intn(1000000)
				add(c, v)
				current[c] = strconv.Itoa(v)
			}
		}
		stride := 2
		var scan func(c uint64) ([]string, uint64, error)
		switch typ {
		case "set":
			stride = 1
			scan = func(c uint64) ([]string, uint64, error) { return e.rdb.SScan(ctx, key, c, "", 7).Result() }
		case "hash":
			scan = func(c uint64) ([]string, uint64, error) { return e.rdb.HScan(ctx, key, c, "", 7).Result() }
		case "zset":
			scan = func(c uint64) ([]string, uint64, error) { return e.rdb.ZScan(ctx, key, c, "", 7).Result() }
		}
		// the value or score returned is the one of the time of the call
		checked := func(c uint64) ([]string, uint64, error) {
			items, next, err := scan(c)
			for i := 0; stride == 2 && i < len(items); i += 2 {
				if w, ok := current[items[i]]; ok && items[i+1] != w {
					t.Errorf("%s: %s = %s, want %s", typ, items[i], items[i+1], w)
				}
			}
			return items, next, err
		}
		seen := scanAll(t, typ, checked, stride, between)
		for m, n := range seen {
			if n != 1 {
				t.Errorf("%s: %s returned %d times", typ, m, n)
			}
			if strings.HasPrefix(m, "n") {
				t.Errorf("%s: %s, added after the scan started, returned", typ, m)
			}
		}
		for i := range constant {
			c := "c" + strconv.Itoa(i)
			if seen[c] != 1 {
				t.Fatalf("%s: %s returned %d times", typ, c, seen[c])
			}
		}
		if added == 0 {
			t.Fatalf("%s: the scan took one call", typ)
		}
	}
}

// TestScanSnapshotNewCollection: a scan continues on the snapshot of its
// collection (a member added meanwhile is not returned), but a new
// collection under the same name, the old one deleted and freed, is
// never served by the old one's snapshot: its members past the cursor
// are returned.
func TestScanSnapshotNewCollection(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	old := make([]any, 300)
	for i := range old {
		old[i] = "a" + strconv.Itoa(i)
	}
	e.rdb.SAdd(ctx, "k", old...)
	items, cur, err := e.rdb.SScan(ctx, "k", 0, "", 10).Result()
	if err != nil || cur == 0 || len(items) == 0 {
		t.Fatalf("SSCAN k 0: %v %d %v", items, cur, err)
	}
	first := cur
	// the same collection: members added after the snapshot are not seen
	e.rdb.SAdd(ctx, "k", "late1", "late2", "late3", "late4", "late5", "late6", "late7", "late8")
	seen := scanAll(t, "same", func(c uint64) ([]string, uint64, error) {
		if c == 0 {
			c = first
		}
		return e.rdb.SScan(ctx, "k", c, "", 10).Result()
	}, 1, nil)
	for m := range seen {
		if strings.HasPrefix(m, "late") {
			t.Errorf("%s, added after the snapshot, returned", m)
		}
	}
	// restart, stop half way, then replace the set by a new one
	_, cur, _ = e.rdb.SScan(ctx, "k", 0, "", 10).Result()
	e.rdb.Del(ctx, "k")
	runtime.GC()
	runtime.GC()
	fresh := make([]any, 300)
	for i := range fresh {
		fresh[i] = "b" + strconv.Itoa(i)
	}
	e.rdb.SAdd(ctx, "k", fresh...)
	mid := cur
	seen = scanAll(t, "new", func(c uint64) ([]string, uint64, error) {
		if c == 0 {
			c = mid
		}
		return e.rdb.SScan(ctx, "k", c, "", 10).Result()
	}, 1, nil)
	nb := 0
	for m, n := range seen {
		if !strings.HasPrefix(m, "b") || n != 1 {
			t.Errorf("new set: %s returned %d times", m, n)
		}
		nb++
	}
	// the cursor is past about 10 of 300 positions
	if nb < 200 {
		t.Errorf("new set: %d of its 300 members past the cursor returned, want most", nb)
	}
}

// TestScanSnapshotInfo: the snapshots' bytes are in INFO memory while a
// scan runs and are dropped when it returns cursor 0; a FLUSHALL drops
// them too.
func TestScanSnapshotInfo(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	for i := range 1000 {
		e.rdb.SAdd(ctx, "s", fmt.Sprintf("member:%d", i))
	}
	bytes := func() int64 {
		v, err := strconv.ParseInt(e.infoField("gantry_scan_snapshots_bytes"), 10, 64)
		if err != nil {
			t.Fatalf("gantry_scan_snapshots_bytes: %v", err)
		}
		return v
	}
	if b := bytes(); b != 0 {
		t.Fatalf("before a scan: %d bytes", b)
	}
	_, cur, _ := e.rdb.SScan(ctx, "s", 0, "", 10).Result()
	// 1000 members of 8-10 bytes, 24 bytes each besides
	if b := bytes(); b < 1000*(24+8) || b > 1000*(24+10) {
		t.Fatalf("during a scan: %d bytes", b)
	}
	for cur != 0 {
		_, cur, _ = e.rdb.SScan(ctx, "s", cur, "", 100).Result()
	}
	if b := bytes(); b != 0 {
		t.Fatalf("after the scan: %d bytes", b)
	}
	e.rdb.SScan(ctx, "s", 0, "", 10)
	e.rdb.FlushAll(ctx)
	if b := bytes(); b != 0 {
		t.Fatalf("after FLUSHALL: %d bytes", b)
	}
}

// TestScanSnapshotBudget: the snapshots of every database stay within
// one budget, least recently used out first, and scans whose snapshot was
// evicted still return every member exactly once.
func TestScanSnapshotBudget(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	const n = 400
	snaps := e.srv.ks.ScanSnapshots()
	// room for two snapshots of n members "k:m:ddd" (24+7 bytes each)
	budget := int64(2*n*(24+7) + 100)
	snaps.SetBudget(budget)
	keys := []string{"s1", "s2", "s3"}
	// s3 is in database 1
	db1 := redis.NewClient(&redis.Options{Addr: e.addr, DB: 1, DisableIdentity: true, MaxRetries: -1})
	defer db1.Close()
	client := func(k string) *redis.Client {
		if k == "s3" {
			return db1
		}
		return e.rdb
	}
	for _, k := range keys {
		ms := make([]any, n)
		for i := range ms {
			ms[i] = fmt.Sprintf("%s:m:%03d", k[1:], i)
		}
		client(k).SAdd(ctx, k, ms...)
	}
	cursors := map[string]uint64{}
	seen := map[string]map[string]int{}
	for _, k := range keys {
		seen[k] = map[string]int{}
	}
	step := func(k string) bool {
		items, next, err := client(k).SScan(ctx, k, cursors[k], "", 5).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range items {
			seen[k][m]++
		}
		cursors[k] = next
		if b := snaps.Bytes(); b > budget {
			t.Fatalf("%d bytes of snapshots over the budget %d", b, budget)
		}
		return next == 0
	}
	for _, k := range keys {
		step(k)
	}
	if l := snaps.Len(); l != 2 {
		t.Fatalf("%d snapshots after three scans started, want 2", l)
	}
	rng := rand.New(rand.NewSource(3))
	done := 0
	for done < len(keys) {
		k := keys[rng.Intn(len(keys))]
		if cursors[k] == 0 && len(seen[k]) > 0 {
			continue
		}
		if step(k) {
			done++
		}
	}
	for _, k := range keys {
		if len(seen[k]) != n {
			t.Errorf("%s: %d members returned, want %d", k, len(seen[k]), n)
		}
		for m, c := range seen[k] {
			if c != 1 {
				t.Errorf("%s: %s returned %d times", k, m, c)
			}
		}
	}
	if l, b := snaps.Len(), snaps.Bytes(); l != 0 || b != 0 {
		t.Errorf("after the scans: %d snapshots, %d bytes", l, b)
	}
}

// BenchmarkSScanFull is a full SSCAN of a 100,000-member set at COUNT 10.
func BenchmarkSScanFull(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Logger = nil
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	e := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), DisableIdentity: true, MaxRetries: -1, PoolSize: 1})
	b.Cleanup(func() {
		e.Close()
		srv.Close()
		<-done
	})
	ctx := context.Background()
	for i := 0; i < 100000; i += 1000 {
		ms := make([]any, 0, 1000)
		for j := i; j < i+1000; j++ {
			ms = append(ms, "member:"+strconv.Itoa(j))
		}
		e.SAdd(ctx, "bigset", ms...)
	}
	b.ResetTimer()
	for b.Loop() {
		var cur uint64
		calls := 0
		for {
			_, next, err := e.SScan(ctx, "bigset", cur, "", 10).Result()
			if err != nil {
				b.Fatal(err)
			}
			calls++
			if next == 0 {
				break
			}
			cur = next
		}
		b.ReportMetric(float64(calls), "calls/op")
	}
}
