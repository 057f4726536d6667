package script

import (
	"math"
	"reflect"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// Lua 5.1 reads a string where it wants a number (luaV_tonumber: the
// arithmetic operators, unary minus, the numeric for, luaL_checknumber
// in the libraries) with luaO_str2d, as tonumber does (str2number).
// gopher-lua reads it with Go's parsers, which take "0b11", "1_000" and
// "0o7" and refuse some Lua 5.1 takes ("1e500", "0x.8", a trailing
// "\v"); its numeric for and several library functions take no string.
// The VM's handlers of OP_ADD..OP_POW, OP_UNM and OP_FORPREP are
// wrapped in gopher-lua's jump table (as OP_CONCAT's, lua51num.go):
// numbers, tables and the rest go to gopher-lua's handler unchanged, a
// string operand is read here.

// The offsets of LState's current call frame and registers, of the
// frame's function and local base, and of the registers' array in
// gopher-lua v1.1.2 on 64-bit platforms: an instruction's operands are
// read as gopher-lua's rkValue reads them (the frame's function holds
// the constants RK operands name), with constants, as the handlers run
// for every arithmetic instruction. vmOK checks them by reflection at
// start; when gopher-lua's layout is another, its handlers stay.
const (
	offFrame     = 120
	offReg       = 88
	offArray     = 0
	offFn        = 8
	offLocalBase = 40
)

var vmOK = func() bool {
	st := reflect.TypeOf(lua.LState{})
	f, ok1 := st.FieldByName("currentFrame")
	d, ok2 := reflect.TypeOf(lua.Debug{}).FieldByName("frame")
	r, ok3 := st.FieldByName("reg")
	if !ok1 || !ok2 || !ok3 || f.Type != d.Type || r.Type.Kind() != reflect.Pointer {
		return false
	}
	a, ok4 := r.Type.Elem().FieldByName("array")
	fn, ok5 := f.Type.Elem().FieldByName("Fn")
	lb, ok6 := f.Type.Elem().FieldByName("LocalBase")
	return ok4 && ok5 && ok6 && a.Type == reflect.TypeOf([]lua.LValue(nil)) &&
		fn.Type == reflect.TypeOf((*lua.LFunction)(nil)) && lb.Type.Kind() == reflect.Int &&
		f.Offset == offFrame && r.Offset == offReg && a.Offset == offArray && fn.Offset == offFn && lb.Offset == offLocalBase
}()

// rk is an instruction's RK operand in the running Lua function: a
// constant or a register.
func rk(L *lua.LState, x int) lua.LValue {
	cf := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(L), offFrame))
	if x&opBitRK != 0 {
		fn := *(**lua.LFunction)(unsafe.Add(cf, offFn))
		return fn.Proto.Constants[x&^opBitRK]
	}
	rg := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(L), offReg))
	return (*(*[]lua.LValue)(unsafe.Add(rg, offArray)))[*(*int)(unsafe.Add(cf, offLocalBase))+x]
}

// setReg sets register a of the running function, raising gopher-lua's
// top to it as the VM's own stores do (registers at and above the top
// are free).
func setReg(L *lua.LState, a int, v lua.LValue) {
	if L.GetTop() <= a {
		L.SetTop(a + 1)
	}
	L.Replace(a+1, v)
}

// toNumber is luaV_tonumber (and lua_isnumber/lua_tonumber): a number,
// or a string Lua 5.1 reads as one.
func toNumber(v lua.LValue) (float64, bool) {
	switch x := v.(type) {
	case lua.LNumber:
		return float64(x), true
	case lua.LString:
		return str2number(string(x))
	}
	return 0, false
}

var arithEvents = [...]string{
	lua.OP_ADD: "__add", lua.OP_SUB: "__sub", lua.OP_MUL: "__mul",
	lua.OP_DIV: "__div", lua.OP_MOD: "__mod", lua.OP_POW: "__pow", lua.OP_UNM: "__unm",
}

// arith is gopher-lua's arithmetic on numbers (numberArith), so that a
// string operand gives what the number it reads as gives.
func arith(op int, a, b float64) float64 {
	switch op {
	case lua.OP_ADD:
		return a + b
	case lua.OP_SUB:
		return a - b
	case lua.OP_MUL:
		return a * b
	case lua.OP_DIV:
		return a / b
	case lua.OP_MOD:
		v := math.Mod(a, b)
		if b > 0 && v < 0 || b < 0 && v > 0 {
			v += b
		}
		return v
	}
	return math.Pow(a, b)
}

func init() {
	if !vmOK || luaJumpTable[lua.OP_ADD] == nil {
		return
	}
	for op := lua.OP_ADD; op <= lua.OP_POW; op++ {
		orig := luaJumpTable[op]
		luaJumpTable[op] = func(L *lua.LState, inst uint32, frame unsafe.Pointer) int {
			_, s1 := rk(L, int(inst&0x1ff)).(lua.LString)
			_, s2 := rk(L, int(inst>>9)&0x1ff).(lua.LString)
			if s1 || s2 {
				return arithString(L, inst, frame, orig)
			}
			return orig(L, inst, frame)
		}
	}
	unm := luaJumpTable[lua.OP_UNM]
	luaJumpTable[lua.OP_UNM] = func(L *lua.LState, inst uint32, frame unsafe.Pointer) int {
		s, ok := rk(L, int(inst&0x1ff)).(lua.LString)
		if !ok || hasMeta(L, s, s, "__unm") {
			return unm(L, inst, frame)
		}
		f, ok := str2number(string(s))
		if !ok {
			L.RaiseError("__unm undefined")
		}
		setReg(L, int(inst>>18)&0xff, lua.LNumber(-f))
		return 0
	}
	forprep := luaJumpTable[lua.OP_FORPREP]
	luaJumpTable[lua.OP_FORPREP] = func(L *lua.LState, inst uint32, frame unsafe.Pointer) int {
		// lvm.c's OP_FORPREP: each of the loop's three registers a
		// number, a string converted in place, else Lua 5.1's message
		a := int(inst>>18) & 0xff
		for i, what := range [...]string{"initial value", "limit", "step"} {
			v := L.Get(a + i + 1)
			if _, ok := v.(lua.LNumber); ok {
				continue
			}
			f, ok := toNumber(v)
			if !ok {
				L.RaiseError("'for' %s must be a number", what)
			}
			L.Replace(a+i+1, lua.LNumber(f))
		}
		return forprep(L, inst, frame)
	}
}

// arithString runs an arithmetic instruction with a string operand
// (kept out of the handler, which every arithmetic instruction runs).
//
//go:noinline
func arithString(L *lua.LState, inst uint32, frame unsafe.Pointer, orig func(*lua.LState, uint32, unsafe.Pointer) int) int {
	op := int(inst >> 26)
	lhs, rhs := rk(L, int(inst&0x1ff)), rk(L, int(inst>>9)&0x1ff)
	a, ok1 := toNumber(lhs)
	b, ok2 := toNumber(rhs)
	if ok1 && ok2 {
		setReg(L, int(inst>>18)&0xff, lua.LNumber(arith(op, a, b)))
		return 0
	}
	event := arithEvents[op]
	if !isArithOperand(lhs) || !isArithOperand(rhs) || hasMeta(L, lhs, rhs, event) {
		// a metamethod, or an error that names the table or nil
		return orig(L, inst, frame)
	}
	// gopher-lua's text, which errorText makes Lua 5.1's
	L.RaiseError("cannot perform %s operation between %s and %s", event[2:], lhs.Type(), rhs.Type())
	return 0
}

func isArithOperand(v lua.LValue) bool {
	switch v.(type) {
	case lua.LNumber, lua.LString:
		return true
	}
	return false
}

// hasMeta reports whether lhs or rhs has the metamethod event (the
// string metatable can be given one).
func hasMeta(L *lua.LState, lhs, rhs lua.LValue, event string) bool {
	return L.GetMetaField(lhs, event) != lua.LNil || L.GetMetaField(rhs, event) != lua.LNil
}

// numberArgs wraps a library function whose arguments from first to last
// (0: all) Lua 5.1 reads with luaL_checknumber: a string is read as
// str2number does, and one that is no number is the argument's error
// (unless an argument before it is of another wrong type, which the
// function's own check names first).
func numberArgs(orig lua.LGFunction, first, last int) lua.LGFunction {
	return func(L *lua.LState) int {
		top := L.GetTop()
		if last > 0 && top > last {
			top = last
		}
		other := false
		for i := first; i <= top; i++ {
			switch x := L.Get(i).(type) {
			case lua.LNumber:
			case lua.LString:
				f, ok := str2number(string(x))
				if !ok {
					if other {
						return orig(L)
					}
					L.TypeError(i, lua.LTNumber)
				}
				L.Replace(i, lua.LNumber(f))
			default:
				// nil (an optional argument, or the function's error)
				// or another type
				other = true
			}
		}
		return orig(L)
	}
}

// openCoercion wraps the library functions that take numbers: all of
// math's, select's count, unpack's range, table.insert's position (with
// three arguments) and table.remove's.
func (e *Engine) openCoercion() {
	L := e.L
	g := L.G.Global
	wrap := func(t *lua.LTable, name string, first, last int) {
		if fn, ok := t.RawGetString(name).(*lua.LFunction); ok && fn.IsG {
			t.RawSetString(name, L.NewFunction(numberArgs(fn.GFunction, first, last)))
		}
	}
	mt := g.RawGetString("math").(*lua.LTable)
	var names []string
	mt.ForEach(func(k, _ lua.LValue) {
		if name, ok := k.(lua.LString); ok {
			names = append(names, string(name))
		}
	})
	for _, name := range names {
		wrap(mt, name, 1, 0)
	}
	wrap(g, "unpack", 2, 3)
	table := g.RawGetString("table").(*lua.LTable)
	wrap(table, "remove", 2, 2)
	if fn, ok := table.RawGetString("insert").(*lua.LFunction); ok && fn.IsG {
		insert := numberArgs(fn.GFunction, 2, 2)
		table.RawSetString("insert", L.NewFunction(func(L *lua.LState) int {
			if L.GetTop() == 3 {
				return insert(L)
			}
			return fn.GFunction(L)
		}))
	}
	if fn, ok := g.RawGetString("select").(*lua.LFunction); ok && fn.IsG {
		sel := numberArgs(fn.GFunction, 1, 1)
		g.RawSetString("select", L.NewFunction(func(L *lua.LState) int {
			if s, ok := L.Get(1).(lua.LString); ok && s == "#" {
				return fn.GFunction(L)
			}
			return sel(L)
		}))
	}
}

// toNumberOr0 is lua_tonumber: 0 for a value that is no number.
func toNumberOr0(v lua.LValue) float64 {
	f, _ := toNumber(v)
	return f
}

// checkInt is luaL_checkint: a number or a numeric string, as a C int.
func checkInt(L *lua.LState, n int) int {
	return int(cLong(checkNumber(L, n)))
}
