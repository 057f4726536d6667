package script

import (
	"strconv"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// openLibs loads what Redis's Lua has: base (without loadfile, dofile
// and print), table, string, math, and the redis, cjson, cmsgpack, bit and
// struct libraries, then makes the globals and those libraries read-only.
func (e *Engine) openLibs() {
	L := e.L
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	for _, name := range []string{"loadfile", "dofile", "print", "require", "module", "collectgarbage", "newproxy", "_printregs", "channel"} {
		g.RawSetString(name, lua.LNil)
	}
	// coroutine, load, loadstring; error, pcall, xpcall with Lua 5.1's
	// error texts (luacompat.go)
	e.openCompat()
	// string.dump: gopher-lua has no Lua 5.1 bytecode to give, and no
	// binary chunk can be loaded here (nor in Redis: loadstring refuses
	// them), so a dump is good for nothing but that refusal; it is the
	// binary chunk's signature and version alone ("\27Lua" 0x51), which
	// loadstring refuses as Redis does (gopher-lua's own string.dump
	// raised an error instead)
	// string.format: Lua 5.1's, C's printf items (format.go)
	g.RawGetString("string").(*lua.LTable).RawSetString("format", L.NewFunction(strFormat))
	g.RawGetString("string").(*lua.LTable).RawSetString("dump", L.NewFunction(func(L *lua.LState) int {
		if f := L.CheckFunction(1); f.IsG {
			L.RaiseError("unable to dump given function")
		}
		L.Push(lua.LString("\x1bLua\x51"))
		return 1
	}))
	// Calling a nil, boolean or number: gopher-lua says "attempt to call a
	// non-function object", Lua 5.1 (and so Redis) "attempt to call a nil
	// value", which scripts and their callers match on. A __call on those
	// types' shared metatables raises Lua 5.1's message at the caller's
	// line; getmetatable keeps answering nil for them, as in Lua 5.1.
	for _, v := range []lua.LValue{lua.LNil, lua.LFalse, lua.LNumber(0)} {
		mt := L.CreateTable(0, 1)
		mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("attempt to call a %s value", L.Get(1).Type())
			return 0
		}))
		L.SetMetatable(v, mt)
	}
	g.RawSetString("getmetatable", L.NewFunction(func(L *lua.LState) int {
		switch v := L.CheckAny(1); v.Type() {
		case lua.LTNil, lua.LTBool, lua.LTNumber:
			L.Push(lua.LNil)
		default:
			mt := L.GetMetatable(v)
			if mt == lua.LValue(e.noMeta) { // a library's read-only view
				mt = lua.LNil
			}
			L.Push(mt)
		}
		return 1
	}))
	math := g.RawGetString("math").(*lua.LTable)
	// Redis seeds math.random the same way for every script run, so
	// scripts are deterministic; gopher-lua's random is Go's, seeded here
	math.RawSetString("random", L.NewFunction(e.mathRandom))
	math.RawSetString("randomseed", L.NewFunction(e.mathRandomSeed))

	// tostring, tonumber, table.concat, the string functions, math.huge
	// and ".." with Lua 5.1's numbers (lua51num.go)
	e.openNumbers()
	e.openCoercion()

	e.redisRaw = e.redisLib()
	g.RawSetString("redis", e.redisRaw)
	// cjson.new makes an instance with its own settings, as lua-cjson's
	var newCjson func(L *lua.LState) *lua.LTable
	newCjson = func(L *lua.LState) *lua.LTable {
		t := cjsonLib(L)
		t.RawSetString("new", L.NewFunction(func(L *lua.LState) int {
			L.Push(newCjson(L))
			return 1
		}))
		return t
	}
	g.RawSetString("cjson", newCjson(L))
	mp := cmsgpackLib(L)
	mp.RawSetString("_COPYRIGHT", lua.LString("Copyright (C) 2012, Salvatore Sanfilippo"))
	mp.RawSetString("_DESCRIPTION", lua.LString("MessagePack C implementation for Lua"))
	g.RawSetString("cmsgpack", mp)
	g.RawSetString("bit", bitLib(L))
	g.RawSetString("struct", structLib(L))
	// Lua 5.1's collectgarbage and gcinfo over gopher-lua's Go heap (gc.go)
	e.gcPause, e.gcStepMul = 200, 200
	g.RawSetString("collectgarbage", L.NewFunction(e.collectGarbage))
	g.RawSetString("gcinfo", L.NewFunction(e.gcInfo))
	g.RawSetString("setmetatable", L.NewFunction(e.setMetatable))
	g.RawSetString("rawset", L.NewFunction(e.rawSet))
	// next, pairs and rawget see through a read-only view to the table
	// it shows: pairs(_G) lists the globals, rawget(_G, 'redis') finds
	// the library, as in Redis, whose read-only tables are the tables
	// themselves. What they give is what an index already reads; writes
	// still go through the view and are refused.
	see := func(L *lua.LState) {
		if t, ok := L.Get(1).(*lua.LTable); ok {
			if u := e.viewed[t]; u != nil {
				L.Replace(1, u)
			}
		}
	}
	rawget := g.RawGetString("rawget").(*lua.LFunction).GFunction
	g.RawSetString("rawget", L.NewFunction(func(L *lua.LState) int {
		see(L)
		return rawget(L)
	}))
	// the string library is also the strings' metatable (gopher-lua's
	// __index and the __metatable set below), which Redis's is not
	strLib := g.RawGetString("string").(*lua.LTable)
	next := L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		u := e.viewed[t]
		if u == nil {
			u = t
		}
		k := L.Get(2)
		if u != t && k != lua.LNil && u.RawGet(k) == lua.LNil {
			// gopher-lua starts over; Lua 5.1 refuses (a view's table
			// changes under no script's iteration, so it cannot be a
			// field cleared while iterating)
			L.Error(lua.LString("invalid key to 'next'"), 0)
		}
		for {
			var v lua.LValue
			k, v = u.Next(k)
			if u == strLib && (k == lua.LString("__index") || k == lua.LString("__metatable")) {
				continue
			}
			if k == lua.LNil {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(k)
			L.Push(v)
			return 2
		}
	})
	g.RawSetString("next", next)
	g.RawSetString("pairs", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		L.Push(next)
		L.Push(t)
		L.Push(lua.LNil)
		return 3
	}))
	// gopher-lua's own global; Redis has no such name
	g.RawSetString("_GOPHER_LUA_VERSION", lua.LNil)

	// table.insert writes without asking the metatable (as Lua's does):
	// into a read-only view it would add items every later script sees;
	// Redis's read-only tables refuse it
	tbl := g.RawGetString("table").(*lua.LTable)
	insert := tbl.RawGetString("insert").(*lua.LFunction).GFunction
	// Lua 5.1's deprecated table.foreach, foreachi and setn, which
	// Redis's Lua still has (gopher-lua has not)
	tbl.RawSetString("foreach", L.NewFunction(func(L *lua.LState) int {
		t, f := L.CheckTable(1), L.CheckFunction(2)
		if u := e.viewed[t]; u != nil {
			t = u
		}
		for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
			L.Push(f)
			L.Push(k)
			L.Push(v)
			L.Call(2, 1)
			if r := L.Get(-1); r != lua.LNil {
				return 1
			}
			L.Pop(1)
		}
		return 0
	}))
	tbl.RawSetString("foreachi", L.NewFunction(func(L *lua.LState) int {
		t, f := L.CheckTable(1), L.CheckFunction(2)
		if u := e.viewed[t]; u != nil {
			t = u
		}
		n := t.Len()
		for i := 1; i <= n; i++ {
			L.Push(f)
			L.Push(lua.LNumber(i))
			L.Push(t.RawGetInt(i))
			L.Call(2, 1)
			if r := L.Get(-1); r != lua.LNil {
				return 1
			}
			L.Pop(1)
		}
		return 0
	}))
	tbl.RawSetString("setn", L.NewFunction(func(L *lua.LState) int {
		L.Error(lua.LString("'setn' is obsolete"), 0)
		return 0
	}))
	tbl.RawSetString("insert", L.NewFunction(func(L *lua.LState) int {
		if t, ok := L.Get(1).(*lua.LTable); ok && e.readonly[t] {
			L.Error(lua.LString("Attempt to modify a readonly table"), 0)
		}
		return insert(L)
	}))

	// read-only views of the libraries, then of the globals
	e.noMeta = L.CreateTable(0, 0)
	for _, name := range []string{"redis", "cjson", "cmsgpack", "bit", "struct", "string", "math", "table"} {
		if t, ok := g.RawGetString(name).(*lua.LTable); ok {
			g.RawSetString(name, e.readOnly(t, false))
		}
	}
	// The metatable of strings: its __index, the string library, is the
	// library's read-only view, and getmetatable('') answers a read-only
	// view of the metatable. Redis 7.0 hands out both writable, so a
	// script could put its own code behind every later script's string
	// methods; later Redis releases closed that, and so does this.
	if smt, ok := L.GetMetatable(lua.LString("")).(*lua.LTable); ok {
		smt.RawSetString("__index", g.RawGetString("string"))
		smt.RawSetString("__metatable", e.readOnly(smt, false))
	}
	e.globals = g
	e.env = e.readOnly(g, true)
	g.RawSetString("_G", e.env)
	// redis-server 7.0 has no getfenv and setfenv (scripts could reach
	// other code's environments with them), and has its error handler
	// as a global
	g.RawSetString("getfenv", lua.LNil)
	g.RawSetString("setfenv", lua.LNil)
	g.RawSetString("__redis__err__handler", L.NewFunction(errorHandler))
}

// readOnly returns a proxy of t that refuses writes with Redis's "Attempt
// to modify a readonly table"; with strict, reading a missing name is an
// error too (the globals: "Script attempted to access nonexistent global
// variable").
func (e *Engine) readOnly(t *lua.LTable, strict bool) *lua.LTable {
	L := e.L
	proxy := L.CreateTable(0, 0) // never written: all its reads go to mt
	mt := L.CreateTable(0, 3)
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Attempt to modify a readonly table")
		return 0
	}))
	shown := mt // what getmetatable shows
	if strict {
		// a name missing from t is an error. The proxy's lookups go to the
		// table t, whose own metatable raises for a missing name: a present
		// name (redis, KEYS...) is found without calling a function, and
		// the metatable scripts see has that function as __index, so t
		// itself stays out of their reach
		missing := L.NewFunction(func(L *lua.LState) int {
			k := L.Get(2)
			v := t.RawGet(k)
			if v == lua.LNil {
				L.RaiseError("Script attempted to access nonexistent global variable '%s'", lua.LVAsString(k))
			}
			L.Push(v)
			return 1
		})
		tmt := L.CreateTable(0, 1)
		tmt.RawSetString("__index", missing)
		L.SetMetatable(t, tmt)
		shown = L.CreateTable(0, 2)
		shown.RawSetString("__index", missing)
		shown.RawSetString("__newindex", mt.RawGetString("__newindex"))
	}
	L.SetMetatable(proxy, mt)
	e.readonly[proxy] = true
	e.viewed[proxy] = t
	if !strict {
		// getmetatable answers nil for a library, as Redis's read-only
		// tables have no metatable; the metatable itself (whose __index is
		// the library's own table) stays out of scripts' reach
		mt.RawSetString("__metatable", e.noMeta)
		return proxy
	}
	// getmetatable(_G) answers a read-only view of the metatable scripts
	// are shown (Redis's suite writes to it and expects the refusal)
	mtView := L.CreateTable(0, 0)
	mtViewMeta := L.CreateTable(0, 2)
	mtViewMeta.RawSetString("__index", shown)
	mtViewMeta.RawSetString("__newindex", mt.RawGetString("__newindex"))
	L.SetMetatable(mtView, mtViewMeta)
	mt.RawSetString("__metatable", mtView)
	e.readonly[mtView] = true
	return proxy
}

func (e *Engine) setMetatable(L *lua.LState) int {
	t := L.CheckTable(1)
	if e.readonly[t] {
		// without a position, as redis-server 7.0 raises it
		L.Error(lua.LString("Attempt to modify a readonly table"), 0)
	}
	mt := L.Get(2)
	if mt != lua.LNil {
		if _, ok := mt.(*lua.LTable); !ok {
			L.ArgError(2, "nil or table expected")
		}
	}
	if old := L.GetMetatable(t); old != lua.LNil {
		if ot, ok := old.(*lua.LTable); ok && ot.RawGetString("__metatable") != lua.LNil {
			L.RaiseError("cannot change a protected metatable")
		}
	}
	L.SetMetatable(t, mt)
	L.Push(t)
	return 1
}

func (e *Engine) rawSet(L *lua.LState) int {
	t := L.CheckTable(1)
	if e.readonly[t] {
		L.RaiseError("Attempt to modify a readonly table")
	}
	t.RawSet(L.CheckAny(2), L.CheckAny(3))
	L.Push(t)
	return 1
}

// math.random and math.randomseed: Redis's deterministic generator
// (redisLrand48), reseeded before each script.
func (e *Engine) mathRandom(L *lua.LState) int {
	r := float64(e.rand.next()%uint64(1<<31)) / float64(uint64(1)<<31)
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(r))
	case 1:
		u := L.CheckInt(1)
		if u < 1 {
			L.ArgError(1, "interval is empty")
		}
		L.Push(lua.LNumber(int(r*float64(u)) + 1))
	default:
		l, u := L.CheckInt(1), L.CheckInt(2)
		if l > u {
			L.ArgError(2, "interval is empty")
		}
		L.Push(lua.LNumber(int(r*float64(u-l+1)) + l))
	}
	return 1
}

func (e *Engine) mathRandomSeed(L *lua.LState) int {
	// Lua 5.1's luaL_checkint takes numeric strings too
	n, ok := L.Get(1).(lua.LNumber)
	if !ok {
		s, isStr := L.Get(1).(lua.LString)
		f, err := strconv.ParseFloat(strings.TrimSpace(string(s)), 64)
		if !isStr || err != nil {
			L.ArgError(1, "number expected, got "+L.Get(1).Type().String())
		}
		n = lua.LNumber(f)
	}
	e.rand.seed(int32(int64(n)))
	return 0
}

// lrand48 is the 48-bit linear congruential generator Redis's Lua uses.
type lrand48 struct{ x uint64 }

func (r *lrand48) seed(s int32) { r.x = (uint64(uint32(s)) << 16) | 0x330e }

func (r *lrand48) next() uint64 {
	r.x = (r.x*0x5deece66d + 0xb) & (1<<48 - 1)
	return r.x >> 17
}

// argString converts a redis.call argument: strings as they are, numbers
// as redis-server 7.0 prints them ("%.17g").
func argString(v lua.LValue) ([]byte, bool) {
	switch x := v.(type) {
	case lua.LString:
		// the string's own bytes, without a copy: the commands of the
		// server neither change their arguments nor keep them (a client's
		// arguments point into its read buffer, which the next command
		// overwrites)
		if len(x) == 0 {
			return []byte{}, true
		}
		return unsafe.Slice(unsafe.StringData(string(x)), len(x)), true
	case lua.LNumber:
		// redis-server 7.0 formats with "%.17g" (7.2 with fpconv_dtoa's
		// shortest form)
		return argNumber(float64(x)), true
	}
	return nil, false
}
