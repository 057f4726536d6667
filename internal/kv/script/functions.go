package script

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/gantry-project/gantry/internal/resp"
)

// Function is a function a library registered.
type Function struct {
	Name        string
	Description string
	Flags       Flags
	Lib         *Library
	fn          *lua.LFunction
	// Stats are kept by the caller (see Script.Stats).
	Stats RunStats
}

// Library is a loaded function library (FUNCTION LOAD).
type Library struct {
	Name  string
	Code  string
	Funcs []*Function // in registration order
}

// Libraries are the loaded libraries and their functions by name.
type Libraries struct {
	libs  map[string]*Library
	funcs map[string]*Function
}

func newLibraries() *Libraries {
	return &Libraries{libs: make(map[string]*Library), funcs: make(map[string]*Function)}
}

// loadTimeout bounds the run of a library's code at FUNCTION LOAD, as
// Redis's 500 ms.
const loadTimeout = 500 * time.Millisecond

// maxLibraryCode bounds a library's code (the argument is bounded by the
// protocol already; this keeps a dump of many libraries reasonable).
const maxLibraryCode = 64 << 20

// FunctionLoad loads a library from code ("#!lua name=<lib>" first);
// replace allows a library of the same name to be replaced. It returns
// the library's name.
func (e *Engine) FunctionLoad(code string, replace bool) (string, error) {
	lib, err := e.compileLibrary(code)
	if err != nil {
		return "", err
	}
	return lib.Name, e.install([]*Library{lib}, replace)
}

// compileLibrary runs a library's code, which registers its functions.
func (e *Engine) compileLibrary(code string) (*Library, error) {
	if len(code) > maxLibraryCode {
		return nil, errors.New("ERR library code too long")
	}
	if !strings.HasPrefix(code, "#!") {
		return nil, errors.New("ERR Missing library metadata")
	}
	line, rest, _ := strings.Cut(code, "\n")
	eng, opts, _ := strings.Cut(line[2:], " ")
	parts := append([]string{eng}, strings.Fields(opts)...)
	if !strings.EqualFold(eng, "lua") {
		return nil, errors.New("ERR Engine '" + eng + "' not found")
	}
	name, named := "", false
	for _, p := range parts[1:] {
		v, ok := strings.CutPrefix(p, "name=")
		if !ok {
			return nil, errors.New("ERR Invalid metadata value given: " + p)
		}
		if named {
			return nil, errors.New("ERR Invalid metadata value, name argument was given multiple times")
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' { // quoted, as Redis's argument splitting reads it
			v = v[1 : len(v)-1]
		}
		name, named = v, true
	}
	if name == "" {
		return nil, errors.New("ERR Library name was not given")
	}
	if !validName(name) {
		return nil, errors.New("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
	}
	fn, err := e.L.Load(strings.NewReader("\n"+rest), "user_function")
	if err != nil {
		return nil, errors.New("ERR Error compiling function: " + oneLine(compileMsg(err)))
	}
	fn.Env = e.loadEnv()
	lib := &Library{Name: name, Code: code}
	e.loading = lib
	defer func() { e.loading = nil }()
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	L := e.L
	e.argsTouched = true
	L.SetContext(ctx)
	top := L.GetTop()
	L.Push(fn)
	err = L.PCall(0, 0, nil)
	L.RemoveContext()
	L.SetTop(top)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errors.New("ERR FUNCTION LOAD timeout")
		}
		msg := compileMsg(err)
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) {
			switch x := apiErr.Object.(type) {
			case *lua.LTable:
				msg = lua.LVAsString(x.RawGetString("err"))
			case lua.LString:
				// redis-server 7.0 names a raised string an ERR
				msg = "ERR " + string(x)
			}
		}
		return nil, errors.New("ERR Error registering functions: " + oneLine(msg))
	}
	if len(lib.Funcs) == 0 {
		return nil, errors.New("ERR No functions registered")
	}
	return lib, nil
}

// install adds compiled libraries: a name taken is an error unless
// replace, a function name taken by another library always is.
func (e *Engine) install(libs []*Library, replace bool) error {
	ls := e.lib
	for _, lib := range libs {
		if old := ls.libs[strings.ToLower(lib.Name)]; old != nil && !replace {
			return errors.New("ERR Library '" + lib.Name + "' already exists")
		}
		for _, f := range lib.Funcs {
			if of := ls.funcs[strings.ToLower(f.Name)]; of != nil && !strings.EqualFold(of.Lib.Name, lib.Name) {
				return errors.New("ERR Function " + f.Name + " already exists")
			}
		}
	}
	for _, lib := range libs {
		if old := ls.libs[strings.ToLower(lib.Name)]; old != nil {
			for _, f := range old.Funcs {
				delete(ls.funcs, strings.ToLower(f.Name))
			}
		}
		ls.libs[strings.ToLower(lib.Name)] = lib
		for _, f := range lib.Funcs {
			ls.funcs[strings.ToLower(f.Name)] = f
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// loadEnv is the environment of a library's code: the globals, with a
// redis table that has register_function while the library loads (and
// the full one when its functions run later).
func (e *Engine) loadEnv() *lua.LTable {
	if e.libEnv != nil {
		return e.libEnv
	}
	L := e.L
	// An engine that loads libraries runs functions (the server runs
	// EVAL scripts on other engines): redis-server 7.0 runs functions in
	// a Lua state of their own, whose globals have no
	// __redis__err__handler and whose redis table has no breakpoint,
	// debug and replicate_commands (scripts' debugger and effects
	// switch)
	e.globals.RawSetString("__redis__err__handler", lua.LNil)
	for _, name := range []string{"breakpoint", "debug", "replicate_commands"} {
		e.redisRaw.RawSetString(name, lua.LNil)
	}
	loadRedis := L.CreateTable(0, 8)
	full := e.redisRaw
	for _, name := range []string{"log", "LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING", "REDIS_VERSION", "REDIS_VERSION_NUM"} {
		loadRedis.RawSetString(name, full.RawGetString(name))
	}
	loadRedis.RawSetString("register_function", L.NewFunction(e.registerFunction))
	roLoad := e.readOnly(loadRedis, true)
	env := L.CreateTable(0, 0)
	mt := L.CreateTable(0, 2)
	// while the library loads only the library API is there; its
	// functions, run later, see the globals scripts see
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		k := L.Get(2)
		if e.loading != nil {
			if s, ok := k.(lua.LString); ok && s == "redis" {
				L.Push(roLoad)
				return 1
			}
			L.RaiseError("Script attempted to access nonexistent global variable '%s'", lua.LVAsString(k))
		}
		L.Push(L.GetField(e.env, lua.LVAsString(k)))
		return 1
	}))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Attempt to modify a readonly table")
		return 0
	}))
	L.SetMetatable(env, mt)
	e.readonly[env] = true
	e.libEnv = env
	return env
}

// registerFunction is redis.register_function(name, callback) or
// redis.register_function{function_name=, callback=, flags=, description=}.
func (e *Engine) registerFunction(L *lua.LState) int {
	if e.loading == nil {
		L.RaiseError("redis.register_function can only be called on FUNCTION LOAD command")
	}
	f := &Function{Lib: e.loading}
	switch L.GetTop() {
	case 1:
		t, ok := L.Get(1).(*lua.LTable)
		if !ok {
			L.RaiseError("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
		}
		var bad string
		forEach(t, func(k, v lua.LValue) {
			switch lua.LVAsString(k) {
			case "function_name":
				s, ok := v.(lua.LString)
				if !ok {
					bad = "function_name argument given to redis.register_function must be a string"
				}
				f.Name = string(s)
			case "description":
				s, ok := v.(lua.LString)
				if !ok {
					bad = "description argument given to redis.register_function must be a string"
				}
				f.Description = string(s)
			case "callback":
				fn, ok := v.(*lua.LFunction)
				if !ok {
					bad = "callback argument given to redis.register_function must be a function"
				}
				f.fn = fn
			case "flags":
				ft, ok := v.(*lua.LTable)
				if !ok {
					bad = "flags argument to redis.register_function must be a table representing function flags"
					return
				}
				forEach(ft, func(_, fv lua.LValue) {
					fl, ok := flagByName(lua.LVAsString(fv))
					if !ok {
						bad = "unknown flag given"
					}
					f.Flags |= fl
				})
			default:
				bad = "unknown argument given to redis.register_function"
			}
		})
		if bad != "" {
			L.RaiseError("%s", bad)
		}
		if f.Name == "" {
			L.RaiseError("redis.register_function must get a function name argument")
		}
		if f.fn == nil {
			L.RaiseError("redis.register_function must get a callback argument")
		}
	case 2:
		name, ok := L.Get(1).(lua.LString)
		if !ok {
			L.RaiseError("first argument to redis.register_function must be a string")
		}
		fn, ok := L.Get(2).(*lua.LFunction)
		if !ok {
			L.RaiseError("second argument to redis.register_function must be a function")
		}
		f.Name, f.fn = string(name), fn
	default:
		L.RaiseError("wrong number of arguments to redis.register_function")
	}
	if !validName(f.Name) {
		// Redis 7.0's words, "Library" included
		L.RaiseError("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
	}
	for _, g := range e.loading.Funcs {
		if strings.EqualFold(g.Name, f.Name) {
			L.RaiseError("Function already exists in the library")
		}
	}
	e.loading.Funcs = append(e.loading.Funcs, f)
	return 0
}

// Function returns the function named name (in any case), nil if none.
func (e *Engine) Function(name string) *Function { return e.lib.funcs[strings.ToLower(name)] }

// FCall runs f with inv and writes its reply to w.
func (e *Engine) FCall(f *Function, inv *Invocation, w *resp.Writer) {
	inv.Name = f.Name
	L := e.L
	e.call(f.fn, inv, w, "@user_function", []lua.LValue{bytesTable(L, inv.Keys), bytesTable(L, inv.Argv)})
}

// FunctionDelete removes a library.
func (e *Engine) FunctionDelete(name string) error {
	lib := e.lib.libs[strings.ToLower(name)]
	if lib == nil {
		return errors.New("ERR Library not found")
	}
	for _, f := range lib.Funcs {
		delete(e.lib.funcs, strings.ToLower(f.Name))
	}
	delete(e.lib.libs, strings.ToLower(name))
	return nil
}

// FunctionFlush removes every library.
func (e *Engine) FunctionFlush() { e.lib = newLibraries() }

// Libraries returns the libraries by name.
func (e *Engine) Libraries() []*Library {
	out := make([]*Library, 0, len(e.lib.libs))
	for _, l := range e.lib.libs {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NumFunctions is the number of registered functions.
func (e *Engine) NumFunctions() int { return len(e.lib.funcs) }

// dumpMagic starts a FUNCTION DUMP payload: gantry's own format (the
// libraries' code), checked by a CRC32 at its end.
const dumpMagic = "GANTRYFN1"

// FunctionDump serialises every library (FUNCTION DUMP).
func (e *Engine) FunctionDump() []byte {
	b := []byte(dumpMagic)
	libs := e.Libraries()
	b = binary.AppendUvarint(b, uint64(len(libs)))
	for _, l := range libs {
		b = binary.AppendUvarint(b, uint64(len(l.Code)))
		b = append(b, l.Code...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// RestorePolicy is FUNCTION RESTORE's policy.
type RestorePolicy int

const (
	RestoreAppend RestorePolicy = iota
	RestoreReplace
	RestoreFlush
)

// errPayload is Redis's error for a payload FUNCTION RESTORE cannot read.
var errPayload = errors.New("ERR DUMP payload version or checksum are wrong")

// FunctionRestore loads a FunctionDump payload with policy.
func (e *Engine) FunctionRestore(payload []byte, policy RestorePolicy) error {
	codes, err := parseDump(payload)
	if err != nil {
		return err
	}
	libs := make([]*Library, 0, len(codes))
	for _, code := range codes {
		lib, err := e.compileLibrary(code)
		if err != nil {
			return err
		}
		libs = append(libs, lib)
	}
	switch policy {
	case RestoreFlush:
		e.FunctionFlush()
	case RestoreAppend:
		for _, l := range libs {
			if e.lib.libs[strings.ToLower(l.Name)] != nil {
				return errors.New("ERR Library " + l.Name + " already exists")
			}
		}
	}
	return e.install(libs, policy != RestoreAppend)
}

// parseDump reads the libraries' code from a FunctionDump payload.
func parseDump(p []byte) ([]string, error) {
	if len(p) < len(dumpMagic)+4 || string(p[:len(dumpMagic)]) != dumpMagic {
		return nil, errPayload
	}
	body, sum := p[:len(p)-4], binary.BigEndian.Uint32(p[len(p)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errPayload
	}
	r := body[len(dumpMagic):]
	n, k := binary.Uvarint(r)
	if k <= 0 || n > uint64(len(r)) {
		return nil, errPayload
	}
	r = r[k:]
	codes := make([]string, 0, n)
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(r)
		if k <= 0 || l > uint64(len(r)-k) {
			return nil, errPayload
		}
		codes = append(codes, string(r[k:k+int(l)]))
		r = r[k+int(l):]
	}
	if len(r) != 0 {
		return nil, errPayload
	}
	return codes, nil
}
