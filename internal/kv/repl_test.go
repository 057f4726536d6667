package kv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// canon returns every key's type, value and expiry in a canonical form.
func canon(t *testing.T, rdb *redis.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		typ := rdb.Type(ctx, k).Val()
		var v string
		switch typ {
		case "string":
			v = rdb.Get(ctx, k).Val()
		case "list":
			v = fmt.Sprint(rdb.LRange(ctx, k, 0, -1).Val())
		case "set":
			m := rdb.SMembers(ctx, k).Val()
			slices.Sort(m)
			v = fmt.Sprint(m)
		case "hash":
			m := rdb.HGetAll(ctx, k).Val()
			var kv []string
			for f, x := range m {
				kv = append(kv, f+"="+x)
			}
			slices.Sort(kv)
			v = fmt.Sprint(kv)
		case "zset":
			v = fmt.Sprint(rdb.ZRangeWithScores(ctx, k, 0, -1).Val())
		case "none":
			continue
		}
		exp := rdb.Do(ctx, "pexpiretime", k).Val()
		out[k] = typ + ":" + v + fmt.Sprintf(" exp=%v", exp)
	}
	return out
}

// waitSynced waits until the replica is linked and has applied everything
// the primary streamed.
func waitSynced(t *testing.T, p, r *testEnv) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r.srv.LinkUp() && r.srv.ReplOffset() == p.srv.ReplOffset() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not in sync: link up %v, offset %d, primary offset %d",
				r.srv.LinkUp(), r.srv.ReplOffset(), p.srv.ReplOffset())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sameData(t *testing.T, p, r *testEnv) {
	t.Helper()
	a, b := canon(t, p.rdb), canon(t, r.rdb)
	if len(a) != len(b) {
		t.Errorf("primary has %d keys, replica %d", len(a), len(b))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("key %q: primary %s, replica %s", k, v, b[k])
		}
	}
}

func replicaOf(t *testing.T, r, p *testEnv) {
	t.Helper()
	r.srv.ReplicaOf(p.addr)
	t.Cleanup(func() { r.srv.ReplicaOf("") }) // stop the link before the servers close
}

func TestReplFullSyncStreamReadOnly(t *testing.T) {
	p := startServer(t, nil)
	r := startServer(t, nil)
	ctx := context.Background()
	p.run([]step{
		{"set s v", "OK"}, {"set e v px 100000", "OK"}, {"rpush l a b c", "3"},
		{"sadd st x y", "2"}, {"hset h f 1 g 2", "2"}, {"zadd z 1 a 2 b", "2"},
	})
	// a big hash and list so the snapshot batches elements
	for i := 0; i < 300; i++ {
		p.rdb.HSet(ctx, "bigh", "f"+strconv.Itoa(i), i)
		p.rdb.RPush(ctx, "bigl", i)
	}
	r.rdb.Set(ctx, "stale", "gone after the full sync", 0)
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	sameData(t, p, r)
	if r.rdb.Exists(ctx, "stale").Val() != 0 {
		t.Error("the replica kept a key the primary does not have")
	}
	// the stream: plain writes, rewritten ones, a transaction
	p.run([]step{
		{"incr n", "1"}, {"expire s 100", "1"}, {"lpop l", "a"}, {"spop st", "*"},
		{"hincrbyfloat h f 1.5", "2.5"}, {"del bigl", "1"},
	})
	tx := p.rdb.TxPipeline()
	tx.Incr(ctx, "t1")
	tx.Incr(ctx, "t1")
	if _, err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, p, r)
	sameData(t, p, r)
	// a replica refuses writes, serves reads
	r.run([]step{
		{"set x y", "ERR:READONLY You can't write against a read only replica."},
		{"get t1", "2"},
		{"wait 1 0", "ERR:ERR WAIT cannot be used with replica instances"},
	})
	role := r.rdb.Do(ctx, "role").Val().([]any)
	if role[0] != "slave" || role[3] != "connected" {
		t.Errorf("ROLE on the replica = %v", role)
	}
	info := p.srv.ReplInfo()
	if info["connected_slaves"] != "1" || !strings.Contains(info["slave0"], "state=online") {
		t.Errorf("primary INFO replication: %v", info)
	}
	ri := r.srv.ReplInfo()
	if ri["role"] != "slave" || ri["master_link_status"] != "up" || ri["master_replid"] != info["master_replid"] {
		t.Errorf("replica INFO replication: %v", ri)
	}
	if got := r.rdb.Info(ctx, "replication").Val(); !strings.Contains(got, "role:slave") {
		t.Errorf("INFO replication on the replica: %s", got)
	}
}

func TestReplPartialResyncAfterDroppedLink(t *testing.T) {
	p := startServer(t, nil)
	r := startServer(t, nil)
	ctx := context.Background()
	p.rdb.Set(ctx, "a", "1", 0)
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	for i := 0; i < 3; i++ {
		// drop the link from the replica's side, write meanwhile
		r.srv.repl.DropLink()
		for j := 0; j < 50; j++ {
			p.rdb.Incr(ctx, "n"+strconv.Itoa(j))
		}
		waitSynced(t, p, r)
	}
	sameData(t, p, r)
	info := p.srv.ReplInfo()
	if info["gantry_full_syncs"] != "1" {
		t.Errorf("full syncs = %s, want 1 (the others partial)", info["gantry_full_syncs"])
	}
	if n, _ := strconv.Atoi(info["gantry_partial_syncs"]); n < 1 {
		t.Errorf("partial syncs = %s, want at least 1", info["gantry_partial_syncs"])
	}
}

func TestReplBacklogOverrunFullSyncs(t *testing.T) {
	p := startServer(t, func(c *Config) { c.ReplBacklogSize = 16 * 1024 })
	r := startServer(t, nil)
	ctx := context.Background()
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	r.srv.ReplicaOf("") // stop, write more than the backlog holds, resume
	big := strings.Repeat("x", 1000)
	for i := 0; i < 40; i++ {
		p.rdb.Set(ctx, "k"+strconv.Itoa(i), big, 0)
	}
	r.srv.ReplicaOf(p.addr)
	waitSynced(t, p, r)
	sameData(t, p, r)
	if p.srv.ReplInfo()["gantry_full_syncs"] != "2" {
		t.Errorf("full syncs = %s, want 2", p.srv.ReplInfo()["gantry_full_syncs"])
	}
}

// TestReplFullSyncUnderConcurrentWrites: 8 goroutines INCR keys spread over
// many shards (and run cross-shard transactions) while replicas attach
// with full syncs; afterwards every counter is exactly the same on both.
func TestReplFullSyncUnderConcurrentWrites(t *testing.T) {
	p := startServer(t, func(c *Config) { c.EventLoops = 2 })
	// the snapshot pauses between shards, so writes interleave with it
	p.srv.repl.SetSnapshotDelay(200 * time.Microsecond)
	r1 := startServer(t, nil)
	r2 := startServer(t, nil)
	ctx := context.Background()
	const workers, keys, maxOps = 8, 64, 20000
	var wg sync.WaitGroup
	counts := make([][]int, workers)
	stop := make(chan struct{})
	for w := 0; w < workers; w++ {
		counts[w] = make([]int, keys)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, PoolSize: 1})
			defer c.Close()
			for i := 0; i < maxOps; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (i * 7) % keys
				if i%10 == 9 { // a transaction over two shards
					k2 := (k + 13) % keys
					tx := c.TxPipeline()
					tx.Incr(ctx, fmt.Sprintf("w%d:k%d", w, k))
					tx.Incr(ctx, fmt.Sprintf("w%d:k%d", w, k2))
					if _, err := tx.Exec(ctx); err != nil {
						t.Error(err)
						return
					}
					counts[w][k]++
					counts[w][k2]++
					continue
				}
				if i%10 == 4 { // a multi-key command over two shards
					k2 := (k + 5) % keys
					a, b := fmt.Sprintf("w%d:m%d", w, k), fmt.Sprintf("w%d:m%d", w, k2)
					if err := c.MSet(ctx, a, i, b, i).Err(); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if err := c.Incr(ctx, fmt.Sprintf("w%d:k%d", w, k)).Err(); err != nil {
					t.Error(err)
					return
				}
				counts[w][k]++
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	replicaOf(t, r1, p)
	waitLink := func(r *testEnv) {
		for !r.srv.LinkUp() {
			time.Sleep(time.Millisecond)
		}
	}
	waitLink(r1)
	after1 := p.srv.repl.LastSnapshotTail()
	replicaOf(t, r2, p)
	waitLink(r2)
	after2 := p.srv.repl.LastSnapshotTail()
	time.Sleep(30 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("stream bytes recorded during the snapshots: %d, %d", after1, after2)
	if after1 == 0 && after2 == 0 {
		t.Error("no write interleaved with either snapshot: the test did not test the cut")
	}
	waitSynced(t, p, r1)
	waitSynced(t, p, r2)
	for _, r := range []*testEnv{r1, r2} {
		for w := 0; w < workers; w++ {
			for k := 0; k < keys; k++ {
				key := fmt.Sprintf("w%d:k%d", w, k)
				got, _ := r.rdb.Get(ctx, key).Int()
				if got != counts[w][k] {
					t.Errorf("replica %s: %s = %d, want %d", r.addr, key, got, counts[w][k])
				}
			}
		}
		sameData(t, p, r)
	}
}

func TestReplWait(t *testing.T) {
	p := startServer(t, nil)
	ctx := context.Background()
	p.rdb.Set(ctx, "a", "1", 0)
	if n := p.rdb.Wait(ctx, 0, 0).Val(); n != 0 {
		t.Errorf("WAIT 0 0 = %d", n)
	}
	start := time.Now()
	if n := p.rdb.Wait(ctx, 1, 100*time.Millisecond).Val(); n != 0 {
		t.Errorf("WAIT 1 100 without replicas = %d", n)
	}
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Errorf("WAIT returned after %v, before its timeout", el)
	}
	r := startServer(t, nil)
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	// a write, then WAIT on the same connection (a pipeline)
	for i := 0; i < 20; i++ {
		pipe := p.rdb.Pipeline()
		pipe.Set(ctx, "w"+strconv.Itoa(i), i, 0)
		w := pipe.Do(ctx, "wait", 1, 5000)
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := w.Int(); n != 1 {
			t.Fatalf("WAIT 1 after a write = %v", w.Val())
		}
		// acknowledged means applied on the replica
		if got := r.rdb.Get(ctx, "w"+strconv.Itoa(i)).Val(); got != strconv.Itoa(i) {
			t.Fatalf("after WAIT the replica has w%d = %q", i, got)
		}
	}
}

func TestReplicaOfNoOnePromotesWithPSYNC2(t *testing.T) {
	p := startServer(t, nil)
	r1 := startServer(t, nil)
	r2 := startServer(t, nil)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		p.rdb.Set(ctx, "k"+strconv.Itoa(i), i, 0)
	}
	replicaOf(t, r1, p)
	replicaOf(t, r2, p)
	waitSynced(t, p, r1)
	waitSynced(t, p, r2)
	oldID := p.srv.ReplInfo()["master_replid"]
	// the primary goes away; r1 is promoted, r2 follows it
	p.srv.Close()
	if err := r1.rdb.Do(ctx, "replicaof", "no", "one").Err(); err != nil {
		t.Fatal(err)
	}
	info := r1.srv.ReplInfo()
	if info["role"] != "master" || info["master_replid2"] != oldID || info["master_replid"] == oldID {
		t.Fatalf("after REPLICAOF NO ONE: %v", info)
	}
	if err := r1.rdb.Set(ctx, "after", "promotion", 0).Err(); err != nil {
		t.Fatalf("the promoted replica refuses writes: %v", err)
	}
	host, port, _ := strings.Cut(r1.addr, ":")
	if err := r2.rdb.Do(ctx, "replicaof", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, r1, r2)
	sameData(t, r1, r2)
	if got := r1.srv.ReplInfo(); got["gantry_full_syncs"] != "0" || got["gantry_partial_syncs"] != "1" {
		t.Errorf("the sibling should continue partially (PSYNC2): %v", got)
	}
	if r2.srv.ReplInfo()["master_replid"] != info["master_replid"] {
		t.Errorf("the sibling did not take the new replication id")
	}
}

func TestReplExpiryFollowsPrimary(t *testing.T) {
	p := startServer(t, nil)
	r := startServer(t, nil)
	ctx := context.Background()
	replicaOf(t, r, p)
	p.rdb.Set(ctx, "e", "v", time.Second)
	waitSynced(t, p, r)
	// the replica's clock passes the expiry first: the key is hidden, not deleted
	r.clock.Advance(2 * time.Second)
	if r.rdb.Exists(ctx, "e").Val() != 0 || !errors.Is(r.rdb.Get(ctx, "e").Err(), redis.Nil) {
		t.Error("an expired key is visible on the replica")
	}
	if r.rdb.DBSize(ctx).Val() != 1 {
		t.Error("the replica deleted an expired key by itself")
	}
	// the primary expires it and sends DEL
	p.clock.Advance(2 * time.Second)
	if !errors.Is(p.rdb.Get(ctx, "e").Err(), redis.Nil) {
		t.Fatal("expired key visible on the primary")
	}
	waitSynced(t, p, r)
	if n := r.rdb.DBSize(ctx).Val(); n != 0 {
		t.Errorf("replica DBSIZE = %d after the primary's DEL", n)
	}
}

func TestClientPauseWrites(t *testing.T) {
	p := startServer(t, nil)
	ctx := context.Background()
	other := p.client(2)
	if err := p.rdb.Do(ctx, "client", "pause", "300", "write").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := other.Get(ctx, "x").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("a read during a write pause: %v", err)
	}
	if err := other.Set(ctx, "x", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("a write ran %v into a 300 ms pause", el)
	}
	p.rdb.Do(ctx, "client", "pause", "10000", "write")
	done := make(chan error, 1)
	go func() { done <- other.Incr(ctx, "y").Err() }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("INCR ran during the pause: %v", err)
	default:
	}
	p.rdb.Do(ctx, "client", "unpause")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReplRestartPartialResync: a replica that shut down cleanly keeps its
// replication ID and offset with its data (repl-state next to the log) and
// continues with a partial resync after the restart; a crash (no file)
// falls back to a full sync.
func TestReplRestartPartialResync(t *testing.T) {
	p := startServer(t, nil)
	dir := t.TempDir()
	withDir := func(c *Config) { c.DataDir = dir }
	r := startServer(t, withDir)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		p.rdb.Set(ctx, "a"+strconv.Itoa(i), i, 0)
	}
	r.srv.ReplicaOf(p.addr)
	waitSynced(t, p, r)
	if err := r.srv.Close(); err != nil { // a clean stop, still a replica
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ { // missed while the replica is down
		p.rdb.Incr(ctx, "b"+strconv.Itoa(i))
	}
	r2 := startServer(t, withDir)
	replicaOf(t, r2, p)
	waitSynced(t, p, r2)
	sameData(t, p, r2)
	info := p.srv.ReplInfo()
	if info["gantry_full_syncs"] != "1" || info["gantry_partial_syncs"] != "1" {
		t.Errorf("after a clean restart: full %s partial %s, want 1 and 1", info["gantry_full_syncs"], info["gantry_partial_syncs"])
	}
	// the file is used once: a second start without a clean stop full-syncs
	if _, err := os.Stat(filepath.Join(dir, "repl-state")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("repl-state still there after loading it: %v", err)
	}
}
