package script

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/gantry-project/gantry/internal/resp"
)

// maxDepth bounds the nesting of tables and replies converted, as
// Redis's LUA_CMD_OBJCACHE... does with the C stack: deeper is an error.
const maxDepth = 1000

// writeReply writes a Lua value as Redis's luaReplyToRedisReply: numbers
// truncated to integers, strings as bulk strings, nil as null, tables
// with ok, err, double, map, set, big_number or verbatim_string fields as
// those types, and other tables as arrays up to their first nil.
// Booleans follow the script's protocol (sresp, redis.setresp), not the
// client's: under 2 true is 1 and false the client's null; under 3 they
// are the client's booleans (#t/#f, or 1/0 to a RESP2 client).
func writeReply(L *lua.LState, v lua.LValue, w *resp.Writer, sresp, depth int) {
	if depth > maxDepth {
		w.Error("ERR reached lua stack limit")
		return
	}
	switch x := v.(type) {
	case lua.LString:
		w.Bulk([]byte(string(x)))
	case lua.LNumber:
		w.Int(toInt(float64(x)))
	case lua.LBool:
		switch {
		case sresp == 3 && w.Proto == 3:
			w.Bool(bool(x))
		case bool(x):
			w.Int(1)
		case sresp == 3:
			w.Int(0)
		default:
			w.Null()
		}
	case *lua.LTable:
		if s, ok := x.RawGetString("err").(lua.LString); ok {
			msg := string(s)
			if msg == "" {
				msg = "ERR"
			}
			w.Error(oneLine(msg))
			return
		}
		if s, ok := x.RawGetString("ok").(lua.LString); ok {
			w.Simple(oneLine(string(s)))
			return
		}
		if d, ok := x.RawGetString("double").(lua.LNumber); ok {
			w.Double(float64(d))
			return
		}
		if s, ok := x.RawGetString("big_number").(lua.LString); ok {
			// CR and LF become spaces in either protocol (Redis's
			// sdsmapchars), so a big number is one line
			n := strings.Map(func(r rune) rune {
				if r == '\r' || r == '\n' {
					return ' '
				}
				return r
			}, string(s))
			if w.Proto == 3 {
				w.B = append(w.B, '(')
				w.B = append(w.B, n...)
				w.B = append(w.B, '\r', '\n')
			} else {
				w.Bulk([]byte(n))
			}
			return
		}
		if vt, ok := x.RawGetString("verbatim_string").(*lua.LTable); ok {
			s, _ := vt.RawGetString("string").(lua.LString)
			w.Verbatim(string(s))
			return
		}
		if m, ok := x.RawGetString("map").(*lua.LTable); ok {
			var keys, vals []lua.LValue
			forEach(m, func(k, v lua.LValue) { keys = append(keys, k); vals = append(vals, v) })
			w.Map(len(keys))
			for i := range keys {
				writeReply(L, keys[i], w, sresp, depth+1)
				writeReply(L, vals[i], w, sresp, depth+1)
			}
			return
		}
		if s, ok := x.RawGetString("set").(*lua.LTable); ok {
			var keys []lua.LValue
			forEach(s, func(k, _ lua.LValue) { keys = append(keys, k) })
			w.Set(len(keys))
			for _, k := range keys {
				writeReply(L, k, w, sresp, depth+1)
			}
			return
		}
		n := 0
		for x.RawGetInt(n+1) != lua.LNil {
			n++
		}
		w.Array(n)
		for i := 1; i <= n; i++ {
			writeReply(L, x.RawGetInt(i), w, sresp, depth+1)
		}
	default:
		w.Null()
	}
}

// smallNumbers are the Lua numbers 0 .. len-1 as values: a number put
// in an interface is a heap allocation of its own, and most integer
// replies (counters, 0 and 1 of EXISTS, DEL, SADD...) and table sizes
// are small.
var smallNumbers = func() (t [1024]lua.LValue) {
	for i := range t {
		t[i] = lua.LNumber(i)
	}
	return t
}()

// number is n as a Lua value.
func number(n int64) lua.LValue {
	if n >= 0 && n < int64(len(smallNumbers)) {
		return smallNumbers[n]
	}
	return lua.LNumber(n)
}

// toInt truncates a Lua number to an integer as C's (long long) cast.
func toInt(f float64) int64 {
	if math.IsNaN(f) {
		return math.MinInt64
	}
	if f >= 9.223372036854775807e18 || f < -9.223372036854775808e18 {
		return math.MinInt64
	}
	return int64(f)
}

var errReply = errors.New("protocol error in reply")

// parseInt parses a reply's integer or length as strconv.ParseInt in
// base 10; one of up to 18 bytes (an integer reply, a length) without
// strconv's generic path.
func parseInt(b []byte) (int64, bool) { return resp.ParseInt(b) }

// replyToLua converts one RESP reply from the start of b to a Lua value
// as Redis's redisProtocolToLuaType: integers to numbers, bulk strings to
// strings, null bulk and null array to false (RESP2) or nil (RESP3),
// arrays to tables, status to {ok=}, errors to {err=}; in RESP3 maps to
// {map=}, sets to {set=}, doubles to {double=}, booleans to booleans,
// big numbers to {big_number=} and verbatim strings to
// {verbatim_string={format=, string=}}. It returns the bytes used.
func replyToLua(L *lua.LState, b []byte, depth int) (lua.LValue, int, error) {
	if len(b) < 3 || depth > maxDepth {
		return nil, 0, errReply
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 1 {
		return nil, 0, errReply
	}
	line := b[1:end]
	next := end + 2
	switch b[0] {
	case '+':
		t := L.CreateTable(0, 1)
		t.RawSetString("ok", lua.LString(line))
		return t, next, nil
	case '-':
		t := L.CreateTable(0, 2)
		t.RawSetString("err", lua.LString(line))
		// the server counted this error when the command replied it (INFO
		// errorstats): the script's reply with it is not counted again
		t.RawSetString(noStatsField, lua.LTrue)
		return t, next, nil
	case ':':
		n, ok := parseInt(line)
		if !ok {
			return nil, 0, errReply
		}
		return number(n), next, nil
	case '$', '=':
		n64, ok := parseInt(line)
		n := int(n64)
		if !ok || n64 < -1 || n64 > 1<<40 {
			return nil, 0, errReply
		}
		if n == -1 {
			return lua.LFalse, next, nil
		}
		if len(b) < next+n+2 {
			return nil, 0, errReply
		}
		s := b[next : next+n]
		if b[0] == '=' {
			t := L.CreateTable(0, 1)
			vt := L.CreateTable(0, 2)
			if len(s) >= 4 && s[3] == ':' {
				vt.RawSetString("format", lua.LString(s[:3]))
				s = s[4:]
			}
			vt.RawSetString("string", lua.LString(s))
			t.RawSetString("verbatim_string", vt)
			return t, next + n + 2, nil
		}
		return lua.LString(s), next + n + 2, nil
	case '*', '~', '%', '>':
		n64, ok := parseInt(line)
		n := int(n64)
		if !ok || n64 < -1 || n64 > 1<<40 {
			return nil, 0, errReply
		}
		if n == -1 {
			return lua.LFalse, next, nil
		}
		// every element takes at least 3 bytes: a bound before allocating
		if n > (len(b)-next)/3 {
			return nil, 0, errReply
		}
		items := n
		if b[0] == '%' {
			items = 2 * n
		}
		t := L.CreateTable(0, 0)
		var prev lua.LValue
		for i := 0; i < items; i++ {
			v, used, err := replyToLua(L, b[next:], depth+1)
			if err != nil {
				return nil, 0, err
			}
			next += used
			switch b[0] {
			case '%':
				if i%2 == 0 {
					prev = v
				} else {
					t.RawSet(prev, v)
				}
			case '~':
				t.RawSet(v, lua.LTrue)
			default:
				t.RawSetInt(i+1, v)
			}
		}
		switch b[0] {
		case '%':
			w := L.CreateTable(0, 1)
			w.RawSetString("map", t)
			return w, next, nil
		case '~':
			w := L.CreateTable(0, 1)
			w.RawSetString("set", t)
			return w, next, nil
		}
		return t, next, nil
	case '_':
		return lua.LNil, next, nil
	case '#':
		return lua.LBool(len(line) == 1 && line[0] == 't'), next, nil
	case ',':
		f, err := strconv.ParseFloat(string(line), 64)
		if err != nil {
			switch string(line) {
			case "inf":
				f = math.Inf(1)
			case "-inf":
				f = math.Inf(-1)
			case "nan":
				f = math.NaN()
			default:
				return nil, 0, errReply
			}
		}
		t := L.CreateTable(0, 1)
		t.RawSetString("double", lua.LNumber(f))
		return t, next, nil
	case '(':
		t := L.CreateTable(0, 1)
		t.RawSetString("big_number", lua.LString(line))
		return t, next, nil
	case '|':
		// an attribute: Redis does not show it to the script; the reply
		// it comes before is the value
		n64, ok := parseInt(line)
		if !ok || n64 < 0 || n64 > int64(len(b)-next)/6 {
			return nil, 0, errReply
		}
		for i := int64(0); i < 2*n64; i++ {
			_, used, err := replyToLua(L, b[next:], depth+1)
			if err != nil {
				return nil, 0, err
			}
			next += used
		}
		v, used, err := replyToLua(L, b[next:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		return v, next + used, nil
	}
	return nil, 0, errReply
}

// forEach calls fn on each pair of t in the order of Lua's next (and so
// pairs): the array part, then the keys in the order they were first
// set. LTable.ForEach walks Go maps, in an order that changes from run
// to run; cmsgpack.pack, cjson.encode and the replies of maps follow the
// order a script sees instead, the same on every run.
func forEach(t *lua.LTable, fn func(k, v lua.LValue)) {
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		fn(k, v)
	}
}
