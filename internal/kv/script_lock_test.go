package kv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// keysOfOtherShards returns n keys of distinct shards, none in the shard
// of avoid.
func keysOfOtherShards(avoid string, n int) []string {
	seen := map[int]bool{keyspace.ShardOf([]byte(avoid)): true}
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("k%d", i)
		if sh := keyspace.ShardOf([]byte(k)); !seen[sh] {
			seen[sh] = true
			out = append(out, k)
		}
	}
	return out
}

// TestScriptUndeclaredKeys: a standalone script may touch keys it did not
// declare (Redis allows it outside cluster mode); it then locks the whole
// keyspace, before or after its first write, and keyspace-wide commands
// work inside it.
func TestScriptUndeclaredKeys(t *testing.T) {
	for _, loops := range []int{2, -1} {
		t.Run(fmt.Sprint("loops", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			ctx := context.Background()
			other := keysOfOtherShards("decl", 3)
			mustDo(t, e.rdb, "OK", "set", other[0], "v0")
			for _, tc := range []struct {
				body string
				keys []string
				argv []any
				want string
			}{
				// reads an undeclared key before any effect: runs again with every shard
				{"return redis.call('get',ARGV[1])", []string{"decl"}, []any{other[0]}, "v0"},
				// writes a declared key, then an undeclared one
				{"redis.call('set',KEYS[1],'a') redis.call('set',ARGV[1],'b') return redis.call('mget',KEYS[1],ARGV[1])",
					[]string{"decl"}, []any{other[1]}, "[a b]"},
				{"return redis.call('get',ARGV[1])", []string{"decl"}, []any{other[1]}, "b"},
				// keyspace-wide commands after a write
				{"redis.call('set',KEYS[1],'c') return #redis.call('keys','*')", []string{"decl"}, nil, "3"},
				{"redis.call('set',KEYS[1],'d') return redis.call('dbsize')", []string{"decl"}, nil, "3"},
				{"redis.call('set',KEYS[1],'e') redis.call('flushdb') return redis.call('dbsize')", []string{"decl"}, nil, "0"},
				// no declared key at all
				{"redis.call('set','nokeys','1') return redis.call('get','nokeys')", nil, nil, "1"},
			} {
				got, err := e.rdb.Eval(ctx, tc.body, tc.keys, tc.argv...).Result()
				if s := format(got, err); s != tc.want {
					t.Errorf("%s: got %s, want %s", tc.body, s, tc.want)
				}
			}
			// a script that ran before stays correct when run many times
			for i := 0; i < 50; i++ {
				n, err := e.rdb.Eval(ctx, "return redis.call('incr',ARGV[1])", []string{"decl"}, other[2]).Int()
				if err != nil || n != i+1 {
					t.Fatalf("run %d: %d %v", i, n, err)
				}
			}
		})
	}
}

// TestScriptAtomicParallel runs scripts on a pool of Lua states in
// parallel: transfers between declared keys, and readers of the sum that
// declare some keys and read the others undeclared. Every reader must see
// the sum unchanged (no script sees another half done).
func TestScriptAtomicParallel(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	accounts := keysOfOtherShards("x", 8)
	for _, a := range accounts {
		mustDo(t, e.rdb, "OK", "set", a, 100)
	}
	const transfer = `local n = tonumber(ARGV[1])
redis.call('decrby', KEYS[1], n)
redis.call('incrby', KEYS[2], n)
return 1`
	const sum = `local s = 0
for i, k in ipairs(KEYS) do s = s + tonumber(redis.call('get', k)) end
for i, k in ipairs(ARGV) do s = s + tonumber(redis.call('get', k)) end
return s`
	c := redis.NewClient(&redis.Options{Addr: e.addr, DisableIdentity: true, PoolSize: 16})
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				a, b := accounts[(w+i)%len(accounts)], accounts[(w+2*i+1)%len(accounts)]
				if a == b {
					continue
				}
				if err := c.Eval(ctx, transfer, []string{a, b}, 1+i%5).Err(); err != nil {
					errs <- err
					return
				}
				// declares half of the accounts, reads the rest undeclared
				args := make([]any, 0, 4)
				for _, k := range accounts[4:] {
					args = append(args, k)
				}
				n, err := c.Eval(ctx, sum, accounts[:4], args...).Int()
				if err != nil {
					errs <- err
					return
				}
				if n != 800 {
					errs <- fmt.Errorf("sum %d, want 800", n)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := e.srv.script.made.Load(); n < 1 || int(n) > len(e.srv.script.pool) {
		t.Errorf("%d Lua states made, pool of %d", n, len(e.srv.script.pool))
	}
}

// TestSingleCommandPropagation: a transaction or a script with one write
// is logged without MULTI/EXEC, as Redis 7 propagates it; two writes are
// wrapped.
func TestSingleCommandPropagation(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, func(c *Config) { c.DataDir = dir })
	ctx := context.Background()
	tx := e.rdb.TxPipeline()
	tx.Set(ctx, "one", "1", 0)
	tx.Get(ctx, "one")
	if _, err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	tx = e.rdb.TxPipeline()
	tx.Set(ctx, "two", "1", 0)
	tx.Set(ctx, "two", "2", 0)
	if _, err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	mustDo(t, e.rdb, "OK", "eval", "return redis.call('set', KEYS[1], 's1')", 1, "s1")
	mustDo(t, e.rdb, "OK", "eval", "redis.call('set', KEYS[1], 'a') return redis.call('set', KEYS[1], 's2')", 1, "s2")
	e.srv.Close()
	data, err := os.ReadFile(filepath.Join(dir, "log.1.aof"))
	if err != nil {
		t.Fatal(err)
	}
	multi := "*1\r\n$5\r\nMULTI\r\n"
	exec := "*1\r\n$4\r\nEXEC\r\n"
	cmd := func(a ...string) string {
		s := fmt.Sprintf("*%d\r\n", len(a))
		for _, x := range a {
			s += fmt.Sprintf("$%d\r\n%s\r\n", len(x), x)
		}
		return s
	}
	want := cmd("set", "one", "1") +
		multi + cmd("set", "two", "1") + cmd("set", "two", "2") + exec +
		cmd("set", "s1", "s1") +
		multi + cmd("set", "s2", "a") + cmd("set", "s2", "s2") + exec
	if got := string(data); !strings.HasSuffix(got, want) {
		t.Errorf("log\n%q\nwant it to end with\n%q", got, want)
	}
}

// TestMonitorScripts: MONITOR shows an EVAL before the commands its
// script runs, which show as from "lua".
func TestMonitorScripts(t *testing.T) {
	e := startServer(t, nil)
	m := e.resp()
	if got := m.do("MONITOR"); got != "+OK\r\n" {
		t.Fatal(got)
	}
	mustDo(t, e.rdb, "redis: nil", "eval", "redis.call('set',KEYS[1],ARGV[1])", 1, "foo", "bar")
	for i := 0; ; i++ { // go-redis's connection set-up comes first
		l := m.next()
		if strings.Contains(l, `"eval"`) {
			break
		}
		if i == 5 {
			t.Fatalf("no EVAL in MONITOR, last line %q", l)
		}
	}
	if l := m.next(); !strings.Contains(l, `[0 lua] "set" "foo" "bar"`) {
		t.Errorf("second line %q, want the script's SET from lua", l)
	}
}
