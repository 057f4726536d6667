package kv

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDebugSubcommandArity: a DEBUG subcommand given too few or too many
// arguments answers Redis 7.0's error of an unknown subcommand, byte for
// byte (redis-server 7.0.15's replies), not the generic arity error.
func TestDebugSubcommandArity(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	ctx := context.Background()
	sub := func(name string) string {
		return "ERR unknown subcommand or wrong number of arguments for '" + name + "'. Try DEBUG HELP."
	}
	tests := []struct {
		args []any
		want string // the error, or "" for none
	}{
		{[]any{"DEBUG"}, "ERR wrong number of arguments for 'debug' command"},
		{[]any{"DEBUG", "HELP", "x"}, sub("HELP")},
		{[]any{"DEBUG", "SLEEP"}, sub("SLEEP")},
		{[]any{"DEBUG", "sleep", "0", "0"}, sub("sleep")},
		{[]any{"DEBUG", "SET-ACTIVE-EXPIRE"}, sub("SET-ACTIVE-EXPIRE")},
		{[]any{"DEBUG", "SET-ACTIVE-EXPIRE", "1", "1"}, sub("SET-ACTIVE-EXPIRE")},
		{[]any{"DEBUG", "SET-DISABLE-DENY-SCRIPTS"}, sub("SET-DISABLE-DENY-SCRIPTS")},
		{[]any{"DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0", "0"}, sub("SET-DISABLE-DENY-SCRIPTS")},
		{[]any{"DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0"}, ""},
		{[]any{"DEBUG", "QUICKLIST-PACKED-THRESHOLD"}, sub("QUICKLIST-PACKED-THRESHOLD")},
		{[]any{"DEBUG", "CHANGE-REPL-ID", "x"}, sub("CHANGE-REPL-ID")},
		{[]any{"DEBUG", "OBJECT"}, sub("OBJECT")},
		{[]any{"DEBUG", "OBJECT", "a", "b"}, sub("OBJECT")},
		{[]any{"DEBUG", "LISTPACK", "a", "b"}, sub("LISTPACK")},
		{[]any{"DEBUG", "DIGEST", "x"}, sub("DIGEST")},
		{[]any{"DEBUG", "POPULATE"}, sub("POPULATE")},
		{[]any{"DEBUG", "POPULATE", "0", "p", "1", "x"}, sub("POPULATE")},
		{[]any{"DEBUG", "PROTOCOL"}, sub("PROTOCOL")},
		{[]any{"DEBUG", "RELOAD", "x"}, "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."},
		// Redis's LOADAOF takes any number of arguments
		{[]any{"DEBUG", "LOADAOF", "x"}, "ERR no append only file: this server has no data directory"},
	}
	for _, tc := range tests {
		err := e.rdb.Do(ctx, tc.args...).Err()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestDebugSetDisableDenyScripts: DEBUG SET-DISABLE-DENY-SCRIPTS 1 lets
// scripts call commands marked noscript (DEBUG, CONFIG, CLIENT...), as
// Redis's script_disable_deny_script; 0 (or anything atoi reads as 0)
// refuses them again, also to a script that called one before. The ones
// acting on a connection's state or locking for themselves stay refused.
func TestDebugSetDisableDenyScripts(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	const refused = "ERR This Redis command is not allowed from script"
	dbg := `return redis.call('debug','protocol','integer')`
	tests := []struct {
		name   string
		set    string // the argument of SET-DISABLE-DENY-SCRIPTS, "" for none
		script string
		want   string // the reply, or the prefix of an error (refused)
	}{
		{"off by default", "", dbg, refused},
		{"on", "1", dbg, "12345"},
		{"on, the same script", "", dbg, "12345"},
		{"config", "", `return redis.call('config','get','maxmemory')[1]`, "maxmemory"},
		{"client", "", `return redis.call('client','id') ~= nil and 'id' or 'none'`, "id"},
		{"multi stays refused", "", `return redis.call('multi')`, refused},
		{"eval stays refused", "", `return redis.call('eval','return 1','0')`, refused},
		{"debug reload stays refused", "", `return redis.call('debug','reload')`, refused},
		{"debug digest stays refused", "", `return redis.call('debug','digest')`, refused},
		{"off again", "0", dbg, refused},
		{"atoi: a leading number", "7x", dbg, "12345"},
		{"atoi: no number is 0", "yes", dbg, refused},
	}
	ctx := context.Background()
	for _, tc := range tests {
		if tc.set != "" {
			if err := e.rdb.Do(ctx, "DEBUG", "SET-DISABLE-DENY-SCRIPTS", tc.set).Err(); err != nil {
				t.Fatalf("%s: DEBUG SET-DISABLE-DENY-SCRIPTS %s: %v", tc.name, tc.set, err)
			}
		}
		res, err := e.rdb.Do(ctx, "EVAL", tc.script, "0").Result()
		got := format(res, err)
		if tc.want == refused {
			if err == nil || !strings.HasPrefix(err.Error(), refused) {
				t.Errorf("%s: got %s, want the error %q", tc.name, got, refused)
			}
		} else if got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestDebugReloadOptions: DEBUG RELOAD's MERGE, NOFLUSH and NOSAVE as
// Redis's with the libraries of FUNCTION (an RDB holds them): NOFLUSH
// without MERGE fails on a library held already, with MERGE keeps both
// sides, NOSAVE loads what the data directory holds (with appendonly
// off, the last snapshot) and empties first unless NOFLUSH.
func TestDebugReloadOptions(t *testing.T) {
	lib := func(name string) string {
		return "#!lua name=" + name + "\nredis.register_function('" + name + "', function() return 'hello' end)"
	}
	ctx := context.Background()
	e := startServer(t, func(c *Config) {
		c.DataDir = t.TempDir()
		c.EnableDebugCommand = "yes"
	})
	do := func(want string, args ...any) {
		t.Helper()
		res, err := e.rdb.Do(ctx, args...).Result()
		if got := format(res, err); got != want {
			t.Errorf("%v: got %s, want %s", args, got, want)
		}
	}
	do("OK", "CONFIG", "SET", "appendonly", "no")
	do("test", "FUNCTION", "LOAD", lib("test"))
	do("ERR(ERR Error trying to load the RDB dump, check server logs.)", "DEBUG", "RELOAD", "NOFLUSH")
	do("OK", "DEBUG", "RELOAD", "NOFLUSH", "MERGE")
	do("hello", "FCALL", "test", "0")
	do("OK", "DEBUG", "RELOAD")
	do("hello", "FCALL", "test", "0")

	// the suite's "test debug reload with nosave and noflush"
	do("OK", "FUNCTION", "DELETE", "test")
	do("OK", "SET", "x", "1")
	do("test1", "FUNCTION", "LOAD", lib("test1"))
	do("OK", "DEBUG", "RELOAD")
	do("test2", "FUNCTION", "LOAD", lib("test2"))
	do("OK", "SET", "y", "2")
	do("OK", "DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE")
	do("hello", "FCALL", "test1", "0")
	do("hello", "FCALL", "test2", "0")
	do("2", "GET", "y")

	// NOSAVE with the flush: what the snapshot holds, nothing since
	do("OK", "DEBUG", "RELOAD", "NOSAVE")
	do("hello", "FCALL", "test1", "0")
	do("ERR(ERR Function not found)", "FCALL", "test2", "0")
	do("1", "GET", "x")
	do("nil", "GET", "y")

	// without a data directory there is no file to load
	mem := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	if err := mem.rdb.Do(ctx, "DEBUG", "RELOAD", "NOSAVE").Err(); err == nil || err.Error() != "ERR Error trying to load the RDB dump, check server logs." {
		t.Errorf("DEBUG RELOAD NOSAVE without a data directory: %v", err)
	}
	if err := mem.rdb.Do(ctx, "DEBUG", "RELOAD").Err(); err != nil {
		t.Errorf("DEBUG RELOAD without a data directory: %v", err)
	}
}

// TestDebugReloadLoadsBack: a saving DEBUG RELOAD loads back what it
// saved, as redis-server 7.0.15's (replies checked against it): a big
// hash or sorted set that now fits the small limits comes back small,
// a key whose expiry passed is gone, and with NOFLUSH MERGE each key
// comes back once (a list is not pushed twice); appendonly no or yes.
// Without a data directory the keys stay as they are.
func TestDebugReloadLoadsBack(t *testing.T) {
	ctx := context.Background()
	for _, aof := range []string{"no", "yes"} {
		t.Run("appendonly "+aof, func(t *testing.T) {
			e := startServer(t, func(c *Config) {
				c.DataDir = t.TempDir()
				c.EnableDebugCommand = "yes"
			})
			do := func(want string, args ...any) {
				t.Helper()
				res, err := e.rdb.Do(ctx, args...).Result()
				if got := format(res, err); got != want {
					t.Errorf("%v: got %s, want %s", args, got, want)
				}
			}
			do("OK", "CONFIG", "SET", "appendonly", aof)
			do("3", "HSET", "h", "a", "1", "b", "2", "c", "3")
			do("3", "ZADD", "z", "1", "a", "2", "b", "3", "c")
			do("OK", "CONFIG", "SET", "hash-max-listpack-entries", "1")
			do("OK", "CONFIG", "SET", "zset-max-listpack-entries", "1")
			do("1", "HSET", "h", "d", "4")
			do("1", "ZADD", "z", "4", "d")
			do("OK", "CONFIG", "SET", "hash-max-listpack-entries", "128")
			do("OK", "CONFIG", "SET", "zset-max-listpack-entries", "128")
			do("hashtable", "OBJECT", "ENCODING", "h")
			do("skiplist", "OBJECT", "ENCODING", "z")
			do("OK", "SET", "e", "v", "PX", "100")
			do("3", "RPUSH", "l", "a", "b", "c")
			e.clock.Advance(time.Second)
			do("4", "DBSIZE") // e's expiry passed; not deleted yet (no active expiry)
			do("OK", "DEBUG", "RELOAD")
			do("3", "DBSIZE")
			do("listpack", "OBJECT", "ENCODING", "h")
			do("listpack", "OBJECT", "ENCODING", "z")
			do("4", "HLEN", "h")
			do("[a 1 b 2 c 3 d 4]", "ZRANGE", "z", "0", "-1", "WITHSCORES")
			do("[a b c]", "LRANGE", "l", "0", "-1")
			do("OK", "DEBUG", "RELOAD", "NOFLUSH", "MERGE")
			do("[a b c]", "LRANGE", "l", "0", "-1")
			do("3", "DBSIZE")
		})
	}
	t.Run("no data directory", func(t *testing.T) {
		e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
		do := func(want string, args ...any) {
			t.Helper()
			res, err := e.rdb.Do(ctx, args...).Result()
			if got := format(res, err); got != want {
				t.Errorf("%v: got %s, want %s", args, got, want)
			}
		}
		do("OK", "CONFIG", "SET", "hash-max-listpack-entries", "1")
		do("2", "HSET", "h", "a", "1", "b", "2")
		do("OK", "CONFIG", "SET", "hash-max-listpack-entries", "128")
		do("OK", "DEBUG", "RELOAD")
		do("hashtable", "OBJECT", "ENCODING", "h")
	})
}
