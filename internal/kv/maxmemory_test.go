package kv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMaxMemoryNoEviction: over maxmemory with noeviction, the commands
// flagged denyoom get Redis's -OOM error (queued in MULTI too: EXEC then
// aborts) and the others run; deleting keys makes room again.
func TestMaxMemoryNoEviction(t *testing.T) {
	env := startServer(t, nil)
	ctx := context.Background()
	val := strings.Repeat("v", 1000)
	for i := 0; i < 100; i++ {
		env.rdb.Set(ctx, fmt.Sprint("k", i), val, 0)
	}
	used := atoi(env.infoField("used_memory"))
	if used < 100*1000 {
		t.Fatalf("used_memory %d for 100 KB of values", used)
	}
	env.setConfig("maxmemory", fmt.Sprint(used))
	env.run([]step{
		{"CONFIG GET maxmemory-policy", "[maxmemory-policy noeviction]"},
		{"SET one more", "OK"}, // at the limit: still under it before the command
		{"SET k0 x", "ERR:OOM command not allowed when used memory > 'maxmemory'."},
		{"APPEND k1 x", "ERR:OOM command not allowed when used memory > 'maxmemory'."},
		{"GET one", "more"},
		{"PERSIST k1", "0"}, // not denyoom: it runs
		{"MULTI", "OK"},
		{"SET a b", "ERR:OOM command not allowed when used memory > 'maxmemory'."},
		{"EXEC", "ERR:EXECABORT Transaction discarded because of previous errors."},
		{"DEL k1 k2 k3", "3"},
		{"SET k0 x", "OK"},
	})
	if v := env.infoField("maxmemory"); v != fmt.Sprint(used) {
		t.Errorf("INFO maxmemory %s", v)
	}
	if v := env.infoField("maxmemory_policy"); v != "noeviction" {
		t.Errorf("INFO maxmemory_policy %s", v)
	}
	if v := env.infoField("evicted_keys"); v != "0" {
		t.Errorf("evicted_keys %s under noeviction", v)
	}
}

// TestMaxMemoryExecOOM: a transaction queued before memory ran out is
// refused at EXEC, as Redis does.
func TestMaxMemoryExecOOM(t *testing.T) {
	env := startServer(t, nil)
	r := env.raw()
	r.roundTrip("MULTI\r\nSET a b\r\n", "+OK\r\n+QUEUED\r\n")
	ctx := context.Background()
	env.rdb.Set(ctx, "big", strings.Repeat("v", 10000), 0)
	env.setConfig("maxmemory", "1000")
	r.roundTrip("EXEC\r\n", "-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.\r\n")
	r.roundTrip("EXEC\r\n", "-ERR EXEC without MULTI\r\n")
}

// TestMaxMemoryEvicts: under allkeys-lru writes go on past maxmemory, the
// memory stays at the limit, the keys used recently survive and INFO
// counts the evictions.
func TestMaxMemoryEvicts(t *testing.T) {
	for _, policy := range []string{"allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-ttl"} {
		t.Run(policy, func(t *testing.T) {
			env := startServer(t, func(c *Config) { c.MaxMemory = 1 << 20; c.MaxMemoryPolicy = policy })
			ctx := context.Background()
			val := strings.Repeat("v", 1000)
			hot := map[string]bool{}
			for i := 0; i < 50; i++ { // used all the time, no expiry
				k := fmt.Sprint("hot", i)
				hot[k] = true
				env.rdb.Set(ctx, k, val, 0)
			}
			for i := 0; i < 3000; i++ {
				env.clock.Advance(time.Second)
				if err := env.rdb.Set(ctx, fmt.Sprint("k", i), val, time.Hour).Err(); err != nil {
					t.Fatalf("SET %d: %v", i, err)
				}
				if i%10 == 0 {
					for k := range hot {
						env.rdb.Get(ctx, k)
					}
				}
			}
			used, evicted := atoi(env.infoField("used_memory")), atoi(env.infoField("evicted_keys"))
			t.Logf("%s: used_memory %d, evicted_keys %d, dbsize %d", policy, used, evicted, env.rdb.DBSize(ctx).Val())
			if used > 1<<20 {
				t.Errorf("used_memory %d over maxmemory", used)
			}
			if evicted < 2000 {
				t.Errorf("evicted_keys %d", evicted)
			}
			if keys := int(env.rdb.DBSize(ctx).Val()); keys+evicted != 3050 {
				t.Errorf("%d keys and %d evicted, want 3050 together", keys, evicted)
			}
			lost := 0
			for k := range hot {
				if env.rdb.Exists(ctx, k).Val() == 0 {
					lost++
				}
			}
			switch policy {
			case "allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-ttl":
				if lost > 5 {
					t.Errorf("%d of the 50 keys used all the time were evicted", lost)
				}
			}
		})
	}
}

// TestMaxMemoryVolatileWithoutExpiry: a volatile policy with no key with
// an expiry has nothing to evict: writes get -OOM.
func TestMaxMemoryVolatileWithoutExpiry(t *testing.T) {
	env := startServer(t, func(c *Config) { c.MaxMemory = 100 << 10; c.MaxMemoryPolicy = "volatile-lru" })
	ctx := context.Background()
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = env.rdb.Set(ctx, fmt.Sprint("k", i), strings.Repeat("v", 1000), 0).Err()
	}
	if err == nil || err.Error() != "OOM command not allowed when used memory > 'maxmemory'." {
		t.Fatalf("got %v", err)
	}
}

// TestEvictionsLoggedAndReplicated: an evicted key is deleted in the log
// (a restart does not bring it back) and on the replicas (they hold what
// the primary holds), as Redis propagates evictions as DELs.
func TestEvictionsLoggedAndReplicated(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *Config) {
		c.DataDir = dir
		c.MaxMemory = 256 << 10
		c.MaxMemoryPolicy = "allkeys-lru"
	}
	p := startServer(t, mod)
	r := startServer(t, nil)
	replicaOf(t, r, p)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		if err := p.rdb.Set(ctx, fmt.Sprint("k", i), strings.Repeat("v", 1000), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if atoi(p.infoField("evicted_keys")) == 0 {
		t.Fatal("nothing evicted")
	}
	waitSynced(t, p, r)
	sameData(t, p, r)
	want := dumpKeyspace(t, p.rdb)
	r.srv.ReplicaOf("")
	p.srv.Close()
	log, err := os.ReadFile(filepath.Join(dir, "log.1.aof"))
	if err != nil {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		t.Fatalf("%v (%v)", err, files)
	}
	if !strings.Contains(string(log), "*2\r\n$3\r\nDEL\r\n") {
		t.Error("the log has no DEL")
	}
	p2 := startServer(t, func(c *Config) { c.DataDir = dir })
	if got := dumpKeyspace(t, p2.rdb); got != want {
		t.Errorf("after restart %d bytes of keyspace, want %d", len(got), len(want))
	}
}

// TestObjectIdleTimeFreq: OBJECT IDLETIME follows the LRU clock, OBJECT
// FREQ the LFU counter under an LFU policy, each refused under the other,
// as Redis does; OBJECT itself is not an access.
func TestObjectIdleTimeFreq(t *testing.T) {
	env := startServer(t, nil)
	env.run([]step{{"SET k v", "OK"}})
	env.clock.Advance(100 * time.Second)
	env.run([]step{
		{"OBJECT IDLETIME k", "100"},
		{"OBJECT IDLETIME k", "100"},
		{"GET k", "v"},
		{"OBJECT IDLETIME k", "0"},
		{"OBJECT FREQ k", "ERR:ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."},
		{"CONFIG SET maxmemory-policy allkeys-lfu", "OK"},
		{"SET f v", "OK"},
		{"OBJECT FREQ f", "5"},
		{"OBJECT IDLETIME f", "ERR:ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."},
		{"CONFIG SET maxmemory-policy nope", "ERR:ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, allkeys-lru, volatile-lfu, allkeys-lfu, volatile-random, allkeys-random, volatile-ttl, noeviction"},
		{"CONFIG SET maxmemory-samples 10", "OK"},
		{"CONFIG SET lfu-log-factor 20", "OK"},
		{"CONFIG SET lfu-decay-time 5", "OK"},
		{"CONFIG GET lfu-*", "[lfu-decay-time 5 lfu-log-factor 20]"},
		{"CONFIG GET maxmemory-samples", "[maxmemory-samples 10]"},
	})
}

// TestBaseMemory: used_memory counts the memory used without data
// (Config.BaseMemory, INFO used_memory_startup) besides the keys'
// estimate, so an empty server over a tiny maxmemory refuses denyoom
// commands, FUNCTION LOAD among them, as Redis does.
func TestBaseMemory(t *testing.T) {
	tests := []struct {
		base     int64
		wantBase func(int64) bool
	}{
		{0, func(v int64) bool { return v == 0 }},
		{12345, func(v int64) bool { return v == 12345 }},
		{-1, func(v int64) bool { return v > 0 }}, // measured
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.base), func(t *testing.T) {
			env := startServer(t, func(c *Config) { c.BaseMemory = tt.base })
			startup, _ := strconv.ParseInt(env.infoField("used_memory_startup"), 10, 64)
			used, _ := strconv.ParseInt(env.infoField("used_memory"), 10, 64)
			dataset, _ := strconv.ParseInt(env.infoField("used_memory_dataset"), 10, 64)
			if !tt.wantBase(startup) || used != startup+dataset || dataset != 0 {
				t.Fatalf("empty server: used_memory %d, startup %d, dataset %d", used, startup, dataset)
			}
			env.setConfig("maxmemory", "1")
			want := "OOM command not allowed when used memory > 'maxmemory'."
			if tt.base == 0 {
				want = "lib" // nothing used yet
			}
			mustDo(t, env.rdb, want, "function", "load", "#!lua name=lib\nredis.register_function('f', function() return 1 end)")
		})
	}
}

// TestScriptAllowOOM: over maxmemory a script's first write is refused
// -OOM, unless the script or function has the allow-oom flag.
func TestScriptAllowOOM(t *testing.T) {
	env := startServer(t, nil)
	mustDo(t, env.rdb, "oom", "function", "load", "#!lua name=oom\n"+
		"redis.register_function{function_name='plain', callback=function(k) return redis.call('set', k[1], '1') end}\n"+
		"redis.register_function{function_name='allowed', callback=function(k) return redis.call('set', k[1], '1') end, flags={'allow-oom'}}")
	env.run([]step{{"SET filler 0123456789", "OK"}})
	env.setConfig("maxmemory", "1")
	oom := "OOM command not allowed when used memory > 'maxmemory'."
	mustDo(t, env.rdb, oom, "fcall", "plain", 1, "x")
	mustDo(t, env.rdb, oom+" script: 91fb98f1f472072e36230bd1f864f688f3ab12cd, on @user_script:1.", "eval", "return redis.call('set', KEYS[1], '1')", 1, "x")
	mustDo(t, env.rdb, "OK", "fcall", "allowed", 1, "x")
	mustDo(t, env.rdb, "OK", "eval", "#!lua flags=allow-oom\nreturn redis.call('set', KEYS[1], '2')", 1, "x")
}
