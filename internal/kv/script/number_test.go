package script

import (
	"strings"
	"testing"
)

// TestLua51Numbers runs scripts whose replies were taken from
// redis-server 7.0.15 (EVAL <script> 0, raw replies; SHA stands for the
// script's SHA1): numbers printed with "%.14g" by tostring, "..",
// table.concat and the string functions, tonumber as Lua 5.1 reads
// (strtod, strtoul with a base), the positions and values of errors
// under pcall, the redis library's errors, and the globals Redis has
// not. TestScriptingMatchesRedis (package kv) runs these and more
// against a live redis-server.
func TestLua51Numbers(t *testing.T) {
	e := New()
	defer e.Close()
	for _, tc := range []struct{ body, want string }{
		{`return tostring(0.1+0.2)`, "$3\r\n0.3\r\n"},
		{`return tostring(1e15)`, "$5\r\n1e+15\r\n"},
		{`return tostring(2^53)`, "$18\r\n9.007199254741e+15\r\n"},
		{`return tostring(-0.0)`, "$2\r\n-0\r\n"},
		{`return {tostring(1/0), tostring(-1/0), tostring(0/0), tostring(-(0/0))}`, "*4\r\n$3\r\ninf\r\n$4\r\n-inf\r\n$4\r\n-nan\r\n$3\r\nnan\r\n"},
		{`return 10 / 3 .. ''`, "$15\r\n3.3333333333333\r\n"},
		{`return math.huge .. ''`, "$3\r\ninf\r\n"},
		{`return ('x'):rep(2) .. (2^63)`, "$21\r\nxx9.2233720368548e+18\r\n"},
		{`return table.concat({0.1+0.2, 1e15, 2^63}, ',')`, "$29\r\n0.3,1e+15,9.2233720368548e+18\r\n"},
		{`return {pcall(table.concat, {1, {}, 3})}`, "*2\r\n$-1\r\n$54\r\ninvalid value (table) at index 2 in table for 'concat'\r\n"},
		{`return string.len(0.1+0.2)`, ":3\r\n"},
		{`return string.rep('ab', '3')`, "$6\r\nababab\r\n"},
		{`return string.char('65', 66.7)`, "$2\r\nAB\r\n"},
		{`return {pcall(string.char, 256)}`, "*2\r\n$-1\r\n$38\r\nbad argument #1 to '?' (invalid value)\r\n"},
		{`return tostring(5e-324)`, "$20\r\n4.9406564584125e-324\r\n"},
		{`return tostring(1e14) .. ' ' .. tostring(12345678901234)`, "$20\r\n1e+14 12345678901234\r\n"},
		{`return {tonumber('0x10'), tonumber(' 10 '), tonumber('1e5'), tonumber('-0x10'), tonumber('0x1p4')}`, "*5\r\n:16\r\n:10\r\n:100000\r\n:-16\r\n:16\r\n"},
		{`return {tostring(tonumber('1e')), tostring(tonumber('')), tostring(tonumber('inf')), tostring(tonumber('1e500')), tostring(tonumber('nan'))}`, "*5\r\n$3\r\nnil\r\n$3\r\nnil\r\n$3\r\ninf\r\n$3\r\ninf\r\n$3\r\nnan\r\n"},
		{`return {tonumber('10', 16), tonumber('-1', 16), tonumber('zz', 36), tonumber(' 11 ', 2), tostring(tonumber('12', 2))}`, "*5\r\n:16\r\n:-9223372036854775808\r\n:1295\r\n:3\r\n$3\r\nnil\r\n"},
		{`return tostring(tonumber('12', 37))`, "-ERR user_script:1: bad argument #2 to 'tonumber' (base out of range) script: SHA, on @user_script:1.\r\n"},
		{`return {pcall(string.rep)}`, "*2\r\n$-1\r\n$54\r\nbad argument #1 to '?' (string expected, got no value)\r\n"},
		{`return {pcall(struct.pack, 'i33', 1)}`, "*2\r\n$-1\r\n$43\r\nintegral size 33 is larger than limit of 32\r\n"},
		{`return {pcall(error, 'x')}`, "*2\r\n$-1\r\n$1\r\nx\r\n"},
		{`return {pcall(error, 1.5)}`, "*2\r\n$-1\r\n$3\r\n1.5\r\n"},
		{`return {pcall(error, 'x', 2)}`, "*2\r\n$-1\r\n$16\r\nuser_script:1: x\r\n"},
		{`error('x', 2)`, "-ERR x script: SHA, on @user_script:1.\r\n"},
		{`error(1.5)`, "-ERR user_script:1: 1.5 script: SHA, on @user_script:1.\r\n"},
		{`return {pcall(function() error({err='tab'}) end)}`, "*2\r\n$-1\r\n$3\r\ntab\r\n"},
		{`local ok, e = pcall(error, {err=5}) return {type(e), e}`, "*2\r\n$6\r\nnumber\r\n:5\r\n"},
		{`local ok, e = xpcall(function() error({err='x'}) end, function(m) return type(m) end) return e`, "$5\r\ntable\r\n"},
		{`return {pcall(redis.sha1hex)}`, "*2\r\n$-1\r\n$29\r\nERR wrong number of arguments\r\n"},
		{`redis.sha1hex()`, "-ERR wrong number of arguments script: SHA, on @user_script:1.\r\n"},
		{`return redis.sha1hex(1e15)`, "$40\r\n29649fb9b5a7f057fcfd4d03bc770039deb636be\r\n"},
		{`return redis.error_reply(5)`, "-ERR wrong number or type of arguments\r\n"},
		{`return {pcall(redis.setresp, 5)}`, "*2\r\n$-1\r\n$32\r\nERR RESP version must be 2 or 3.\r\n"},
		{`setmetatable(_G, {})`, "-ERR Attempt to modify a readonly table script: SHA, on @user_script:1.\r\n"},
		{`return {type(rawget(_G, 'getfenv')), type(rawget(_G, 'setfenv')), type(rawget(_G, '__redis__err__handler'))}`, "*3\r\n$3\r\nnil\r\n$3\r\nnil\r\n$8\r\nfunction\r\n"},
		{`return {pcall(cjson.decode, '{')}`, "*2\r\n$-1\r\n$57\r\nExpected object key string but found T_END at character 2\r\n"},
		{`return {pcall(cjson.decode, '1.2.3')}`, "*2\r\n$-1\r\n$55\r\nExpected the end but found invalid token at character 4\r\n"},
		{`return {pcall(cjson.decode, '"\\x"')}`, "*2\r\n$-1\r\n$59\r\nExpected value but found invalid escape code at character 2\r\n"},
		{`return {pcall(cjson.encode, function() end)}`, "*2\r\n$-1\r\n$45\r\nCannot serialise function: type not supported\r\n"},
		{`return {pcall(cjson.encode, {[true]=1})}`, "*2\r\n$-1\r\n$62\r\nCannot serialise boolean: table key must be a number or string\r\n"},
		{`return {pcall(cmsgpack.unpack, '\193')}`, "*2\r\n$-1\r\n$25\r\nBad data format in input.\r\n"},
	} {
		want := strings.ReplaceAll(tc.want, "SHA", SHA1Hex(tc.body))
		if got := run(t, e, tc.body, 2, nil, nil); got != want {
			t.Errorf("%s\n got  %q\n want %q", tc.body, got, want)
		}
	}
}
