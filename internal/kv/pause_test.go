package kv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// doArgs runs cmd (space-separated) on c and returns its reply as
// fmt.Sprint formats it, or "ERR:" and the error.
func doArgs(ctx context.Context, c *redis.Client, cmd string) string {
	var args []any
	for _, a := range strings.Fields(cmd) {
		args = append(args, a)
	}
	return replyString(c.Do(ctx, args...).Result())
}

// replyString formats a reply as doArgs does.
func replyString(v any, err error) string {
	switch {
	case errors.Is(err, redis.Nil):
		return "nil"
	case err != nil:
		return "ERR:" + err.Error()
	}
	return fmt.Sprint(v)
}

// TestExecClientPauseNoDeadlock: CLIENT PAUSE run by EXEC starts the
// pause without waiting for every shard (EXEC holds some, or all, of
// them): EXEC returns, its later writes run, other clients are served,
// and their writes wait for the pause, as in Redis, whose pause starts at
// the end of the transaction. The old barrier deadlocked the server.
func TestExecClientPauseNoDeadlock(t *testing.T) {
	tests := []struct {
		name   string
		queued []string
		check  string // a key the transaction wrote after the pause
	}{
		{"keys", []string{"set foo{t} bar px 10", "client pause 50000 write", "set foo2{t} bar"}, "foo2{t}"},
		{"every shard", []string{"flushall", "client pause 50000 write", "set k2 v"}, "k2"},
		{"every database", []string{"select 1", "set a b", "select 0", "client pause 50000 write", "set k3 v"}, "k3"},
		{"keyspace-wide read", []string{"keys *", "client pause 50000 write", "set k4 v"}, "k4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startServer(t, nil)
			ctx := context.Background()
			c := e.oneConn()
			if got := doArgs(ctx, c, "multi"); got != "OK" {
				t.Fatalf("MULTI: %s", got)
			}
			for _, q := range tc.queued {
				if got := doArgs(ctx, c, q); got != "QUEUED" {
					t.Fatalf("%s: %s", q, got)
				}
			}
			if got := doArgs(ctx, c, "exec"); strings.HasPrefix(got, "ERR:") {
				t.Fatalf("EXEC: %s", got)
			}
			other := e.client(2)
			if got := doArgs(ctx, other, "ping"); got != "PONG" {
				t.Fatalf("PING after the EXEC: %s", got)
			}
			if got := doArgs(ctx, other, "get "+tc.check); got != "v" && got != "bar" {
				t.Errorf("the write after CLIENT PAUSE in the transaction: GET = %s", got)
			}
			done := make(chan string, 1)
			go func() { done <- doArgs(ctx, other, "set held v") }()
			waitUntil(t, "the SET is held by the pause", func() bool { return e.infoField("blocked_clients") == "1" })
			select {
			case got := <-done:
				t.Fatalf("a write ran during the pause: %s", got)
			default:
			}
			if got := doArgs(ctx, e.rdb, "client unpause"); got != "OK" {
				t.Fatal(got)
			}
			if got := <-done; got != "OK" {
				t.Fatalf("the held SET: %s", got)
			}
		})
	}
}

// TestPauseHeldCommands: a write pause holds writes and what Redis flags
// may-replicate (PUBLISH, PFCOUNT, FUNCTION FLUSH, EVAL and FCALL of
// scripts that may write), counted in blocked_clients with flag b in
// CLIENT LIST, as Redis's postponed clients; reads, EVAL_RO and no-writes
// scripts run.
func TestPauseHeldCommands(t *testing.T) {
	tests := []struct {
		args []any
		held bool
		want string
	}{
		{[]any{"set", "k", "v"}, true, "OK"},
		{[]any{"pfcount", "hll"}, true, "1"},
		{[]any{"publish", "ch", "msg"}, true, "0"},
		{[]any{"function", "flush"}, true, "OK"},
		{[]any{"eval", "return 1", "0"}, true, "1"},
		{[]any{"eval", "#!lua\nreturn 1", "0"}, true, "1"},
		{[]any{"evalsha", "0000000000000000000000000000000000000000", "0"}, true, "ERR:NOSCRIPT No matching script. Please use EVAL."},
		{[]any{"fcall", "nosuch", "0"}, true, "ERR:ERR Function not found"},
		{[]any{"get", "k"}, false, "nil"},
		{[]any{"eval_ro", "return 1", "0"}, false, "1"},
		{[]any{"eval", "#!lua flags=no-writes\nreturn 2", "0"}, false, "2"},
		{[]any{"fcall_ro", "nosuch", "0"}, false, "ERR:ERR Function not found"},
		{[]any{"function", "list"}, false, "[]"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.args[:2]), func(t *testing.T) {
			e := startServer(t, nil)
			ctx := context.Background()
			e.rdb.PFAdd(ctx, "hll", "a")
			if got := doArgs(ctx, e.rdb, "client pause 100000 write"); got != "OK" {
				t.Fatal(got)
			}
			c := e.oneConn()
			a := tc.args
			done := make(chan string, 1)
			go func() { done <- replyString(c.Do(ctx, a...).Result()) }()
			if tc.held {
				waitUntil(t, "the command is held", func() bool { return e.infoField("blocked_clients") == "1" })
				list := doArgs(ctx, e.rdb, "client list")
				if !strings.Contains(list, "flags=b ") {
					t.Errorf("CLIENT LIST shows no b flag:\n%s", list)
				}
				select {
				case got := <-done:
					t.Fatalf("ran during the pause: %s", got)
				default:
				}
				doArgs(ctx, e.rdb, "client unpause")
			}
			if got := <-done; got != tc.want {
				t.Errorf("reply %q, want %q", got, tc.want)
			}
			if n := e.infoField("blocked_clients"); n != "0" {
				t.Errorf("blocked_clients %s after the reply", n)
			}
			doArgs(ctx, e.rdb, "client unpause")
		})
	}
}

// TestReadOnlyScriptMayReplicate: a read-only script (EVAL_RO, no-writes)
// refuses what may replicate (PUBLISH, PFCOUNT) as it refuses writes,
// with Redis's text; a script that may write publishes.
func TestReadOnlyScriptMayReplicate(t *testing.T) {
	e := startServer(t, nil)
	const roErr = "ERR:ERR Write commands are not allowed from read-only scripts. script: "
	tests := []struct {
		args []any
		want string
	}{
		{[]any{"eval_ro", "return redis.call('publish','ch','msg')", "0"}, roErr},
		{[]any{"eval", "#!lua flags=no-writes\nreturn redis.call('publish','ch','msg')", "0"}, roErr},
		{[]any{"eval_ro", "return redis.call('pfcount','hll')", "0"}, roErr},
		{[]any{"eval", "return redis.call('publish','ch','msg')", "0"}, "0"},
		{[]any{"eval_ro", "return redis.call('get','x')", "0"}, "nil"},
	}
	ctx := context.Background()
	for _, tc := range tests {
		got := replyString(e.rdb.Do(ctx, tc.args...).Result())
		if !strings.HasPrefix(got, tc.want) || (tc.want != roErr && got != tc.want) {
			t.Errorf("%v: %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestPauseKeepsExpiredKeys: while writes are paused, an expired key reads
// as gone but stays (expired_keys does not move, the active expirer
// deletes nothing); a write in the transaction that paused replaces it
// cleanly; after the pause the next access deletes it and counts it.
func TestPauseKeepsExpiredKeys(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	steps := []string{"set a{t} 1 px 10", "set b{t} 1 px 10", "set c{t} 1 px 10"}
	for _, s := range steps {
		if got := doArgs(ctx, e.rdb, s); got != "OK" {
			t.Fatal(got)
		}
	}
	before := e.infoField("expired_keys")
	c := e.oneConn()
	doArgs(ctx, c, "multi")
	doArgs(ctx, c, "client pause 100000 write")
	doArgs(ctx, c, "exec")
	e.clock.Advance(100 * 1e6) // 100 ms: the keys expired
	for _, k := range []string{"a{t}", "b{t}"} {
		if got := doArgs(ctx, e.rdb, "get "+k); got != "nil" {
			t.Errorf("GET %s during the pause: %s", k, got)
		}
	}
	if n := e.srv.ExpireNow(); n != 0 {
		t.Errorf("the active expirer deleted %d keys during the pause", n)
	}
	if got := e.infoField("expired_keys"); got != before {
		t.Errorf("expired_keys %s during the pause, was %s", got, before)
	}
	if got := doArgs(ctx, e.rdb, "dbsize"); got != "3" {
		t.Errorf("DBSIZE %s during the pause, want 3 (kept)", got)
	}
	// a transaction's write after its CLIENT PAUSE replaces the hidden key
	doArgs(ctx, c, "multi")
	doArgs(ctx, c, "client pause 100000 write")
	doArgs(ctx, c, "set c{t} 2")
	doArgs(ctx, c, "exec")
	if got := doArgs(ctx, e.rdb, "dbsize"); got != "3" {
		t.Errorf("DBSIZE %s after replacing a hidden key, want 3", got)
	}
	doArgs(ctx, e.rdb, "client unpause")
	for _, k := range []string{"a{t}", "b{t}"} {
		if got := doArgs(ctx, e.rdb, "get "+k); got != "nil" {
			t.Errorf("GET %s after the pause: %s", k, got)
		}
	}
	if got, want := e.infoField("expired_keys"), fmt.Sprint(mustInt(t, before)+2); got != want {
		t.Errorf("expired_keys %s after the pause, want %s", got, want)
	}
	if got := doArgs(ctx, e.rdb, "dbsize"); got != "1" {
		t.Errorf("DBSIZE %s after the pause, want 1", got)
	}
	if got := doArgs(ctx, e.rdb, "get c{t}"); got != "2" {
		t.Errorf("GET c{t} = %s, want 2", got)
	}
}

func mustInt(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
