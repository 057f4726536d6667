package kv

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	e := startServer(t, nil)
	now := e.clock.Now()
	at := func(d time.Duration) string { return fmt.Sprint(now.Add(d).Unix()) }
	pat := func(d time.Duration) string { return fmt.Sprint(now.Add(d).UnixMilli()) }
	e.run([]step{
		{"MSET a 1 b 2 c 3", "OK"},
		{"DEL a b nokey", "2"},
		{"UNLINK c", "1"},
		{"EXISTS a", "0"},
		{"SET a 1", "OK"},
		{"EXISTS a a nokey", "2"},
		{"EXPIRE a 100", "1"},
		{"TTL a", "100"},
		{"EXPIRE a 50 NX", "0"},
		{"EXPIRE a 50 XX", "1"},
		{"EXPIRE a 40 GT", "0"},
		{"EXPIRE a 60 GT", "1"},
		{"EXPIRE a 70 LT", "0"},
		{"EXPIRE a 30 LT", "1"},
		{"TTL a", "30"},
		{"EXPIRE a 10 NX XX", "ERR:ERR NX and XX, GT or LT options at the same time are not compatible"},
		{"EXPIRE a 10 GT LT", "ERR:ERR GT and LT options at the same time are not compatible"},
		{"EXPIRE a 10 FOO", "ERR:ERR Unsupported option FOO"},
		{"EXPIRE a x", "ERR:ERR value is not an integer or out of range"},
		{"EXPIRE nokey 10", "0"},
		{"PEXPIRE a 1500", "1"},
		{"PTTL a", "1500"},
		{"EXPIREAT a " + at(200*time.Second), "1"},
		{"TTL a", "200"},
		{"EXPIRETIME a", at(200 * time.Second)},
		{"PEXPIREAT a " + pat(300*time.Millisecond), "1"},
		{"PEXPIRETIME a", pat(300 * time.Millisecond)},
		{"PERSIST a", "1"},
		{"PERSIST a", "0"},
		{"TTL a", "-1"},
		{"TTL nokey", "-2"},
		{"PTTL nokey", "-2"},
		{"EXPIRETIME a", "-1"},
		{"EXPIRETIME nokey", "-2"},
		{"SET p 1", "OK"},
		{"EXPIRE p 10 GT", "0"},
		{"EXPIRE p 10 LT", "1"},
		{"EXPIRE p -1", "1"},
		{"EXISTS p", "0"},
		{"EXPIRE a 9223372036854775807", "ERR:ERR invalid expire time in 'expire' command"},
		{"TYPE a", "string"},
		{"TYPE nokey", "none"},
		{"RPUSH l x", "1"},
		{"TYPE l", "list"},
		{"SADD s x", "1"},
		{"TYPE s", "set"},
		{"HSET h f v", "1"},
		{"TYPE h", "hash"},
		{"ZADD z 1 m", "1"},
		{"TYPE z", "zset"},
		{"KEYS *", "sorted:[a h l s z]"},
		{"KEYS [hl]", "sorted:[h l]"},
		{"KEYS ?", "sorted:[a h l s z]"},
		{"KEYS nomatch*", "[]"},
		{"DBSIZE", "5"},
		{"RENAME a a2", "OK"},
		{"GET a2", "1"},
		{"EXISTS a", "0"},
		{"RENAME nokey x", "ERR:ERR no such key"},
		{"RENAME a2 a2", "OK"},
		{"RENAMENX a2 l", "0"},
		{"RENAMENX a2 a3", "1"},
		{"RENAME a3 l", "OK"},
		{"TYPE l", "string"},
		{"COPY l l2", "1"},
		{"COPY l l2", "0"},
		{"COPY h l2 REPLACE", "1"},
		{"HGET l2 f", "v"},
		{"COPY h h DB 0", "ERR:ERR source and destination objects are the same"},
		{"COPY h h3 DB 16", "ERR:ERR DB index is out of range"},
		{"COPY nokey x", "0"},
		{"OBJECT ENCODING l", "int"},
		{"OBJECT ENCODING h", "listpack"},
		{"OBJECT ENCODING nokey", "nil"},
		{"OBJECT FOO x", "ERR:ERR unknown subcommand 'FOO'. Try OBJECT HELP."},
		{"SET str aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "OK"},
		{"OBJECT ENCODING str", "raw"},
		{"SET str abc", "OK"},
		{"OBJECT ENCODING str", "embstr"},
		{"SADD ints 1 2 3", "3"},
		{"OBJECT ENCODING ints", "intset"},
		{"RANDOMKEY", "*"},
		{"FLUSHDB", "OK"},
		{"RANDOMKEY", "nil"},
		{"DBSIZE", "0"},
		{"FLUSHALL ASYNC", "OK"},
		{"FLUSHALL FOO", "ERR:ERR syntax error"},
	})
}

func TestExpiryNeverVisible(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	e.run([]step{
		{"SET k v PX 1000", "OK"},
		{"RPUSH l a", "1"},
		{"PEXPIRE l 1000", "1"},
		{"SET keep v", "OK"},
	})
	e.clock.Advance(time.Second)
	// every read path must treat expired keys as absent, before any
	// deletion happened
	e.run([]step{
		{"EXISTS k l", "0"},
		{"TYPE l", "none"},
		{"KEYS *", "[keep]"},
		{"SCAN 0 COUNT 1000", "[0 [keep]]"},
		{"RANDOMKEY", "keep"},
		{"LLEN l", "0"},
		{"TTL k", "-2"},
		{"RENAME k x", "ERR:ERR no such key"},
		{"SET k new NX", "OK"},
	})
	// the active expirer removes keys nobody reads
	e.run([]step{{"SET gone v PX 10", "OK"}})
	e.clock.Advance(20 * time.Millisecond)
	if n := e.srv.ExpireNow(); n != 1 {
		t.Fatalf("ExpireNow removed %d keys, want 1", n)
	}
	if n, _ := e.rdb.DBSize(ctx).Result(); n != 2 {
		t.Fatalf("DBSIZE = %d, want 2", n)
	}
}

func TestScan(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	want := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k := fmt.Sprintf("key:%d", i)
		want[k] = true
		e.rdb.Set(ctx, k, i, 0)
	}
	e.rdb.RPush(ctx, "alist", "x")
	seen := map[string]int{}
	var cursor uint64
	calls := 0
	for {
		keys, next, err := e.rdb.Scan(ctx, cursor, "key:*", 50).Result()
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, k := range keys {
			seen[k]++
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	if len(seen) != 1000 || calls < 10 {
		t.Fatalf("scan saw %d keys in %d calls", len(seen), calls)
	}
	for k, n := range seen {
		if n != 1 || !want[k] {
			t.Fatalf("key %s seen %d times", k, n)
		}
	}
	keys, _, err := e.rdb.ScanType(ctx, 0, "*", 100000, "list").Result()
	if err != nil || len(keys) != 1 || keys[0] != "alist" {
		t.Fatalf("SCAN TYPE list = %v, %v", keys, err)
	}
	e.run([]step{
		{"SCAN x", "ERR:ERR invalid cursor"},
		{"SCAN 0 COUNT 0", "ERR:ERR syntax error"},
		{"SCAN 0 COUNT x", "ERR:ERR value is not an integer or out of range"},
		{"SCAN 0 FOO bar", "ERR:ERR syntax error"},
	})
}

func TestCollectionScans(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	for i := 0; i < 500; i++ {
		m := fmt.Sprintf("m%d", i)
		e.rdb.SAdd(ctx, "s", m)
		e.rdb.HSet(ctx, "h", m, i)
		e.rdb.ZAdd(ctx, "z", redisZ(float64(i), m))
	}
	check := func(name string, scan func(cursor uint64) ([]string, uint64, error), stride int) {
		seen := scanAll(t, name, scan, stride, nil)
		for m, n := range seen {
			if n > 1 {
				t.Fatalf("%s: %s returned twice", name, m)
			}
		}
		if len(seen) != 500 {
			t.Fatalf("%s: saw %d members, want 500", name, len(seen))
		}
	}
	check("sscan", func(c uint64) ([]string, uint64, error) { return e.rdb.SScan(ctx, "s", c, "", 20).Result() }, 1)
	check("hscan", func(c uint64) ([]string, uint64, error) { return e.rdb.HScan(ctx, "h", c, "", 20).Result() }, 2)
	check("zscan", func(c uint64) ([]string, uint64, error) { return e.rdb.ZScan(ctx, "z", c, "", 20).Result() }, 2)
	// small collections come back whole
	e.rdb.HSet(ctx, "small", "a", 1, "b", 2)
	items, cur, err := e.rdb.HScan(ctx, "small", 0, "a*", 1).Result()
	if err != nil || cur != 0 || len(items) != 2 || items[0] != "a" || items[1] != "1" {
		t.Fatalf("HSCAN small = %v %d %v", items, cur, err)
	}
	e.run([]step{
		{"SSCAN h 0", "ERR:WRONGTYPE"},
		{"SSCAN nokey 0", "[0 []]"},
		{"ZSCAN z x", "ERR:ERR invalid cursor"},
	})
	_ = sort.Strings
}
