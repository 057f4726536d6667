package kv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/testutil"
)

// fillAllTypes writes one key of every type, small and large encodings.
func fillDumpTypes(t *testing.T, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Set(ctx, "str", "hello\x00world", 0).Err())
	must(c.Set(ctx, "empty", "", 0).Err())
	must(c.RPush(ctx, "list", "a", "b", "", "c").Err())
	must(c.SAdd(ctx, "set", "x", "y", "1", "2").Err())
	must(c.HSet(ctx, "hash", "f1", "v1", "f2", "").Err())
	must(c.ZAdd(ctx, "zset", redis.Z{Score: 1.5, Member: "a"}, redis.Z{Score: -3, Member: "b"},
		redis.Z{Score: 1e300, Member: "c"}).Err())
	var big []any
	for i := 0; i < 300; i++ {
		big = append(big, strconv.Itoa(i)+strings.Repeat("x", 70))
	}
	must(c.SAdd(ctx, "bigset", big...).Err())
	var hv []any
	for i := 0; i < 200; i++ {
		hv = append(hv, fmt.Sprint("field", i), strings.Repeat("v", i))
	}
	must(c.HSet(ctx, "bighash", hv...).Err())
	must(c.RPush(ctx, "biglist", big...).Err())
}

// snapshotKey renders a key's type and content (collections sorted where
// Redis does not order them) for comparisons.
func snapshotKey(t *testing.T, c *redis.Client, key string) string {
	t.Helper()
	ctx := context.Background()
	typ, err := c.Type(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	switch typ {
	case "none":
		return "none"
	case "string":
		v, err = c.Get(ctx, key).Result()
	case "list":
		v, err = c.LRange(ctx, key, 0, -1).Result()
	case "set":
		res, e := c.Do(ctx, "smembers", key).Result()
		v, err = sortedFormat(res), e
	case "hash":
		v, err = c.HGetAll(ctx, key).Result()
	case "zset":
		v, err = c.ZRangeWithScores(ctx, key, 0, -1).Result()
	}
	if err != nil {
		t.Fatal(err)
	}
	return typ + ":" + fmt.Sprint(v)
}

var allTypeKeys = []string{"str", "empty", "list", "set", "hash", "zset", "bigset", "bighash", "biglist"}

func TestDumpRestoreRoundTrip(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	c := e.rdb
	fillDumpTypes(t, c)
	for _, k := range allTypeKeys {
		payload, err := c.Dump(ctx, k).Result()
		if err != nil {
			t.Fatalf("dump %s: %v", k, err)
		}
		want := snapshotKey(t, c, k)
		if err := c.Restore(ctx, k+"-copy", 0, payload).Err(); err != nil {
			t.Fatalf("restore %s: %v", k, err)
		}
		if got := snapshotKey(t, c, k+"-copy"); got != want {
			t.Errorf("%s: restored value differs: %.200s, want %.200s", k, got, want)
		}
		// without REPLACE the copy is busy; with it, it is replaced
		if err := c.Restore(ctx, k+"-copy", 0, payload).Err(); err == nil || !strings.HasPrefix(err.Error(), "BUSYKEY") {
			t.Errorf("%s: restore over a key: %v, want BUSYKEY", k, err)
		}
		if err := c.RestoreReplace(ctx, "str", 0, payload).Err(); err != nil {
			t.Errorf("%s: restore replace: %v", k, err)
		} else if got := snapshotKey(t, c, "str"); got != want {
			t.Errorf("%s: replaced value differs: %.200s, want %.200s", k, got, want)
		}
	}
	e.run([]step{
		{"dump nosuchkey", "nil"},
		{"set k v", "OK"},
		{"restore k2 -1 x", "ERR:ERR Invalid TTL value"},
		{"restore k2 0 garbage", "ERR:ERR DUMP payload version or checksum are wrong"},
		{"restore k2 0 x FREQ 300", "ERR:ERR Invalid FREQ value"},
		{"restore k2 0 x IDLETIME -1", "ERR:ERR Invalid IDLETIME value"},
		{"restore k2 0 x BOGUS", "ERR:ERR syntax error"},
	})
	// a Redis 7 payload of the string "bar" is foreign
	redisPayload := "\x00\x03bar\n\x00\xb5\x90\x17\x8b\x1c\x8a\x8a\xf7"
	if err := c.Restore(ctx, "k2", 0, redisPayload).Err(); err == nil || err.Error() != "ERR DUMP payload version or checksum are wrong" {
		t.Errorf("restore of a Redis payload: %v", err)
	}
	// TTLs: relative, absolute, absolute in the past (not created)
	payload, _ := c.Dump(ctx, "k").Result()
	if err := c.Do(ctx, "restore", "t1", 5000, payload, "IDLETIME", 10, "FREQ", 5).Err(); err != nil {
		t.Fatal(err)
	}
	if ttl := c.PTTL(ctx, "t1").Val(); ttl != 5*time.Second {
		t.Errorf("pttl after restore with ttl 5000: %v", ttl)
	}
	abs := e.clock.Now().Add(time.Minute).UnixMilli()
	if err := c.Do(ctx, "restore", "t2", abs, payload, "ABSTTL").Err(); err != nil {
		t.Fatal(err)
	}
	if ttl := c.PTTL(ctx, "t2").Val(); ttl != time.Minute {
		t.Errorf("pttl after ABSTTL restore: %v", ttl)
	}
	past := e.clock.Now().Add(-time.Minute).UnixMilli()
	if err := c.Do(ctx, "restore", "t3", past, payload, "ABSTTL").Err(); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, "t3").Val(); n != 0 {
		t.Errorf("a key restored with an expiry in the past exists")
	}
	// a flipped byte anywhere is caught by the checksum
	for i := 0; i < len(payload); i++ {
		b := []byte(payload)
		b[i] ^= 0x40
		if err := c.Restore(ctx, "bad", 0, string(b)).Err(); err == nil {
			t.Fatalf("corrupt payload (byte %d) accepted", i)
		}
	}
}

// TestRestorePersists checks that RESTORE replays from the log with the
// same value and absolute expiry.
func TestRestorePersists(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	open := func() (*Server, *redis.Client, func()) {
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Clock, cfg.Logger, cfg.ActiveExpireHz = dir, clock, testLogger(t), 0
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { srv.Serve(ln); close(done) }()
		c := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1})
		return srv, c, func() { c.Close(); srv.Close(); <-done }
	}
	_, c, stop := open()
	ctx := context.Background()
	fillDumpTypes(t, c)
	want := map[string]string{}
	for _, k := range allTypeKeys {
		p := c.Dump(ctx, k).Val()
		if err := c.Restore(ctx, "r-"+k, time.Hour, p).Err(); err != nil {
			t.Fatal(err)
		}
		want[k] = snapshotKey(t, c, k)
	}
	stop()
	clock.Advance(time.Minute)
	_, c, stop = open()
	defer stop()
	for _, k := range allTypeKeys {
		if got := snapshotKey(t, c, "r-"+k); got != want[k] {
			t.Errorf("r-%s after restart: %s, want %s", k, got, want[k])
		}
		if ttl := c.PTTL(ctx, "r-"+k).Val(); ttl != 59*time.Minute {
			t.Errorf("r-%s: pttl after restart %v, want 59m (absolute expiry kept)", k, ttl)
		}
	}
}

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func TestMigrate(t *testing.T) {
	src := startServer(t, nil)
	dst := startServer(t, nil)
	ctx := context.Background()
	a, b := src.rdb, dst.rdb
	host, port := hostPort(t, dst.addr)
	fillDumpTypes(t, a)
	if err := a.Expire(ctx, "str", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, k := range allTypeKeys {
		want[k] = snapshotKey(t, a, k)
	}
	mig := func(args ...any) (any, error) {
		return a.Do(ctx, append([]any{"migrate", host, port}, args...)...).Result()
	}
	// one key
	if res, err := mig("str", 0, 1000); err != nil || res != "OK" {
		t.Fatalf("migrate str: %v %v", res, err)
	}
	if a.Exists(ctx, "str").Val() != 0 {
		t.Error("str still on the source")
	}
	if got := snapshotKey(t, b, "str"); got != want["str"] {
		t.Errorf("str on target: %s, want %s", got, want["str"])
	}
	if ttl := b.PTTL(ctx, "str").Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("str ttl on target %v", ttl)
	}
	// KEYS, with a missing key among them
	if res, err := mig("", 0, 1000, "KEYS", "list", "set", "nosuch", "hash", "zset"); err != nil || res != "OK" {
		t.Fatalf("migrate keys: %v %v", res, err)
	}
	for _, k := range []string{"list", "set", "hash", "zset"} {
		if a.Exists(ctx, k).Val() != 0 || snapshotKey(t, b, k) != want[k] {
			t.Errorf("%s: not moved intact", k)
		}
	}
	// nothing to move
	if res, err := mig("", 0, 1000, "KEYS", "nosuch", "nosuch2"); err != nil || res != "NOKEY" {
		t.Errorf("migrate of missing keys: %v %v, want NOKEY", res, err)
	}
	// COPY keeps the source
	if res, err := mig("bigset", 0, 1000, "COPY"); err != nil || res != "OK" {
		t.Fatalf("migrate copy: %v %v", res, err)
	}
	if snapshotKey(t, a, "bigset") != want["bigset"] || snapshotKey(t, b, "bigset") != want["bigset"] {
		t.Error("COPY: key not on both sides")
	}
	// the target has it: BUSYKEY without REPLACE, the source keeps it
	_, err := mig("bigset", 0, 1000)
	if err == nil || !strings.HasPrefix(err.Error(), "ERR Target instance replied with error: BUSYKEY") {
		t.Errorf("migrate onto an existing key: %v", err)
	}
	if a.Exists(ctx, "bigset").Val() != 1 {
		t.Error("failed MIGRATE deleted the source key")
	}
	a.SAdd(ctx, "bigset", "new")
	if res, err := mig("bigset", 0, 1000, "REPLACE"); err != nil || res != "OK" {
		t.Fatalf("migrate replace: %v %v", res, err)
	}
	if !b.SIsMember(ctx, "bigset", "new").Val() || a.Exists(ctx, "bigset").Val() != 0 {
		t.Error("REPLACE did not move the new value")
	}
	// some keys accepted, one refused: the accepted ones leave the source
	b.Set(ctx, "busy", "target", 0)
	a.Set(ctx, "busy", "source", 0)
	a.Set(ctx, "free", "source", 0)
	_, err = mig("", 0, 1000, "KEYS", "free", "busy")
	if err == nil || !strings.Contains(err.Error(), "BUSYKEY") {
		t.Errorf("partial migrate: %v", err)
	}
	if a.Exists(ctx, "free").Val() != 0 || b.Get(ctx, "free").Val() != "source" || a.Get(ctx, "busy").Val() != "source" {
		t.Error("partial migrate: wrong keys moved")
	}
	// syntax
	for _, args := range [][]any{
		{"k", 0, 1000, "KEYS", "x"},
		{"", 0, 1000, "BOGUS"},
		{"k", "x", 1000},
		{"k", 0, 1000, "AUTH"},
	} {
		if _, err := mig(args...); err == nil || !strings.HasPrefix(err.Error(), "ERR") {
			t.Errorf("migrate %v: %v, want an error", args, err)
		}
	}
	// the source still serves everything else
	if got := snapshotKey(t, a, "biglist"); got != want["biglist"] {
		t.Error("biglist changed")
	}
}

func TestMigrateAuth(t *testing.T) {
	src := startServer(t, nil)
	dst := startServer(t, func(c *Config) { c.RequirePass = "s3cret" })
	ctx := context.Background()
	a := src.rdb
	host, port := hostPort(t, dst.addr)
	a.Set(ctx, "k", "v", 0)
	_, err := a.Do(ctx, "migrate", host, port, "k", 0, 1000).Result()
	if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("migrate without auth: %v", err)
	}
	_, err = a.Do(ctx, "migrate", host, port, "k", 0, 1000, "AUTH", "wrong").Result()
	if err == nil || !strings.Contains(err.Error(), "Target instance replied with error") {
		t.Errorf("migrate with a wrong password: %v", err)
	}
	if a.Exists(ctx, "k").Val() != 1 {
		t.Fatal("failed migrate lost the key")
	}
	if res, err := a.Do(ctx, "migrate", host, port, "k", 0, 1000, "AUTH2", "default", "s3cret").Result(); err != nil || res != "OK" {
		t.Fatalf("migrate auth2: %v %v", res, err)
	}
	a.Set(ctx, "k2", "v2", 0)
	if res, err := a.Do(ctx, "migrate", host, port, "", 0, 1000, "AUTH", "s3cret", "KEYS", "k2").Result(); err != nil || res != "OK" {
		t.Fatalf("migrate auth: %v %v", res, err)
	}
	c := redis.NewClient(&redis.Options{Addr: dst.addr, Password: "s3cret", MaxRetries: -1})
	defer c.Close()
	if c.Get(ctx, "k").Val() != "v" || c.Get(ctx, "k2").Val() != "v2" {
		t.Error("keys not on the target")
	}
}

func TestMigrateUnreachable(t *testing.T) {
	src := startServer(t, nil)
	ctx := context.Background()
	a := src.rdb
	// a port nobody listens on (below the ephemeral range, so no outgoing
	// connection of another test takes it meanwhile)
	host, port := "127.0.0.1", strconv.Itoa(testutil.FreePort(t))
	a.Set(ctx, "k", "v", 0)
	_, err := a.Do(ctx, "migrate", host, port, "k", 0, 200).Result()
	if err == nil || !strings.HasPrefix(err.Error(), "IOERR") {
		t.Errorf("migrate to a closed port: %v, want IOERR", err)
	}
	if a.Get(ctx, "k").Val() != "v" {
		t.Error("the key was lost")
	}
	// a target that accepts but never answers: IOERR after the timeout
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			nc, err := silent.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
		}
	}()
	host, port = hostPort(t, silent.Addr().String())
	_, err = a.Do(ctx, "migrate", host, port, "k", 0, 200).Result()
	if err == nil || !strings.HasPrefix(err.Error(), "IOERR") {
		t.Errorf("migrate to a silent target: %v, want IOERR", err)
	}
	if a.Get(ctx, "k").Val() != "v" {
		t.Error("the key was lost")
	}
}

// TestMigrateWritesWait: while a key travels, writes to it get TRYAGAIN,
// reads and other keys are served (the event loop is not blocked), and
// the key leaves the source only when the target has accepted it.
func TestMigrateWritesWait(t *testing.T) {
	src := startServer(t, nil)
	ctx := context.Background()
	a := src.rdb
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	got := make(chan net.Conn, 1)
	go func() {
		nc, err := target.Accept()
		if err != nil {
			return
		}
		got <- nc
	}()
	a.Set(ctx, "k", "v1", 0)
	host, port := hostPort(t, target.Addr().String())
	res := make(chan error, 1)
	go func() { res <- a.Do(ctx, "migrate", host, port, "k", 0, 5000).Err() }()
	var nc net.Conn
	select {
	case nc = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("MIGRATE did not connect")
	}
	defer nc.Close()
	rd := bufio.NewReader(nc)
	// wait for the RESTORE to arrive: *4\r\n$7\r\nRESTORE\r\n...
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := rd.ReadString('\n')
	if err != nil || line != "*4\r\n" {
		t.Fatalf("target read %q %v", line, err)
	}
	other := src.client(2)
	if err := other.Set(ctx, "k", "v2", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "TRYAGAIN") {
		t.Errorf("write during migration: %v, want TRYAGAIN", err)
	}
	if v := other.Get(ctx, "k").Val(); v != "v1" {
		t.Errorf("read during migration: %q", v)
	}
	if err := other.Set(ctx, "unrelated", "x", 0).Err(); err != nil {
		t.Errorf("other key during migration: %v", err)
	}
	nc.Write([]byte("+OK\r\n"))
	if err := <-res; err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if other.Exists(ctx, "k").Val() != 0 {
		t.Error("k still on the source")
	}
	if err := other.Set(ctx, "k", "v3", 0).Err(); err != nil {
		t.Errorf("write after migration: %v", err)
	}
}

// TestMigrateConnectionCache: consecutive MIGRATEs to one target reuse one
// connection.
func TestMigrateConnectionCache(t *testing.T) {
	src := startServer(t, nil)
	dst := startServer(t, nil)
	ctx := context.Background()
	host, port := hostPort(t, dst.addr)
	conns := func() int {
		info := dst.rdb.Info(ctx, "stats").Val()
		for _, l := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(l, "total_connections_received:"); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		t.Fatalf("no total_connections_received in %q", info)
		return 0
	}
	before := conns()
	for i := 0; i < 5; i++ {
		k := fmt.Sprint("k", i)
		src.rdb.Set(ctx, k, "v", 0)
		if err := src.rdb.Do(ctx, "migrate", host, port, k, 0, 1000).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns() - before; n != 1 {
		t.Errorf("5 MIGRATEs opened %d connections to the target, want 1 (cached)", n)
	}
}
