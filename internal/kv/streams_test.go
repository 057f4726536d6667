package kv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStreams(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"XADD s 1-1 a 1 b 2", "1-1"},
		{"XADD s 1-* c 3", "1-2"},
		{"XADD s 2 d 4", "2-0"},
		{"XADD s 2 d 4", "ERR:ERR The ID specified in XADD is equal or smaller than the target stream top item"},
		{"XADD s 0-0 a 1", "ERR:ERR The ID specified in XADD must be greater than 0-0"},
		{"XADD s 1-x a 1", "ERR:ERR Invalid stream ID specified as stream command argument"},
		{"XADD s * a", "ERR:ERR wrong number of arguments for 'xadd' command"},
		{"XADD s MAXLEN -1 * a 1", "ERR:ERR The MAXLEN argument must be >= 0."},
		{"XADD s MAXLEN 1 MINID 1 * a 1", "ERR:ERR syntax error, MAXLEN and MINID options at the same time are not compatible"},
		{"XADD s MAXLEN 1 LIMIT 10 * a 1", "ERR:ERR syntax error, LIMIT cannot be used without the special ~ option"},
		{"XADD s LIMIT 10 * a 1", "ERR:ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"},
		{"XADD nokey NOMKSTREAM * a 1", "nil"},
		{"EXISTS nokey", "0"},
		{"XLEN s", "3"},
		{"XLEN nokey", "0"},
		{"TYPE s", "stream"},
		{"XRANGE s - +", "[[1-1 [a 1 b 2]] [1-2 [c 3]] [2-0 [d 4]]]"},
		{"XRANGE s (1-1 +", "[[1-2 [c 3]] [2-0 [d 4]]]"},
		{"XRANGE s - (2", "[[1-1 [a 1 b 2]] [1-2 [c 3]] [2-0 [d 4]]]"}, // (2 is before 2-max
		{"XRANGE s - (2-0", "[[1-1 [a 1 b 2]] [1-2 [c 3]]]"},
		{"XRANGE s 1 1", "[[1-1 [a 1 b 2]] [1-2 [c 3]]]"},
		{"XRANGE s - + COUNT 1", "[[1-1 [a 1 b 2]]]"},
		{"XRANGE s - + COUNT 0", "nil"},
		{"XRANGE s 5 1", "[]"},
		{"XRANGE s 5 (0-0", "ERR:ERR invalid end ID for the interval"},
		{"XRANGE s - + FOO", "ERR:ERR syntax error"},
		{"XREVRANGE s + - COUNT 2", "[[2-0 [d 4]] [1-2 [c 3]]]"},
		{"XRANGE nokey - +", "[]"},
		{"XDEL s 1-2 9-9", "1"},
		{"XDEL s x", "ERR:ERR Invalid stream ID specified as stream command argument"},
		{"XRANGE s - +", "[[1-1 [a 1 b 2]] [2-0 [d 4]]]"},
		{"XTRIM s MAXLEN 1", "1"},
		{"XTRIM s MAXLEN 1", "0"},
		{"XTRIM s", "ERR:ERR wrong number of arguments for 'xtrim' command"},
		{"XTRIM s MINID 1 FOO", "ERR:ERR syntax error"},
		{"XRANGE s - +", "[[2-0 [d 4]]]"},
		{"XSETID s 1", "ERR:ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"},
		{"XSETID s 1-5", "ERR:ERR The ID specified in XSETID is smaller than the target stream top item"},
		{"XSETID s 10 ENTRIESADDED 0", "ERR:ERR The entries_added specified in XSETID is smaller than the target stream length"},
		{"XSETID s 10 MAXDELETEDID 20", "ERR:ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"},
		{"XSETID nokey 1", "ERR:ERR no such key"},
		{"XSETID s 10-5 ENTRIESADDED 7", "OK"},
		{"XADD s 10-5 a 1", "ERR:ERR The ID specified in XADD is equal or smaller than the target stream top item"},
		{"XADD s 10-* a 1", "10-6"},
		{"XINFO STREAM s", "[length 2 radix-tree-keys 1 radix-tree-nodes 2 last-generated-id 10-6 max-deleted-entry-id 1-2 entries-added 8 recorded-first-entry-id 2-0 groups 0 first-entry [2-0 [d 4]] last-entry [10-6 [a 1]]]"},
		{"XINFO STREAM nokey", "ERR:ERR no such key"},
		{"XINFO HELP xxx", "ERR:ERR wrong number of arguments for 'xinfo|help' command"},
		{"XINFO FOO s", "ERR:ERR unknown subcommand 'FOO'. Try XINFO HELP."},
		{"SET str v", "OK"},
		{"XADD str * a 1", "ERR:WRONGTYPE"},
		{"XRANGE str - +", "ERR:WRONGTYPE"},
		{"OBJECT ENCODING s", "stream"},
		// the sequence of an ID of the maximum milliseconds overflows
		{"XADD m 18446744073709551615-18446744073709551615 a 1", "18446744073709551615-18446744073709551615"},
		{"XADD m * a 1", "ERR:ERR The stream has exhausted the last possible ID, unable to add more items"},
		{"XADD m2 5-18446744073709551615 a 1", "5-18446744073709551615"},
		{"XADD m2 5-* a 1", "ERR:ERR Elements are too large to be stored"},
	})
	// an ID made of the clock: the fake clock's milliseconds, then a sequence
	ms := e.clock.Now().UnixMilli()
	e.run([]step{
		{"XADD t * a 1", fmt.Sprintf("%d-0", ms)},
		{"XADD t * a 1", fmt.Sprintf("%d-1", ms)},
	})
}

// TestStreamTrimNodes checks "~" trimming by whole nodes of
// stream-node-max-entries entries, as Redis's unit/type/stream does.
func TestStreamTrimNodes(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	e.run([]step{{"CONFIG SET stream-node-max-entries 100", "OK"}})
	for i := 1; i <= 1000; i++ {
		e.rdb.Do(ctx, "XADD", "s", "MAXLEN", "~", "555", i, "item", i)
	}
	e.run([]step{
		{"XLEN s", "600"},
		{"CONFIG GET stream-node-max-entries", "[stream-node-max-entries 100]"},
		{"XTRIM s MAXLEN ~ 444", "100"},
		{"XLEN s", "500"},
		{"CONFIG SET stream-node-max-entries 2", "OK"},
		{"DEL s", "1"},
		{"XADD s 1 f v", "1-0"},
		{"XADD s 2 f v", "2-0"},
		{"XADD s 3 f v", "3-0"},
		{"XADD s 4 f v", "4-0"},
		{"XADD s 5 f v", "5-0"},
		{"XTRIM s MAXLEN ~ 0 LIMIT 1", "0"},
		{"XTRIM s MAXLEN ~ 0 LIMIT 2", "2"},
		{"XTRIM s MINID ~ 5", "2"},
		{"XINFO STREAM s", "[length 1 radix-tree-keys 1 radix-tree-nodes 2 last-generated-id 5-0 max-deleted-entry-id 0-0 entries-added 5 recorded-first-entry-id 5-0 groups 0 first-entry [5-0 [f v]] last-entry [5-0 [f v]]]"},
		{"CONFIG SET stream-node-max-entries x", "ERR:ERR CONFIG SET failed (possibly related to argument 'stream-node-max-entries') - argument couldn't be parsed into an integer"},
	})
}

func TestStreamConsumerGroups(t *testing.T) {
	e := startServer(t, nil)
	now := func() string { return fmt.Sprint(e.clock.Now().UnixMilli()) }
	e.run([]step{
		{"XGROUP CREATE s g 0", "ERR:ERR The XGROUP subcommand requires the key to exist."},
		{"XGROUP CREATE s g $ MKSTREAM", "OK"},
		{"XGROUP CREATE s g 0", "ERR:BUSYGROUP Consumer Group name already exists"},
		{"XGROUP CREATE s g2 0 ENTRIESREAD -2", "ERR:ERR value for ENTRIESREAD must be positive or -1"},
		{"XGROUP CREATE s", "ERR:ERR wrong number of arguments for 'xgroup|create' command"},
		{"XGROUP SETID s nog 0", "ERR:NOGROUP No such consumer group 'nog' for key name 's'"},
		{"XADD s 1 a 1", "1-0"},
		{"XADD s 2 b 2", "2-0"},
		{"XADD s 3 c 3", "3-0"},
		{"XREADGROUP GROUP g alice COUNT 2 STREAMS s >", "[[s [[1-0 [a 1]] [2-0 [b 2]]]]]"},
		{"XREADGROUP GROUP g bob STREAMS s >", "[[s [[3-0 [c 3]]]]]"},
		{"XREADGROUP GROUP g bob STREAMS s >", "nil"},
		{"XREADGROUP GROUP g bob STREAMS s $", "ERR:ERR The $ ID is meaningless in the context of XREADGROUP"},
		{"XREADGROUP GROUP nog bob STREAMS s >", "ERR:NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"},
		{"XREAD STREAMS s >", "ERR:ERR The > ID can be specified only when calling XREADGROUP"},
		{"XREAD GROUP g c STREAMS s 0", "ERR:ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."},
		{"XREAD STREAMS s 0 1", "ERR:ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."},
		{"XPENDING s g", "[3 1-0 3-0 [[alice 2] [bob 1]]]"},
	})
	e.clock.Advance(100 * time.Millisecond)
	e.run([]step{
		{"XPENDING s g - + 10", "[[1-0 alice 100 1] [2-0 alice 100 1] [3-0 bob 100 1]]"},
		{"XPENDING s g IDLE 50 - + 10 bob", "[[3-0 bob 100 1]]"},
		{"XPENDING s g (1-0 + 10", "[[2-0 alice 100 1] [3-0 bob 100 1]]"},
		{"XPENDING s g - + 10 nobody", "[]"},
		{"XPENDING s g 1", "ERR:ERR syntax error"},
		{"XPENDING s nog", "ERR:NOGROUP No such key 's' or consumer group 'nog'"},
		// history: the consumer's own pending entries, delivered again
		{"XREADGROUP GROUP g alice STREAMS s 0", "[[s [[1-0 [a 1]] [2-0 [b 2]]]]]"},
		{"XPENDING s g - + 1", "[[1-0 alice 0 2]]"},
		{"XACK s g 1-0 9-0", "1"},
		{"XACK s g 1-0", "0"},
		{"XACK s g x", "ERR:ERR Invalid stream ID specified as stream command argument"},
		{"XACK s nog 1-0", "0"},
	})
	e.clock.Advance(time.Second)
	e.run([]step{
		{"XCLAIM s g carol 500 2-0 3-0", "[[2-0 [b 2]] [3-0 [c 3]]]"},
		{"XPENDING s g - + 10", "[[2-0 carol 0 3] [3-0 carol 0 2]]"},
		{"XCLAIM s g dave 0 3-0 JUSTID RETRYCOUNT 9 IDLE 100", "[3-0]"},
		{"XPENDING s g - + 10 dave", "[[3-0 dave 100 9]]"},
		{"XCLAIM s g dave 0 2-0 TIME " + now(), "[[2-0 [b 2]]]"},
		{"XCLAIM s g dave 0 1-0 FORCE JUSTID", "[1-0]"},
		{"XCLAIM s g dave x 1-0", "ERR:ERR Invalid min-idle-time argument for XCLAIM"},
		{"XCLAIM s g dave 0 1-0 FOO", "ERR:ERR Unrecognized XCLAIM option 'FOO'"},
		{"XCLAIM nokey g dave 0 1-0", "ERR:NOGROUP No such key 'nokey' or consumer group 'g'"},
		{"XDEL s 2-0", "1"},
		{"XAUTOCLAIM s g erin 0 0 COUNT 1", "[2-0 [[1-0 [a 1]]] []]"},
		{"XADD s 4 d 4", "4-0"},
		{"XAUTOCLAIM s g erin 0 2-0 COUNT 1", "[3-0 [] [2-0]]"}, // deleted: dropped from the PEL
		{"XAUTOCLAIM s g erin 0 3-0", "[0-0 [[3-0 [c 3]]] []]"},
		{"XPENDING s g - + 10", "[[1-0 erin 0 2] [3-0 erin 0 10]]"},
		{"XAUTOCLAIM s g erin 0 0 COUNT 0", "ERR:ERR COUNT must be > 0"},
		{"XAUTOCLAIM s g erin x 0", "ERR:ERR Invalid min-idle-time argument for XAUTOCLAIM"},
		{"XINFO GROUPS s", "[[name g consumers 5 pending 2 last-delivered-id 3-0 entries-read 3 lag 1]]"},
		{"XINFO CONSUMERS s g", "[[name alice pending 0 idle 1000] [name bob pending 0 idle 1100] [name carol pending 0 idle 0] [name dave pending 0 idle 0] [name erin pending 2 idle 0]]"},
		{"XINFO CONSUMERS s nog", "ERR:NOGROUP No such consumer group 'nog' for key name 's'"},
		{"XGROUP CREATECONSUMER s g zed", "1"},
		{"XGROUP CREATECONSUMER s g zed", "0"},
		{"XGROUP DELCONSUMER s g erin", "2"},
		{"XGROUP DELCONSUMER s g nobody", "0"},
		{"XPENDING s g", "[0 nil nil nil]"},
		{"XGROUP SETID s g 0 ENTRIESREAD 0", "OK"},
		{"XREADGROUP GROUP g zed NOACK STREAMS s >", "[[s [[1-0 [a 1]] [3-0 [c 3]] [4-0 [d 4]]]]]"},
		{"XPENDING s g", "[0 nil nil nil]"},
		{"XINFO GROUPS s", "[[name g consumers 5 pending 0 last-delivered-id 4-0 entries-read 4 lag 0]]"},
		{"XGROUP DESTROY s g", "1"},
		{"XGROUP DESTROY s g", "0"},
		{"XGROUP HELP", "*"},
		{"XGROUP FOO s g", "ERR:ERR unknown subcommand 'FOO'. Try XGROUP HELP."},
	})
}

// TestStreamBlocking covers XREAD and XREADGROUP with BLOCK: woken by XADD,
// timing out, and the errors a blocked XREADGROUP gets when its key or
// group goes away.
func TestStreamBlocking(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	bg := func(args ...any) chan string {
		ch := make(chan string, 1)
		c := e.client(2)
		go func() { ch <- format(c.Do(ctx, args...).Result()) }()
		return ch
	}
	e.run([]step{
		{"XREAD BLOCK 10 STREAMS s $", "nil"},
		{"XREAD BLOCK x STREAMS s $", "ERR:ERR timeout is not an integer or out of range"},
		{"XREAD BLOCK -1 STREAMS s $", "ERR:ERR timeout is negative"},
	})
	ch := bg("XREAD", "BLOCK", 0, "STREAMS", "other", "s", "$", "$")
	waitBlocked(t, e, "s", 1)
	e.rdb.Do(ctx, "XADD", "s", "1", "a", "1")
	if got := <-ch; got != "[[s [[1-0 [a 1]]]]]" {
		t.Errorf("XREAD woken by XADD: %s", got)
	}
	// an XREAD that waits for "$" ignores a key that is deleted or turns into
	// another type, and gets what is added after
	ch = bg("XREAD", "BLOCK", 0, "STREAMS", "s", "$")
	waitBlocked(t, e, "s", 1)
	e.rdb.Do(ctx, "SET", "s", "v")
	e.rdb.Do(ctx, "DEL", "s")
	e.rdb.Do(ctx, "XADD", "s", "2", "b", "2")
	if got := <-ch; got != "[[s [[2-0 [b 2]]]]]" {
		t.Errorf("XREAD after SET, DEL, XADD: %s", got)
	}
	e.run([]step{{"XGROUP CREATE s g $", "OK"}})
	for _, tc := range []struct {
		name, want string
		act        func()
	}{
		{"XADD", "[[s [[3-0 [c 3]]]]]", func() { e.rdb.Do(ctx, "XADD", "s", "3", "c", "3") }},
		{"DEL", "ERR(UNBLOCKED the stream key no longer exists)", func() { e.rdb.Do(ctx, "DEL", "s") }},
		{"SET", "ERR(UNBLOCKED the stream key no longer exists)", func() {
			e.rdb.Do(ctx, "SET", "s", "v")
		}},
		{"FLUSHALL", "ERR(UNBLOCKED the stream key no longer exists)", func() { e.rdb.Do(ctx, "FLUSHALL") }},
		{"DESTROY", "ERR(NOGROUP the consumer group this client was blocked on no longer exists)", func() {
			e.rdb.Do(ctx, "XGROUP", "DESTROY", "s", "g")
		}},
	} {
		e.rdb.Do(ctx, "DEL", "s")
		e.rdb.Do(ctx, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
		ch := bg("XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")
		waitBlocked(t, e, "s", 1)
		tc.act()
		if got := <-ch; got != tc.want {
			t.Errorf("blocked XREADGROUP after %s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	// BLOCK with an ID other than ">" never waits
	e.run([]step{
		{"DEL s", "*"},
		{"XGROUP CREATE s g $ MKSTREAM", "OK"},
		{"XREADGROUP GROUP g c BLOCK 0 STREAMS s 0", "[[s []]]"},
		{"XREADGROUP GROUP g c BLOCK 10 STREAMS s >", "nil"},
		// inside MULTI a blocking read does not block
		{"MULTI", "OK"},
		{"XREAD BLOCK 0 STREAMS s $", "QUEUED"},
		{"EXEC", "[nil]"},
	})
	if n := e.srv.blocked.Load(); n != 0 {
		t.Errorf("%d clients still counted as blocked", n)
	}
}

var (
	seenTime = regexp.MustCompile(`seen-time \d+ `)
	// a replay (log, replica) rebuilds the nodes with its own
	// stream-node-max-entries, which CONFIG SET does not propagate
	radixFields = regexp.MustCompile(`radix-tree-(keys|nodes) \d+ `)
)

// streamState renders a stream's data, metadata, groups and pending
// entries (XINFO STREAM FULL without the consumers' seen times, which a
// replay sets anew, as in Redis).
func streamState(t *testing.T, e *testEnv, key string) string {
	t.Helper()
	res, err := e.rdb.Do(context.Background(), "XINFO", "STREAM", key, "FULL", "COUNT", "0").Result()
	if err != nil {
		t.Fatalf("XINFO STREAM %s FULL: %v", key, err)
	}
	return radixFields.ReplaceAllString(seenTime.ReplaceAllString(format(res, nil), ""), "")
}

func streamWorkload(t *testing.T, e *testEnv) {
	ctx := context.Background()
	e.run([]step{{"CONFIG SET stream-node-max-entries 4", "OK"}})
	for i := 1; i <= 40; i++ {
		e.rdb.Do(ctx, "XADD", "s", "MAXLEN", "~", "30", fmt.Sprint(i), "f", i)
	}
	e.clock.Advance(time.Second)
	e.run([]step{
		{"XGROUP CREATE s g 0", "OK"},
		{"XGROUP CREATE s g2 $ ENTRIESREAD 5", "OK"},
		{"XREADGROUP GROUP g a COUNT 5 STREAMS s >", "*"},
		{"XREADGROUP GROUP g b NOACK COUNT 2 STREAMS s >", "*"},
		{"XREADGROUP GROUP g c COUNT 3 STREAMS s >", "*"},
		{"XREADGROUP GROUP g a STREAMS s 0", "*"},
		{"XDEL s 15 16", "2"},
		{"XCLAIM s g d 0 13 14 RETRYCOUNT 4", "*"},
		{"XAUTOCLAIM s g e 0 0 COUNT 2", "*"},
		{"XGROUP CREATECONSUMER s g idle", "1"},
		{"XTRIM s MINID ~ 20", "*"},
		{"XADD s * f new", "*"},
		{"XSETID s 999999999999999 ENTRIESADDED 100", "OK"},
		{"XADD empty MAXLEN 0 1 f v", "1-0"},
		{"XGROUP CREATE empty eg 0", "OK"},
		{"PEXPIRE empty 100000", "1"},
	})
}

// TestStreamPersistence replays a stream workload from the log, then from
// a rewritten snapshot, and finds the same streams.
func TestStreamPersistence(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	mod := func(c *Config) {
		c.DataDir = dir
		c.Clock = clock
	}
	e := startServer(t, mod)
	streamWorkload(t, e)
	want, wantEmpty := streamState(t, e, "s"), streamState(t, e, "empty")
	wantTTL := e.rdb.PExpireTime(context.Background(), "empty").Val()
	e.srv.Close()

	e2 := startServer(t, mod)
	if got := streamState(t, e2, "s"); got != want {
		t.Fatalf("after replaying the log:\n%s\nwant:\n%s", got, want)
	}
	// as Redis's AOF rewrite, a snapshot keeps the pending entries whose
	// stream entry still exists: drop the others first (XAUTOCLAIM does)
	e2.run([]step{
		{"XPENDING s g", "[8 9-0 18-0 [[a 2] [c 3] [d 1] [e 2]]]"},
		{"XAUTOCLAIM s g e 0 0 COUNT 100 JUSTID", "[0-0 [17-0 18-0] [9-0 10-0 11-0 12-0 13-0 16-0]]"},
	})
	want = streamState(t, e2, "s")
	if err := e2.rdb.Do(context.Background(), "BGREWRITEAOF").Err(); err != nil {
		t.Fatal(err)
	}
	e2.srv.Close()
	e3 := startServer(t, mod)
	if got := streamState(t, e3, "s"); got != want {
		t.Fatalf("after a rewrite:\n%s\nwant:\n%s", got, want)
	}
	if got := streamState(t, e3, "empty"); got != wantEmpty {
		t.Fatalf("empty stream after a rewrite:\n%s\nwant:\n%s", got, wantEmpty)
	}
	if ttl := e3.rdb.PExpireTime(context.Background(), "empty").Val(); ttl != wantTTL {
		t.Errorf("expiry after a rewrite: %v, want %v", ttl, wantTTL)
	}
}

// TestStreamReplication: a replica that syncs (full sync snapshot) and
// then follows the stream of XADD, XREADGROUP (as XCLAIM and XGROUP SETID),
// XCLAIM and XAUTOCLAIM ends with the same streams.
func TestStreamReplication(t *testing.T) {
	p := startServer(t, nil)
	r := startServer(t, nil)
	p.run([]step{{"XADD pre 1 f v", "1-0"}, {"XGROUP CREATE pre g 0", "OK"}, {"XREADGROUP GROUP g a STREAMS pre >", "*"}})
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	streamWorkload(t, p)
	waitSynced(t, p, r)
	for _, k := range []string{"pre", "s", "empty"} {
		if a, b := streamState(t, p, k), streamState(t, r, k); a != b {
			t.Errorf("stream %s on the primary:\n%s\non the replica:\n%s", k, a, b)
		}
	}
}

func TestStreamDumpRestoreCopy(t *testing.T) {
	e := startServer(t, nil)
	streamWorkload(t, e)
	ctx := context.Background()
	want := streamState(t, e, "s")
	payload, err := e.rdb.Dump(ctx, "s").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Restore(ctx, "r", 0, payload).Err(); err != nil {
		t.Fatal(err)
	}
	if got := streamState(t, e, "r"); got != want {
		t.Errorf("restored:\n%s\nwant:\n%s", got, want)
	}
	e.run([]step{{"COPY s c", "1"}})
	if got := streamState(t, e, "c"); got != want {
		t.Errorf("copy:\n%s\nwant:\n%s", got, want)
	}
	// the copy is deep: changing it leaves the original alone
	e.run([]step{
		{"XACK c g 13-0", "*"},
		{"XADD c * x y", "*"},
		{"XGROUP DESTROY c g2", "1"},
	})
	if got := streamState(t, e, "s"); got != want {
		t.Errorf("original changed with its copy:\n%s\nwant:\n%s", got, want)
	}
	// a corrupt payload is refused
	bad := []byte(payload)
	bad[3] ^= 0xff
	if err := e.rdb.Restore(ctx, "x", 0, string(bad)).Err(); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("corrupt payload: %v", err)
	}
}

// TestStreamsMatchRedis runs stream sequences on gantry and redis-server:
// explicit IDs, trims by length and ID (exact, "~", LIMIT) with small and
// large entries so nodes fill by count and by bytes, deletions, groups and
// the XINFO fields that do not depend on the clock.
func TestStreamsMatchRedis(t *testing.T) {
	e, r := newDiffEnv(t)
	rnd := rand.New(rand.NewPCG(7, 7))
	cmds := lines("CONFIG SET stream-node-max-entries 10")
	for i := 1; i < 400; i++ {
		f := "xitem"
		if rnd.Float64() < 0.2 {
			f = "yitem"
		}
		v := fmt.Sprint(i)
		if rnd.Float64() < 0.5 {
			v = strings.Repeat("v", 1+rnd.IntN(300))
		}
		switch {
		case i%37 == 0:
			cmds = append(cmds, diffCmd{"XADD", "s", "MAXLEN", "~", "55", i, f, v})
		case i%41 == 0:
			cmds = append(cmds, diffCmd{"XADD", "s", "MINID", "~", i - 100, "LIMIT", "30", i, f, v})
		case i%53 == 0:
			cmds = append(cmds, diffCmd{"XTRIM", "s", "MAXLEN", "~", "44"})
		case i%59 == 0:
			cmds = append(cmds, diffCmd{"XDEL", "s", i - 3, i - 5, i - 7})
		case i%61 == 0:
			cmds = append(cmds, diffCmd{"XTRIM", "s", "MINID", i - 20})
		default:
			cmds = append(cmds, diffCmd{"XADD", "s", i, f, v, "n", i})
		}
		if i%20 == 0 {
			cmds = append(cmds, diffCmd{"XINFO", "STREAM", "s"})
		}
	}
	cmds = append(cmds, lines(`
		XINFO STREAM s FULL
		XRANGE s - + COUNT 7
		XREVRANGE s + (300 COUNT 3
		CONFIG SET stream-node-max-entries 0
		CONFIG SET stream-node-max-bytes 1024
		XGROUP CREATE s g 0
		XGROUP CREATE s g2 350 ENTRIESREAD 3
		XREADGROUP GROUP g a COUNT 3 STREAMS s >
		XREADGROUP GROUP g b NOACK COUNT 2 STREAMS s >
		XREADGROUP GROUP g2 c STREAMS s >
		XDEL s 396 397
		XINFO GROUPS s
		XPENDING s g
		XREADGROUP GROUP g a STREAMS s 0
		XCLAIM s g d 0 1 2 3 4 5 JUSTID
		XAUTOCLAIM s g e 0 0 COUNT 2 JUSTID
		XACK s g 1 2 3 4
		XGROUP SETID s g 350
		XREADGROUP GROUP g a NOACK STREAMS s >
		XINFO GROUPS s
		XGROUP DELCONSUMER s g a
		XGROUP DESTROY s g2
		XSETID s 500 ENTRIESADDED 1000 MAXDELETEDID 400
		XINFO STREAM s
		XADD s 500 a b
		XADD s 500-* a b
		XADD s 500-0 a b
		XREAD COUNT 2 STREAMS s nokey 0 0
		XREAD STREAMS s 400
		CONFIG SET stream-node-max-bytes 4096
		CONFIG SET stream-node-max-entries 100
	`)...)
	// sizes: a node fills by bytes with large values, and integers are
	// stored as integers
	for i := 1; i < 500; i++ {
		cmds = append(cmds, diffCmd{"XADD", "b", fmt.Sprintf("%d-%d", i, rnd.IntN(70000)), "field",
			fmt.Sprint(rnd.IntN(1 << 40)), "-5", strings.Repeat("x", rnd.IntN(200)), "007", "0"})
		if i%50 == 0 {
			cmds = append(cmds, diffCmd{"XINFO", "STREAM", "b"})
		}
	}
	diff(t, e, r, cmds)
}

// readStreamCommand reads one command of a replication stream (keepalive
// newlines skipped) as its arguments.
func readStreamCommand(t *testing.T, br *bufio.Reader) []string {
	t.Helper()
	line := func() string {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if l = strings.TrimRight(l, "\r\n"); l != "" {
				return l
			}
		}
	}
	head := line()
	n, err := strconv.Atoi(strings.TrimPrefix(head, "*"))
	if !strings.HasPrefix(head, "*") || err != nil {
		t.Fatalf("stream: %q is not a command", head)
	}
	args := make([]string, n)
	for i := range args {
		size, _ := strconv.Atoi(strings.TrimPrefix(line(), "$"))
		b := make([]byte, size+2)
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatalf("stream: %v", err)
		}
		args[i] = string(b[:size])
	}
	return args
}

// TestXReadGroupPropagation: XREADGROUP in a transaction is propagated
// as Redis 7.0 does (MULTI, one XCLAIM per entry, EXEC: no XGROUP SETID),
// each XCLAIM carrying the group's position with its entries-read count
// (ENTRIESREAD), so that a replica and a replayed log end with the
// primary's entries-read and lag even where a deleted entry makes the
// primary estimate them.
func TestXReadGroupPropagation(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	mod := func(c *Config) { c.DataDir, c.Clock = dir, clock }
	p := startServer(t, mod)
	r := startServer(t, nil)
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	br := p.syncStream()
	p.run([]step{
		{"XADD s 1-0 f v", "1-0"}, {"XADD s 2-0 f v", "2-0"}, {"XADD s 3-0 f v", "3-0"},
		{"XADD s 4-0 f v", "4-0"}, {"XADD s 5-0 f v", "5-0"},
		{"XGROUP CREATE s g 0", "OK"},
		{"XDEL s 3-0", "1"},
		{"MULTI", "OK"},
		{"XREADGROUP GROUP g c COUNT 2 STREAMS s >", "QUEUED"},
		{"XREADGROUP GROUP g c STREAMS s >", "QUEUED"},
		{"EXEC", "*"},
	})
	var names []string
	for len(names) == 0 || names[len(names)-1] != "exec" {
		args := readStreamCommand(t, br)
		name := strings.ToLower(args[0])
		names = append(names, name)
		if name == "xclaim" {
			n := len(args)
			if n < 4 || !strings.EqualFold(args[n-4], "LASTID") || !strings.EqualFold(args[n-2], "ENTRIESREAD") || args[n-3] != args[5] {
				t.Errorf("XCLAIM without the group's position: %q", args)
			}
		}
	}
	want := "select xadd xadd xadd xadd xadd xgroup xdel multi xclaim xclaim xclaim xclaim exec"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("stream:\n%s\nwant:\n%s", got, want)
	}
	same := func(what string) {
		t.Helper()
		waitSynced(t, p, r)
		want := streamState(t, p, "s")
		if got := streamState(t, r, "s"); got != want {
			t.Errorf("%s: replica:\n%s\nprimary:\n%s", what, got, want)
		}
	}
	// the count after 5-0 is estimated (3-0 was deleted): the replica has it
	if got := streamState(t, p, "s"); !strings.Contains(got, "last-delivered-id 5-0 entries-read 5 ") {
		t.Fatalf("primary's group: %s", got)
	}
	same("after the transaction")

	// NOACK has no claim to carry the new consumer and the position:
	// XGROUP CREATECONSUMER and SETID do, as in Redis 7.0
	p.run([]step{{"XADD s 6-0 f v", "6-0"}, {"XREADGROUP GROUP g d NOACK STREAMS s >", "*"}})
	names = names[:0]
	for len(names) < 3 {
		args := readStreamCommand(t, br)
		names = append(names, strings.ToLower(args[0]+" "+args[1]))
	}
	if got := strings.Join(names, ", "); got != "xadd s, xgroup createconsumer, xgroup setid" {
		t.Errorf("after XREADGROUP NOACK: %s", got)
	}
	same("after NOACK")
	want = streamState(t, p, "s")
	p.srv.Close()
	e2 := startServer(t, mod)
	if got := streamState(t, e2, "s"); got != want {
		t.Errorf("after replaying the log:\n%s\nwant:\n%s", got, want)
	}
}

// TestXClaimEntriesRead: XCLAIM's ENTRIESREAD sets the group's count with
// LASTID only when LASTID is not behind the group's last ID.
func TestXClaimEntriesRead(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"XADD s 1-0 f v", "1-0"}, {"XADD s 2-0 f v", "2-0"}, {"XADD s 3-0 f v", "3-0"},
		{"XGROUP CREATE s g 0", "OK"},
		{"XCLAIM s g c 0 1-0 FORCE JUSTID LASTID 2-0 ENTRIESREAD 7", "[1-0]"},
		{"XINFO GROUPS s", "[[name g consumers 1 pending 1 last-delivered-id 2-0 entries-read 7 lag -4]]"},
		{"XCLAIM s g c 0 1-0 FORCE JUSTID LASTID 1-0 ENTRIESREAD 1", "[1-0]"},
		{"XINFO GROUPS s", "[[name g consumers 1 pending 1 last-delivered-id 2-0 entries-read 7 lag -4]]"},
		{"XCLAIM s g c 0 1-0 ENTRIESREAD 1", "ERR:ERR XCLAIM ENTRIESREAD needs LASTID"},
		{"XCLAIM s g c 0 1-0 LASTID 2-0 ENTRIESREAD -2", "ERR:ERR value for ENTRIESREAD must be positive or -1"},
		{"XCLAIM s g c 0 1-0 LASTID 2-0 ENTRIESREAD x", "ERR:ERR value is not an integer"},
	})
}
