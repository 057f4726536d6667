package kv

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RESTORE of payloads made by a real Redis: every type in every encoding
// Redis 7.0 writes is built on a redis-server, DUMPed, RESTOREd into
// gantry, and read back on both. The small payloads are kept in
// testdata/redis-dumps.json (regenerate with -update-redis-dumps) so that
// TestRestoreRedisFixtures checks the decoders without a redis-server.

var updateRedisDumps = flag.Bool("update-redis-dumps", false, "rewrite testdata/redis-dumps.json from a redis-server")

const redisDumpsFile = "testdata/redis-dumps.json"

// redisDumpCase builds key k on Redis with setup (after CONFIG SET of
// config) and compares reads; a read starting with "~" compares its reply
// as a set (hash tables and sets have no order).
type redisDumpCase struct {
	name   string
	config []string
	setup  []string
	reads  []string
}

// redisDumpFixture is a stored payload and the replies Redis gave.
type redisDumpFixture struct {
	Name    string   `json:"name"`
	Payload string   `json:"payload"` // hex
	Config  []string `json:"config,omitempty"`
	Reads   []string `json:"reads"`
	Want    []string `json:"want"`
}

func big(n int, f func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = f(i)
	}
	return strings.Join(parts, " ")
}

var redisDumpCases = []redisDumpCase{
	{name: "string-raw", setup: []string{"SET k hello-world"}, reads: []string{"GET k"}},
	{name: "string-empty", setup: []string{"SET k ''"}, reads: []string{"GET k", "STRLEN k"}},
	{name: "string-int8", setup: []string{"SET k -7"}, reads: []string{"GET k"}},
	{name: "string-int16", setup: []string{"SET k 30000"}, reads: []string{"GET k"}},
	{name: "string-int32", setup: []string{"SET k -2000000000"}, reads: []string{"GET k"}},
	{name: "string-int64", setup: []string{"SET k 9223372036854775807"}, reads: []string{"GET k"}},
	{name: "string-lzf", setup: []string{"SET k " + strings.Repeat("abcdefgh", 200)}, reads: []string{"GET k"}},
	{name: "list-listpack", setup: []string{"RPUSH k a bb 0 1 -1 127 128 -4096 4095 70000 -70000 2147483648 -9223372036854775808 " + strings.Repeat("x", 70) + " " + strings.Repeat("y", 5000)},
		reads: []string{"LRANGE k 0 -1"}},
	{name: "list-quicklist", config: []string{"list-max-listpack-size 3"}, setup: []string{"RPUSH k " + big(20, strconv.Itoa)}, reads: []string{"LRANGE k 0 -1"}},
	{name: "list-compressed", config: []string{"list-max-listpack-size 4", "list-compress-depth 1"},
		setup: []string{"RPUSH k " + big(40, func(i int) string { return strings.Repeat("v", 30) + strconv.Itoa(i) })}, reads: []string{"LRANGE k 0 -1", "LLEN k"}},
	{name: "list-plain-node", config: []string{"list-max-listpack-size 4"},
		setup: []string{"DEBUG QUICKLIST-PACKED-THRESHOLD 100", "RPUSH k a b " + strings.Repeat("p", 300) + " c", "DEBUG QUICKLIST-PACKED-THRESHOLD 1073741824"},
		reads: []string{"LRANGE k 0 -1"}},
	{name: "set-intset16", setup: []string{"SADD k 5 -3 100 0"}, reads: []string{"SMEMBERS k"}},
	{name: "set-intset32", setup: []string{"SADD k 5 -3 100000 -100000"}, reads: []string{"SMEMBERS k"}},
	{name: "set-intset64", setup: []string{"SADD k 5 9000000000 -9000000000"}, reads: []string{"SMEMBERS k"}},
	{name: "set-hashtable", setup: []string{"SADD k a b c 1 2 " + strings.Repeat("z", 100)}, reads: []string{"~SMEMBERS k", "SCARD k"}},
	{name: "set-big-intset", setup: []string{"SADD k " + big(600, func(i int) string { return strconv.Itoa(i * 7) })}, reads: []string{"~SMEMBERS k", "SCARD k"}},
	{name: "hash-listpack", setup: []string{"HSET k f1 v1 n 12 neg -5000 big 9223372036854775807 e ''", "HSET k a 1 zz 2"},
		reads: []string{"HGETALL k"}},
	{name: "hash-listpack-long-values", config: []string{"hash-max-listpack-value 100000"},
		setup: []string{"HSET k ZIP_INT_8B 127 ZIP_INT_16B 32767 ZIP_INT_32B 2147483647 ZIP_INT_64B 9223372036854775808 ZIP_INT_IMM_MIN 0 ZIP_INT_IMM_MAX 12 ZIP_STR_06B " + strings.Repeat("x", 31) + " ZIP_STR_14B " + strings.Repeat("x", 8191)},
		reads: []string{"HGETALL k"}},
	{name: "hash-hashtable", config: []string{"hash-max-listpack-entries 2"}, setup: []string{"HSET k a 1 b 2 c 3 d " + strings.Repeat("w", 300)},
		reads: []string{"~HGETALL k", "HLEN k"}},
	{name: "zset-listpack", setup: []string{"ZADD k 1 a 2.5 b -3 c 0 d inf e -inf f 1e300 g 12 h"}, reads: []string{"ZRANGE k 0 -1 WITHSCORES"}},
	{name: "zset-skiplist", config: []string{"zset-max-listpack-entries 2"}, setup: []string{"ZADD k 1 a 2.5 b -3 c 0.1 d 3 " + strings.Repeat("m", 100)},
		reads: []string{"ZRANGE k 0 -1 WITHSCORES"}},
	{name: "stream-groups", setup: []string{
		"XADD k 1-1 f v", "XADD k 1-2 f w", "XADD k 2-0 f x g y", "XADD k 3-0 a 1", "XADD k 4-0 f 99",
		"XDEL k 2-0",
		"XGROUP CREATE k g1 0", "XGROUP CREATE k g2 $", "XGROUP CREATE k g3 1-1",
		"XREADGROUP GROUP g1 alice COUNT 2 STREAMS k >", "XREADGROUP GROUP g1 bob COUNT 1 STREAMS k >",
		"XACK k g1 1-1", "XGROUP CREATECONSUMER k g1 carol"},
		reads: []string{"XRANGE k - +", "XLEN k", "XINFO GROUPS k", "XPENDING k g1", "XPENDING k g2", "XINFO CONSUMERS k g3"}},
	{name: "stream-nodes", config: []string{"stream-node-max-entries 3"}, setup: []string{
		"XADD k 5-1 a 1 b 2", "XADD k 5-2 a 3 b 4", "XADD k 6-0 c 5", "XADD k 7-0 a 1 b 2", "XADD k 8-0 a x b y",
		"XADD k 9-0 a x", "XADD k 10-0 a -3 b 1000000", "XDEL k 8-0", "XTRIM k MINID 6-0", "XGROUP CREATE k g 0", "XREADGROUP GROUP g c STREAMS k >"},
		reads: []string{"XRANGE k - +", "XINFO GROUPS k", "XPENDING k g"}},
	{name: "stream-empty", setup: []string{"XGROUP CREATE k g $ MKSTREAM", "XADD k 3-3 f v", "XDEL k 3-3"},
		reads: []string{"XLEN k", "XINFO GROUPS k"}},
}

// setDumpConfig sets Redis's defaults of the encoding parameters, then
// config (parameters gantry accepts without a meaning are accepted).
func setDumpConfig(t *testing.T, c *redis.Client, config []string) {
	t.Helper()
	defaults := []string{"list-max-listpack-size -2", "list-compress-depth 0", "hash-max-listpack-entries 128",
		"hash-max-listpack-value 64", "zset-max-listpack-entries 128", "stream-node-max-entries 100"}
	for _, p := range append(defaults, config...) {
		if err := c.Do(context.Background(), splitCmd("CONFIG SET "+p)...).Err(); err != nil {
			t.Fatal(p, err)
		}
	}
}

func splitCmd(s string) []any {
	var out []any
	for _, f := range strings.Fields(s) {
		if f == "''" {
			f = ""
		}
		out = append(out, f)
	}
	return out
}

func dumpRead(ctx context.Context, c *redis.Client, read string) string {
	if sorted, ok := strings.CutPrefix(read, "~"); ok {
		res, err := c.Do(ctx, splitCmd(sorted)...).Result()
		if err != nil {
			return format(res, err)
		}
		return sortedFormat(res)
	}
	return format(c.Do(ctx, splitCmd(read)...).Result())
}

// TestRestoreRedisPayloads dumps on redis-server and restores on gantry.
func TestRestoreRedisPayloads(t *testing.T) {
	r := startRedis(t, "--enable-debug-command", "yes")
	e := startServer(t, nil)
	ctx := context.Background()
	var fixtures []redisDumpFixture
	for _, tc := range redisDumpCases {
		t.Run(tc.name, func(t *testing.T) {
			if err := r.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			setDumpConfig(t, r, tc.config)
			setDumpConfig(t, e.rdb, tc.config)
			for _, c := range tc.setup {
				if err := r.Do(ctx, splitCmd(c)...).Err(); err != nil {
					t.Fatal(c, err)
				}
			}
			payload, err := r.Dump(ctx, "k").Result()
			if err != nil {
				t.Fatal(err)
			}
			e.rdb.Del(ctx, "k")
			if err := e.rdb.Restore(ctx, "k", 0, payload).Err(); err != nil {
				t.Fatalf("RESTORE of %x: %v", payload, err)
			}
			fx := redisDumpFixture{Name: tc.name, Payload: hex.EncodeToString([]byte(payload)), Config: tc.config, Reads: tc.reads}
			for _, read := range tc.reads {
				want := dumpRead(ctx, r, read)
				if got := dumpRead(ctx, e.rdb, read); got != want {
					t.Errorf("%s:\n gantry %.400s\n redis  %.400s", read, got, want)
				}
				fx.Want = append(fx.Want, want)
			}
			if len(payload) <= 2048 {
				fixtures = append(fixtures, fx)
			}
		})
	}
	if *updateRedisDumps && !t.Failed() {
		b, err := json.MarshalIndent(fixtures, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(redisDumpsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestoreRedisFixtures restores the stored Redis payloads.
func TestRestoreRedisFixtures(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash(redisDumpsFile))
	if err != nil {
		t.Fatal(err)
	}
	var fixtures []redisDumpFixture
	if err := json.Unmarshal(b, &fixtures); err != nil {
		t.Fatal(err)
	}
	if len(fixtures) < 10 {
		t.Fatalf("only %d fixtures", len(fixtures))
	}
	e := startServer(t, nil)
	ctx := context.Background()
	for _, fx := range fixtures {
		t.Run(fx.Name, func(t *testing.T) {
			p, err := hex.DecodeString(fx.Payload)
			if err != nil {
				t.Fatal(err)
			}
			setDumpConfig(t, e.rdb, fx.Config)
			e.rdb.Del(ctx, "k")
			if err := e.rdb.Restore(ctx, "k", 0, string(p)).Err(); err != nil {
				t.Fatal(err)
			}
			for i, read := range fx.Reads {
				if got := dumpRead(ctx, e.rdb, read); got != fx.Want[i] {
					t.Errorf("%s:\n got  %.400s\n want %.400s", read, got, fx.Want[i])
				}
			}
			// a corrupted payload is refused, never half restored
			p[len(p)/2] ^= 0x40
			err = e.rdb.Restore(ctx, "k2", 0, string(p)).Err()
			if err == nil || !strings.Contains(err.Error(), "checksum") {
				t.Errorf("corrupted payload: %v", err)
			}
		})
	}
}
