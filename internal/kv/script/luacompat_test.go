package script

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// TestRedisCompat runs scripts whose replies were taken from
// redis-server 7.0.15 (`redis-server --save ”`, each script sent as
// EVAL <script> 0 and its raw reply recorded; SHA stands for the
// script's SHA1): the coroutine library, load and loadstring, and Lua
// 5.1's texts for runtime errors (luacompat.go).
func TestRedisCompat(t *testing.T) {
	e := New()
	defer e.Close()
	for _, tc := range []struct{ body, want string }{
		{`return coroutine.resume(coroutine.create(function(a) local b = coroutine.yield(a+1) return b*2 end), 1)`, ":1\r\n"},
		{`local co = coroutine.create(function(a) local b = coroutine.yield(a+1) return b*2 end) coroutine.resume(co, 1) return {coroutine.resume(co, 5)}`, "*2\r\n:1\r\n:10\r\n"},
		{`local co = coroutine.create(function() end) coroutine.resume(co) return {coroutine.resume(co)}`, "*2\r\n$-1\r\n$28\r\ncannot resume dead coroutine\r\n"},
		{`local co = coroutine.create(function() error('boom') end) return {coroutine.resume(co)}`, "*2\r\n$-1\r\n$19\r\nuser_script:1: boom\r\n"},
		{`local co = coroutine.create(function() error({err='x'}) end) local ok, e = coroutine.resume(co) return {tostring(ok), type(e)}`, "*2\r\n$5\r\nfalse\r\n$5\r\ntable\r\n"},
		{`local f = coroutine.wrap(function() error('boom') end) return f()`, "-ERR user_script:1: user_script:1: boom script: SHA, on @user_script:1.\r\n"},
		{`local f = coroutine.wrap(function() end) f() return f()`, "-ERR user_script:1: cannot resume dead coroutine script: SHA, on @user_script:1.\r\n"},
		{`local f = coroutine.wrap(function(a) coroutine.yield(a) coroutine.yield(a*2) end) return {f(3), f()}`, "*2\r\n:3\r\n:6\r\n"},
		{`local co = coroutine.create(function() return coroutine.status(coroutine.running()) end) return {coroutine.resume(co)}`, "*2\r\n:1\r\n$7\r\nrunning\r\n"},
		{`local co = coroutine.create(function() end) local s1 = coroutine.status(co) coroutine.resume(co) return {s1, coroutine.status(co)}`, "*2\r\n$9\r\nsuspended\r\n$4\r\ndead\r\n"},
		{`return type(coroutine.running())`, "$3\r\nnil\r\n"},
		{`return coroutine.yield(1)`, "-ERR attempt to yield across metamethod/C-call boundary script: SHA, on @user_script:1.\r\n"},
		{`local co = coroutine.create(function() x = 1 end) return {coroutine.resume(co)}`, "*2\r\n$-1\r\n$49\r\nuser_script:1: Attempt to modify a readonly table\r\n"},
		{`return coroutine.resume(coroutine.create(function() return pcall(coroutine.yield, 1) end))`, ":1\r\n"},
		{`return coroutine.resume(coroutine.create(function() return {pcall(function() coroutine.yield(1) end)} end))`, ":1\r\n"},
		{`return coroutine.resume(42)`, "-ERR user_script:1: bad argument #1 to 'resume' (coroutine expected) script: SHA, on @user_script:1.\r\n"},
		{`local co = coroutine.create(function() return 1 end) return type(co)`, "$6\r\nthread\r\n"},
		{`return loadstring('return 1+1')()`, ":2\r\n"},
		{`return {loadstring('return +')}`, "*0\r\n"},
		{`return {loadstring('x = 1')()}`, "-ERR [string \"x = 1\"]:1: Attempt to modify a readonly table script: SHA, on x = 1:1.\r\n"},
		{`return {pcall(loadstring('x = 1'))}`, "*2\r\n$-1\r\n$54\r\n[string \"x = 1\"]:1: Attempt to modify a readonly table\r\n"},
		{`return {pcall(loadstring('return nosuch'))}`, "*2\r\n$-1\r\n$91\r\n[string \"return nosuch\"]:1: Script attempted to access nonexistent global variable 'nosuch'\r\n"},
		{`return loadstring('return ...')(7)`, ":7\r\n"},
		{`return {loadstring(string.dump(function() end))}`, "*0\r\n"},
		{`return {loadstring('\27Lua')}`, "*0\r\n"},
		{`return load(function() return nil end) == nil`, "$-1\r\n"},
		{`local parts = {'return ', '1', '+2'} local i = 0 return load(function() i = i + 1 return parts[i] end)()`, ":3\r\n"},
		{`return {load(function() return {} end)}`, "*0\r\n"},
		{`return {load('return 1')}`, "-ERR user_script:1: bad argument #1 to 'load' (function expected, got string) script: SHA, on @user_script:1.\r\n"},
		{`return {load(42)}`, "-ERR user_script:1: bad argument #1 to 'load' (function expected, got number) script: SHA, on @user_script:1.\r\n"},
		{`return {load(function() error('rd') end)}`, "*0\r\n"},
		{`return {pcall(load(function() return nil end, 'mychunk'))}`, "*1\r\n:1\r\n"},
		{`return {load(function() local s = 'return x.y' local done = false return (function() if done then return nil end done = true return s end)() end)}`, "*0\r\n"},
		{`local f = load((function() local d = false return function() if d then return nil end d = true return 'return 1 + nil' end end)(), 'nm') return {pcall(f)}`, "*2\r\n$-1\r\n$61\r\n[string \"nm\"]:1: attempt to perform arithmetic on a nil value\r\n"},
		{`return {pcall(loadstring('return 1 + nil', 'nm'))}`, "*2\r\n$-1\r\n$61\r\n[string \"nm\"]:1: attempt to perform arithmetic on a nil value\r\n"},
		{`return {pcall(loadstring('return 1 + nil'))}`, "*2\r\n$-1\r\n$73\r\n[string \"return 1 + nil\"]:1: attempt to perform arithmetic on a nil value\r\n"},
		{`return {pcall(loadstring('local t = nil return t.x'))}`, "*2\r\n$-1\r\n$79\r\n[string \"local t = nil return t.x\"]:1: attempt to index local 't' (a nil value)\r\n"},
		{`return {pcall(loadstring('error("e")', '=named'))}`, "*2\r\n$-1\r\n$10\r\nnamed:1: e\r\n"},
		{`return loadstring('return getfenv and 1 or 2')`, "$-1\r\n"},
		{`local x = nil return x.y`, "-ERR user_script:1: attempt to index local 'x' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`local x = nil return x()`, "-ERR user_script:1: attempt to call local 'x' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`local x = nil return x + 1`, "-ERR user_script:1: attempt to perform arithmetic on local 'x' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`local x = nil return x < 1`, "-ERR user_script:1: attempt to compare nil with number script: SHA, on @user_script:1.\r\n"},
		{`local x = {} return x < 1`, "-ERR user_script:1: attempt to compare table with number script: SHA, on @user_script:1.\r\n"},
		{`return nil .. 'a'`, "-ERR user_script:1: attempt to concatenate a nil value script: SHA, on @user_script:1.\r\n"},
		{`return {} .. 'a'`, "-ERR user_script:1: attempt to concatenate a table value script: SHA, on @user_script:1.\r\n"},
		{`local t = {} t.f()`, "-ERR user_script:1: attempt to call field 'f' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`local t = {} return t.a.b`, "-ERR user_script:1: attempt to index field 'a' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`return ARGV[1].x`, "-ERR user_script:1: attempt to index field '?' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`return #nil`, "-ERR user_script:1: attempt to get length of a nil value script: SHA, on @user_script:1.\r\n"},
		{`local x = nil return #x`, "-ERR user_script:1: attempt to get length of local 'x' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`return -{}`, "-ERR user_script:1: attempt to perform arithmetic on a table value script: SHA, on @user_script:1.\r\n"},
		{`return ('x')()`, "-ERR user_script:1: attempt to call a string value script: SHA, on @user_script:1.\r\n"},
		{`return 1 < 'x'`, "-ERR user_script:1: attempt to compare number with string script: SHA, on @user_script:1.\r\n"},
		{`return {} < {}`, "-ERR user_script:1: attempt to compare two table values script: SHA, on @user_script:1.\r\n"},
		{`return math.floor('a')`, "-ERR user_script:1: bad argument #1 to 'floor' (number expected, got string) script: SHA, on @user_script:1.\r\n"},
		{`return string.rep()`, "-ERR user_script:1: bad argument #1 to 'rep' (string expected, got no value) script: SHA, on @user_script:1.\r\n"},
		{`return ('a'):bad()`, "-ERR user_script:1: attempt to call method 'bad' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`return tostring()`, "-ERR user_script:1: bad argument #1 to 'tostring' (value expected) script: SHA, on @user_script:1.\r\n"},
		{`return setmetatable({}, {__index = function(t, k) return k .. '!' end}).hello`, "$6\r\nhello!\r\n"},
		{`return redis.call()`, "-ERR Please specify at least one argument for this redis lib call script: SHA, on @user_script:1.\r\n"},
		{`local t = setmetatable({}, {__add = function(a, b) return 7 end}) return t + 1`, ":7\r\n"},
		{`return #KEYS`, ":0\r\n"},
		{`return unpack({1,2,3})`, ":1\r\n"},
		{`return error('plain')`, "-ERR user_script:1: plain script: SHA, on @user_script:1.\r\n"},
		{`return error()`, "-ERR nil script: SHA, on @user_script:1.\r\n"},
		{`return select(-1)`, "-ERR user_script:1: bad argument #1 to 'select' (index out of range) script: SHA, on @user_script:1.\r\n"},
		{`return tonumber()`, "-ERR user_script:1: bad argument #1 to 'tonumber' (value expected) script: SHA, on @user_script:1.\r\n"},
		{`return ipairs()`, "-ERR user_script:1: bad argument #1 to 'ipairs' (table expected, got no value) script: SHA, on @user_script:1.\r\n"},
		{`return nosuchfn()`, "-ERR user_script:1: Script attempted to access nonexistent global variable 'nosuchfn' script: SHA, on @user_script:1.\r\n"},
		{`local t = {} return t:nomethod()`, "-ERR user_script:1: attempt to call method 'nomethod' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`local u = nil local f = function() return u.x end return f()`, "-ERR user_script:1: attempt to index upvalue 'u' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`local t = {a = {}} return t.a.b.c`, "-ERR user_script:1: attempt to index field 'b' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`return redis.nosuch()`, "-ERR user_script:1: attempt to call field 'nosuch' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`local s = 'a' return s .. {}`, "-ERR user_script:1: attempt to concatenate a table value script: SHA, on @user_script:1.\r\n"},
		{`return 'a' + 1`, "-ERR user_script:1: attempt to perform arithmetic on a string value script: SHA, on @user_script:1.\r\n"},
		{`local t = {} return t.x + 1`, "-ERR user_script:1: attempt to perform arithmetic on field 'x' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`local x = true return x.y`, "-ERR user_script:1: attempt to index local 'x' (a boolean value) script: SHA, on @user_script:1.\r\n"},
		{`local f = coroutine.wrap(function() while true do coroutine.yield() end end) f() f() return 1`, ":1\r\n"},
		{`local n = 0 local co = coroutine.create(function() for i = 1, 10 do n = n + i coroutine.yield() end end) while coroutine.status(co) ~= 'dead' do coroutine.resume(co) end return n`, ":55\r\n"},
		{`return {pcall(function() local z = nil return z.q end)}`, "*2\r\n$-1\r\n$55\r\nuser_script:1: attempt to index local 'z' (a nil value)\r\n"},
		{`return {xpcall(function() local z = nil return z.q end, function(m) return 'h:' .. m end)}`, "*2\r\n$-1\r\n$57\r\nh:user_script:1: attempt to index local 'z' (a nil value)\r\n"},
		{`return select('#', pcall(error))`, ":2\r\n"},
		{`return {pcall(error)}`, "*1\r\n$-1\r\n"},
		{`local t = setmetatable({}, {__index = function(t, k) return nil end}) return t.x.y`, "-ERR user_script:1: attempt to index field 'x' (a nil value) script: SHA, on @user_script:1.\r\n"},
		{`return KEYS[1] .. nil`, "-ERR user_script:1: attempt to concatenate field '?' (a nil value) script: SHA, on @user_script:1.\r\n"},
	} {
		want := strings.ReplaceAll(tc.want, "SHA", SHA1Hex(tc.body))
		if got := run(t, e, tc.body, 2, nil, nil); got != want {
			t.Errorf("%s\n got %q\nwant %q", tc.body, got, want)
		}
	}
}

// TestKillCoroutine: a script spinning inside a coroutine, or inside code
// of load or loadstring, is stopped by its context (SCRIPT KILL, the
// timeout), and no goroutine is left behind by the coroutines it made.
func TestKillCoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, body := range []string{
		"local co = coroutine.create(function() while true do end end) coroutine.resume(co) return 'escaped'",
		"local f = coroutine.wrap(function() while true do end end) f() return 'escaped'",
		"local co = coroutine.create(function() local co2 = coroutine.create(function() while true do end end) coroutine.resume(co2) end) coroutine.resume(co) return 'escaped'",
		"local t = {} for i = 1, 100 do t[i] = coroutine.create(function() coroutine.yield() end) coroutine.resume(t[i]) end local co = coroutine.create(function() while true do end end) coroutine.resume(co) return 'escaped'",
		"loadstring('while true do end')() return 'escaped'",
		"local done = false load(function() if done then return nil end done = true return 'while true do end' end)() return 'escaped'",
		"pcall(coroutine.wrap(function() while true do pcall(function() end) end end)) return 'escaped'",
	} {
		e := New()
		sc, err := e.Load(body)
		if err != nil {
			t.Fatal(err)
		}
		if sc.straight {
			t.Fatalf("%q is straight", body)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan string, 1)
		go func() {
			w := resp.Writer{Proto: 2}
			e.Run(sc, &Invocation{Caller: &echoCaller{}, Ctx: ctx}, &w)
			done <- string(w.B)
		}()
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case got := <-done:
			if !strings.Contains(got, "killed by user") {
				t.Errorf("%s: got %q", body, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the killed script still runs", body)
		}
		// the engine still runs scripts, without a context from the last
		if got := run(t, e, "return coroutine.resume(coroutine.create(function() return 1 end))", 2, nil, nil); got != ":1\r\n" {
			t.Errorf("after %s: %q", body, got)
		}
		e.Close()
	}
	// coroutines made with a context derive none (gopher-lua's own would
	// start a goroutine per coroutine for context.WithCancel)
	e := New()
	defer e.Close()
	// a context that is not context's own (as the server's is): a
	// context.WithCancel under it would start a goroutine
	ctx := &chanCtx{Context: context.Background(), done: make(chan struct{})}
	defer close(ctx.done)
	sc, _ := e.Load("local t = {} for i = 1, 50 do t[i] = coroutine.create(function() coroutine.yield() end) coroutine.resume(t[i]) end return #t")
	w := resp.Writer{Proto: 2}
	e.Run(sc, &Invocation{Caller: &echoCaller{}, Ctx: ctx}, &w)
	if string(w.B) != ":50\r\n" {
		t.Fatalf("got %q", w.B)
	}
	time.Sleep(10 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines after the runs, %d before", n, before)
	}
}

// chanCtx is a context whose Done is its own channel.
type chanCtx struct {
	context.Context
	done chan struct{}
}

func (c *chanCtx) Done() <-chan struct{} { return c.done }
