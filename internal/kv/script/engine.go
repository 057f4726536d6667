// Package script runs Redis's Lua scripts (EVAL, EVALSHA) and functions
// (FUNCTION LOAD, FCALL) on gopher-lua, an embedded Lua 5.1. It knows
// nothing of connections, locks or logs: the server (internal/kv) runs a
// script with the keyspace locked and gives it a Caller that runs the
// commands the script calls; this package converts between Lua values and
// RESP replies as Redis does, provides the redis, cjson, cmsgpack and bit
// libraries, and keeps scripts inside Redis 7's sandbox (no os, io or
// loadfile; the globals and the libraries are read-only).
package script

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/gantry-project/gantry/internal/resp"
)

// Caller runs the Redis commands a script calls.
type Caller interface {
	// Call runs args and returns the reply encoded in RESP version
	// inv.Resp: an error reply for a command the script may not run.
	Call(inv *Invocation, args [][]byte) []byte
	// Log writes a message of redis.log at a level (0 debug .. 3 warning).
	Log(level int, msg string)
	// ACLCheck is redis.acl_check_cmd: whether args[0] is a command
	// (known) and the script's user may run args (allowed), without
	// logging a refusal.
	ACLCheck(args [][]byte) (known, allowed bool)
}

// Invocation is one run of a script or function.
type Invocation struct {
	Caller Caller
	Keys   [][]byte
	Argv   [][]byte
	// ReadOnly refuses writes (EVAL_RO, FCALL_RO, the no-writes flag).
	ReadOnly bool
	// Resp is the protocol of the replies redis.call returns (setresp).
	Resp int
	// Repl is redis.set_repl's flags (ReplAll by default).
	Repl int
	// Ctx cancels the script (SCRIPT KILL, FUNCTION KILL).
	Ctx context.Context
	// Name is the script's function name in error replies: its SHA1 or
	// the function's name.
	Name string
	// ErrorCounted is set by the run when its reply is an error a
	// command of the script replied (redis.call raising it, or the table
	// of redis.pcall returned): the server counted it in its error
	// statistics then, and does not count it again (Redis 7 does the
	// same).
	ErrorCounted bool
}

// redis.set_repl flags.
const (
	ReplNone  = 0
	ReplAOF   = 1
	ReplSlave = 2
	ReplAll   = ReplAOF | ReplSlave
)

// Flags are a script's or function's shebang flags.
type Flags uint8

const (
	FlagNoWrites Flags = 1 << iota
	FlagAllowOOM
	FlagAllowStale
	FlagNoCluster
	FlagAllowCrossSlot
	// FlagShebang is set for an EVAL script that declared flags with
	// "#!lua" (its flags are enforced; without it, none are).
	FlagShebang
)

var flagNames = []struct {
	name string
	f    Flags
}{
	{"no-writes", FlagNoWrites}, {"allow-oom", FlagAllowOOM}, {"allow-stale", FlagAllowStale},
	{"no-cluster", FlagNoCluster}, {"allow-cross-slot-keys", FlagAllowCrossSlot},
}

// Names returns the flags' names, in Redis's order.
func (f Flags) Names() []string {
	var out []string
	for _, fn := range flagNames {
		if f&fn.f != 0 {
			out = append(out, fn.name)
		}
	}
	return out
}

// Script is a compiled EVAL script.
type Script struct {
	SHA   string
	Body  string
	Flags Flags
	fn    *lua.LFunction
	name  string // the SHA, the name errors give (Redis 7.0.15 has no f_ there)
	// straight: the script runs each of its instructions at most once
	// and can reach no other Lua code (straightLine), so it runs without
	// the kill context's check before every instruction
	straight bool
	// pure: straight, and writes to no table it did not make (no
	// SETTABLE, no rawset, setmetatable or table library): a run leaves
	// KEYS and ARGV as it found them (argsTable.clean need not look)
	pure bool
	// Stats are kept by the caller: what earlier runs showed.
	Stats RunStats
}

// RunStats are what the server learnt from earlier runs of a script or
// function: how long it takes (to run short ones without a hand-over)
// and whether it touched keys it did not declare (to lock the whole
// keyspace for it from the start).
type RunStats struct {
	// Nanos is a moving average of the run time; 0 before the first run.
	Nanos atomic.Int64
	// Undeclared is set once a run touched an undeclared key.
	Undeclared atomic.Bool
	// OtherDB is set once a run SELECTed another database or reached one
	// (MOVE, SWAPDB...): it then runs holding every database.
	OtherDB atomic.Bool
}

// Observe folds one run's duration into Nanos. A run counts for at most
// four times the average: a run is timed by the wall clock, and on a
// busy machine one that lost its CPU for milliseconds would otherwise
// make a short script look long for many runs (sending them through a
// goroutine); a script that really got slower still raises the average
// by more than a third per run.
func (r *RunStats) Observe(d time.Duration) {
	old := r.Nanos.Load()
	if old == 0 {
		r.Nanos.Store(int64(d) + 1)
		return
	}
	r.Nanos.Store(old - old/8 + min(int64(d), 4*old)/8 + 1)
}

// Engine holds the Lua state, the script cache and the function
// libraries. It is used by one goroutine at a time (the server runs one
// script at a time, with the keyspace locked).
type Engine struct {
	L       *lua.LState
	scripts map[string]*Script
	// scriptsMem is ScriptsMemory, kept as scripts are cached
	scriptsMem int64
	// vmScripts: the compiled scripts' share of VMMemory (read by INFO
	// while the engine runs a script)
	vmScripts atomic.Int64
	// collectgarbage("setpause"/"setstepmul")'s values, kept per state
	gcPause, gcStepMul int
	// the running invocation, for the redis library
	inv *Invocation
	// globals: the real table; env: the read-only view scripts see
	globals *lua.LTable
	env     *lua.LTable
	// readonly records the read-only proxies (setmetatable, rawset refuse
	// them)
	readonly map[*lua.LTable]bool
	// viewed maps a read-only proxy to the table it shows, for next,
	// pairs and rawget, which see what is there as Redis's do
	viewed map[*lua.LTable]*lua.LTable
	lib    *Libraries
	// loading is the library being loaded (register_function), nil
	// otherwise
	loading *Library
	rand    lrand48
	// redisRaw is the redis table itself (scripts see a read-only view)
	redisRaw *lua.LTable
	// libEnv is the environment of libraries' code (loadEnv)
	libEnv *lua.LTable
	// handler is errorHandler, made once
	handler *lua.LFunction
	// args is the buffer of the arguments of redis.call (callArgs)
	args [][]byte
	// keys and argv are the KEYS and ARGV tables of EVAL scripts (Run)
	keys, argv argsTable
	// noMeta is what the metatable of a library's read-only view holds
	// as __metatable: getmetatable answers nil for it
	noMeta *lua.LTable
	// argsTouched: the last Lua code run here may have changed KEYS or
	// ARGV (anything but a pure script's run)
	argsTouched bool
}

// ErrNoScript is EvalSHA's error for an unknown SHA1.
var ErrNoScript = errors.New("NOSCRIPT No matching script. Please use EVAL.")

// New returns an engine with the sandboxed libraries loaded.
func New() *Engine {
	e := &Engine{
		scripts:  make(map[string]*Script),
		readonly: make(map[*lua.LTable]bool),
		viewed:   make(map[*lua.LTable]*lua.LTable),
		lib:      newLibraries(),
	}
	e.L = lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: 256, RegistrySize: 256, RegistryGrowStep: 256, RegistryMaxSize: 1024 * 1024})
	e.openLibs()
	e.noteBase()
	// scripts are replicated by their effects, so math.random need not
	// repeat itself (Redis 7 does not reseed it per script either)
	e.rand.seed(int32(time.Now().UnixNano()))
	return e
}

// Seed seeds math.random (tests make it repeatable).
func (e *Engine) Seed(s int32) { e.rand.seed(s) }

// Close releases the Lua state.
func (e *Engine) Close() { e.L.Close() }

// SHA1Hex returns the SHA1 of s in lower-case hex, as redis.sha1hex.
func SHA1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// Load compiles body and caches it (SCRIPT LOAD, EVAL).
func (e *Engine) Load(body string) (*Script, error) {
	sha := SHA1Hex(body)
	if s, ok := e.scripts[sha]; ok {
		return s, nil
	}
	flags, code, err := parseShebang(body)
	if err != nil {
		return nil, err
	}
	fn, err := e.L.Load(strings.NewReader(code), "user_script")
	if err != nil {
		return nil, errors.New("ERR Error compiling script (new function): " + oneLine(compileMsg(err)))
	}
	// a script that assigns no global runs with the globals table itself
	// as its environment: a global is found with one table lookup, where
	// the read-only view takes three (the view, its metatable, the
	// globals). Nothing else can write to the table: its only way out
	// to a script is _G, which is the view (there is no getfenv); a script that assigns a global (SETGLOBAL, which
	// would overwrite an existing name without asking the metatable)
	// gets the view, whose metatable refuses it
	fn.Env = e.env
	if !assignsGlobals(fn.Proto) {
		fn.Env = e.globals
	}
	// a chunk is a vararg function, and gopher-lua (Lua 5.1's
	// LUA_COMPAT_VARARG) builds it an `arg` table with a hash part on
	// every call; scripts get their arguments from KEYS and ARGV
	fn.Proto.IsVarArg &^= lua.VarArgNeedsArg
	s := &Script{SHA: sha, Body: body, Flags: flags, fn: fn, name: sha, straight: straightLine(fn.Proto)}
	s.pure = s.straight && !writesTables(fn.Proto)
	e.scripts[sha] = s
	e.scriptsMem += scriptMem(s)
	e.vmScripts.Add(compiledMem(fn) + int64(len(body)))
	return s, nil
}

// assignsGlobals reports whether p or a function defined in it has an
// assignment to a global variable.
func assignsGlobals(p *lua.FunctionProto) bool {
	for _, inst := range p.Code {
		if int(inst>>26) == lua.OP_SETGLOBAL {
			return true
		}
	}
	for _, sub := range p.FunctionPrototypes {
		if assignsGlobals(sub) {
			return true
		}
	}
	return false
}

// straightGlobals are the globals a straight-line script may read: none
// of them is or leads to Lua code (loadstring, _G and getmetatable do: they are left out), so the only Lua code such a script
// runs is its own; the Go functions it calls run Lua code only when
// given a Lua function, and it has none to give. (collectgarbage and
// gcinfo call no Lua code either, but each call may walk a quarter of a
// million values: a script of many such calls is checked for kills.)
var straightGlobals = map[string]bool{
	"redis": true, "KEYS": true, "ARGV": true, "cjson": true, "cmsgpack": true, "bit": true, "struct": true,
	"string": true, "math": true, "table": true, "tonumber": true, "tostring": true, "type": true,
	"unpack": true, "select": true, "next": true, "pairs": true, "ipairs": true, "assert": true,
	"error": true, "pcall": true, "xpcall": true, "rawequal": true, "rawget": true, "rawset": true,
	"setmetatable": true, "_VERSION": true,
}

// straightLine reports whether a chunk runs each of its instructions at
// most once and nothing but them: no jump backwards, no loop, no
// function defined in it, and only straightGlobals read. Such a chunk
// ends after at most len(p.Code) instructions plus the Go functions it
// calls, so it needs no check of the kill context between instructions
// (a kill is still seen by redis.call and when it returns: call).
func straightLine(p *lua.FunctionProto) bool {
	if len(p.FunctionPrototypes) > 0 {
		return false
	}
	for _, inst := range p.Code {
		switch int(inst >> 26) {
		case lua.OP_CLOSURE, lua.OP_FORLOOP, lua.OP_FORPREP, lua.OP_TFORLOOP:
			return false
		case lua.OP_JMP:
			if int(inst&0x3ffff)-0x1ffff < 0 { // sBx: a jump backwards
				return false
			}
		case lua.OP_GETGLOBAL:
			bx := int(inst & 0x3ffff)
			if bx >= len(p.Constants) {
				return false
			}
			name, ok := p.Constants[bx].(lua.LString)
			if !ok || !straightGlobals[string(name)] {
				return false
			}
		}
	}
	return true
}

// writesTables reports whether a straight-line chunk may write to a table
// it did not make: a SETTABLE, or a read of rawset, setmetatable or the
// table library (the other functions of straightGlobals write to no
// table they are given).
func writesTables(p *lua.FunctionProto) bool {
	for _, inst := range p.Code {
		switch int(inst >> 26) {
		case lua.OP_SETTABLE, lua.OP_SETTABLEKS:
			return true
		case lua.OP_GETGLOBAL:
			if bx := int(inst & 0x3ffff); bx < len(p.Constants) {
				switch p.Constants[bx].String() {
				case "rawset", "setmetatable", "table":
					return true
				}
			}
		}
	}
	return false
}

// Local returns this engine's compiled copy of a script that another
// engine loaded (the server runs EVAL scripts on a pool of engines, one
// of which checks and caches them for SCRIPT LOAD and EVALSHA).
func (e *Engine) Local(s *Script) (*Script, error) {
	if l, ok := e.scripts[s.SHA]; ok {
		return l, nil
	}
	return e.Load(s.Body)
}

// Lookup returns the cached script with sha (any case), nil if none.
func (e *Engine) Lookup(sha string) *Script {
	if len(sha) != 40 {
		return nil
	}
	return e.scripts[strings.ToLower(sha)]
}

// LookupSHA is Lookup of a SHA given as bytes (EVALSHA's argument); a
// lower-case one is looked up without a copy.
func (e *Engine) LookupSHA(sha []byte) *Script {
	if len(sha) != 40 {
		return nil
	}
	if s := e.scripts[string(sha)]; s != nil {
		return s
	}
	return e.Lookup(string(sha))
}

// Exists reports whether a script is cached.
func (e *Engine) Exists(sha string) bool { return e.Lookup(sha) != nil }

// Flush forgets every cached script (SCRIPT FLUSH).
func (e *Engine) Flush() {
	e.scripts = make(map[string]*Script)
	e.scriptsMem = 0
	e.vmScripts.Store(0)
}

// NumScripts is the number of cached scripts.
func (e *Engine) NumScripts() int { return len(e.scripts) }

// ShebangFlags returns the flags an EVAL script declares on its shebang
// line (with FlagShebang), 0 for a script without one or with a bad one:
// what the server knows of a script before it loads it (Redis's
// evalGetCommandFlags, for a write pause).
func ShebangFlags(body string) Flags {
	f, _, err := parseShebang(body)
	if err != nil {
		return 0
	}
	return f
}

// parseShebang reads "#!lua flags=a,b" on the first line of an EVAL
// script; the line is replaced by an empty one so line numbers stay.
func parseShebang(body string) (Flags, string, error) {
	if !strings.HasPrefix(body, "#!") {
		return 0, body, nil
	}
	line, rest, _ := strings.Cut(body, "\n")
	parts := strings.Fields(line[2:])
	if len(parts) == 0 || parts[0] != "lua" {
		eng := ""
		if len(parts) > 0 {
			eng = parts[0]
		}
		return 0, "", errors.New("ERR Unexpected engine in script shebang: " + eng)
	}
	flags := FlagShebang
	for _, p := range parts[1:] {
		v, ok := strings.CutPrefix(p, "flags=")
		if !ok {
			return 0, "", errors.New("ERR Unknown lua shebang option: " + p)
		}
		for _, name := range strings.Split(v, ",") {
			if name == "" {
				continue
			}
			f, ok := flagByName(name)
			if !ok {
				return 0, "", errors.New("ERR Unexpected flag in script shebang: " + name)
			}
			flags |= f
		}
	}
	return flags, "\n" + rest, nil
}

func flagByName(name string) (Flags, bool) {
	for _, fn := range flagNames {
		if fn.name == name {
			return fn.f, true
		}
	}
	return 0, false
}

// compileMsg strips gopher-lua's wrapping of a syntax error.
func compileMsg(err error) string {
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) {
		return apiErr.Object.String()
	}
	return err.Error()
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// Run runs a cached script with inv and writes its reply to w.
func (e *Engine) Run(s *Script, inv *Invocation, w *resp.Writer) {
	if inv.Name == "" {
		inv.Name = s.name
	}
	// after a pure script's run the tables are as fill left them (the
	// libraries it may call are Go functions no script can replace)
	e.keys.fill(e, "KEYS", inv.Keys, e.argsTouched)
	e.argv.fill(e, "ARGV", inv.Argv, e.argsTouched)
	e.argsTouched = !s.pure
	e.callMode(s.fn, inv, w, "@user_script", nil, s.straight)
}

// argsTable is the KEYS or ARGV table of EVAL scripts. It is refilled
// from run to run instead of made anew (a table, its array and a global's
// update per run), while the last run left it as it was filled: no
// metatable and nothing past its n items. A run that changed more gets a
// new table, so no run sees what another did to it; scripts cannot keep
// a reference from one run to the next (the globals are read-only).
type argsTable struct {
	t *lua.LTable
	n int // the items of the last fill
}

// argsTableMax is the most items a reused table keeps room for: a larger
// one is let go after its run.
const argsTableMax = 1024

// fill refills the table with items; touched: the last run may have
// changed it (what clean looks at).
func (a *argsTable) fill(e *Engine, name string, items [][]byte, touched bool) {
	if a.t == nil || a.n > argsTableMax || touched && !a.clean() {
		a.t = e.L.CreateTable(len(items), 0)
		a.n = 0
		e.globals.RawSetString(name, a.t)
	}
	for i, it := range items {
		// an item as it was in the last run keeps its string (a constant
		// argument, a key run again): no copy
		if i < a.n {
			if old, ok := a.t.RawGetInt(i + 1).(lua.LString); ok && string(old) == string(it) {
				continue
			}
		}
		a.t.RawSetInt(i+1, lua.LString(it))
	}
	for i := len(items) + 1; i <= a.n; i++ {
		a.t.RawSetInt(i, lua.LNil)
	}
	a.n = len(items)
}

// clean reports whether the table holds nothing but what fill put in
// (its items may have been changed: the next fill sets them all).
func (a *argsTable) clean() bool {
	if a.t.Metatable != lua.LNil {
		return false
	}
	after := lua.LNil // Next(nil) is the first key
	if a.n > 0 {
		after = number(int64(a.n))
	}
	k, _ := a.t.Next(after)
	return k == lua.LNil
}

func bytesTable(L *lua.LState, items [][]byte) *lua.LTable {
	t := L.CreateTable(len(items), 0)
	for _, it := range items {
		t.Append(lua.LString(it))
	}
	return t
}

// call runs fn with args. A Lua error becomes an error reply in Redis's
// format: the message, then " script: <name>, on <source>:<line>." when
// the place is known.
func (e *Engine) call(fn *lua.LFunction, inv *Invocation, w *resp.Writer, source string, args []lua.LValue) {
	e.argsTouched = true
	e.callMode(fn, inv, w, source, args, false)
}

// callMode is call; straight runs fn without the kill context (gopher-lua
// selects on its Done channel before every instruction otherwise): fn
// must be a straightLine chunk, which cannot run long between two
// checks of the context, redis.call's and the one when it returns.
func (e *Engine) callMode(fn *lua.LFunction, inv *Invocation, w *resp.Writer, source string, args []lua.LValue, straight bool) {
	L := e.L
	if inv.Resp == 0 {
		inv.Resp = 2
	}
	if inv.Ctx == nil {
		inv.Ctx = context.Background()
	}
	e.inv = inv
	inv.ErrorCounted = false
	defer func() { e.inv = nil }()
	if !straight {
		L.SetContext(inv.Ctx)
		defer L.RemoveContext()
	}
	top := L.GetTop()
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	if e.handler == nil {
		e.handler = L.NewFunction(errorHandler)
	}
	err := L.PCall(len(args), 1, e.handler)
	if err != nil {
		L.SetTop(top)
		if inv.Ctx.Err() != nil {
			w.Error("ERR Script killed by user with SCRIPT KILL...")
			return
		}
		e.writeError(err, inv, w, source)
		return
	}
	ret := L.Get(-1)
	L.SetTop(top)
	// killed in a Go function it called (string.rep of a large count, a
	// command that took long): with the context the next instruction
	// would have stopped it
	if straight && inv.Ctx.Err() != nil {
		w.Error("ERR Script killed by user with SCRIPT KILL...")
		return
	}
	if t, ok := ret.(*lua.LTable); ok {
		inv.ErrorCounted = counted(t)
	}
	writeReply(L, ret, w, inv.Resp, 0)
}

// noStatsField marks an error table made from a command's error reply
// (the field Redis sets too): the server counted the error already.
const noStatsField = "ignore_error_stats_update"

// counted reports whether t is an error the server counted already.
func counted(t *lua.LTable) bool {
	_, isErr := t.RawGetString("err").(lua.LString)
	return isErr && lua.LVAsBool(t.RawGetString(noStatsField))
}

// errorHandler turns an error into Redis's error table {err=, source=,
// line=} (what Redis's __redis__err__handler does).
func errorHandler(L *lua.LState) int {
	v := L.Get(1)
	t, ok := v.(*lua.LTable)
	if !ok || t.RawGetString("err") == lua.LNil {
		msg := v.String()
		if s, isStr := v.(lua.LString); isStr {
			msg = errorText(L, string(s))
		}
		if ok {
			msg = "execution failure"
		}
		t = L.CreateTable(0, 1)
		t.RawSetString("err", lua.LString("ERR "+msg))
	}
	// the innermost Lua frame is where the error happened
	for lvl := 0; lvl < 8; lvl++ {
		dbg, ok := L.GetStack(lvl)
		if !ok {
			break
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil {
			break
		}
		if dbg.What == "G" || dbg.CurrentLine <= 0 {
			continue
		}
		src := "@" + dbg.Source
		// a chunk of loadstring: Lua 5.1's source is its text (chunkID)
		if in, ok := strings.CutPrefix(dbg.Source, `[string "`); ok && strings.HasSuffix(in, `"]`) && !strings.HasSuffix(in, `..."]`) {
			src = strings.TrimSuffix(in, `"]`)
		}
		t.RawSetString("source", lua.LString(src))
		t.RawSetString("line", lua.LNumber(dbg.CurrentLine))
		break
	}
	L.Push(t)
	return 1
}

func (e *Engine) writeError(err error, inv *Invocation, w *resp.Writer, source string) {
	var apiErr *lua.ApiError
	if !errors.As(err, &apiErr) {
		w.Error("ERR Error running script " + inv.Name + ", " + oneLine(err.Error()))
		return
	}
	t, ok := apiErr.Object.(*lua.LTable)
	if !ok {
		w.Error("ERR Error running script " + inv.Name + ", " + oneLine(apiErr.Object.String()))
		return
	}
	msg := oneLine(lua.LVAsString(t.RawGetString("err")))
	if msg == "" {
		msg = "ERR"
	}
	inv.ErrorCounted = counted(t)
	if src, line := t.RawGetString("source"), t.RawGetString("line"); src != lua.LNil && line != lua.LNil {
		msg += " script: " + inv.Name + ", on " + lua.LVAsString(src) + ":" + lua.LVAsString(line) + "."
	}
	w.Error(msg)
}
