package kv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/kv/kvtest"
	"github.com/gantry-project/gantry/internal/kv/script"
)

// TestScripting runs EVAL, EVALSHA, the _RO variants, SCRIPT, FUNCTION
// and FCALL through the server.
func TestScripting(t *testing.T) {
	e := startServer(t, nil)
	mustDo(t, e.rdb, "lib", "function", "load", "#!lua name=lib\n"+
		"redis.register_function{function_name='get1', callback=function(k, a) return redis.call('get', k[1]) end, flags={'no-writes'}}\n"+
		"redis.register_function('set1', function(k, a) return redis.call('set', k[1], a[1]) end)")
	body := "#!lua flags=no-writes\nredis.call('set','x','y')"
	mustDo(t, e.rdb, "ERR Write commands are not allowed from read-only scripts. script: "+script.SHA1Hex(body)+", on @user_script:2.",
		"eval", body, 0)
	mustDo(t, e.rdb, "redis: nil", "eval", "#!lua\nredis.call('set','x','y')", 0) // a shebang without flags may write
	sha := script.SHA1Hex("return(redis.call('get',KEYS[1]))")
	e.run([]step{
		{"eval return(redis.call('incr',KEYS[1])+1) 1 n", "2"},
		{"script load return(redis.call('get',KEYS[1]))", sha},
		{"evalsha " + strings.ToUpper(sha) + " 1 n", "1"},
		{"evalsha ffd632c7d33e571e9f24556ebed26c3479a87130 0", "ERR:NOSCRIPT"},
		{"script exists " + sha + " ffd632c7d33e571e9f24556ebed26c3479a87130", "[1 0]"},
		{"eval_ro return(redis.call('get',KEYS[1])) 1 n", "1"},
		{"eval_ro redis.call('del',KEYS[1]) 1 n", "ERR:ERR Write commands are not allowed from read-only scripts."},
		{"eval return(1) -1", "ERR:ERR Number of keys can't be negative"},
		{"eval return(1) 3 a", "ERR:ERR Number of keys can't be greater than number of args"},
		{"eval redis.call('blpop','l',0) 0", "ERR:ERR This Redis command is not allowed from script"},
		{"eval redis.call('multi') 0", "ERR:ERR This Redis command is not allowed from script"},
		{"eval redis.call('nosuch') 0", "ERR:ERR Unknown Redis command called from script"},
		{"script flush", "OK"},
		{"script exists " + sha, "[0]"},
		{"script kill", "ERR:NOTBUSY"},
		{"fcall set1 1 fk fv", "OK"},
		{"fcall_ro get1 1 fk", "fv"},
		{"fcall_ro set1 1 fk x", "ERR:ERR Can not execute a script with write flag using *_ro command."},
		{"fcall nosuch 0", "ERR:ERR Function not found"},
		{"function list", "[[library_name lib engine LUA functions [[name get1 description nil flags [no-writes]] [name set1 description nil flags []]]]]"},
		{"function delete lib", "OK"},
		{"function delete lib", "ERR:ERR Library not found"},
		{"function kill", "ERR:NOTBUSY"},
	})
	// a script inside MULTI runs at EXEC with the transaction's locks
	ctx := context.Background()
	tx := e.rdb.TxPipeline()
	tx.Eval(ctx, "return redis.call('incrby', KEYS[1], ARGV[1])", []string{"m"}, 5)
	tx.Incr(ctx, "m")
	res, err := tx.Exec(ctx)
	if err != nil || fmt.Sprint(res[0].(*redis.Cmd).Val(), res[1].(*redis.IntCmd).Val()) != "5 6" {
		t.Fatalf("EVAL in MULTI: %v %v", res, err)
	}
}

// TestScriptEffectsPersisted checks that a script's writes are logged as
// its effects (one MULTI ... EXEC, never the EVAL), that functions are
// logged and kept in snapshots, and that both survive restarts.
func TestScriptEffectsPersisted(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	mod := func(c *Config) { c.DataDir, c.Clock = dir, clock }
	e := startServer(t, mod)
	ctx := context.Background()
	e.run([]step{{"sadd s a b c d", "4"}})
	// SPOP is random: replaying the script could pick another member
	mustDo(t, e.rdb, "*", "eval", "local m = redis.call('spop', KEYS[1]); redis.call('set', KEYS[2], m); return m", 2, "s", "popped")
	mustDo(t, e.rdb, "kept", "function", "load", "#!lua name=kept\nredis.register_function('kf', function() return 'kept' end)")
	want := dumpKeyspace(t, e.rdb)
	e.srv.Close()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.aof*"))
	logs2, _ := filepath.Glob(filepath.Join(dir, "log*"))
	var text string
	for _, f := range append(logs, logs2...) {
		b, _ := os.ReadFile(f)
		text += string(b)
	}
	if strings.Contains(strings.ToLower(text), "eval") || !strings.Contains(text, "MULTI") || !strings.Contains(text, "FUNCTION") {
		t.Errorf("the log should hold the script's effects in MULTI/EXEC and the FUNCTION LOAD:\n%q", text)
	}

	e2 := startServer(t, mod)
	if got := dumpKeyspace(t, e2.rdb); got != want {
		t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
	}
	e2.run([]step{{"fcall kf 0", "kept"}, {"save", "OK"}})
	e2.srv.Close()
	e3 := startServer(t, mod) // from the snapshot the SAVE wrote
	e3.run([]step{{"fcall kf 0", "kept"}})
	if got := dumpKeyspace(t, e3.rdb); got != want {
		t.Fatalf("after save and restart:\n%s\nwant:\n%s", got, want)
	}
	_ = ctx
}

// TestScriptReplicated checks a replica gets a script's effects and a
// primary's functions (full sync and stream).
func TestScriptReplicated(t *testing.T) {
	p := startServer(t, nil)
	r := startServer(t, nil)
	mustDo(t, p.rdb, "before", "function", "load", "#!lua name=before\nredis.register_function('fb', function() return 1 end)")
	replicaOf(t, r, p)
	waitSynced(t, p, r)
	p.run([]step{{"eval redis.call('rpush',KEYS[1],'a','b');return(redis.call('lpop',KEYS[1])) 1 l", "a"}})
	mustDo(t, p.rdb, "after", "function", "load", "#!lua name=after\nredis.register_function('fa', function() return 2 end)")
	waitSynced(t, p, r)
	sameData(t, p, r)
	// the functions are there; a replica refuses to run those that may write
	r.run([]step{{"fcall_ro fb 0", "ERR:ERR Can not execute a script with write flag"},
		{"fcall fb 0", "ERR:READONLY"}, {"fcall fa 0", "ERR:READONLY"}, {"fcall nosuch 0", "ERR:ERR Function not found"}})
}

// TestScriptBusyKill runs an endless script: other clients get -BUSY
// after busy-reply-threshold, SCRIPT KILL stops it, and a script that
// wrote cannot be killed.
func TestScriptBusyKill(t *testing.T) {
	for _, loops := range []int{1, -1} {
		t.Run(fmt.Sprint("loops", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			t.Cleanup(func() { // a failed test leaves its script looping: stop it before the server closes
				if r := e.srv.script.oldestRun(); r != nil {
					r.kill.cancel(r.seq)
					r.unpin()
				}
			})
			ctx := context.Background()
			e.run([]step{{"config set busy-reply-threshold 20", "OK"}})
			tx := e.raw()
			tx.roundTrip("MULTI\r\n", "+OK\r\n")
			tx.roundTrip("INCR xx\r\n", "+QUEUED\r\n")
			runner := e.client(2)
			done := make(chan error, 1)
			go func() { done <- runner.Eval(ctx, "while true do end", nil).Err() }()
			waitUntil(t, "BUSY", func() bool {
				err := e.rdb.Ping(ctx).Err()
				return err != nil && strings.HasPrefix(err.Error(), "BUSY")
			})
			// a transaction begun before: a command refused -BUSY fails it,
			// and EXEC refused ends it with EXECABORT and the reason
			tx.roundTrip("INCR xx\r\n", "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n")
			tx.roundTrip("EXEC\r\n", "-EXECABORT Transaction discarded because of: BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n")
			e.run([]step{{"function kill", "ERR:BUSY"}, {"script kill", "OK"}})
			if err := <-done; err == nil || !strings.Contains(err.Error(), "killed by user") {
				t.Fatalf("killed script: %v", err)
			}
			e.run([]step{{"ping", "PONG"}, {"get xx", "nil"}})
			tx.roundTrip("PING\r\n", "+PONG\r\n") // no longer in MULTI

			go func() {
				done <- runner.Eval(ctx, "redis.call('set','w','1') local t = redis.call('time')[1] while true do end", nil).Err()
			}()
			waitUntil(t, "BUSY", func() bool {
				err := e.rdb.Ping(ctx).Err()
				return err != nil && strings.HasPrefix(err.Error(), "BUSY")
			})
			e.run([]step{{"script kill", "ERR:UNKILLABLE"}})
			// only SHUTDOWN NOSAVE stops it in Redis; the test ends it by
			// closing the server, which cancels nothing: stop it here
			r := e.srv.script.oldestRun()
			r.kill.cancel(r.seq)
			r.unpin()
			<-done
		})
	}
}

// TestLuaQueue runs the Sidekiq/BullMQ-like queue of kvtest with go-redis
// (EVALSHA, falling back to EVAL) on a standalone server.
func TestLuaQueue(t *testing.T) {
	for _, loops := range []int{2, -1} {
		t.Run(fmt.Sprint("loops", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			c := redis.NewClient(&redis.Options{Addr: e.addr, DisableIdentity: true, PoolSize: 8, ReadTimeout: 10 * time.Second})
			defer c.Close()
			if err := kvtest.RunQueue(context.Background(), c, "jobs", 300, 6); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestScriptCluster checks keys against the slots in cluster mode: a key
// of another shard is MOVED before the script runs, CROSSSLOT keys are
// refused by the hook, and a script touching an undeclared foreign key
// fails.
func TestScriptCluster(t *testing.T) {
	h := &fakeHook{}
	e := startServer(t, func(c *Config) { c.Cluster = h })
	mustDo(t, e.rdb, "ERR Can not run script on cluster, 'no-cluster' flag is set.", "eval", "#!lua flags=no-cluster\nreturn 1", 0)
	e.run([]step{
		{"eval return(redis.call('set',KEYS[1],'v')) 1 mine1", "OK"},
		{"eval return(1) 1 theirs", "ERR:MOVED 1 127.0.0.1:1"},
		{"eval return(redis.call('get','theirs')) 0", "ERR:ERR Script attempted to access a non local key in a cluster node"},
		{"spublish theirs x", "ERR:MOVED"},
		{"spublish mine2 x", "0"},
		{"ssubscribe theirs", "ERR:MOVED"},
	})
}

// mustDo runs a command given as arguments (for scripts with spaces) and
// checks its reply: want is the reply, an error's text, or "*" for any
// reply that is not an error.
func mustDo(t *testing.T, c *redis.Client, want string, args ...any) {
	t.Helper()
	res, err := c.Do(context.Background(), args...).Result()
	got := fmt.Sprint(res)
	if err != nil {
		got = err.Error()
	}
	if want == "*" && err == nil {
		return
	}
	if got != want {
		t.Errorf("%q: got %q, want %q", args, got, want)
	}
}

// TestScriptInfoMemory: INFO memory counts the cached scripts and the
// functions, as Redis 7's number_of_cached_scripts and friends.
func TestScriptInfoMemory(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	field := func(name string) string {
		t.Helper()
		for _, l := range strings.Split(e.rdb.Info(ctx, "memory").Val(), "\r\n") {
			if v, ok := strings.CutPrefix(l, name+":"); ok {
				return v
			}
		}
		t.Fatalf("INFO memory has no %s", name)
		return ""
	}
	e.run([]step{{"script load return(1)", "*"}, {"script load return(2)", "*"}, {"eval return(3) 0", "3"}, {"eval return(3) 0", "3"}})
	if n := field("number_of_cached_scripts"); n != "3" {
		t.Errorf("number_of_cached_scripts %s, want 3", n)
	}
	if m := field("used_memory_scripts_eval"); m == "0" {
		t.Errorf("used_memory_scripts_eval 0 with 3 scripts")
	}
	lib := "#!lua name=l\nredis.register_function('f1', function() return 1 end)\nredis.register_function('f2', function() return 2 end)"
	if err := e.rdb.FunctionLoad(ctx, lib).Err(); err != nil {
		t.Fatal(err)
	}
	if f, l := field("number_of_functions"), field("number_of_libraries"); f != "2" || l != "1" {
		t.Errorf("functions %s libraries %s, want 2 and 1", f, l)
	}
	e.run([]step{{"script flush async", "OK"}})
	if n, m := field("number_of_cached_scripts"), field("used_memory_scripts_eval"); n != "0" || m != "0" {
		t.Errorf("after SCRIPT FLUSH: %s scripts, %s bytes", n, m)
	}
}

// TestScriptErrorStats: the commands a script calls count in INFO
// commandstats (calls, failed and rejected calls) and errorstats, and an
// error they replied that the script passes on is not counted twice, as
// Redis 7 reports them.
func TestScriptErrorStats(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	check := func(when string, want ...string) {
		t.Helper()
		info := e.rdb.Info(ctx, "commandstats", "errorstats", "stats").Val()
		for _, w := range want {
			if !regexp.MustCompile(`(?m)^` + w).MatchString(info) {
				t.Errorf("%s: no line matching %s in\n%s", when, w, info)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"raised OOM refusal", []step{{"append pad v", "*"}, {"config set maxmemory 1", "OK"},
			{"eval return(redis.call('set','x','y')) 1 x", "ERR:OOM command not allowed"}},
			[]string{`errorstat_OOM:count=1\r`, `total_error_replies:1\r`, `cmdstat_set:calls=0,.*rejected_calls=1,failed_calls=0`,
				`cmdstat_eval:calls=1,.*rejected_calls=0,failed_calls=1`}},
		{"pcall OOM refusal returned", []step{{"append pad v", "*"}, {"config set maxmemory 1", "OK"},
			{"eval return(redis.pcall('set','x','y')) 1 x", "ERR:OOM command not allowed"}},
			[]string{`errorstat_OOM:count=1\r`, `total_error_replies:1\r`, `cmdstat_set:calls=0,.*rejected_calls=1,failed_calls=0`,
				`cmdstat_eval:calls=1,.*rejected_calls=0,failed_calls=1`}},
		{"raised command error", []step{{"eval return(redis.call('select',99)) 0", "ERR:ERR DB index is out of range"}},
			[]string{`errorstat_ERR:count=1\r`, `total_error_replies:1\r`, `cmdstat_select:calls=1,.*rejected_calls=0,failed_calls=1`,
				`cmdstat_eval:calls=1,.*rejected_calls=0,failed_calls=1`}},
		{"pcall command error caught", []step{{"eval return(redis.pcall('select',99)['err']) 0", "ERR DB index is out of range"}},
			[]string{`errorstat_ERR:count=1\r`, `total_error_replies:1\r`, `cmdstat_select:calls=1,.*failed_calls=1`,
				`cmdstat_eval:calls=1,.*rejected_calls=0,failed_calls=0`}},
		{"script's own error counted", []step{{"eval return(redis.error_reply('MYERR_x')) 0", "ERR:MYERR_x"}},
			[]string{`errorstat_MYERR_x:count=1\r`, `total_error_replies:1\r`, `cmdstat_eval:calls=1,.*failed_calls=1`}},
		{"read-only script refusal", []step{{"eval_ro return(redis.call('set','x','y')) 1 x", "ERR:ERR Write commands are not allowed from read-only scripts"}},
			[]string{`errorstat_ERR:count=1\r`, `total_error_replies:1\r`, `cmdstat_set:calls=0,.*rejected_calls=1`,
				`cmdstat_eval_ro:calls=1,.*failed_calls=1`}},
	} {
		e.run([]step{{"config set maxmemory 0", "OK"}, {"config resetstat", "OK"}})
		e.run(tc.steps)
		check(tc.name, tc.want...)
	}
	e.run([]step{{"config set maxmemory 0", "OK"}})
}

// TestScriptOffLoopCounted: an EVAL whose script outlasts the event loop's
// wait (loopScriptWait) leaves the loop and is answered from the client's
// goroutine; it is still counted once in commandstats and the slow log.
func TestScriptOffLoopCounted(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	e.run([]step{{"config set slowlog-log-slower-than 0", "OK"}, {"config resetstat", "OK"}, {"slowlog reset", "OK"}})
	// a loop of some tens of milliseconds in gopher-lua: well past the
	// loop's 5 ms wait
	long := "local n = 0 for i = 1, 3000000 do n = n + 1 end return n"
	if n, err := e.rdb.Eval(ctx, long, nil).Int(); err != nil || n != 3000000 {
		t.Fatalf("eval: %d %v", n, err)
	}
	info := e.rdb.Info(ctx, "commandstats").Val()
	if !regexp.MustCompile(`(?m)^cmdstat_eval:calls=1,`).MatchString(info) {
		t.Errorf("eval not counted once in\n%s", info)
	}
	var found bool
	for _, l := range e.rdb.SlowLogGet(ctx, 10).Val() {
		if len(l.Args) > 0 && strings.EqualFold(l.Args[0], "eval") {
			found = true
		}
	}
	if !found {
		t.Errorf("eval not in the slow log: %+v", e.rdb.SlowLogGet(ctx, 10).Val())
	}
}
