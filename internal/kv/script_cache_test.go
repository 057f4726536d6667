package kv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/kv/script"
)

// TestEvalshaClientCache checks the script an EVALSHA finds without the
// script cache's lock (the client's last one): a SCRIPT FLUSH, from the
// client itself or from another one, makes it NOSCRIPT at once, a script
// loaded again runs, and another SHA1 (or the same in another case) is
// its own script.
func TestEvalshaClientCache(t *testing.T) {
	for _, loops := range []int{1, -1} {
		t.Run(fmt.Sprint("loops", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			one := "return redis.call('incr', KEYS[1])"
			two := "return redis.call('incrby', KEYS[1], 10)"
			sha1, sha2 := script.SHA1Hex(one), script.SHA1Hex(two)
			c := e.raw()
			other := e.raw()
			cmd := func(args ...string) string {
				s := fmt.Sprintf("*%d\r\n", len(args))
				for _, a := range args {
					s += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
				}
				return s
			}
			bulk := func(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }
			const noscript = "-NOSCRIPT No matching script. Please use EVAL.\r\n"
			c.roundTrip(cmd("SCRIPT", "LOAD", one), bulk(sha1))
			c.roundTrip(cmd("SCRIPT", "LOAD", two), bulk(sha2))
			// a pipeline of the same script, then another, then the first
			// again in upper case
			c.roundTrip(cmd("EVALSHA", sha1, "1", "k")+cmd("EVALSHA", sha1, "1", "k")+cmd("EVALSHA", sha2, "1", "k")+
				cmd("EVALSHA", strings.ToUpper(sha1), "1", "k")+cmd("EVALSHA_RO", sha1, "1", "k"),
				":1\r\n:2\r\n:12\r\n:13\r\n-ERR Write commands are not allowed from read-only scripts. script: "+sha1+", on @user_script:1.\r\n")
			// flushed by the client itself, in the same pipeline
			c.roundTrip(cmd("EVALSHA", sha1, "1", "k")+cmd("SCRIPT", "FLUSH")+cmd("EVALSHA", sha1, "1", "k"),
				":14\r\n+OK\r\n"+noscript)
			c.roundTrip(cmd("SCRIPT", "LOAD", one), bulk(sha1))
			c.roundTrip(cmd("EVALSHA", sha1, "1", "k"), ":15\r\n")
			// flushed by another client
			other.roundTrip(cmd("SCRIPT", "FLUSH"), "+OK\r\n")
			c.roundTrip(cmd("EVALSHA", sha1, "1", "k"), noscript)
			c.roundTrip(cmd("EVALSHA", sha2, "1", "k"), noscript)
			other.roundTrip(cmd("EVAL", two, "1", "k"), ":25\r\n")
			c.roundTrip(cmd("EVALSHA", sha2, "1", "k")+cmd("EVALSHA", sha1, "1", "k"), ":35\r\n"+noscript)
		})
	}
}

// TestRunningScriptReuse: a runner reuses the runningScript of its last
// run (no allocation per run), unless another goroutine (SCRIPT KILL,
// FUNCTION STATS, the watchdog) still holds it pinned: it then makes a
// new one, and the pinned one keeps what it showed.
func TestRunningScriptReuse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keepPin bool
	}{{"unpinned", false}, {"pinned", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = 1 })
			se := &e.srv.script
			ctx := context.Background()
			runner := e.client(2)
			done := make(chan error, 1)
			go func() { done <- runner.Eval(ctx, "while true do end", nil).Err() }()
			var run *runningScript
			waitUntil(t, "the script runs", func() bool { run = se.oldestRun(); return run != nil })
			seq := run.seq
			if !tc.keepPin {
				run.unpin()
			}
			e.run([]step{{"script kill", "OK"}})
			if err := <-done; err == nil || !strings.Contains(err.Error(), "killed by user") {
				t.Fatalf("killed script: %v", err)
			}
			// the one runner made, taken from the pool: its last run is over
			spare := func() *runningScript {
				r := se.runner(e.srv, false)
				defer se.release(r)
				return r.spare
			}
			if got := spare(); (got == run) == tc.keepPin {
				t.Fatalf("spare %p, the killed run %p", got, run)
			}
			if err := runner.Eval(ctx, "return 1", nil).Err(); err != nil {
				t.Fatal(err)
			}
			if got := spare(); got == nil || (got == run) == tc.keepPin {
				t.Fatalf("after another run: spare %p, the killed run %p", got, run)
			}
			if tc.keepPin {
				if run.seq != seq || !run.done.Load() {
					t.Errorf("the pinned run was reused: seq %d -> %d, done %v", seq, run.seq, run.done.Load())
				}
				run.unpin()
			}
		})
	}
}

// TestScriptRunsAfterKill checks that a runner whose script was killed
// runs the next scripts to their end: its kill channel is fresh again.
func TestScriptRunsAfterKill(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EventLoops = 1 })
	t.Cleanup(func() {
		if r := e.srv.script.oldestRun(); r != nil {
			r.kill.cancel(r.seq)
			r.unpin()
		}
	})
	ctx := context.Background()
	runner := e.client(2)
	for i := 0; i < 3; i++ {
		done := make(chan error, 1)
		go func() { done <- runner.Eval(ctx, "local n = 0 while true do n = n + 1 end", nil).Err() }()
		waitUntil(t, "the script runs", func() bool {
			r := e.srv.script.oldestRun()
			if r != nil {
				r.unpin()
			}
			return r != nil
		})
		e.run([]step{{"script kill", "OK"}})
		if err := <-done; err == nil || !strings.Contains(err.Error(), "killed by user") {
			t.Fatalf("killed script: %v", err)
		}
		// every runner of the pool, the killed one among them, runs a
		// loop of many instructions to its end
		for j := 0; j < 20; j++ {
			mustDo(t, e.rdb, "100000", "eval", "local n = 0 for i = 1, 100000 do n = n + 1 end return n", 0)
		}
	}
}

// TestKillCtx checks the kill context the Lua states select on: no
// channel while the run goes on, a closed one once it is cancelled, and
// a cancel of a finished run changes nothing.
func TestKillCtx(t *testing.T) {
	k := newKillCtx()
	seq := k.next()
	if k.Done() != nil || k.Err() != nil {
		t.Fatalf("a new run is cancelled: %v %v", k.Done(), k.Err())
	}
	k.cancel(seq + 1) // not the current run
	if k.Done() != nil || k.Err() != nil {
		t.Fatal("a cancel of another run cancelled this one")
	}
	k.cancel(seq)
	select {
	case <-k.Done():
	default:
		t.Fatal("Done not closed after cancel")
	}
	if k.Err() == nil {
		t.Fatal("Err nil after cancel")
	}
	k.cancel(seq) // twice: no double close
	seq2 := k.next()
	if k.Done() != nil || k.Err() != nil {
		t.Fatal("the next run starts cancelled")
	}
	k.cancel(seq) // the finished run's late timer
	if k.Done() != nil || k.Err() != nil {
		t.Fatal("a finished run's cancel stopped the next one")
	}
	k.cancel(seq2)
	if k.Err() == nil {
		t.Fatal("the second run not cancelled")
	}
}
