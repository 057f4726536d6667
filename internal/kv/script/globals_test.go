package script

import (
	"strings"
	"testing"
)

// TestGlobalsListed: next, pairs and rawget see what the read-only
// globals and libraries hold, and writes are still refused. Each reply
// below is what redis-server 7.0.15 answered to `EVAL <body> 0` (recorded
// raw; SHA stands for the script's SHA1).
func TestGlobalsListed(t *testing.T) {
	e := New()
	defer e.Close()
	for _, tc := range []struct{ body, want string }{
		{`local t = {} for k, v in pairs(_G) do t[#t+1] = k .. ':' .. type(v) end table.sort(t) return table.concat(t, ' ')`, "$548\r\nARGV:table KEYS:table _G:table _VERSION:string __redis__err__handler:function assert:function bit:table cjson:table cmsgpack:table collectgarbage:function coroutine:table error:function gcinfo:function getmetatable:function ipairs:function load:function loadstring:function math:table next:function pairs:function pcall:function rawequal:function rawget:function rawset:function redis:table select:function setmetatable:function string:table struct:table table:table tonumber:function tostring:function type:function unpack:function xpcall:function\r\n"},
		{`local t = {} for k, v in pairs(string) do t[#t+1] = k end table.sort(t) return table.concat(t, ' ')`, "$82\r\nbyte char dump find format gfind gmatch gsub len lower match rep reverse sub upper\r\n"},
		{`local t = {} for k, v in pairs(math) do t[#t+1] = k end table.sort(t) return table.concat(t, ' ')`, "$153\r\nabs acos asin atan atan2 ceil cos cosh deg exp floor fmod frexp huge ldexp log log10 max min mod modf pi pow rad random randomseed sin sinh sqrt tan tanh\r\n"},
		{`local t = {} for k, v in pairs(struct) do t[#t+1] = k end table.sort(t) return table.concat(t, ' ')`, "$16\r\npack size unpack\r\n"},
		{`local t = {} for k, v in pairs(bit) do t[#t+1] = k end table.sort(t) return table.concat(t, ' ')`, "$66\r\narshift band bnot bor bswap bxor lshift rol ror rshift tobit tohex\r\n"},
		{`local t = {} for k, v in pairs(coroutine) do t[#t+1] = k end table.sort(t) return table.concat(t, ' ')`, "$39\r\ncreate resume running status wrap yield\r\n"},
		{`return {next(_G) ~= nil, rawget(_G, 'redis') ~= nil, #_G, rawget(_G, 'nosuch') == nil}`, "*4\r\n:1\r\n:1\r\n:0\r\n:1\r\n"},
		{`return type(rawget(string, 'format'))`, "$8\r\nfunction\r\n"},
		{`for k, v in pairs(_G) do if k == '_G' then return v == _G end end`, ":1\r\n"},
		{`for k, v in pairs(_G) do if k == 'string' then v.x = 1 end end`, "-ERR user_script:1: Attempt to modify a readonly table script: SHA, on @user_script:1.\r\n"},
		{`local k, v = next(_G) _G[k] = 1`, "-ERR user_script:1: Attempt to modify a readonly table script: SHA, on @user_script:1.\r\n"},
		{`for k, v in pairs(_G) do if k == 'string' then return rawequal(v, string) end end`, ":1\r\n"},
		{`return {pcall(next, _G, 'nosuchkey')}`, "*2\r\n$-1\r\n$21\r\ninvalid key to 'next'\r\n"},
		{`return next(_G, 'nosuchkey')`, "-ERR invalid key to 'next' script: SHA, on @user_script:1.\r\n"},
		// Lua 5.1's deprecated table functions, cjson.new, cmsgpack's names
		{`local r = {} local v = table.foreach({10, 20, x = 'y'}, function(k, v) r[#r+1] = tostring(k) .. '=' .. tostring(v) end) table.sort(r) return {table.concat(r, ' '), tostring(v)}`, "*2\r\n$13\r\n1=10 2=20 x=y\r\n$3\r\nnil\r\n"},
		{`return table.foreach({1, 2, 3}, function(k, v) if v == 2 then return 'stop' .. k end end)`, "$5\r\nstop2\r\n"},
		{`local r = {} table.foreachi({10, 20, nil, 40}, function(i, v) r[#r+1] = i .. '=' .. tostring(v) end) return table.concat(r, ' ')`, "$20\r\n1=10 2=20 3=nil 4=40\r\n"},
		{`return table.foreachi({5, 6}, function(i, v) if i == 2 then return v * 2 end end)`, ":12\r\n"},
		{`return table.foreach({1}, 'x')`, "-ERR user_script:1: bad argument #2 to 'foreach' (function expected, got string) script: SHA, on @user_script:1.\r\n"},
		{`return table.foreach('x', type)`, "-ERR user_script:1: bad argument #1 to 'foreach' (table expected, got string) script: SHA, on @user_script:1.\r\n"},
		{`return table.foreachi({1})`, "-ERR user_script:1: bad argument #2 to 'foreachi' (function expected, got no value) script: SHA, on @user_script:1.\r\n"},
		{`return {pcall(table.setn, {}, 1)}`, "*2\r\n$-1\r\n$18\r\n'setn' is obsolete\r\n"},
		{`return cmsgpack._COPYRIGHT`, "$40\r\nCopyright (C) 2012, Salvatore Sanfilippo\r\n"},
		{`return cmsgpack._DESCRIPTION`, "$36\r\nMessagePack C implementation for Lua\r\n"},
		{`return cmsgpack._NAME .. ' ' .. cmsgpack._VERSION`, "$27\r\ncmsgpack lua-cmsgpack 0.4.0\r\n"},
		{`return type(cjson.new)`, "$8\r\nfunction\r\n"},
		{`local c = cjson.new() return {type(c), c.encode({1, 2}), tostring(c == cjson)}`, "*3\r\n$5\r\ntable\r\n$5\r\n[1,2]\r\n$5\r\nfalse\r\n"},
		{`local c = cjson.new() c.encode_max_depth(1) return c.encode({{}})`, "-ERR user_script:1: Cannot serialise, excessive nesting (2) script: SHA, on @user_script:1.\r\n"},
		{`local c = cjson.new() c.encode_max_depth(1) return cjson.encode({{}})`, "$4\r\n[{}]\r\n"},
		{`local c = cjson.new() c.x = 1 return c.x`, ":1\r\n"},
		{`local t = {} for k, v in pairs(table) do t[#t+1] = k end table.sort(t) return table.concat(t, ' ')`, "$57\r\nconcat foreach foreachi getn insert maxn remove setn sort\r\n"},
		{`local t = {} for k, v in pairs(cjson) do t[#t+1] = k end table.sort(t) return table.concat(t, ' ')`, "$180\r\n_NAME _VERSION decode decode_invalid_numbers decode_max_depth encode encode_invalid_numbers encode_keep_buffer encode_max_depth encode_number_precision encode_sparse_array new null\r\n"},
		{`local t = {} for k, v in pairs(cmsgpack) do t[#t+1] = k end table.sort(t) return table.concat(t, ' ')`, "$74\r\n_COPYRIGHT _DESCRIPTION _NAME _VERSION pack unpack unpack_limit unpack_one\r\n"},
	} {
		want := strings.ReplaceAll(tc.want, "SHA", SHA1Hex(tc.body))
		if got := run(t, e, tc.body, 2, nil, nil); got != want {
			t.Errorf("%s\n got %q\nwant %q", tc.body, got, want)
		}
	}
}
