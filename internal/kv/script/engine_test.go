package script

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// echoCaller answers every command with a reply chosen by its name, and
// records the commands.
type echoCaller struct {
	calls [][]string
}

func (c *echoCaller) Call(inv *Invocation, args [][]byte) []byte {
	var s []string
	for _, a := range args {
		s = append(s, string(a))
	}
	c.calls = append(c.calls, s)
	w := resp.Writer{Proto: inv.Resp}
	switch strings.ToLower(s[0]) {
	case "get":
		w.BulkString("v")
	case "nil":
		w.Null()
	case "incr":
		w.Int(7)
	case "set":
		w.OK()
	case "err":
		w.Error("WRONGTYPE Operation against a key holding the wrong kind of value")
	case "arr":
		w.Array(3)
		w.Int(1)
		w.BulkString("two")
		w.Null()
	case "map":
		w.Map(1)
		w.BulkString("k")
		w.Int(1)
	case "double":
		w.Double(1.5)
	default:
		w.Error("ERR Unknown Redis command called from script")
	}
	return w.B
}

func (c *echoCaller) Log(int, string) {}
func (c *echoCaller) ACLCheck(args [][]byte) (known, allowed bool) {
	return string(args[0]) != "nosuch", string(args[0]) != "denied"
}

func run(t *testing.T, e *Engine, body string, proto int, keys, argv []string) string {
	t.Helper()
	sc, err := e.Load(body)
	if err != nil {
		return "LOADERR " + err.Error()
	}
	inv := &Invocation{Caller: &echoCaller{}, Ctx: context.Background()}
	for _, k := range keys {
		inv.Keys = append(inv.Keys, []byte(k))
	}
	for _, a := range argv {
		inv.Argv = append(inv.Argv, []byte(a))
	}
	w := resp.Writer{Proto: proto}
	e.Run(sc, inv, &w)
	return string(w.B)
}

// TestConversions checks the Lua <-> RESP conversions of Redis's
// scripting (unit/scripting's type conversion cases).
func TestConversions(t *testing.T) {
	e := New()
	defer e.Close()
	tests := []struct {
		name  string
		body  string
		proto int
		want  string
	}{
		{"number truncates", "return 100.5", 2, ":100\r\n"},
		{"negative number truncates", "return -3.9", 2, ":-3\r\n"},
		{"string", "return 'hello'", 2, "$5\r\nhello\r\n"},
		{"true is 1", "return true", 2, ":1\r\n"},
		{"false is nil", "return false", 2, "$-1\r\n"},
		{"true to RESP3 under setresp(2) is 1", "return true", 3, ":1\r\n"},
		{"false to RESP3 under setresp(2) is null", "return false", 3, "_\r\n"},
		{"true in RESP3", "redis.setresp(3) return true", 3, "#t\r\n"},
		{"false in RESP3", "redis.setresp(3) return false", 3, "#f\r\n"},
		{"false to RESP2 under setresp(3) is 0", "redis.setresp(3) return false", 2, ":0\r\n"},
		{"nil", "return nil", 2, "$-1\r\n"},
		{"table to array up to nil", "return {1,'a',nil,4}", 2, "*2\r\n:1\r\n$1\r\na\r\n"},
		{"status table", "return {ok='FINE'}", 2, "+FINE\r\n"},
		{"error table", "return {err='MYERR bad'}", 2, "-MYERR bad\r\n"},
		{"error_reply", "return redis.error_reply('MY_ERR_CODE custom msg')", 2, "-MY_ERR_CODE custom msg\r\n"},
		{"status_reply", "return redis.status_reply('OKAY')", 2, "+OKAY\r\n"},
		{"double in RESP3", "return {double=3.5}", 3, ",3.5\r\n"},
		{"KEYS and ARGV", "return {KEYS[1], ARGV[1]}", 2, "*2\r\n$1\r\nk\r\n$1\r\na\r\n"},
		{"call bulk", "return redis.call('get','x')", 2, "$1\r\nv\r\n"},
		{"call nil is false", "return redis.call('nil') == false", 2, ":1\r\n"},
		{"call nil is nil in RESP3", "redis.setresp(3); return redis.call('nil') == nil", 2, ":1\r\n"},
		{"call integer", "return redis.call('incr','x') + 1", 2, ":8\r\n"},
		{"call status is ok table", "return redis.call('set','x','y')['ok']", 2, "$2\r\nOK\r\n"},
		{"call array: null is false, back to null", "return redis.call('arr')", 2, "*3\r\n:1\r\n$3\r\ntwo\r\n$-1\r\n"},
		{"pcall error table", "return redis.pcall('err')['err']", 2, "$65\r\nWRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"RESP3 map", "redis.setresp(3); return redis.call('map')['map']['k']", 2, ":1\r\n"},
		{"RESP3 double", "redis.setresp(3); return tostring(redis.call('double')['double'])", 2, "$3\r\n1.5\r\n"},
		{"sha1hex", "return redis.sha1hex('Pizza & Mandolino')", 2, "$40\r\n74822d82031af7493c20eefa13bd07ec4fada82f\r\n"},
		{"cjson round trip", "return cjson.encode(cjson.decode('{\"a\":[1,2,3]}'))", 2, "$13\r\n{\"a\":[1,2,3]}\r\n"},
		{"cjson escapes slash", "return cjson.encode('a/b')", 2, "$6\r\n\"a\\/b\"\r\n"},
		{"cjson numbers", "return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')", 2, "$26\r\n0 -5000 -1 0.0003 1023.2 0\r\n"},
		{"cmsgpack double", "local s = cmsgpack.pack(0.1); return #s", 2, ":9\r\n"},
		{"cmsgpack round trip", "local t = cmsgpack.unpack(cmsgpack.pack({1,2,{a='x'}})); return t[3].a", 2, "$1\r\nx\r\n"},
		{"acl_check_cmd allowed", "return redis.acl_check_cmd('set','k','v')", 2, ":1\r\n"},
		{"acl_check_cmd denied is false", "return redis.acl_check_cmd('denied','k')", 2, "$-1\r\n"},
		{"string.dump cannot be loaded", "local f, err = loadstring(string.dump(function() return 1 end)); return {type(f), err}", 2, "*2\r\n$3\r\nnil\r\n$29\r\nbinary chunks are not allowed\r\n"},
		{"getmetatable of nil and numbers", "return {getmetatable(nil) == nil, getmetatable(1) == nil, getmetatable(true) == nil}", 2, "*3\r\n:1\r\n:1\r\n:1\r\n"},
		{"bit", "return {bit.band(7,3), bit.bor(1,2,4), bit.bxor(1,3), bit.lshift(1,4), bit.tobit(0xffffffff)}", 2, "*5\r\n:3\r\n:7\r\n:2\r\n:16\r\n:-1\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(t, e, tt.body, tt.proto, []string{"k"}, []string{"a"}); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestErrors checks Redis's error replies: the message, then the script
// and the place.
func TestErrors(t *testing.T) {
	e := New()
	defer e.Close()
	tests := []struct {
		name, body, want string
	}{
		{"call raises the command's error", "redis.call('err')", "-WRONGTYPE Operation against a key holding the wrong kind of value script: "},
		{"undeclared global read", "return a", "-ERR user_script:1: Script attempted to access nonexistent global variable 'a' script: "},
		{"global write", "a = 1", "-ERR user_script:1: Attempt to modify a readonly table script: "},
		{"library write", "redis.call = 1", "-ERR user_script:1: Attempt to modify a readonly table"},
		{"setmetatable on _G", "setmetatable(_G, {})", "-ERR Attempt to modify a readonly table script: "}, // redis-server 7.0.15 gives no position
		{"metatable of _G", "local g = getmetatable(_G); g.__index = {}", "-ERR user_script:1: Attempt to modify a readonly table"},
		{"no loadfile", "loadfile('x')", "-ERR user_script:1: Script attempted to access nonexistent global variable 'loadfile'"},
		{"no os", "return os.time()", "-ERR user_script:1: Script attempted to access nonexistent global variable 'os'"},
		{"global write in a function", "local function f() a = 1 end f()", "-ERR user_script:1: Attempt to modify a readonly table script: "},
		// a script that assigns no global runs in the globals table itself:
		// there is no getfenv to hand it out (redis-server 7.0.15 has none)
		{"no getfenv", "getfenv(1).redis = 1", "-ERR user_script:1: Script attempted to access nonexistent global variable 'getfenv'"},
		{"no setfenv", "setfenv(1, {})", "-ERR user_script:1: Script attempted to access nonexistent global variable 'setfenv'"},
		{"table.insert into a library", "table.insert(redis, 'x')", "-ERR Attempt to modify a readonly table script: "},
		{"table.insert into the globals", "table.insert(_G, 'x')", "-ERR Attempt to modify a readonly table script: "},
		{"table.insert into a library, then read", "pcall(table.insert, string, 'x') return string[1]", "$-1"},
		// no way to a library's own table or to the metatable of strings
		{"a library's metatable is nil", "getmetatable(redis).__index.call = 1", "-ERR user_script:1: attempt to index a nil value script: "}, // redis-server 7.0.15's text
		{"the metatable of strings", "getmetatable('').__index = function() return 1 end", "-ERR user_script:1: Attempt to modify a readonly table"},
		{"the string library through strings", "getmetatable('').__index.len = 1", "-ERR user_script:1: Attempt to modify a readonly table"},
		{"the string library through a string", "local s = 'x' getmetatable(s).__index.rep = 1", "-ERR user_script:1: Attempt to modify a readonly table"},
		{"no arguments", "redis.call()", "-ERR Please specify at least one argument for this redis lib call script: "},
		{"bad argument type", "redis.call('get', {})", "-ERR Lua redis lib command arguments must be strings or integers"},
		{"calling nil", "local f = nil; f()", "-ERR user_script:1: attempt to call local 'f' (a nil value) script: "}, // as redis-server 7.0.15
		{"calling a number", "local n = 1; n()", "-ERR user_script:1: attempt to call local 'n' (a number value) script: "},
		{"calling a loaded dump", "return loadstring(string.dump(function() return 1 end))()", "-ERR user_script:1: attempt to call a nil value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, e, tt.body, 2, nil, nil)
			if !strings.HasPrefix(got, tt.want) || strings.Count(got, "\r\n") != 1 {
				t.Errorf("got %q, want prefix %q on one line", got, tt.want)
			}
		})
	}
	// the globals are as they were, and every way to them is the view _G
	for body, want := range map[string]string{
		"return {type(redis), type(KEYS), type(redis.call), (pcall(function() return x end))}": "*4\r\n$5\r\ntable\r\n$5\r\ntable\r\n$8\r\nfunction\r\n$-1\r\n",
		"return rawequal(_G._G, _G)": ":1\r\n",
		"y = 1":                      "-ERR user_script:1: Attempt to modify a readonly table",
		// the string methods and library are the real ones after the tries
		"return {('ab'):len(), string.rep('x', 2), ('abc'):sub(2), getmetatable(redis) == nil}": "*4\r\n:2\r\n$2\r\nxx\r\n$2\r\nbc\r\n:1\r\n",
	} {
		if got := run(t, e, body, 2, nil, nil); !strings.HasPrefix(got, want) {
			t.Errorf("%s: got %q, want prefix %q", body, got, want)
		}
	}
	if got := run(t, e, "return (", 2, nil, nil); !strings.HasPrefix(got, "LOADERR ERR Error compiling script") {
		t.Errorf("syntax error: got %q", got)
	}
	if got := run(t, e, "#!lua flags=bogus\nreturn 1", 2, nil, nil); !strings.Contains(got, "Unexpected flag in script shebang") {
		t.Errorf("bad flag: got %q", got)
	}
}

// TestKill cancels a script in an endless loop, pcall or not.
func TestKill(t *testing.T) {
	e := New()
	defer e.Close()
	for _, body := range []string{"while true do end", "local f = function() while 1 do end end while 1 do pcall(f) end"} {
		sc, err := e.Load(body)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // killed before it started: it stops at once
		w := resp.Writer{Proto: 2}
		e.Run(sc, &Invocation{Caller: &echoCaller{}, Ctx: ctx}, &w)
		if !strings.Contains(string(w.B), "killed by user") {
			t.Errorf("%s: got %q", body, w.B)
		}
	}
}

// TestStraightLine: the scripts that run without the kill context's
// check before every instruction are those that can run nothing but
// their own instructions, each once.
func TestStraightLine(t *testing.T) {
	e := New()
	defer e.Close()
	for _, tc := range []struct {
		body     string
		straight bool
	}{
		{"return redis.call('incr', KEYS[1])", true},
		{"local v = redis.call('get', KEYS[1]) if v then return v end return ARGV[1]", true},
		{"return pcall(redis.call, 'get', 'k')", true},
		{"return cjson.encode({a = tonumber(ARGV[1]) or 0})", true},
		{"#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", true},
		{"while true do end", false},
		{"repeat local x = 1 until false", false},
		{"for i = 1, 2 do end", false},
		{"for k, v in pairs(KEYS) do end", false},
		{"local f = function() return 1 end return f()", false},
		{"return loadstring('return 1')()", false},
		{"return _G.redis.call('get', 'k')", false},
		{"return getfenv(1)", false},
		{"return getmetatable('')", false},
		{"return struct.unpack('>i4', struct.pack('>i4', ARGV[1]))", true},
		// no Lua code, but each call walks the state (gc.go): checked for kills
		{"return collectgarbage('count')", false},
		{"return gcinfo()", false},
		{"x = 1", true}, // refused by the read-only view's Go function
	} {
		sc, err := e.Load(tc.body)
		if err != nil {
			t.Fatalf("%q: %v", tc.body, err)
		}
		if sc.straight != tc.straight {
			t.Errorf("%q: straight %v, want %v", tc.body, sc.straight, tc.straight)
		}
	}
}

// TestKillStraight: a straight-line script runs without the context's
// check between instructions, and is still killed: by redis.call, or by
// the check when it returns. (No script can put Lua code behind the
// library functions and string methods it calls: TestErrors.)
func TestKillStraight(t *testing.T) {
	for _, tc := range []struct {
		name, setup, body string
	}{
		{"redis.call", "", "return redis.call('incr', KEYS[1])"},
		{"no call", "", "return string.rep('x', 3)"},
		{"pcall", "", "local ok = pcall(redis.call, 'incr', 'k') return 'done'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New()
			defer e.Close()
			if tc.setup != "" {
				run(t, e, tc.setup, 2, nil, nil)
			}
			sc, err := e.Load(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if !sc.straight {
				t.Fatalf("%q is not straight", tc.body)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			done := make(chan string, 1)
			go func() {
				w := resp.Writer{Proto: 2}
				e.Run(sc, &Invocation{Caller: &echoCaller{}, Ctx: ctx, Keys: [][]byte{[]byte("k")}}, &w)
				done <- string(w.B)
			}()
			select {
			case got := <-done:
				if !strings.Contains(got, "killed by user") {
					t.Errorf("got %q", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the killed script still runs") // (its goroutine is left behind)
			}
		})
	}
}

// TestFunctions loads, calls, lists, dumps and restores libraries.
func TestFunctions(t *testing.T) {
	e := New()
	defer e.Close()
	code := "#!lua name=lib\nredis.register_function('f1', function(keys, args) return keys[1] .. args[1] end)\n" +
		"redis.register_function{function_name='f2', callback=function() return 2 end, flags={'no-writes'}}"
	name, err := e.FunctionLoad(code, false)
	if err != nil || name != "lib" {
		t.Fatalf("load: %q %v", name, err)
	}
	if _, err := e.FunctionLoad(code, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second load: %v", err)
	}
	f := e.Function("F1")
	if f == nil {
		t.Fatal("f1 not found (names are case-insensitive)")
	}
	w := resp.Writer{Proto: 2}
	e.FCall(f, &Invocation{Caller: &echoCaller{}, Keys: [][]byte{[]byte("a")}, Argv: [][]byte{[]byte("b")}}, &w)
	if string(w.B) != "$2\r\nab\r\n" {
		t.Fatalf("fcall: %q", w.B)
	}
	if fl := e.Function("f2").Flags; fl&FlagNoWrites == 0 {
		t.Fatalf("f2 flags %v", fl)
	}
	dump := e.FunctionDump()
	e.FunctionFlush()
	if e.Function("f1") != nil {
		t.Fatal("flush kept f1")
	}
	if err := e.FunctionRestore(dump, RestoreAppend); err != nil {
		t.Fatal(err)
	}
	if err := e.FunctionRestore(dump, RestoreAppend); err == nil {
		t.Fatal("append over an existing library succeeded")
	}
	bad := append([]byte(nil), dump...)
	bad[len(bad)-1] ^= 1
	if err := e.FunctionRestore(bad, RestoreReplace); err == nil {
		t.Fatal("corrupt payload accepted")
	}
	for _, tt := range []struct{ code, want string }{
		{"return 1", "Missing library metadata"},
		{"#!js name=x\n", "Engine 'js' not found"},
		{"#!lua\n", "Library name was not given"},
		{"#!lua name=x\nreturn 1", "No functions registered"},
		{"#!lua name=x\nredis.call('ping')", "nonexistent global variable 'call'"},
		{"#!lua name=x\nwhile true do end", "FUNCTION LOAD timeout"},
	} {
		if _, err := e.FunctionLoad(tt.code, true); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("load %q: %v, want %q", tt.code, err, tt.want)
		}
	}
}

// TestRandomSeeded checks math.randomseed makes math.random repeat.
func TestRandomSeeded(t *testing.T) {
	e := New()
	defer e.Close()
	body := "math.randomseed(ARGV[1]); return tostring(math.random())"
	a := run(t, e, body, 2, nil, []string{"10"})
	b := run(t, e, body, 2, nil, []string{"10"})
	c := run(t, e, body, 2, nil, []string{"11"})
	if a != b || a == c {
		t.Errorf("seed 10: %q %q, seed 11: %q", a, b, c)
	}
}

// TestTableOrderStable: cmsgpack.pack and cjson.encode walk a table in
// the order of pairs (keys in the order first set), the same on every
// run, so a circular table packs as Redis's test expects.
func TestTableOrderStable(t *testing.T) {
	e := New()
	defer e.Close()
	body := `local a = {x=nil,y=5}
		local b = {x=a}
		a['x'] = b
		local encoded = cmsgpack.pack(a)
		local h = ""
		for i = 1, #encoded do h = h .. string.format("%02x",string.byte(encoded,i)) end
		return {h, cjson.encode({b=1, a=2, c=3, d=4, e=5})}`
	const hex = "82a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a178c0"
	want := "*2\r\n$" + strconv.Itoa(len(hex)) + "\r\n" + hex + "\r\n$31\r\n{\"b\":1,\"a\":2,\"c\":3,\"d\":4,\"e\":5}\r\n"
	for i := 0; i < 20; i++ { // Go's map order would differ between runs
		if got := run(t, e, body, 2, nil, nil); got != want {
			t.Fatalf("run %d: got %q, want %q", i, got, want)
		}
	}
}

// TestArgsTablesFreshPerRun checks that KEYS and ARGV, which are refilled
// from run to run rather than made anew, look new to every run whatever
// the run before did to them.
func TestArgsTablesFreshPerRun(t *testing.T) {
	// probe describes KEYS and ARGV as a run sees them first
	const probe = `local function d(t)
		local n = 0
		for _ in pairs(t) do n = n + 1 end
		return #t .. ':' .. n .. ':' .. tostring(getmetatable(t)) .. ':' .. table.concat(t, ',')
	end
	return d(KEYS) .. '|' .. d(ARGV)`
	cases := []struct {
		name   string
		change string // run first, with keys a b c and argv x y
		keys   []string
		argv   []string
		want   string
	}{
		{"untouched", "return 1", []string{"k"}, []string{"v"}, "1:1:nil:k|1:1:nil:v"},
		{"fewer items", "return 1", []string{"k"}, nil, "1:1:nil:k|0:0:nil:"},
		{"none", "return 1", nil, nil, "0:0:nil:|0:0:nil:"},
		{"item changed", "KEYS[1] = 'z'; ARGV[2] = 'w'; return 1", []string{"k"}, []string{"v"}, "1:1:nil:k|1:1:nil:v"},
		{"same items, changed", "KEYS[1] = 'z'; ARGV[1] = 'w'; return 1", []string{"a", "b", "c"}, []string{"x", "y"}, "3:3:nil:a,b,c|2:2:nil:x,y"},
		{"same items", "return 1", []string{"a", "b"}, []string{"x", "y", "z"}, "2:2:nil:a,b|3:3:nil:x,y,z"},
		{"item removed", "KEYS[3] = nil; table.remove(ARGV, 1); return 1", []string{"k", "l", "m"}, []string{"v"}, "3:3:nil:k,l,m|1:1:nil:v"},
		{"item appended", "table.insert(KEYS, 'd'); ARGV[5] = 'q'; return 1", []string{"k"}, []string{"v"}, "1:1:nil:k|1:1:nil:v"},
		{"hash key", "KEYS.x = 1; rawset(ARGV, 'y', 2); return 1", []string{"k"}, []string{"v"}, "1:1:nil:k|1:1:nil:v"},
		{"metatable", "setmetatable(KEYS, {__index = function() return 'm' end}); return 1", []string{"k"}, []string{"v"}, "1:1:nil:k|1:1:nil:v"},
		{"error mid-run", "KEYS.x = 1; table.insert(ARGV, 'e'); error('boom')", []string{"k"}, []string{"v"}, "1:1:nil:k|1:1:nil:v"},
		{"more items", "return 1", []string{"k", "l", "m", "n"}, []string{"v", "w", "x"}, "4:4:nil:k,l,m,n|3:3:nil:v,w,x"},
	}
	// a pure script (one that writes to no table it did not make) is
	// given the tables without a look at them after a pure run: a run of
	// one between the change and the probe, and one as the probe
	const pureProbe = `return tostring(#KEYS) .. ':' .. tostring(KEYS[1]) .. ':' .. tostring(KEYS[4]) .. ':' ..
		tostring(KEYS.x) .. ':' .. tostring(KEYS.y) .. '|' .. tostring(#ARGV) .. ':' .. tostring(ARGV[5]) .. ':' .. tostring(ARGV.y)`
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, middle := range []string{"", "return KEYS[1]"} {
				e := New()
				run(t, e, tc.change, 2, []string{"a", "b", "c"}, []string{"x", "y"})
				if middle != "" {
					run(t, e, middle, 2, []string{"a", "b", "c"}, []string{"x", "y"})
				}
				got := run(t, e, probe, 2, tc.keys, tc.argv)
				want := "$" + strconv.Itoa(len(tc.want)) + "\r\n" + tc.want + "\r\n"
				if got != want {
					t.Errorf("after %q, %q: got %q, want %q", tc.change, middle, got, want)
				}
				e.Close()
			}
			e := New()
			defer e.Close()
			if sc, _ := e.Load(pureProbe); !sc.pure {
				t.Fatal("the probe is not pure")
			}
			run(t, e, tc.change, 2, []string{"a", "b", "c"}, []string{"x", "y"})
			first := func(items []string) string {
				if len(items) == 0 {
					return "nil"
				}
				return items[0]
			}
			wantPure := fmt.Sprintf("%d:%s:nil:nil:nil|%d:nil:nil", len(tc.keys), first(tc.keys), len(tc.argv))
			if len(tc.keys) >= 4 {
				wantPure = fmt.Sprintf("%d:%s:%s:nil:nil|%d:nil:nil", len(tc.keys), first(tc.keys), tc.keys[3], len(tc.argv))
			}
			for i := 0; i < 2; i++ { // after the change, then after itself
				got := run(t, e, pureProbe, 2, tc.keys, tc.argv)
				want := "$" + strconv.Itoa(len(wantPure)) + "\r\n" + wantPure + "\r\n"
				if got != want {
					t.Errorf("pure probe %d after %q: got %q, want %q", i, tc.change, got, want)
				}
			}
		})
	}
}

// TestCallArgsNotCopied checks that redis.call hands the caller the
// script's strings as they are, and that a string the script keeps is
// the same after the call (the arguments alias Lua's strings).
func TestCallArgsNotCopied(t *testing.T) {
	e := New()
	defer e.Close()
	got := run(t, e, `local s = string.rep('ab', 3)
		redis.call('set', s, '', 12, 1.5)
		return s .. '|' .. string.upper(s)`, 2, nil, nil)
	if want := "$13\r\nababab|ABABAB\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	c := &echoCaller{}
	sc, err := e.Load(`redis.call('set', KEYS[1], '', 12, 1.5) return 1`)
	if err != nil {
		t.Fatal(err)
	}
	inv := &Invocation{Caller: c, Ctx: context.Background(), Keys: [][]byte{[]byte("k")}}
	var w resp.Writer
	e.Run(sc, inv, &w)
	if len(c.calls) != 1 || strings.Join(c.calls[0], ",") != "set,k,,12,1.5" {
		t.Errorf("calls %q", c.calls)
	}
}
