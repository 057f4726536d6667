package kv

import (
	"context"
	"strconv"
	"testing"
)

// TestDebugHTStats: DEBUG HTSTATS and HTSTATS-KEY answer in
// redis-server 7.0.15's layout (its bytes for an empty database and for
// the errors), with gantry's tables: a map per hash slot for the keys, a
// map per shard for the expiries, one Go map for a member table.
func TestDebugHTStats(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	ctx := context.Background()
	empty := "[Dictionary HT]\nHash table 0 stats (main hash table):\nNo stats available for empty dictionaries\n" +
		"[Expires HT]\nHash table 0 stats (main hash table):\nNo stats available for empty dictionaries\n"
	r := e.raw()
	// redis-server 7.0.15's bytes
	r.roundTrip("DEBUG HTSTATS 0\r\n", "$189\r\n"+empty+"\r\n")
	e.run([]step{
		{"set a 1", "OK"}, {"set b 1 ex 100", "OK"}, {"sadd small x y z", "3"}, {"hset h f v", "1"},
		{"debug htstats", "ERR:ERR unknown subcommand or wrong number of arguments for 'htstats'. Try DEBUG HELP."},
		{"debug htstats 0 full", "ERR:ERR unknown subcommand or wrong number of arguments for 'htstats'. Try DEBUG HELP."},
		{"debug htstats-key a full", "ERR:ERR unknown subcommand or wrong number of arguments for 'htstats-key'. Try DEBUG HELP."},
		{"debug htstats 16", "ERR:ERR Out of range database"},
		{"debug htstats -1", "ERR:ERR Out of range database"},
		{"debug htstats x", "ERR:ERR value is not an integer or out of range"},
		{"debug htstats-key nokey", "ERR:ERR no such key"},
		{"debug htstats-key a", "ERR:ERR The value stored at the specified key is not represented using an hash table"},
		// a small set of strings is a hashtable to OBJECT ENCODING, as
		// in Redis 7.0 (no listpack sets): its stats are a Go map's
		{"debug htstats-key small", goMap(3).String()},
		{"debug htstats-key h", "ERR:ERR The value stored at the specified key is not represented using an hash table"},
	})
	// a and b are in slots 15495 and 3300, b has an expiry
	want := "[Dictionary HT]\nHash table 0 stats (main hash table):\n table size: 16384\n number of elements: 4\n" +
		" different slots: 4\n max chain length: 1\n avg chain length (counted): 1.00\n avg chain length (computed): 1.00\n" +
		" Chain length distribution:\n   0: 16380 (99.98%)\n   1: 4 (0.02%)\n" +
		"[Expires HT]\nHash table 0 stats (main hash table):\n table size: 256\n number of elements: 1\n" +
		" different slots: 1\n max chain length: 1\n avg chain length (counted): 1.00\n avg chain length (computed): 1.00\n" +
		" Chain length distribution:\n   0: 255 (99.61%)\n   1: 1 (0.39%)\n"
	if got, err := e.rdb.Do(ctx, "debug", "htstats", "0").Text(); err != nil || got != want {
		t.Errorf("DEBUG HTSTATS 0: got %q (%v), want %q", got, err, want)
	}
	// {t} puts every key in one slot: a chain of 60, counted as 49
	for i := range 60 {
		e.rdb.Set(ctx, "{t}"+strconv.Itoa(i), 1, 0)
	}
	got, _ := e.rdb.Do(ctx, "debug", "htstats", "1").Text()
	if got != empty {
		t.Errorf("DEBUG HTSTATS 1 (empty): %q", got)
	}
	e.rdb.Del(ctx, "a", "b", "small", "h")
	want = "[Dictionary HT]\nHash table 0 stats (main hash table):\n table size: 16384\n number of elements: 60\n" +
		" different slots: 1\n max chain length: 60\n avg chain length (counted): 60.00\n avg chain length (computed): 60.00\n" +
		" Chain length distribution:\n   0: 16383 (99.99%)\n   49: 1 (0.01%)\n" +
		"[Expires HT]\nHash table 0 stats (main hash table):\nNo stats available for empty dictionaries\n"
	if got, _ := e.rdb.Do(ctx, "debug", "htstats", "0").Text(); got != want {
		t.Errorf("DEBUG HTSTATS 0 (one slot): got %q, want %q", got, want)
	}
	// a set of 1,000 members: a Go map, estimated at 2,048 slots
	for i := range 1000 {
		e.rdb.SAdd(ctx, "big", "m:"+strconv.Itoa(i))
		e.rdb.ZAdd(ctx, "z", redisZ(float64(i), "m:"+strconv.Itoa(i)))
	}
	want = "Hash table 0 stats (main hash table):\n table size: 2048\n number of elements: 1000\n different slots: 1000\n" +
		" max chain length: 1\n avg chain length (counted): 1.00\n avg chain length (computed): 1.00\n" +
		" Chain length distribution:\n   0: 1048 (51.17%)\n   1: 1000 (48.83%)\n"
	for _, k := range []string{"big", "z"} {
		if got, err := e.rdb.Do(ctx, "debug", "htstats-key", k).Text(); err != nil || got != want {
			t.Errorf("DEBUG HTSTATS-KEY %s: got %q (%v), want %q", k, got, err, want)
		}
	}
}
