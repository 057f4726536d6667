package script

import (
	"strings"
	"testing"
)

// TestCollectGarbage: collectgarbage and gcinfo. The first replies are
// what redis-server 7.0.15 answered to `EVAL <body> 0` (recorded raw, on a
// server that had run no script before; SHA stands for the script's
// SHA1); the memory figures are gantry's own estimate, checked for what
// a script can rely on.
func TestCollectGarbage(t *testing.T) {
	e := New()
	defer e.Close()
	for _, tc := range []struct{ body, want string }{
		{`return type(collectgarbage('count'))`, "$6\r\nnumber\r\n"},
		{`return collectgarbage('count') > 0`, ":1\r\n"},
		{`return {collectgarbage()}`, "*1\r\n:0\r\n"},
		{`return {collectgarbage('collect')}`, "*1\r\n:0\r\n"},
		{`return {collectgarbage('step')}`, "*1\r\n$-1\r\n"},
		{`return {collectgarbage('step', 100)}`, "*1\r\n:1\r\n"},
		{`return {collectgarbage('stop')}`, "*1\r\n:0\r\n"},
		{`return {collectgarbage('restart')}`, "*1\r\n:0\r\n"},
		{`return {collectgarbage('setpause', 150)}`, "*1\r\n:200\r\n"},
		{`return {collectgarbage('setpause')}`, "*1\r\n:150\r\n"},
		{`return {collectgarbage('setstepmul', 300)}`, "*1\r\n:200\r\n"},
		{`return {collectgarbage('setstepmul')}`, "*1\r\n:300\r\n"},
		{`return {collectgarbage('nosuch')}`, "-ERR user_script:1: bad argument #1 to 'collectgarbage' (invalid option 'nosuch') script: SHA, on @user_script:1.\r\n"},
		{`return {collectgarbage('count', 'x')}`, "-ERR user_script:1: bad argument #2 to 'collectgarbage' (number expected, got string) script: SHA, on @user_script:1.\r\n"},
		{`return {collectgarbage(1)}`, "-ERR user_script:1: bad argument #1 to 'collectgarbage' (invalid option '1') script: SHA, on @user_script:1.\r\n"},
		{`return {collectgarbage('step', 'x')}`, "-ERR user_script:1: bad argument #2 to 'collectgarbage' (number expected, got string) script: SHA, on @user_script:1.\r\n"},
		{`return {collectgarbage('step', '2')}`, "*1\r\n:1\r\n"},
		{`return {collectgarbage(nil)}`, "*1\r\n:0\r\n"},
		{`return {collectgarbage('generational')}`, "-ERR user_script:1: bad argument #1 to 'collectgarbage' (invalid option 'generational') script: SHA, on @user_script:1.\r\n"},
		{`return type(gcinfo())`, "$6\r\nnumber\r\n"},
		{`return math.floor(collectgarbage('count')) == gcinfo()`, ":1\r\n"},
		{`return {collectgarbage({})}`, "-ERR user_script:1: bad argument #1 to 'collectgarbage' (string expected, got table) script: SHA, on @user_script:1.\r\n"},
		// the memory a script holds shows in the count (Redis: 87 KB, then
		// 1.1 MB more for these 20000 strings)
		{`local a = collectgarbage('count') local t = {} for i = 1, 20000 do t[i] = 'value ' .. i end local b = collectgarbage('count') return (b - a > 300 and b - a < 4000) and 'ok' or (a .. ' ' .. b)`, "$2\r\nok\r\n"},
		{`local a = gcinfo() return (a > 16 and a < 100000) and 'ok' or a`, "$2\r\nok\r\n"},
	} {
		want := strings.ReplaceAll(tc.want, "SHA", SHA1Hex(tc.body))
		if got := run(t, e, tc.body, 2, nil, nil); got != want {
			t.Errorf("%s\n got %q\nwant %q", tc.body, got, want)
		}
	}
}
