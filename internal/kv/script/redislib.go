package script

import (
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Log levels of redis.log.
// RedisVersion is the Redis version scripts see (redis.REDIS_VERSION)
// and the server reports (kv.Version); RedisVersionNum is it as
// 0x00MMmmpp (redis.REDIS_VERSION_NUM).
const (
	RedisVersion    = "7.0.15"
	RedisVersionNum = 0x07000f
)

const (
	LogDebug = iota
	LogVerbose
	LogNotice
	LogWarning
)

// redisLib is the redis table: call, pcall, error_reply, status_reply,
// sha1hex, log, setresp, set_repl, replicate_commands, breakpoint, debug,
// acl_check_cmd and the constants.
func (e *Engine) redisLib() *lua.LTable {
	L := e.L
	t := L.CreateTable(0, 0) // its map is made at the first name, for 32
	fns := map[string]lua.LGFunction{
		"call":  func(L *lua.LState) int { return e.redisCall(L, true) },
		"pcall": func(L *lua.LState) int { return e.redisCall(L, false) },
		// error_reply and status_reply take one string (a number is
		// refused, as lua_type tells it from one); anything else is an
		// error table returned, not raised, as in redis-server 7.0
		"error_reply": func(L *lua.LState) int {
			s, ok := L.Get(1).(lua.LString)
			if L.GetTop() != 1 || !ok {
				L.Push(errTable(L, "ERR wrong number or type of arguments"))
				return 1
			}
			r := L.CreateTable(0, 1)
			r.RawSetString("err", lua.LString(strings.TrimPrefix(string(s), "-")))
			L.Push(r)
			return 1
		},
		"status_reply": func(L *lua.LState) int {
			s, ok := L.Get(1).(lua.LString)
			if L.GetTop() != 1 || !ok {
				L.Push(errTable(L, "ERR wrong number or type of arguments"))
				return 1
			}
			r := L.CreateTable(0, 1)
			r.RawSetString("ok", s)
			L.Push(r)
			return 1
		},
		"sha1hex": func(L *lua.LState) int {
			if L.GetTop() != 1 {
				raiseError(L, "wrong number of arguments")
			}
			L.Push(lua.LString(SHA1Hex(checkLString(L, 1))))
			return 1
		},
		"log": func(L *lua.LState) int {
			if L.GetTop() < 2 {
				raiseError(L, "redis.log() requires two arguments or more.")
			}
			// lua_isnumber, then the level as a C int
			f, ok := toNumber(L.Get(1))
			if !ok {
				raiseError(L, "First argument must be a number (log level).")
			}
			lvl := cLong(f)
			if lvl < LogDebug || lvl > LogWarning {
				raiseError(L, "Invalid debug level.")
			}
			var parts []string
			for i := 2; i <= L.GetTop(); i++ {
				parts = append(parts, L.ToString(i))
			}
			if e.inv != nil && e.inv.Caller != nil {
				e.inv.Caller.Log(int(lvl), strings.Join(parts, " "))
			}
			return 0
		},
		"setresp": func(L *lua.LState) int {
			if L.GetTop() != 1 {
				raiseError(L, "redis.setresp() requires one argument.")
			}
			v := int(cLong(toNumberOr0(L.Get(1)))) // lua_tonumber: 0 for no number
			if v != 2 && v != 3 {
				raiseError(L, "RESP version must be 2 or 3.")
			}
			if e.inv != nil {
				e.inv.Resp = v
			}
			return 0
		},
		"set_repl": func(L *lua.LState) int {
			if e.inv == nil {
				L.RaiseError("redis.set_repl() can only be called from a script")
			}
			if L.GetTop() != 1 {
				raiseError(L, "redis.set_repl() requires one argument.")
			}
			v := int(cLong(toNumberOr0(L.Get(1)))) // lua_tonumber: 0 for no number
			if v&^ReplAll != 0 {
				raiseError(L, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
			}
			e.inv.Repl = v
			return 0
		},
		"replicate_commands": func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
		"breakpoint":         func(L *lua.LState) int { L.Push(lua.LFalse); return 1 },
		"debug":              func(L *lua.LState) int { return 0 },
		"acl_check_cmd": func(L *lua.LState) int {
			if e.inv == nil {
				L.RaiseError("redis.acl_check_cmd() can only be called from a script")
			}
			args, bad := e.callArgs(L)
			if bad != "" {
				raiseError(L, bad)
			}
			known, allowed := e.inv.Caller.ACLCheck(args)
			if !known {
				raiseError(L, "Invalid command passed to redis.acl_check_cmd()")
			}
			L.Push(lua.LBool(allowed))
			return 1
		},
	}
	// the redis table of scripts and functions has no register_function
	// (as in redis-server 7.0: pairs(redis) does not list it, calling it
	// is calling a nil field); the library API (loadRedis) has its own
	for name, fn := range fns {
		t.RawSetString(name, L.NewFunction(fn))
	}
	for name, v := range map[string]int{
		"LOG_DEBUG": LogDebug, "LOG_VERBOSE": LogVerbose, "LOG_NOTICE": LogNotice, "LOG_WARNING": LogWarning,
		"REPL_NONE": ReplNone, "REPL_AOF": ReplAOF, "REPL_SLAVE": ReplSlave, "REPL_REPLICA": ReplSlave, "REPL_ALL": ReplAll,
	} {
		t.RawSetString(name, lua.LNumber(v))
	}
	t.RawSetString("REDIS_VERSION", lua.LString(RedisVersion))
	t.RawSetString("REDIS_VERSION_NUM", lua.LNumber(RedisVersionNum))
	return t
}

// callArgs reads redis.call's arguments, or gives Redis's error for them.
func (e *Engine) callArgs(L *lua.LState) ([][]byte, string) {
	n := L.GetTop()
	if n == 0 {
		return nil, "Please specify at least one argument for this redis lib call"
	}
	// the slice is reused from call to call, as a client's arguments
	// are: a command keeps none of it
	args := slices.Grow(e.args[:0], n)[:n]
	clear(args[n:cap(args)])
	for i := 1; i <= n; i++ {
		b, ok := argString(L.Get(i))
		if !ok {
			return nil, "Lua redis lib command arguments must be strings or integers"
		}
		args[i-1] = b
	}
	e.args = args
	return args, ""
}

// raiseError raises "ERR msg" as redis-server 7.0's library functions do:
// an error table, whose text alone (no position) is the reply when no
// pcall catches it, and which pcall hands to the script as that text.
func raiseError(L *lua.LState, msg string) {
	L.Error(errTable(L, "ERR "+msg), 0)
}

func errTable(L *lua.LState, msg string) *lua.LTable {
	t := L.CreateTable(0, 1)
	t.RawSetString("err", lua.LString(msg))
	return t
}

// redisCall is redis.call (raise) and redis.pcall: run the command through
// the Caller and convert its reply.
func (e *Engine) redisCall(L *lua.LState, raise bool) int {
	if e.inv == nil || e.inv.Caller == nil {
		L.RaiseError("redis.call can only be called inside a script invocation")
	}
	if err := e.inv.Ctx.Err(); err != nil {
		L.RaiseError("Script killed by user with SCRIPT KILL...")
	}
	args, bad := e.callArgs(L)
	if bad != "" {
		// redis.pcall returns the error table, as redis-server 7.0
		if raise {
			raiseError(L, bad)
		}
		L.Push(errTable(L, "ERR "+bad))
		return 1
	}
	reply := e.inv.Caller.Call(e.inv, args)
	v, _, err := replyToLua(L, reply, 0)
	if err != nil {
		v = errTable(L, "ERR reply of the command could not be read")
	}
	if t, ok := v.(*lua.LTable); ok && raise {
		if t.RawGetString("err") != lua.LNil {
			L.Error(t, 1)
		}
	}
	L.Push(v)
	return 1
}
