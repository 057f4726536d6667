package script

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestLua51Coercion runs scripts whose replies were taken from
// redis-server 7.0.15 (EVAL <script> 0, raw replies; SHA stands for the
// script's SHA1): strings read as numbers by the arithmetic operators,
// unary minus, the numeric for and the libraries' number arguments as
// Lua 5.1 reads them (luaO_str2d), the errors of strings that are none
// and the names Lua 5.1 gives the culprit, and the constants 0 and -0.0
// in one function. TestScriptingMatchesRedis (package kv) runs these and
// more against a live redis-server.
func TestLua51Coercion(t *testing.T) {
	e := New()
	defer e.Close()
	for _, tc := range []struct{ body, want string }{
		{`return '0b11'+0`, "-ERR user_script:1: attempt to perform arithmetic on a string value script: SHA, on @user_script:1.\r\n"},
		{`return {pcall(function() return '1_000'+0 end)}`, "*2\r\n$-1\r\n$62\r\nuser_script:1: attempt to perform arithmetic on a string value\r\n"},
		{`return ' 0x10 '+0`, ":16\r\n"},
		{`return {pcall(function() return '1e'+0 end)}`, "*2\r\n$-1\r\n$62\r\nuser_script:1: attempt to perform arithmetic on a string value\r\n"},
		{`return {tostring('inf'+0), tostring('nan'+0), tostring('-inf'+0), tostring('1e500' + 0)}`, "*4\r\n$3\r\ninf\r\n$3\r\nnan\r\n$4\r\n-inf\r\n$3\r\ninf\r\n"},
		{`return {'0x1p4'+0, '  12  '+0, '5.'+0, '-0x10'+0, tostring('.5'+0), '\t12\v' + 1}`, "*6\r\n:16\r\n:12\r\n:5\r\n:-16\r\n$3\r\n0.5\r\n:13\r\n"},
		{`return {pcall(function() return '12abc'+0 end)}`, "*2\r\n$-1\r\n$62\r\nuser_script:1: attempt to perform arithmetic on a string value\r\n"},
		{`return {pcall(function() return '0x'+0 end)}`, "*2\r\n$-1\r\n$62\r\nuser_script:1: attempt to perform arithmetic on a string value\r\n"},
		{`return {pcall(function() return '0o7' + 0 end)}`, "*2\r\n$-1\r\n$62\r\nuser_script:1: attempt to perform arithmetic on a string value\r\n"},
		{`return {-'2', -' 0x10 ', '10' % 3, '2'^'3', tostring('5.5' % -2)}`, "*5\r\n:-2\r\n:-16\r\n:1\r\n:8\r\n$4\r\n-0.5\r\n"},
		{`return {pcall(function() local s = '1_0' return -s end)}`, "*2\r\n$-1\r\n$74\r\nuser_script:1: attempt to perform arithmetic on local 's' (a string value)\r\n"},
		{`local x = '0b11' return x * 2`, "-ERR user_script:1: attempt to perform arithmetic on local 'x' (a string value) script: SHA, on @user_script:1.\r\n"},
		{`local t = {a='1_0'} return t.a - 1`, "-ERR user_script:1: attempt to perform arithmetic on field 'a' (a string value) script: SHA, on @user_script:1.\r\n"},
		{`return {pcall(function() return 1 + '0b11' end)}`, "*2\r\n$-1\r\n$62\r\nuser_script:1: attempt to perform arithmetic on a string value\r\n"},
		{`return {pcall(function() local s = {} return '1' + s end)}`, "*2\r\n$-1\r\n$73\r\nuser_script:1: attempt to perform arithmetic on local 's' (a table value)\r\n"},
		{`return {pcall(function() local s = {} return 'x' + s end)}`, "*2\r\n$-1\r\n$62\r\nuser_script:1: attempt to perform arithmetic on a string value\r\n"},
		{`local t = setmetatable({}, {__add = function(a, b) return 'meta' end}) return {t + '0b11', '0b11' + t}`, "*2\r\n$4\r\nmeta\r\n$4\r\nmeta\r\n"},
		{`local s=0 for i='1','3' do s=s+i end return s`, ":6\r\n"},
		{`local n = 0 for i = '0x2', 1, '-0.5' do n = n + 1 end return n`, ":3\r\n"},
		{`for i='0b1',2 do end`, "-ERR user_script:1: 'for' initial value must be a number script: SHA, on @user_script:1.\r\n"},
		{`return {pcall(function() for i = 1, {} do end end)}`, "*2\r\n$-1\r\n$43\r\nuser_script:1: 'for' limit must be a number\r\n"},
		{`return {pcall(function() for i = 1, 2, true do end end)}`, "*2\r\n$-1\r\n$42\r\nuser_script:1: 'for' step must be a number\r\n"},
		{`return {math.floor('1.5'), math.floor(' 0x10 '), math.max('3', 2, '0x10'), math.ldexp(1, '3')}`, "*4\r\n:1\r\n:16\r\n:16\r\n:8\r\n"},
		{`return math.floor('0b11')`, "-ERR user_script:1: bad argument #1 to 'floor' (number expected, got string) script: SHA, on @user_script:1.\r\n"},
		{`return {pcall(math.floor, '1_000')}`, "*2\r\n$-1\r\n$52\r\nbad argument #1 to '?' (number expected, got string)\r\n"},
		{`return {pcall(math.max, 1, nil, 'x')}`, "*2\r\n$-1\r\n$49\r\nbad argument #2 to '?' (number expected, got nil)\r\n"},
		{`return {pcall(math.max, 1, 'x', {})}`, "*2\r\n$-1\r\n$52\r\nbad argument #2 to '?' (number expected, got string)\r\n"},
		{`return {select('2', 'a', 'b'), unpack({1,2,3}, '2')}`, "*3\r\n$1\r\nb\r\n:2\r\n:3\r\n"},
		{`local t={1,2} table.insert(t, '1', 0) return t`, "*3\r\n:0\r\n:1\r\n:2\r\n"},
		{`return {pcall(table.remove, {1,2}, '0b1')}`, "*2\r\n$-1\r\n$52\r\nbad argument #2 to '?' (number expected, got string)\r\n"},
		{`return {pcall(select, '0b1', 1)}`, "*2\r\n$-1\r\n$52\r\nbad argument #1 to '?' (number expected, got string)\r\n"},
		{`return {pcall(bit.band, '0b11')}`, "*2\r\n$-1\r\n$52\r\nbad argument #1 to '?' (number expected, got string)\r\n"},
		{`return bit.band(' 0x10 ', '0xff')`, ":16\r\n"},
		{`return {pcall(struct.pack, 'i', '0b1')}`, "*2\r\n$-1\r\n$52\r\nbad argument #2 to '?' (number expected, got string)\r\n"},
		{`return {pcall(redis.setresp, 'x')}`, "*2\r\n$-1\r\n$32\r\nERR RESP version must be 2 or 3.\r\n"},
		{`return {pcall(redis.log, '0b11', 'x')}`, "*2\r\n$-1\r\n$48\r\nERR First argument must be a number (log level).\r\n"},
		{`return {pcall(redis.log, ' 0x3 ', 'x')}`, "*1\r\n:1\r\n"},
		{`return {pcall(cjson.encode_sparse_array, true, '3', '0x10')}`, "*4\r\n:1\r\n:1\r\n:3\r\n:16\r\n"},
		{`return {pcall(cmsgpack.unpack_limit, cmsgpack.pack(1,2), '1')}`, "*3\r\n:1\r\n:1\r\n:1\r\n"},
		{`return string.rep('a', '0b1')`, "-ERR user_script:1: bad argument #2 to 'rep' (number expected, got string) script: SHA, on @user_script:1.\r\n"},
		{`return {tostring(-0.0), tostring(0*-1)}`, "*2\r\n$2\r\n-0\r\n$2\r\n-0\r\n"},
		{`local x = 0 return tostring(-0.0)`, "$1\r\n0\r\n"},
		{`local a = -0.0 local b = 0 return tostring(a) .. tostring(b)`, "$4\r\n-0-0\r\n"},
	} {
		want := strings.ReplaceAll(tc.want, "SHA", SHA1Hex(tc.body))
		if got := run(t, e, tc.body, 2, nil, nil); got != want {
			t.Errorf("%s\n got  %q\n want %q", tc.body, got, want)
		}
	}
}

// FuzzStringArith checks that the VM reads a string operand as tonumber
// does (str2number) in "+", unary minus, math.floor's argument and a
// numeric for, and raises when it is no number.
func FuzzStringArith(f *testing.F) {
	for _, s := range []string{"12", " 0x10 ", "0b11", "1_000", "1e", "inf", "-nan", "0x1p4", ".5", "5.", "0x", "\t7\v", "1e500"} {
		f.Add(s)
	}
	e := New()
	defer e.Close()
	const body = `local s = ARGV[1]
local r = {}
for _, f in ipairs({function() return s + 0 end, function() return -s end, function() return math.floor(s) end,
	function() local n = 'none' for i = 0, s do n = i break end return n end}) do
	local ok, v = pcall(f)
	r[#r+1] = ok and tostring(v) or 'E'
end
return table.concat(r, '|')`
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return
		}
		want := "E|E|E|E"
		if n, ok := str2number(s); ok {
			want = luaNumber(n+0) + "|" + luaNumber(-n) + "|" + luaNumber(math.Floor(n)) + "|none"
			if n >= 0 {
				want = want[:len(want)-len("none")] + "0"
			}
		}
		got := run(t, e, body, 2, nil, []string{s})
		if got != "$"+strconv.Itoa(len(want))+"\r\n"+want+"\r\n" {
			t.Fatalf("%q: got %q, want %q", s, got, want)
		}
	})
}
