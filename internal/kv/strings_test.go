package kv

import (
	"testing"
	"time"
)

func TestStrings(t *testing.T) {
	e := startServer(t, nil)
	e.run([]step{
		{"GET nokey", "nil"},
		{"SET k v", "OK"},
		{"GET k", "v"},
		{"SET k v2 NX", "nil"},
		{"SET k v3 XX", "OK"},
		{"SET k2 v XX", "nil"},
		{"SET k v4 GET", "v3"},
		{"SET nk v GET", "nil"},
		{"SET k v NX XX", "ERR:ERR syntax error"},
		{"SET k v EX 0", "ERR:ERR invalid expire time in 'set' command"},
		{"SET k v EX abc", "ERR:ERR value is not an integer or out of range"},
		{"SET k v EX 10 PX 100", "ERR:ERR syntax error"},
		{"SET k v KEEPTTL EX 1", "ERR:ERR syntax error"},
		{"SET", "ERR:ERR wrong number of arguments for 'set' command"},
		{"SETNX k x", "0"},
		{"SETNX k3 x", "1"},
		{"MSET a 1 b 2 c 3", "OK"},
		{"MSET a 1 b", "ERR:ERR wrong number of arguments for 'mset' command"},
		{"MGET a b nokey c", "[1 2 nil 3]"},
		{"MSETNX a 9 z 9", "0"},
		{"MSETNX y 9 z 9", "1"},
		{"GETSET a 10", "1"},
		{"GETDEL a", "10"},
		{"GETDEL a", "nil"},
		{"APPEND s hello", "5"},
		{"APPEND s _world", "11"},
		{"STRLEN s", "11"},
		{"STRLEN nokey", "0"},
		{"GETRANGE s 0 4", "hello"},
		{"GETRANGE s -5 -1", "world"},
		{"GETRANGE s 5 1", ""},
		{"GETRANGE s 0 100", "hello_world"},
		{"GETRANGE s -100 2", "hel"},
		{"GETRANGE nokey 0 -1", ""},
		{"SETRANGE s 6 W", "11"},
		{"GET s", "hello_World"},
		{"SETRANGE pad 3 x", "4"},
		{"SETRANGE s -1 x", "ERR:ERR offset is out of range"},
		{"SETRANGE empty 0 \"\"", "0"},
		{"SETRANGE s 9223372036854775807 A", "ERR:ERR string exceeds maximum allowed size"}, // off+len overflows int64
		{"SETRANGE s 2147483647 A", "ERR:ERR string exceeds maximum allowed size"},
		{"EXISTS empty", "0"},
		{"INCR n", "1"},
		{"INCRBY n 10", "11"},
		{"DECR n", "10"},
		{"DECRBY n 20", "-10"},
		{"INCR s", "ERR:ERR value is not an integer or out of range"},
		{"INCRBY n x", "ERR:ERR value is not an integer or out of range"},
		{"SET big 9223372036854775807", "OK"},
		{"INCR big", "ERR:ERR increment or decrement would overflow"},
		{"SET small -9223372036854775808", "OK"},
		{"DECR small", "ERR:ERR increment or decrement would overflow"},
		{"SET f 10.5", "OK"},
		{"INCRBYFLOAT f 0.1", "10.6"},
		{"INCRBYFLOAT f -5", "5.6"},
		{"INCRBYFLOAT nf 3", "3"},
		{"INCRBYFLOAT f abc", "ERR:ERR value is not a valid float"},
		{"INCRBYFLOAT s 1", "ERR:ERR value is not a valid float"},
		{"INCRBYFLOAT f inf", "ERR:ERR increment would produce NaN or Infinity"},
		{"LPUSH list a", "1"},
		{"GET list", "ERR:WRONGTYPE Operation against a key holding the wrong kind of value"},
		{"INCR list", "ERR:WRONGTYPE"},
		{"APPEND list x", "ERR:WRONGTYPE"},
		{"SET list v GET", "ERR:WRONGTYPE"},
		{"SET list v", "OK"},
		{"GET list", "v"},
		{"MGET list nokey", "[v nil]"},
	})
}

func TestStringExpiryOptions(t *testing.T) {
	e := startServer(t, nil)
	now := e.clock.Now().UnixMilli()
	e.run([]step{
		{"SET k v EX 10", "OK"},
		{"TTL k", "10"},
		{"PTTL k", "10000"},
		{"SET k v PX 1500", "OK"},
		{"PTTL k", "1500"},
		{"TTL k", "2"},
		{"SET k v EXAT " + itoa(now/1000+100), "OK"},
		{"TTL k", "100"},
		{"SET k v PXAT " + itoa(now+5000), "OK"},
		{"PTTL k", "5000"},
		{"SET k v2 KEEPTTL", "OK"},
		{"PTTL k", "5000"},
		{"SET k v3", "OK"},
		{"TTL k", "-1"},
		{"SET k v PXAT " + itoa(now-1), "OK"},
		{"GET k", "nil"},
		{"SETEX k 10 v", "OK"},
		{"TTL k", "10"},
		{"SETEX k 0 v", "ERR:ERR invalid expire time in 'setex' command"},
		{"PSETEX k 100 v", "OK"},
		{"PTTL k", "100"},
		{"SET k v EX 9223372036854775807", "ERR:ERR invalid expire time in 'set' command"},
		{"GETEX k EX 50", "v"},
		{"TTL k", "50"},
		{"GETEX k PERSIST", "v"},
		{"TTL k", "-1"},
		{"GETEX k PX 10", "v"},
		{"PTTL k", "10"},
		{"GETEX nokey EX 10", "nil"},
		{"GETEX k EX 10 PERSIST", "ERR:ERR syntax error"},
	})
	e.clock.Advance(10 * time.Millisecond)
	e.run([]step{
		{"GET k", "nil"},
		{"EXISTS k", "0"},
		{"SET e v PX 100", "OK"},
	})
	e.clock.Advance(99 * time.Millisecond)
	e.run([]step{{"GET e", "v"}})
	e.clock.Advance(time.Millisecond)
	e.run([]step{{"GET e", "nil"}, {"DBSIZE", "0"}})
}

func itoa(n int64) string {
	return formatInt(n)
}
