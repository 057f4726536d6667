package script

import (
	"math"
	"reflect"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// collectgarbage and gcinfo as Lua 5.1 has them in Redis. gopher-lua's
// values live on the Go heap and Go's collector frees them; there is no
// Lua collector to run, stop or tune. So:
//
//   - "count" (and gcinfo, its whole KB) is an estimate of the Go heap the
//     state holds: its stack and call frames, and the values reachable
//     from the globals, the registry, the stack (a running script's
//     locals) and the cached scripts, walked up to gcWalkLimit values
//     (past that, the rest is not counted: a call costs a few
//     milliseconds at most). Garbage is not counted: the answer is what
//     Lua 5.1 would answer right after a full collection.
//   - "collect", "stop" and "restart" change nothing and answer 0, as they
//     do in Redis. ("collect" does not run Go's collector: that would stop
//     every client's commands, not one script's garbage.)
//   - "step" answers whether a cycle finished: true when given a size
//     (what redis-server 7.0.15 answers for its small heap), false for 0.
//   - "setpause" and "setstepmul" keep their value per Lua state (200,
//     Lua 5.1's defaults) and answer the previous one, with no effect.
//
// Neither calls Lua code, and each call costs at most the bounded walk.
const gcWalkLimit = 1 << 18

func (e *Engine) collectGarbage(L *lua.LState) int {
	opt := "collect"
	switch v := L.Get(1).(type) {
	case *lua.LNilType:
	case lua.LString:
		opt = string(v)
	case lua.LNumber:
		opt = lua51Number(float64(v))
	default:
		L.TypeError(1, lua.LTString)
	}
	ex := 0
	if v := L.Get(2); v != lua.LNil {
		n, ok := toNumber(v)
		if !ok {
			L.TypeError(2, lua.LTNumber)
		}
		ex = int(int32(structWord(n)))
	}
	switch opt {
	case "count":
		L.Push(lua.LNumber(float64(e.luaMemory()) / 1024))
	case "step":
		L.Push(lua.LBool(ex > 0))
	case "setpause":
		L.Push(lua.LNumber(e.gcPause))
		e.gcPause = ex
	case "setstepmul":
		L.Push(lua.LNumber(e.gcStepMul))
		e.gcStepMul = ex
	case "stop", "restart", "collect":
		L.Push(lua.LNumber(0))
	default:
		L.ArgError(1, "invalid option '"+opt+"'")
	}
	return 1
}

func (e *Engine) gcInfo(L *lua.LState) int {
	L.Push(lua.LNumber(e.luaMemory() >> 10))
	return 1
}

// Approximate Go heap sizes (64-bit) of gopher-lua's values.
const (
	sizeValue    = 16  // an LValue slot (interface)
	sizeTable    = 128 // LTable and its maps' headers
	sizeEntry    = 48  // a table entry (key, value, map overhead)
	sizeFunction = 96  // LFunction, its environment pointer
	sizeUpvalue  = 48
	sizeFrame    = 144 // a call frame
	sizeState    = 512 // LState, its allocator
)

// luaMemory estimates the bytes the Lua state holds (see collectGarbage).
func (e *Engine) luaMemory() int64 {
	w := &memWalk{budget: gcWalkLimit, seen: make(map[any]bool), protos: make(map[*lua.FunctionProto]bool)}
	w.thread(e.L)
	w.value(e.globals)
	w.value(e.L.G.Registry)
	for _, s := range e.scripts {
		w.value(s.fn)
		w.n += int64(len(s.Body))
	}
	return w.n
}

type memWalk struct {
	n      int64
	budget int // values left to walk
	seen   map[any]bool
	protos map[*lua.FunctionProto]bool
	stack  []lua.LValue
}

// value counts root and what it reaches (and what is queued).
func (w *memWalk) value(root lua.LValue) {
	w.push(root)
	for len(w.stack) > 0 {
		v := w.stack[len(w.stack)-1]
		w.stack = w.stack[:len(w.stack)-1]
		switch x := v.(type) {
		case lua.LString:
			w.n += sizeValue + int64(len(x))
		case lua.LNumber:
			w.n += 8
		case *lua.LTable:
			if !w.visit(x) {
				continue
			}
			w.n += sizeTable
			w.push(x.Metatable)
			for k, v := x.Next(lua.LNil); k != lua.LNil && w.budget > 0; k, v = x.Next(k) {
				w.budget--
				w.n += sizeEntry
				w.push(k)
				w.push(v)
			}
		case *lua.LFunction:
			if !w.visit(x) {
				continue
			}
			w.n += sizeFunction + int64(len(x.Upvalues))*sizeUpvalue
			for _, uv := range x.Upvalues {
				w.push(uv.Value())
			}
			if x.Proto != nil {
				w.proto(x.Proto)
			}
		case *lua.LUserData:
			if w.visit(x) {
				w.n += 64
				w.push(x.Metatable)
			}
		case *lua.LState:
			if w.visit(x) {
				w.thread(x)
			}
		}
	}
}

// push queues v unless the walk is out of budget.
func (w *memWalk) push(v lua.LValue) {
	if v == nil || v == lua.LNil || w.budget <= 0 {
		return
	}
	w.budget--
	switch v.(type) {
	case *lua.LTable, *lua.LFunction, *lua.LUserData, *lua.LState:
		w.stack = append(w.stack, v)
	default:
		w.value2(v)
	}
}

// value2 counts a value that holds no other (string, number, boolean).
func (w *memWalk) value2(v lua.LValue) {
	switch x := v.(type) {
	case lua.LString:
		w.n += sizeValue + int64(len(x))
	case lua.LNumber:
		w.n += 8
	}
}

func (w *memWalk) visit(x any) bool {
	if w.seen[x] {
		return false
	}
	w.seen[x] = true
	return true
}

func (w *memWalk) proto(p *lua.FunctionProto) {
	if w.protos[p] || w.budget <= 0 {
		return
	}
	w.budget--
	w.protos[p] = true
	w.n += 256 + int64(len(p.Code))*4 + int64(len(p.DbgSourcePositions))*4 + int64(len(p.Constants))*sizeValue
	for _, c := range p.Constants {
		w.value2(c)
	}
	for _, sub := range p.FunctionPrototypes {
		w.proto(sub)
	}
}

// thread counts a state's stack and frames, and the values on its stack.
func (w *memWalk) thread(L *lua.LState) {
	w.n += sizeState + int64(L.Options.CallStackSize)*sizeFrame
	slots, live := registryOf(L)
	w.n += int64(cap(slots)) * sizeValue
	for _, v := range slots[:live] {
		w.push(v)
	}
}

// registryLayout: gopher-lua keeps a state's stack (its registry: a slice
// and the top) unexported; the offsets are looked up by reflection once,
// and when the layout is not the expected one the stack's values are not
// counted.
var registryLayout = func() (l struct {
	ok              bool
	reg, array, top uintptr
}) {
	f, ok := reflect.TypeOf(lua.LState{}).FieldByName("reg")
	if !ok || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct {
		return
	}
	a, ok1 := f.Type.Elem().FieldByName("array")
	t, ok2 := f.Type.Elem().FieldByName("top")
	if !ok1 || !ok2 || a.Type != reflect.TypeOf([]lua.LValue(nil)) || t.Type.Kind() != reflect.Int {
		return
	}
	l.ok, l.reg, l.array, l.top = true, f.Offset, a.Offset, t.Offset
	return
}()

// registryOf returns a state's stack slots and how many are in use.
func registryOf(L *lua.LState) ([]lua.LValue, int) {
	if !registryLayout.ok {
		return nil, 0
	}
	p := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(L), registryLayout.reg))
	if p == nil {
		return nil, 0
	}
	slots := *(*[]lua.LValue)(unsafe.Add(p, registryLayout.array))
	top := *(*int)(unsafe.Add(p, registryLayout.top))
	return slots, int(math.Max(0, math.Min(float64(top), float64(len(slots)))))
}
