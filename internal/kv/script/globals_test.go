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
		// gantry has getfenv and setfenv, which Redis has not, and no
		// __redis__err__handler (docs/kv.md)
		{`local t = {} for k, v in pairs(_G) do t[#t+1] = k .. ':' .. type(v) end table.sort(t) return table.concat(t, ' ')`, "$551\r\nARGV:table KEYS:table _G:table _VERSION:string assert:function bit:table cjson:table cmsgpack:table collectgarbage:function coroutine:table error:function gcinfo:function getfenv:function getmetatable:function ipairs:function load:function loadstring:function math:table next:function pairs:function pcall:function rawequal:function rawget:function rawset:function redis:table select:function setfenv:function setmetatable:function string:table struct:table table:table tonumber:function tostring:function type:function unpack:function xpcall:function\r\n"},
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
	} {
		want := strings.ReplaceAll(tc.want, "SHA", SHA1Hex(tc.body))
		if got := run(t, e, tc.body, 2, nil, nil); got != want {
			t.Errorf("%s\n got %q\nwant %q", tc.body, got, want)
		}
	}
}
