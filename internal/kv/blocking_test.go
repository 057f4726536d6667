package kv

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/redis/go-redis/v9"
)

func TestBlockingTimeouts(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	start := time.Now()
	_, err := e.rdb.BLPop(ctx, 100*time.Millisecond, "empty1", "empty2").Result()
	if !errors.Is(err, redis.Nil) {
		t.Fatalf("BLPOP on empty lists: %v, want nil reply", err)
	}
	if time.Since(start) < 90*time.Millisecond {
		t.Fatalf("BLPOP returned before its timeout")
	}
	if _, err := e.rdb.BLMove(ctx, "empty", "dst", "LEFT", "RIGHT", 50*time.Millisecond).Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("BLMOVE: %v", err)
	}
	if _, _, err := e.rdb.BLMPop(ctx, 50*time.Millisecond, "left", 1, "empty").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("BLMPOP: %v", err)
	}
	e.run([]step{
		{"RPUSH l a b", "2"},
		{"BLPOP l 0", "[l a]"},
		{"BRPOP nokey l 1", "[l b]"},
		{"BLPOP l -1", "ERR:ERR timeout is negative"},
		{"BLPOP l x", "ERR:ERR timeout is not a float or out of range"},
		{"SET str v", "OK"},
		{"BLPOP str 1", "ERR:WRONGTYPE"},
		{"RPUSH m 1 2 3", "3"},
		{"BLMPOP 1 2 nokey m RIGHT COUNT 2", "[m [3 2]]"},
		{"BRPOPLPUSH m dst 1", "1"},
		{"BLMOVE dst m RIGHT LEFT 1", "1"},
		{"BLMOVE dst m UP LEFT 1", "ERR:ERR syntax error"},
	})
}

func TestBlockingWakeUps(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	type res struct {
		v   []string
		err error
	}
	// several clients wait on the same list; each push serves exactly one
	const waiters = 3
	out := make(chan res, waiters)
	for i := 0; i < waiters; i++ {
		c := e.client(2)
		go func() {
			v, err := c.BLPop(ctx, 5*time.Second, "q").Result()
			out <- res{v, err}
		}()
	}
	waitBlocked(t, e, "q", waiters)
	pusher := e.client(2)
	for i := 0; i < waiters; i++ {
		pusher.RPush(ctx, "q", i)
	}
	got := map[string]bool{}
	for i := 0; i < waiters; i++ {
		r := <-out
		if r.err != nil || len(r.v) != 2 || r.v[0] != "q" {
			t.Fatalf("BLPOP = %v, %v", r.v, r.err)
		}
		got[r.v[1]] = true
	}
	if len(got) != waiters {
		t.Fatalf("elements served: %v", got)
	}
	if n := pusher.Exists(ctx, "q").Val(); n != 0 {
		t.Fatalf("list q still exists")
	}

	// BLMOVE wakes when another client LMOVEs into its source, and a
	// transaction's push wakes too
	done := make(chan res, 1)
	c := e.client(2)
	go func() {
		v, err := c.BLMove(ctx, "src", "dst", "RIGHT", "LEFT", 5*time.Second).Result()
		done <- res{[]string{v}, err}
	}()
	waitBlocked(t, e, "src", 1)
	pusher.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, "src", "x")
		return nil
	})
	r := <-done
	if r.err != nil || r.v[0] != "x" {
		t.Fatalf("BLMOVE = %v %v", r.v, r.err)
	}
	if v := pusher.LRange(ctx, "dst", 0, -1).Val(); len(v) != 1 || v[0] != "x" {
		t.Fatalf("dst = %v", v)
	}

	// a client blocked forever goes away when it disconnects: a later push
	// is not consumed by it
	gone := e.raw()
	gone.roundTrip("BLPOP lost 0\r\n", "")
	waitBlocked(t, e, "lost", 1)
	gone.nc.Close()
	waitBlocked(t, e, "lost", 0)
	pusher.RPush(ctx, "lost", "kept")
	if v := pusher.LRange(ctx, "lost", 0, -1).Val(); len(v) != 1 {
		t.Fatalf("lost = %v, want [kept]", v)
	}

	// commands pipelined after a blocking one run after it
	raw := e.raw()
	raw.roundTrip("BLPOP pipe 5\r\nPING\r\n", "")
	waitBlocked(t, e, "pipe", 1)
	pusher.RPush(ctx, "pipe", "v")
	raw.roundTrip("", "*2\r\n$4\r\npipe\r\n$1\r\nv\r\n+PONG\r\n")
}

// waitBlocked waits until n clients are blocked on key.
func waitBlocked(t *testing.T, e *testEnv, key string, n int) {
	t.Helper()
	k := []byte(key)
	sh := keyspace.ShardOf(k)
	for i := 0; i < 500; i++ {
		e.srv.ks.LockShard(sh)
		got := e.srv.track.BlockedLocked(k)
		e.srv.ks.UnlockShard(sh)
		if got == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d clients never blocked on %s", n, key)
}

// TestBlockedInCommandOrder: clients blocked on a key are served in the
// order their blocking commands ran, even when the goroutine a command
// waits on (after it left the event loop) starts late. The first client's
// BRPOPLPUSH has a destination of the wrong type: woken, it answers
// WRONGTYPE and the element goes to the second, as in Redis.
func TestBlockedInCommandOrder(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EventLoops = 1 })
	if len(e.srv.loops) == 0 {
		t.Skip("no event loops on this platform")
	}
	first := e.raw()
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the server's close, which waits for the goroutine
	var held atomic.Bool
	hook := func(*Client) {
		if held.CompareAndSwap(false, true) { // the first client to leave the loop
			<-release
		}
	}
	e.srv.detached.Store(&hook)
	e.run([]step{{"SET target1 nolist", "OK"}})
	first.roundTrip("BRPOPLPUSH blist target1 0\r\n", "")
	waitCount := func(n int64) {
		t.Helper()
		for i := 0; i < 500 && e.srv.blocked.Load() != n; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if got := e.srv.blocked.Load(); got != n {
			t.Fatalf("%d clients blocked, want %d", got, n)
		}
	}
	waitCount(1)
	second := e.raw()
	second.roundTrip("BRPOPLPUSH blist target2 0\r\n", "")
	waitBlocked(t, e, "blist", 2)
	// the push waits for the clients it woke: the first one's goroutine
	// starts once the push has run
	pusher := e.raw()
	pusher.roundTrip("LPUSH blist foo\r\n", "")
	free()
	pusher.roundTrip("", ":1\r\n")
	first.roundTrip("", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
	second.roundTrip("", "$3\r\nfoo\r\n")
	e.run([]step{{"LRANGE target2 0 -1", "[foo]"}, {"EXISTS blist", "0"}})
	waitCount(0)
}

// TestBlockedServedBeforeReply: as Redis serves blocked clients right
// after the command that made their key ready, a push's reply comes after
// the pops and moves it caused, chains of BLMOVEs included ("Linked
// LMOVEs" of Redis's suite): a command sent after the reply, by any
// client, sees them, and a WATCH of a key a served client changed fails.
// The woken clients' goroutines are held back (up to 50 ms after the
// wake) so that without the wait the reply would come first.
func TestBlockedServedBeforeReply(t *testing.T) {
	tests := []struct {
		name, push, reply string
	}{
		{"command", "RPUSH l1 foo\r\n", ":1\r\n"},
		// the pusher's own next command runs after the serving too
		{"pipeline", "RPUSH l1 foo\r\nLRANGE l3 0 -1\r\n", ":1\r\n*1\r\n$3\r\nfoo\r\n"},
		// a transaction or script of one write is logged as that write
		{"exec", "MULTI\r\nRPUSH l1 foo\r\nEXEC\r\n", "+OK\r\n+QUEUED\r\n*1\r\n:1\r\n"},
		{"script", "EVAL \"return redis.call('rpush', KEYS[1], 'foo')\" 1 l1\r\n", ":1\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startServer(t, nil)
			if len(e.srv.loops) == 0 {
				t.Skip("no event loops on this platform")
			}
			release := make(chan struct{})
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			t.Cleanup(free)
			var armed atomic.Bool
			hook := func(*Client) {
				// hold the goroutine until the push woke the clients
				for !armed.Load() || e.srv.blocked.Load() >= 2 {
					select {
					case <-release:
						return
					case <-time.After(time.Millisecond):
					}
				}
				select {
				case <-release:
				case <-time.After(50 * time.Millisecond):
				}
			}
			stream := e.syncStream() // its goroutine runs already: not held
			e.srv.detached.Store(&hook)
			a, b := e.raw(), e.raw()
			a.roundTrip("BLMOVE l1 l2 RIGHT LEFT 0\r\n", "")
			waitBlocked(t, e, "l1", 1)
			b.roundTrip("BLMOVE l2 l3 LEFT RIGHT 0\r\n", "")
			waitBlocked(t, e, "l2", 2) // a waits on its destination too
			armed.Store(true)
			w := e.raw()
			w.roundTrip("WATCH l3\r\nMULTI\r\nGET x\r\n", "+OK\r\n+OK\r\n+QUEUED\r\n")
			e.raw().roundTrip(tc.push, tc.reply)
			w.roundTrip("EXEC\r\n", "*-1\r\n")
			e.run([]step{
				{"LRANGE l1 0 -1", "[]"},
				{"LRANGE l2 0 -1", "[]"},
				{"LRANGE l3 0 -1", "[foo]"},
			})
			free()
			a.roundTrip("", "$3\r\nfoo\r\n")
			b.roundTrip("", "$3\r\nfoo\r\n")
			// replicas apply the push, then the moves in the order served
			order := []string{"rpush\r\n$2\r\nl1\r\n", "lmove\r\n$2\r\nl1\r\n", "lmove\r\n$2\r\nl2\r\n"}
			var got []byte
			for !strings.Contains(strings.ToLower(string(got)), order[2]) {
				c, err := stream.ReadByte()
				if err != nil {
					t.Fatalf("replication stream: %v (got %q)", err, got)
				}
				got = append(got, c)
			}
			low := strings.ToLower(string(got))
			if i, j := strings.Index(low, order[0]), strings.Index(low, order[1]); i < 0 || j < i {
				t.Errorf("replication stream %q: want %q before %q before %q", got, order[0], order[1], order[2])
			}
		})
	}
}
