package kv

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// waitLockWaiter waits until a goroutine waits for a shard's mutex from
// fn (a "(*Client).lockKeys" frame...): the command behind it read its
// batch's time already, and holds nothing yet.
func waitLockWaiter(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for i := 0; i < 1000; i++ {
		n := runtime.Stack(buf, true)
		for g := range bytes.SplitSeq(buf[:n], []byte("\n\n")) {
			if bytes.Contains(g, []byte("lockSlow")) && bytes.Contains(g, []byte("keyspace.(*Keyspace).LockShard")) &&
				bytes.Contains(g, []byte(fn)) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no goroutine waits for a shard in %s", fn)
}

// TestLockWaitReadsClock: a command that waits for a shard another
// holds (an EXEC that sleeps, a slow script) runs at the time it gets
// it, as redis-server runs it after the one holding it: a key that
// expired meanwhile is gone for it, and for the commands after it in
// its batch, whose time never goes back. Read before the wait, the
// batch's time served the expired key.
func TestLockWaitReadsClock(t *testing.T) {
	tests := []struct {
		name  string
		setup string // keys with a 100 ms expiry
		reply string // of setup
		req   string // sent while the test holds k's shard in database 0
		fn    string // where it waits
		want  string
	}{
		{
			name: "get", setup: "SET k v PX 100\r\n", reply: "+OK\r\n",
			req: "GET k\r\n", fn: "(*Client).lockKeys", want: "$-1\r\n",
		},
		{
			name: "mget of two shards", setup: "SET k v PX 100\r\n", reply: "+OK\r\n",
			req: "MGET a k\r\n", fn: "(*Client).lockKeys", want: "*2\r\n$-1\r\n$-1\r\n",
		},
		{
			name: "exec", setup: "SET k v PX 100\r\n", reply: "+OK\r\n",
			req: "MULTI\r\nGET k\r\nTTL k\r\nEXEC\r\n", fn: "cmdExec",
			want: "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n$-1\r\n:-2\r\n",
		},
		{
			name: "move (shards of two databases)", setup: "SET k v PX 100\r\n", reply: "+OK\r\n",
			req: "MOVE k 1\r\n", fn: "(*Client).lockCross", want: ":0\r\n",
		},
		{
			// its wait moves the batch's time: the next command, which
			// waits for nothing, does not see the key either
			name: "the batch after a wait", setup: "SET k v PX 100\r\nSET a v PX 100\r\n", reply: "+OK\r\n+OK\r\n",
			req: "GET k\r\nGET a\r\n", fn: "(*Client).lockKeys", want: "$-1\r\n$-1\r\n",
		},
		{
			name: "flushdb (every shard), then another database", setup: "SELECT 1\r\nSET a v PX 100\r\n", reply: "+OK\r\n+OK\r\n",
			req: "FLUSHDB\r\nSELECT 1\r\nGET a\r\n", fn: "(*Client).lockAll", want: "+OK\r\n+OK\r\n$-1\r\n",
		},
		{
			name: "exec after a wait of its batch", setup: "SET k v PX 100\r\nSET a v PX 100\r\n", reply: "+OK\r\n+OK\r\n",
			req: "GET k\r\nMULTI\r\nGET a\r\nEXEC\r\n", fn: "(*Client).lockKeys",
			want: "$-1\r\n+OK\r\n+QUEUED\r\n*1\r\n$-1\r\n",
		},
	}
	k, a := keyspace.ShardOf([]byte("k")), keyspace.ShardOf([]byte("a"))
	if k == a {
		t.Fatalf("k and a are in one shard (%d)", k)
	}
	for _, loops := range loopModes {
		for _, tc := range tests {
			t.Run(loops.name+"/"+tc.name, func(t *testing.T) {
				e := startServer(t, func(c *Config) { c.EventLoops = loops.n })
				e.raw().roundTrip(tc.setup, tc.reply)
				ks := e.srv.dbKS[0]
				ks.LockShard(k)
				var once sync.Once
				release := func() { once.Do(func() { ks.UnlockShard(k) }) }
				t.Cleanup(release) // before the server stops, on a failure
				r := e.raw()
				if _, err := r.nc.Write([]byte(tc.req)); err != nil {
					t.Fatal(err)
				}
				waitLockWaiter(t, tc.fn)
				e.clock.Advance(200 * time.Millisecond) // past the expiry
				release()
				r.roundTrip("", tc.want)
			})
		}
	}
}

// TestBlockedWakeMovesBatchTime: the commands pipelined after a blocking
// command run after it was served, at the time it was (later than
// their batch's start): a key that expired while it was blocked is gone
// for them, as in redis-server.
func TestBlockedWakeMovesBatchTime(t *testing.T) {
	for _, loops := range loopModes {
		t.Run(loops.name, func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops.n })
			e.raw().roundTrip("SET k v PX 100\r\n", "+OK\r\n")
			r := e.raw()
			if _, err := r.nc.Write([]byte("BRPOP l 0\r\nGET k\r\nPTTL k\r\n")); err != nil {
				t.Fatal(err)
			}
			waitBlocked(t, e, "l", 1)
			waitBlockedCount(t, e, 1)
			e.clock.Advance(200 * time.Millisecond)
			e.raw().roundTrip("RPUSH l x\r\n", ":1\r\n")
			r.roundTrip("", "*2\r\n$1\r\nl\r\n$1\r\nx\r\n$-1\r\n:-2\r\n")
		})
	}
}

// TestAdvanceNow: the time of a command moves forward only, and moves
// its batch's with it; outside a batch only the command's.
func TestAdvanceNow(t *testing.T) {
	tests := []struct {
		name               string
		now, batch, read   int64
		wantNow, wantBatch int64
	}{
		{name: "later reading", now: 100, batch: 100, read: 300, wantNow: 300, wantBatch: 300},
		{name: "earlier reading", now: 300, batch: 300, read: 100, wantNow: 300, wantBatch: 300},
		{name: "batch ahead of the command", now: 100, batch: 200, read: 150, wantNow: 200, wantBatch: 200},
		{name: "no batch", now: 100, batch: 0, read: 300, wantNow: 300, wantBatch: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{batchNow: tc.batch}
			c.Now = tc.now
			c.advanceNow(tc.read)
			if c.Now != tc.wantNow || c.batchNow != tc.wantBatch {
				t.Errorf("Now %d batchNow %d, want %d %d", c.Now, c.batchNow, tc.wantNow, tc.wantBatch)
			}
		})
	}
}
