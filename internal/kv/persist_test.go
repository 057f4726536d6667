package kv

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// dumpKeyspace renders every key with its type, value and expiry, sorted,
// so two keyspaces can be compared.
func dumpKeyspace(t *testing.T, c *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		typ := c.Type(ctx, k).Val()
		var v any
		switch typ {
		case "string":
			v = c.Get(ctx, k).Val()
		case "list":
			v = c.LRange(ctx, k, 0, -1).Val()
		case "set":
			m := c.SMembers(ctx, k).Val()
			sort.Strings(m)
			v = m
		case "hash":
			h := c.HGetAll(ctx, k).Val()
			var fs []string
			for f, x := range h {
				fs = append(fs, f+"="+x)
			}
			sort.Strings(fs)
			v = fs
		case "zset":
			v = c.ZRangeWithScores(ctx, k, 0, -1).Val()
		}
		fmt.Fprintf(&b, "%s %s %v ttl=%d\n", k, typ, v, c.PExpireTime(ctx, k).Val())
	}
	return b.String()
}

func fillAllTypes(t *testing.T, c *redis.Client, prefix string) {
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		c.Set(ctx, k+":s", i, 0)
		c.Set(ctx, k+":ttl", "v", time.Hour)
		c.RPush(ctx, k+":l", "a", i, "c")
		c.SAdd(ctx, k+":set", "x", i)
		c.HSet(ctx, k+":h", "f", i, "g", "binary\r\n\x00")
		c.ZAdd(ctx, k+":z", redis.Z{Score: float64(i) / 3, Member: "m"}, redis.Z{Score: -1.5, Member: "n"})
		c.Expire(ctx, k+":l", time.Hour)
	}
	c.Incr(ctx, "counter")
	c.IncrByFloat(ctx, "float", 1.1)
	c.LPush(ctx, "popped", "a", "b", "c")
	c.SPop(ctx, prefix+"0:set")
	c.LPop(ctx, "popped")
	c.Del(ctx, prefix+"1:s")
	c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "tx1", 1, 0)
		p.RPush(ctx, "tx2", 2)
		return nil
	})
}

func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	startServer(t, func(c *Config) { c.DataDir = dir })
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Logger = testLogger(t)
	if s, err := New(cfg); err == nil {
		s.Close()
		t.Fatal("a second server opened a data dir in use")
	}
}

func TestPersistenceRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	mod := func(c *Config) {
		c.DataDir = dir
		c.Clock = clock
	}
	e := startServer(t, mod)
	fillAllTypes(t, e.rdb, "k")
	want := dumpKeyspace(t, e.rdb)
	e.srv.Close()

	e2 := startServer(t, mod)
	if got := dumpKeyspace(t, e2.rdb); got != want {
		t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
	}
	// a rewrite compacts into a snapshot, then more writes go to the log
	if err := e2.rdb.Do(context.Background(), "SAVE").Err(); err != nil {
		t.Fatal(err)
	}
	e2.rdb.Set(context.Background(), "after", "save", 0)
	want = dumpKeyspace(t, e2.rdb)
	e2.srv.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 4 {
		t.Fatalf("data dir holds %v, want LOCK, manifest, snapshot and log", files)
	}
	e3 := startServer(t, mod)
	if got := dumpKeyspace(t, e3.rdb); got != want {
		t.Fatalf("after rewrite and restart:\n%s\nwant:\n%s", got, want)
	}
	// keys that expired while the peer was down stay gone
	clock.Advance(2 * time.Hour)
	e3.srv.Close()
	e4 := startServer(t, mod)
	if n := len(e4.rdb.Keys(context.Background(), "*:ttl").Val()); n != 0 {
		t.Fatalf("%d expired keys came back", n)
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	var mu sync.Mutex
	mod := func(c *Config) {
		c.DataDir = dir
		c.Logger = log.New(lockedWriter{&mu, &logs}, "", 0)
	}
	e := startServer(t, mod)
	ctx := context.Background()
	e.rdb.Set(ctx, "a", "1", 0)
	e.rdb.RPush(ctx, "l", "x")
	want := dumpKeyspace(t, e.rdb)
	e.srv.Close()
	path := filepath.Join(dir, "log.1.aof") // the first generation's log (aof.logName)
	good, _ := os.ReadFile(path)

	tails := []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\nhel",                        // torn bulk
		"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$3",              // one good command, then torn
		"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n", // MULTI without EXEC
		"garbage\x00\xff*&^%",
		"*2\r\n$3\r\nGET\r\n$-5\r\n",
	}
	for i, tail := range tails {
		if err := os.WriteFile(path, append(append([]byte(nil), good...), tail...), 0o644); err != nil {
			t.Fatal(err)
		}
		e := startServer(t, mod)
		got := dumpKeyspace(t, e.rdb)
		if i == 1 {
			if e.rdb.Get(ctx, "b").Val() != "2" {
				t.Errorf("tail %d: the complete command before the torn one was lost", i)
			}
			e.rdb.Del(ctx, "b")
			got = dumpKeyspace(t, e.rdb)
		}
		if got != want {
			t.Errorf("tail %d: keyspace\n%s\nwant\n%s", i, got, want)
		}
		e.srv.Close()
		data, _ := os.ReadFile(path)
		if i != 1 && !bytes.HasPrefix(data, good) {
			t.Errorf("tail %d: good prefix damaged", i)
		}
		mu.Lock()
		if !strings.Contains(logs.String(), "torn tail") {
			t.Errorf("tail %d: no log line about the truncation: %s", i, logs.String())
		}
		logs.Reset()
		mu.Unlock()
		good, _ = os.ReadFile(path) // the truncated log (plus DEL b) is the new good state
		again := startServer(t, mod)
		want = dumpKeyspace(t, again.rdb)
		again.srv.Close()
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRewriteDuringWrites rewrites the log repeatedly while clients write
// single-key and cross-shard commands; after a restart the keyspace is
// exactly what it was.
func TestRewriteDuringWrites(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *Config) {
		c.DataDir = dir
		c.AppendFsync = "no"
	}
	e := startServer(t, mod)
	e.srv.aof.SetRewriteDelay(200 * time.Microsecond)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		c := e.client(2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d:%d", w, i%200)
				c.Incr(ctx, k+":n")
				c.RPush(ctx, fmt.Sprintf("list%d", i%7), i)
				c.LMove(ctx, fmt.Sprintf("list%d", i%7), fmt.Sprintf("list%d", (i+3)%7), "LEFT", "RIGHT")
				c.SAdd(ctx, fmt.Sprintf("set%d", i%5), i%50)
				c.SMove(ctx, fmt.Sprintf("set%d", i%5), fmt.Sprintf("set%d", (i+1)%5), i%50)
				c.MSet(ctx, k+":a", i, fmt.Sprintf("other%d", i%13), i)
				c.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.HIncrBy(ctx, "h", k, 1)
					p.ZIncrBy(ctx, "z", 1, k)
					return nil
				})
			}
		}()
	}
	for r := 0; r < 5; r++ {
		time.Sleep(40 * time.Millisecond)
		if err := e.rdb.Do(ctx, "SAVE").Err(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	want := dumpKeyspace(t, e.rdb)
	e.srv.Close()
	e2 := startServer(t, mod)
	if got := dumpKeyspace(t, e2.rdb); got != want {
		t.Fatalf("keyspace after rewrites and restart differs (%d vs %d bytes)", len(got), len(want))
	}
}
