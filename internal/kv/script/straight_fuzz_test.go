package script

import (
	"context"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// stepCtx is the context a straight-line script is checked with: gopher-lua
// calls Done before every instruction it runs (mainLoopWithContext), on
// the script's own frame or any other Lua code's, so Done counts the
// instructions and checks that each one is the script's own. Past the
// bound it stops the run (Done closed, Err set).
type stepCtx struct {
	context.Context
	L       *lua.LState
	chunk   *lua.LFunction
	steps   int
	max     int
	foreign bool
	stopped bool
	open    chan struct{}
	closed  chan struct{}
}

func (c *stepCtx) Done() <-chan struct{} {
	c.steps++
	if d, ok := c.L.GetStack(0); ok {
		if fn, _, _, ok := frameOf(d); ok && fn != c.chunk {
			c.foreign = true
		}
	}
	if c.steps > c.max || c.foreign {
		c.stopped = true
		return c.closed
	}
	return c.open
}

func (c *stepCtx) Err() error {
	if c.stopped {
		return context.Canceled
	}
	return nil
}

// straightFragments are pieces the fuzzer strings together into scripts
// (picks), besides mutating whole sources: the tricky cases are here,
// metamethods, string methods, pcall, coroutine, load.
var straightFragments = []string{
	"local a = KEYS[1] ", "local b = ARGV[1] ", "local t = {} ", "local t = {1, 2, x = 'y'} ",
	"local m = setmetatable({}, {__index = string}) ", "local m = setmetatable({}, {__index = redis.call}) ",
	"local m = setmetatable({}, {__add = tostring, __call = pcall, __tostring = type}) ",
	"local s = ('x'):upper() ", "local s = string.format('%s', 1) ", "local n = #('abc') ",
	"pcall(redis.call, 'get', 'k') ", "redis.pcall('incr', 'k') ", "local ok, e = pcall(error, 'x') ",
	"local v = xpcall(redis.call, tostring, 'set', 'k', 'v') ", "if a then return a end ", "if not b then t = nil end ",
	"return m.x ", "return m + 1 ", "return tostring(m) ", "return m() ", "return t ",
	"local c = coroutine.wrap(redis.call) ", "local f = loadstring('while true do end') ", "local f = load(tostring) ",
	"local g = getmetatable('') ", "local e = getfenv(1) ", "local h = _G ", "local r = rawget(_G, 'redis') ",
	"local x = cjson.decode('[1,2]') ", "local y = cmsgpack.unpack(cmsgpack.pack({1})) ", "local z = bit.band(1, 3) ",
	"local q = select('#', 1, 2) ", "local n2 = next({1}) ", "local p = pairs({}) ", "local u = unpack({1, 2}) ",
	"local w = tonumber('12') or 0 ", "local v2 = type(nil) == 'nil' and 1 or 2 ", "t.x = 1 ", "rawset(t, 'y', 2) ",
	"table.insert(t, 3) ", "table.sort(t) ", "local k = t[1] and t[2] ", "local mm = math.max(1, 2, 3) ",
	"local cc = collectgarbage ", "local co = coroutine.create(pcall) ", "coroutine.resume(co) ",
	"local ss = string.gsub('abc', 'b', string.upper) ", "local ff = string.find('abc', 'b', 1, true) ",
	"local sp = struct.pack('>i4c0s', 5, 'ab', 'c') ", "local su = struct.unpack('bc0', '\\2ab') ",
	"local sz = struct.size('!4bi') ", "local sm = struct.pack('s', m) ", "local sg = struct.unpack('i', t) ",
	"local gc = collectgarbage('count') ", "local gi = gcinfo() ",
	"local fe = table.foreach(t, pcall) ", "local fi = table.foreachi({1, 2}, type) ", "local cn = cjson.new() ",
}

// FuzzStraightLine: whenever straightLine accepts a script (it then runs
// without the check of the kill context between instructions), running
// it executes no Lua code but its own body, and at most one step per
// instruction of it (no loop: it ends after at most len(Code) steps).
// go test -run '^$' -fuzz FuzzStraightLine -fuzztime 2m ./internal/kv/script/
func FuzzStraightLine(f *testing.F) {
	for _, s := range []string{
		"return redis.call('incr', KEYS[1])",
		"return setmetatable({}, {__index = function() while true do end end}).x",
		"local t = setmetatable({}, {__index = string.rep}) return t.x",
		"return ('x'):rep(3)",
		"return pcall(loadstring, 'while true do end')",
		"return pcall(loadstring('while true do end'))",
		"return coroutine.wrap(function() end)()",
		"return coroutine.resume(coroutine.create(redis.call), 'get', 'k')",
		"local f = load(function() return nil end) return f and f()",
		"return redis.pcall('get', KEYS[1])",
		"return getmetatable('').__index.upper('x')",
		"return string.gsub('abc', '%w', string.upper)",
		"local t = {} t[1] = 1 return t",
		"if KEYS[1] then return 1 else return 2 end",
		"return _G.redis.call('get', 'k')",
		"return getfenv(0)",
		"return cjson.encode(setmetatable({}, {__index = tostring}))",
		"return tostring(setmetatable({}, {__tostring = type}))",
		"return xpcall(error, tostring)",
		"goto x", "while true do end", "for i = 1, 3 do end", "repeat until true",
	} {
		f.Add(s, []byte{})
	}
	f.Add("", []byte{0, 12, 17, 3})
	f.Add("", []byte{5, 18, 40, 41})
	f.Add("", []byte{6, 19, 20})
	e := New()
	defer e.Close()
	f.Fuzz(func(t *testing.T, src string, picks []byte) {
		if len(picks) > 0 {
			var b strings.Builder
			for _, p := range picks {
				b.WriteString(straightFragments[int(p)%len(straightFragments)])
			}
			src = b.String()
		}
		// Go functions given huge counts (string.rep, unpack) take memory
		// and time without running Lua code: out of this test's scope
		if len(src) > 4096 || strings.Contains(src, "rep") || strings.Contains(src, "unpack") {
			return
		}
		defer e.Flush()
		sc, err := e.Load(src)
		if err != nil || !sc.straight {
			return
		}
		ctx := &stepCtx{Context: context.Background(), L: e.L, chunk: sc.fn, max: len(sc.fn.Proto.Code),
			open: make(chan struct{}), closed: make(chan struct{})}
		close(ctx.closed)
		e.keys.fill(e, "KEYS", [][]byte{[]byte("k")}, true)
		e.argv.fill(e, "ARGV", [][]byte{[]byte("v")}, true)
		e.argsTouched = true
		e.callMode(sc.fn, &Invocation{Caller: &echoCaller{}, Ctx: ctx}, newWriter(), "@user_script", nil, false)
		if ctx.foreign {
			t.Fatalf("straight-line script ran other Lua code: %q", src)
		}
		if ctx.steps > ctx.max {
			t.Fatalf("straight-line script ran %d steps for %d instructions: %q", ctx.steps, ctx.max, src)
		}
	})
}
