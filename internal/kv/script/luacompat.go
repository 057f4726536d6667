package script

import (
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// This file brings gopher-lua closer to the Lua 5.1 of redis-server
// 7.0.15: the coroutine library and load (with the sandbox's guarantees),
// and Lua 5.1's texts for runtime errors (luaErrorText), mapped here
// without changing gopher-lua.

// openCompat adds coroutine and load, and replaces error, pcall and
// xpcall by versions that give Lua 5.1's error texts. Called by openLibs
// before the globals are made read-only.
func (e *Engine) openCompat() {
	L := e.L
	g := L.G.Global

	// gopher-lua's coroutine functions, used through wrappers: create
	// must not run with a context (gopher-lua would derive one with
	// context.WithCancel, whose goroutine lives as long as the script's
	// context, per coroutine), and resume gives the thread the context of
	// the code that resumes it, so a script spinning inside a coroutine
	// is stopped by SCRIPT KILL, FUNCTION KILL and the timeout as the
	// script itself is. A thread holds no goroutine and no context while
	// it is suspended: one left suspended is garbage once unreferenced.
	L.Push(L.NewFunction(lua.OpenCoroutine))
	L.Call(0, 1)
	orig := L.Get(-1).(*lua.LTable)
	L.Pop(1)
	g.RawSetString("coroutine", lua.LNil) // OpenCoroutine registered it
	goFn := func(name string) lua.LGFunction {
		return orig.RawGetString(name).(*lua.LFunction).GFunction
	}
	coCreate, coResume := goFn("create"), goFn("resume")
	create := func(L *lua.LState) int {
		ctx := L.RemoveContext()
		defer func() {
			if ctx != nil {
				L.SetContext(ctx)
			}
		}()
		return coCreate(L)
	}
	// resume runs th from the arguments on L's stack (th first) and leaves
	// (ok, values...) or (false, message) in their place
	resume := func(L *lua.LState) int {
		th, ok := L.Get(1).(*lua.LState)
		if !ok {
			L.ArgError(1, "coroutine expected")
		}
		if th.Dead {
			L.SetTop(0)
			L.Push(lua.LFalse)
			L.Push(lua.LString("cannot resume dead coroutine"))
			return 2
		}
		if ctx := L.Context(); ctx != nil {
			th.SetContext(ctx)
		} else {
			th.RemoveContext()
		}
		n := coResume(L)
		th.RemoveContext()
		if n == 2 && L.Get(-2) == lua.LFalse {
			if s, ok := L.Get(-1).(lua.LString); ok {
				L.Pop(1)
				L.Push(lua.LString(luaErrorText(string(s))))
			}
		}
		return n
	}
	co := L.CreateTable(0, 0) // its map is made at the first name, for 32
	co.RawSetString("create", L.NewFunction(create))
	co.RawSetString("resume", L.NewFunction(resume))
	yield := goFn("yield")
	co.RawSetString("yield", L.NewFunction(func(L *lua.LState) int {
		if L.Parent == nil {
			// Lua 5.1 (and Redis) say this of a yield outside a coroutine
			L.Error(lua.LString("attempt to yield across metamethod/C-call boundary"), 0)
		}
		return yield(L)
	}))
	for _, name := range []string{"status", "running"} {
		co.RawSetString(name, orig.RawGetString(name))
	}
	co.RawSetString("wrap", L.NewFunction(func(L *lua.LState) int {
		L.CheckFunction(1)
		L.SetTop(1)
		create(L)
		th := L.Get(-1)
		L.Push(L.NewClosure(func(L *lua.LState) int {
			L.Insert(L.Get(lua.UpvalueIndex(1)), 1)
			n := resume(L)
			if L.Get(-n) == lua.LFalse {
				// Lua 5.1's auxwrap: the error goes on, a message with
				// the caller's position before it
				L.Error(L.Get(-1), 1)
			}
			return n - 1
		}, th))
		return 1
	}))
	g.RawSetString("coroutine", co)

	// load(func [, chunkname]): Lua 5.1's, reading pieces from func until
	// it returns nil or an empty string; the chunk runs in the script's
	// read-only globals, as loadstring's
	g.RawSetString("load", L.NewFunction(func(L *lua.LState) int {
		f := L.CheckFunction(1)
		name := L.OptString(2, "=(load)")
		r := &chunkReader{L: L, f: f}
		fn, err := L.Load(r, chunkID(name))
		if r.err != "" {
			L.Push(lua.LNil)
			L.Push(lua.LString(r.err))
			return 2
		}
		return e.pushLoaded(L, fn, err)
	}))
	g.RawSetString("loadstring", L.NewFunction(func(L *lua.LState) int {
		src := L.CheckString(1)
		return e.loadChunk(L, src, L.OptString(2, src))
	}))

	// error(): Lua 5.1 raises whatever it is given, nil too; a string or
	// a number gets the position of the function at the level asked
	// for, none when that is not Lua code (error('x', 2) in the
	// script's body: its caller is the server)
	errorFn := L.NewFunction(func(L *lua.LState) int {
		v := L.Get(1)
		level := optInt(L, 2, 1)
		switch x := v.(type) {
		case lua.LString:
			if level > 0 {
				v = lua.LString(where(L, level) + string(x))
			}
		case lua.LNumber:
			if level > 0 {
				v = lua.LString(where(L, level) + luaNumber(float64(x)))
			}
		}
		L.Error(v, 0)
		return 0
	})
	g.RawSetString("error", errorFn)
	// pcall and xpcall: the message of an error the VM raised is mapped to
	// Lua 5.1's text while its frame is still there (errorText)
	var mapper *lua.LFunction
	mapper = L.NewFunction(func(L *lua.LState) int {
		L.Push(errorValue(L, goCaller(L, mapper, errorFn, L.Get(1))))
		return 1
	})
	g.RawSetString("pcall", L.NewFunction(func(L *lua.LState) int {
		L.CheckAny(1)
		v := L.Get(1)
		if v.Type() != lua.LTFunction && L.GetMetaField(v, "__call").Type() != lua.LTFunction {
			L.Push(lua.LFalse)
			L.Push(lua.LString("attempt to call a " + v.Type().String() + " value"))
			return 2
		}
		if err := L.PCall(L.GetTop()-1, lua.MultRet, mapper); err != nil {
			L.Push(lua.LFalse)
			L.Push(caught(apiErrorValue(err)))
			return 2
		}
		L.Insert(lua.LTrue, 1)
		return L.GetTop()
	}))
	g.RawSetString("xpcall", L.NewFunction(func(L *lua.LState) int {
		fn := L.CheckFunction(1)
		handler := L.CheckFunction(2)
		top := L.GetTop()
		L.Push(fn)
		var h *lua.LFunction
		h = L.NewFunction(func(L *lua.LState) int {
			v := errorValue(L, goCaller(L, h, errorFn, L.Get(1)))
			L.Push(handler)
			L.Push(v)
			L.Call(1, 1)
			return 1
		})
		if err := L.PCall(0, lua.MultRet, h); err != nil {
			L.Push(lua.LFalse)
			L.Push(apiErrorValue(err))
			return 2
		}
		L.Insert(lua.LTrue, top+1)
		return L.GetTop() - top
	}))
}

// caught is the value pcall hands to the script for an error: an error
// table (a table with an err field: redis.call's, error({err=...}))
// becomes its err field, as in redis-server 7.0 (xpcall's handler and
// coroutine.resume get the table).
func caught(v lua.LValue) lua.LValue {
	if t, ok := v.(*lua.LTable); ok {
		if err := t.RawGetString("err"); err != lua.LNil {
			return err
		}
	}
	return v
}

// where is luaL_where: "source:line: " of the function at level (1: the
// caller of the Go function running), or nothing when that is not Lua
// code.
func where(L *lua.LState, level int) string {
	dbg, ok := L.GetStack(level)
	if !ok {
		return ""
	}
	if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil || dbg.What == "G" || dbg.CurrentLine <= 0 {
		return ""
	}
	return dbg.Source + ":" + strconv.Itoa(dbg.CurrentLine) + ": "
}

// goCaller drops the position gopher-lua puts before the message of an
// error a Go function raised when that function was called by another
// Go function (pcall(string.rep)): gopher-lua names the nearest Lua
// frame, Lua 5.1 the caller (luaL_where(L, 1)), which has no line. It
// runs in the error handler h, while the frames are there. error
// (errorFn) puts its own position, from the level it is given.
func goCaller(L *lua.LState, h, errorFn *lua.LFunction, v lua.LValue) lua.LValue {
	s, ok := v.(lua.LString)
	if !ok {
		return v
	}
	var fns [2]*lua.LFunction
	n := 0
	for lvl := 0; n < 2 && lvl < 8; lvl++ {
		dbg, ok := L.GetStack(lvl)
		if !ok {
			return v
		}
		fn, _, _, ok := frameOf(dbg)
		if !ok {
			return v
		}
		if fn == h && n == 0 {
			continue
		}
		fns[n] = fn
		n++
	}
	if n < 2 || fns[0] == errorFn || !fns[0].IsG || !fns[1].IsG {
		return v
	}
	if pos, body := splitPosition(string(s)); pos != "" {
		return lua.LString(body)
	}
	return v
}

// chunkReader reads a chunk for load from its reader function, as the
// parser asks for more (a syntax error stops the reading, as in Lua 5.1).
// An error of the function or a piece that is not a string ends the
// chunk; err is then load's message.
type chunkReader struct {
	L     *lua.LState
	f     *lua.LFunction
	buf   string
	err   string
	first bool
	done  bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.buf == "" {
		if r.done {
			return 0, io.EOF
		}
		r.L.Push(r.f)
		if err := r.L.PCall(0, 1, nil); err != nil {
			r.err, r.done = lua.LVAsString(apiErrorValue(err)), true
			return 0, io.EOF
		}
		v := r.L.Get(-1)
		r.L.Pop(1)
		switch x := v.(type) {
		case lua.LString:
			r.buf = string(x)
		case lua.LNumber:
			r.buf = x.String()
		case *lua.LNilType:
		default:
			r.err = "reader function must return a string"
		}
		if r.buf == "" {
			r.done = true
			continue
		}
		if !r.first && r.buf[0] == 27 {
			r.err, r.buf, r.done = "binary chunks are not allowed", "", true
		}
		r.first = true
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func apiErrorValue(err error) lua.LValue {
	var aerr *lua.ApiError
	if errors.As(err, &aerr) {
		return aerr.Object
	}
	return lua.LString(err.Error())
}

// loadChunk compiles src for loadstring and load: text only (Redis
// refuses binary chunks, which gopher-lua cannot load anyway), run in the
// read-only globals, named as Lua 5.1 names chunks in messages.
func (e *Engine) loadChunk(L *lua.LState, src, name string) int {
	if len(src) > 0 && src[0] == 27 {
		L.Push(lua.LNil)
		L.Push(lua.LString("binary chunks are not allowed"))
		return 2
	}
	fn, err := L.Load(strings.NewReader(src), chunkID(name))
	return e.pushLoaded(L, fn, err)
}

// pushLoaded pushes what load and loadstring return: the compiled chunk,
// set to run in the read-only globals, or nil and the compiler's message.
func (e *Engine) pushLoaded(L *lua.LState, fn *lua.LFunction, err error) int {
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(compileMsg(err)))
		return 2
	}
	fn.Env = e.env
	L.Push(fn)
	return 1
}

// chunkID is Lua 5.1's luaO_chunkid: "=name" and "@file" shown as name
// and file, source text as [string "first line..."].
func chunkID(source string) string {
	const idsize = 60 - 15 // LUA_IDSIZE less [string "..."]
	switch {
	case strings.HasPrefix(source, "="):
		return source[1:]
	case strings.HasPrefix(source, "@"):
		return source[1:]
	}
	line, _, cut := strings.Cut(source, "\n")
	if len(line) > idsize {
		line, cut = line[:idsize], true
	}
	if cut {
		return `[string "` + line + `..."]`
	}
	return `[string "` + line + `"]`
}

// errorValue maps an error value raised in L (whose frames are still
// there) to Lua 5.1's text.
func errorValue(L *lua.LState, v lua.LValue) lua.LValue {
	if s, ok := v.(lua.LString); ok {
		return lua.LString(errorText(L, string(s)))
	}
	return v
}

// Frame access: lua.Debug keeps the frame it describes unexported, and
// the frame's pc and argument count are what Lua 5.1's messages need
// (the instruction that failed, "no value" for a missing argument).
// Their offsets are looked up by reflection once; when gopher-lua's
// layout is not the expected one, messages keep their plain form.
var frameLayout = func() (l struct {
	ok           bool
	pc, fn, narg uintptr
}) {
	f, ok := reflect.TypeOf(lua.Debug{}).FieldByName("frame")
	if !ok || f.Offset != 0 || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct {
		return
	}
	ft := f.Type.Elem()
	pc, ok1 := ft.FieldByName("Pc")
	fn, ok2 := ft.FieldByName("Fn")
	na, ok3 := ft.FieldByName("NArgs")
	if !ok1 || !ok2 || !ok3 || pc.Type.Kind() != reflect.Int || na.Type.Kind() != reflect.Int ||
		fn.Type != reflect.TypeOf((*lua.LFunction)(nil)) {
		return
	}
	l.ok, l.pc, l.fn, l.narg = true, pc.Offset, fn.Offset, na.Offset
	return
}()

// frameOf returns the function, pc and argument count of a frame.
func frameOf(d *lua.Debug) (fn *lua.LFunction, pc, nargs int, ok bool) {
	if !frameLayout.ok {
		return nil, 0, 0, false
	}
	p := *(*unsafe.Pointer)(unsafe.Pointer(d))
	if p == nil {
		return nil, 0, 0, false
	}
	fn = *(**lua.LFunction)(unsafe.Add(p, frameLayout.fn))
	return fn, *(*int)(unsafe.Add(p, frameLayout.pc)), *(*int)(unsafe.Add(p, frameLayout.narg)), fn != nil
}

// errorText maps gopher-lua's text of a runtime error to Lua 5.1's
// (redis-server's), using the frame where it was raised to name the
// value as Lua 5.1 does ("local 'x'", "global 'f'", "field 'k'",
// "method 'm'", "upvalue 'u'"). docs/kv.md has the table.
func errorText(L *lua.LState, msg string) string {
	pos, body := splitPosition(msg)
	if strings.HasPrefix(body, "bad argument #") {
		return pos + badArgument(L, body)
	}
	// the innermost Lua frame is where the VM raised it
	var dbg *lua.Debug
	for lvl := 0; lvl < 8; lvl++ {
		d, ok := L.GetStack(lvl)
		if !ok {
			break
		}
		if fn, _, _, ok := frameOf(d); ok && !fn.IsG {
			dbg = d
			break
		}
	}
	if dbg == nil {
		return pos + luaErrorBody(body, "", "")
	}
	fn, pc, _, _ := frameOf(dbg)
	what, name, typ := culprit(L, dbg, fn, pc-1)
	if typ == "" {
		return pos + luaErrorBody(body, "", "")
	}
	return pos + luaErrorBody(body, describe(what, name), typ)
}

// luaErrorText is errorText without a frame (the types are the
// message's; no names).
func luaErrorText(msg string) string {
	pos, body := splitPosition(msg)
	return pos + luaErrorBody(body, "", "")
}

// splitPosition splits "source:line: message" at the message.
func splitPosition(msg string) (string, string) {
	// a position is "<name>:<digits>: "
	for i := 0; i+2 < len(msg); i++ {
		if msg[i] != ':' {
			continue
		}
		j := i + 1
		for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
			j++
		}
		if j > i+1 && j+1 < len(msg) && msg[j] == ':' && msg[j+1] == ' ' {
			return msg[:j+2], msg[j+2:]
		}
		return "", msg
	}
	return "", msg
}

func describe(what, name string) string {
	if what == "" {
		return ""
	}
	return what + " '" + name + "' "
}

// luaErrorBody maps one message; named is "local 'x' " (or empty) and typ
// the culprit's type when the frame told them.
func luaErrorBody(body, named, typ string) string {
	value := func(t string) string {
		if named != "" && (typ == "" || typ == t) {
			return named + "(a " + t + " value)"
		}
		return "a " + t + " value"
	}
	switch {
	case strings.HasPrefix(body, "attempt to index a non-table object("):
		t, _, ok := strings.Cut(body[len("attempt to index a non-table object("):], ")")
		if ok {
			return "attempt to index " + value(t)
		}
	case body == "attempt to call a non-function object" && typ != "":
		return "attempt to call " + value(typ)
	case strings.HasPrefix(body, "attempt to call a ") && strings.HasSuffix(body, " value") && named != "":
		// the __call of nil, booleans and numbers (openLibs) raised it;
		// the register holds that __call now, the message has the type
		return "attempt to call " + named + "(a " + strings.TrimSuffix(body[len("attempt to call a "):], " value") + " value)"
	case body == "__unm undefined" && typ != "":
		return "attempt to perform arithmetic on " + value(typ)
	case body == "__len undefined" && typ != "":
		return "attempt to get length of " + value(typ)
	case strings.HasPrefix(body, "cannot perform ") && strings.Contains(body, " operation between "):
		op, rest, _ := strings.Cut(body[len("cannot perform "):], " operation between ")
		a, b, ok := strings.Cut(rest, " and ")
		if !ok {
			break
		}
		if op == "concat" {
			// Lua 5.1 names the first of the pair that is not a string
			// or a number
			t := a
			if a == "string" || a == "number" {
				t = b
			}
			return "attempt to concatenate " + value(t)
		}
		t := a
		if a == "number" || a == "string" && b != "number" && b != "string" {
			t = b
		}
		if typ != "" {
			t = typ
		}
		return "attempt to perform arithmetic on " + value(t)
	case strings.HasPrefix(body, "attempt to compare ") && strings.Contains(body, " with "):
		a, b, _ := strings.Cut(body[len("attempt to compare "):], " with ")
		if a == b {
			return "attempt to compare two " + a + " values"
		}
	case body == "can not resume a dead thread":
		return "cannot resume dead coroutine"
	}
	return body
}

// culprit finds the value an error at instruction pc of fn is about: its
// type and, as Lua 5.1's getobjname, what it is ("local", "global",
// "field", "method", "upvalue") and its name.
func culprit(L *lua.LState, dbg *lua.Debug, fn *lua.LFunction, pc int) (what, name, typ string) {
	p := fn.Proto
	if pc < 0 || pc >= len(p.Code) {
		return
	}
	inst := p.Code[pc]
	op := int(inst >> 26)
	a, b, c := int(inst>>18)&0xff, int(inst&0x1ff), int(inst>>9)&0x1ff
	reg := -1
	switch op {
	case lua.OP_GETTABLE, lua.OP_GETTABLEKS, lua.OP_SELF, lua.OP_UNM, lua.OP_LEN:
		reg = b
	case lua.OP_SETTABLE, lua.OP_SETTABLEKS, lua.OP_CALL, lua.OP_TAILCALL:
		reg = a
	case lua.OP_ADD, lua.OP_SUB, lua.OP_MUL, lua.OP_DIV, lua.OP_MOD, lua.OP_POW:
		// Lua 5.1 names the first operand that is not a number
		reg = c
		if v, ok := rkValue(L, dbg, p, b); ok && !isNumeric(v) {
			reg = b
		}
		if reg&opBitRK != 0 {
			v, _ := rkValue(L, dbg, p, reg)
			return "", "", v.Type().String()
		}
	case lua.OP_CONCAT:
		// Lua 5.1 concatenates from the right: the culprit is the
		// rightmost value that is not a string or a number
		// of the first pair that fails, the left one if it is not a
		// string or a number (luaG_concaterror)
		bad := func(r int) bool {
			_, v := L.GetLocal(dbg, r+1)
			return !isNumeric(v) && v.Type() != lua.LTString
		}
		for r := c; r >= b; r-- {
			if bad(r) {
				reg = r
				if r == c && r > b && bad(r-1) {
					reg = r - 1
				}
				break
			}
		}
	default:
		return
	}
	if reg < 0 {
		return
	}
	_, v := L.GetLocal(dbg, reg+1)
	typ = v.Type().String()
	what, name = objName(p, pc, reg)
	return
}

const opBitRK = 1 << 8

// isNumeric is luaV_tonumber's success (Lua 5.1's getobjname names the
// first operand it fails on).
func isNumeric(v lua.LValue) bool {
	_, ok := toNumber(v)
	return ok
}

// rkValue is an RK operand: a constant or a register.
func rkValue(L *lua.LState, dbg *lua.Debug, p *lua.FunctionProto, rk int) (lua.LValue, bool) {
	if rk&opBitRK != 0 {
		if i := rk &^ opBitRK; i < len(p.Constants) {
			return p.Constants[i], true
		}
		return lua.LNil, false
	}
	_, v := L.GetLocal(dbg, rk+1)
	return v, true
}

// objName is Lua 5.1's getobjname for gopher-lua's instructions: what
// register reg holds at instruction lastpc.
func objName(p *lua.FunctionProto, lastpc, reg int) (string, string) {
	// Lua 5.1's luaF_getlocalname: the locals active at lastpc, in
	// register order (gopher-lua's LocalName leaves out the first
	// instruction of a local's scope)
	n := reg
	for _, l := range p.DbgLocals {
		if l.StartPc > lastpc {
			break
		}
		if lastpc < l.EndPc {
			if n == 0 {
				if strings.HasPrefix(l.Name, "(") {
					break
				}
				return "local", l.Name
			}
			n--
		}
	}
	// the last instruction before lastpc that set reg (Lua 5.1's
	// symbexec: forward jumps inside the range are followed)
	setter := -1
	for pc := 0; pc < lastpc; pc++ {
		inst := p.Code[pc]
		op := int(inst >> 26)
		a, b := int(inst>>18)&0xff, int(inst&0x1ff)
		switch op {
		case lua.OP_JMP:
			if dest := pc + 1 + int(inst&0x3ffff) - 0x1ffff; pc < dest && dest <= lastpc {
				pc = dest - 1
			}
		case lua.OP_LOADNIL:
			if a <= reg && reg <= b {
				setter = pc
			}
		case lua.OP_CALL, lua.OP_TAILCALL:
			if reg >= a {
				setter = pc
			}
		case lua.OP_TFORLOOP:
			if reg >= a+2 {
				setter = pc
			}
		case lua.OP_SELF:
			if reg == a || reg == a+1 {
				setter = pc
			}
		case lua.OP_SETGLOBAL, lua.OP_SETUPVAL, lua.OP_SETTABLE, lua.OP_SETTABLEKS, lua.OP_EQ, lua.OP_LT,
			lua.OP_LE, lua.OP_TEST, lua.OP_RETURN, lua.OP_SETLIST, lua.OP_CLOSE, lua.OP_NOP:
		default:
			if a == reg {
				setter = pc
			}
		}
	}
	if setter < 0 {
		return "", ""
	}
	inst := p.Code[setter]
	a, b, c := int(inst>>18)&0xff, int(inst&0x1ff), int(inst>>9)&0x1ff
	kname := func(rk int) string {
		if rk&opBitRK != 0 {
			if i := rk &^ opBitRK; i < len(p.Constants) {
				if s, ok := p.Constants[i].(lua.LString); ok {
					return string(s)
				}
			}
		}
		return "?"
	}
	switch int(inst >> 26) {
	case lua.OP_GETGLOBAL:
		if bx := int(inst & 0x3ffff); bx < len(p.Constants) {
			return "global", p.Constants[bx].String()
		}
	case lua.OP_MOVE:
		if b < a {
			return objName(p, setter, b)
		}
	case lua.OP_GETTABLE, lua.OP_GETTABLEKS:
		return "field", kname(c)
	case lua.OP_GETUPVAL:
		if b < len(p.DbgUpvalues) {
			return "upvalue", p.DbgUpvalues[b]
		}
	case lua.OP_SELF:
		return "method", kname(c)
	}
	return "", ""
}

// badArgument maps gopher-lua's "bad argument #n to name (...)": Lua 5.1
// quotes the name ('?' for a function without one) and says "no value"
// for an argument not given.
func badArgument(L *lua.LState, body string) string {
	rest := body[len("bad argument #"):]
	num, rest, ok := strings.Cut(rest, " to ")
	if !ok {
		return body
	}
	name, detail, ok := strings.Cut(rest, " (")
	if !ok {
		return body
	}
	if strings.HasPrefix(name, "<") || name == "(anonymous)" {
		name = "?"
	}
	if !strings.HasPrefix(name, "'") {
		name = "'" + name + "'"
	}
	if n, err := strconv.Atoi(num); err == nil && strings.HasSuffix(detail, "got nil)") {
		// the Go function that raised it is the innermost frame
		if d, ok := L.GetStack(1); ok {
			// struct.pack pushes a nil before its buffer (lua_struct.c),
			// so its missing arguments after the format are "got nil" in Redis
			if fn, _, nargs, ok := frameOf(d); ok && fn.IsG && n > nargs && (n <= 1 || !isStructPack(fn)) {
				detail = strings.TrimSuffix(detail, "nil)") + "no value)"
			}
		}
	}
	return "bad argument #" + num + " to " + name + " (" + detail
}

// isStructPack reports whether fn is struct.pack (struct.go).
func isStructPack(fn *lua.LFunction) bool {
	return reflect.ValueOf(fn.GFunction).Pointer() == reflect.ValueOf(lua.LGFunction(structPack)).Pointer()
}
