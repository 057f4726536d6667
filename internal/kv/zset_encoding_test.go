package kv

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
)

// TestZSetEncodings checks the form of sorted sets as OBJECT ENCODING
// shows it against redis-server 7.0.15's replies: zset-max-listpack-entries
// and -value read at each write, a set that passed them staying big,
// destinations and COPY, and ZSCAN's scores per form.
func TestZSetEncodings(t *testing.T) {
	e := startServer(t, nil)
	long := strings.Repeat("x", 65)
	e.run([]step{
		{"ZADD z 0.1 b 3 a 2 c -0 d 1e300 e inf f -inf g 123456789012345678 h", "8"},
		{"OBJECT ENCODING z", "listpack"},
		// a listpack is scanned whole, in order; a score as Redis keeps
		// it there (an integral one as an integer, -0 as 0)
		{"ZSCAN z 0", "[0 [g -inf d 0 b 0.10000000000000001 c 2 a 3 h 123456789012345680 e 1.0000000000000001e+300 f inf]]"},
		{"ZSCORE z d", "0"},
		{"CONFIG SET zset-max-listpack-entries 2", "OK"},
		{"ZADD y -0 a 1 b", "2"},
		{"OBJECT ENCODING y", "listpack"},
		{"ZADD y 2 c", "1"},
		{"OBJECT ENCODING y", "skiplist"},
		{"ZSCORE y a", "0"},
		{"ZSCAN y 0 MATCH c", "[0 [c 2]]"},
		{"ZREM y c", "1"},
		{"OBJECT ENCODING y", "skiplist"}, // for good
		{"ZUNIONSTORE u 2 y y", "2"},
		{"OBJECT ENCODING u", "listpack"}, // a new destination
		{"CONFIG SET zset-max-listpack-entries 1", "OK"},
		{"ZRANGESTORE r u 0 -1", "2"},
		{"OBJECT ENCODING r", "skiplist"},
		{"CONFIG SET zset-max-listpack-entries 128", "OK"},
		{"COPY y ycopy", "1"},
		{"OBJECT ENCODING ycopy", "skiplist"},
		{"COPY u ucopy", "1"},
		{"OBJECT ENCODING ucopy", "listpack"},
		{"ZADD big 1 " + long, "1"},
		{"OBJECT ENCODING big", "skiplist"},
		{"CONFIG SET zset-max-listpack-value 100", "OK"},
		{"ZADD big2 1 " + long, "1"},
		{"OBJECT ENCODING big2", "listpack"},
		{"CONFIG GET zset-max-ziplist-value", "[zset-max-ziplist-value 100]"},
		{"CONFIG SET zset-max-listpack-value 64", "OK"},
		{"CONFIG SET zset-max-listpack-entries 0", "OK"},
		{"ZADD e0 1 a", "1"},
		{"OBJECT ENCODING e0", "skiplist"},
		{"ZINCRBY e1 1 a", "1"},
		{"OBJECT ENCODING e1", "skiplist"},
		{"CONFIG SET zset-max-listpack-entries 128", "OK"},
		{"GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania", "2"},
		{"OBJECT ENCODING g", "listpack"},
		{"GEOSEARCHSTORE gs g FROMLONLAT 15 37 BYRADIUS 200 km ASC", "2"},
		{"OBJECT ENCODING gs", "listpack"},
		{"ZADD lex 0 a 0 b 0 c 0 d 0 e", "5"},
		{"ZRANGEBYLEX lex [b (e", "[b c d]"},
		{"ZREVRANGEBYLEX lex (e [b", "[d c b]"},
		{"ZLEXCOUNT lex [b (e", "3"},
		{"ZREVRANGE lex 1 2", "[d c]"},
		{"ZREMRANGEBYLEX lex [b [c", "2"},
		{"ZPOPMAX lex 2", "[e 0 d 0]"},
	})
}

// TestZSetRestoreForms restores payloads made by redis-server 7.0.15 of
// ZADD k 1 a 2 b 3 c as a skip list (zset-max-listpack-entries 2, RDB
// type 5) and as a listpack (type 17) and checks the form Redis gives
// them: a skip list that fits becomes a listpack, a listpack becomes a
// skip list only past the entries (not the value) limit.
func TestZSetRestoreForms(t *testing.T) {
	skiplist, _ := hex.DecodeString("050301630000000000000840016200000000000000400161000000000000f03f0a00a91cb304ca068424")
	listpack, _ := hex.DecodeString("1116160000000600816102010181620202018163020301ff0a002e1b7cc500aa3596")
	e := startServer(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		payload []byte
		config  []string
		want    string
	}{
		{skiplist, nil, "listpack"},
		{skiplist, []string{"zset-max-listpack-entries", "2"}, "skiplist"},
		{skiplist, []string{"zset-max-listpack-value", "0"}, "skiplist"},
		{listpack, nil, "listpack"},
		{listpack, []string{"zset-max-listpack-entries", "2"}, "skiplist"},
		{listpack, []string{"zset-max-listpack-value", "0"}, "listpack"},
	} {
		e.rdb.ConfigSet(ctx, "zset-max-listpack-entries", "128")
		e.rdb.ConfigSet(ctx, "zset-max-listpack-value", "64")
		if tc.config != nil {
			e.rdb.ConfigSet(ctx, tc.config[0], tc.config[1])
		}
		e.rdb.Del(ctx, "k")
		if err := e.rdb.Restore(ctx, "k", 0, string(tc.payload)).Err(); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.rdb.ObjectEncoding(ctx, "k").Result(); got != tc.want {
			t.Errorf("payload type %d with %v: %s, want %s", tc.payload[0], tc.config, got, tc.want)
		}
		if got := format(e.rdb.Do(ctx, "ZRANGE", "k", "0", "-1", "WITHSCORES").Result()); got != "[a 1 b 2 c 3]" {
			t.Errorf("payload type %d with %v: %s", tc.payload[0], tc.config, got)
		}
	}
}
