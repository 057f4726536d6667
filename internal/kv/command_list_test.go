package kv

import (
	"sort"
	"strings"
	"testing"
)

// TestCommandGetKeysAndFlags: COMMAND GETKEYSANDFLAGS gives each key with
// the flags of its key spec, and COMMAND GETKEYS an empty array for a
// script called with no keys; redis-server 7.0.15's replies, byte for
// byte.
func TestCommandGetKeysAndFlags(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	for _, tt := range []struct{ args, want string }{
		{"COMMAND GETKEYSANDFLAGS", "-ERR wrong number of arguments for 'command|getkeysandflags' command\r\n"},
		{"COMMAND GETKEYSANDFLAGS get", "-ERR wrong number of arguments for 'command|getkeysandflags' command\r\n"},
		{"COMMAND GETKEYSANDFLAGS nosuch a", "-ERR Invalid command specified\r\n"},
		{"COMMAND GETKEYSANDFLAGS get a b", "-ERR Invalid number of arguments specified for command\r\n"},
		{"COMMAND GETKEYSANDFLAGS ping a", "-ERR The command has no key arguments\r\n"},
		{"COMMAND GETKEYSANDFLAGS spublish a b", "-ERR The command has no key arguments\r\n"},
		{"COMMAND GETKEYSANDFLAGS get a", "*1\r\n*2\r\n$1\r\na\r\n*2\r\n+RO\r\n+access\r\n"},
		{"COMMAND GETKEYSANDFLAGS set a b", "*1\r\n*2\r\n$1\r\na\r\n*2\r\n+OW\r\n+update\r\n"},
		{"COMMAND GETKEYSANDFLAGS set a b GET ex 10", "*1\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+update\r\n"},
		{"COMMAND GETKEYSANDFLAGS lmove a b left right", "*2\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n*2\r\n$1\r\nb\r\n*2\r\n+RW\r\n+insert\r\n"},
		{"COMMAND GETKEYSANDFLAGS del a b", "*2\r\n*2\r\n$1\r\na\r\n*2\r\n+RM\r\n+delete\r\n*2\r\n$1\r\nb\r\n*2\r\n+RM\r\n+delete\r\n"},
		{"COMMAND GETKEYSANDFLAGS exists a", "*1\r\n*2\r\n$1\r\na\r\n*1\r\n+RO\r\n"},
		{"COMMAND GETKEYSANDFLAGS sort a by x get y store b", "*2\r\n*2\r\n$1\r\na\r\n*2\r\n+RO\r\n+access\r\n*2\r\n$1\r\nb\r\n*2\r\n+OW\r\n+update\r\n"},
		{"COMMAND GETKEYSANDFLAGS bitfield a get u8 0", "*1\r\n*2\r\n$1\r\na\r\n*2\r\n+RO\r\n+access\r\n"},
		{"COMMAND GETKEYSANDFLAGS bitfield a set u8 0 1", "*1\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+update\r\n"},
		{"COMMAND GETKEYSANDFLAGS migrate h 1 k 0 5", "*1\r\n*2\r\n$1\r\nk\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n"},
		{"COMMAND GETKEYSANDFLAGS zunionstore d 2 a b", "*3\r\n*2\r\n$1\r\nd\r\n*2\r\n+OW\r\n+update\r\n*2\r\n$1\r\na\r\n*2\r\n+RO\r\n+access\r\n*2\r\n$1\r\nb\r\n*2\r\n+RO\r\n+access\r\n"},
		{"COMMAND GETKEYSANDFLAGS eval s 2 a b c", "*2\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+update\r\n*2\r\n$1\r\nb\r\n*3\r\n+RW\r\n+access\r\n+update\r\n"},
		{"COMMAND GETKEYSANDFLAGS georadius a 0 0 1 m storedist d", "*2\r\n*2\r\n$1\r\na\r\n*2\r\n+RO\r\n+access\r\n*2\r\n$1\r\nd\r\n*2\r\n+OW\r\n+update\r\n"},
		{"COMMAND GETKEYSANDFLAGS object encoding a", "*1\r\n*2\r\n$1\r\na\r\n*1\r\n+RO\r\n"},
		{"COMMAND GETKEYSANDFLAGS eval s 0", "*0\r\n"},
		{"COMMAND GETKEYSANDFLAGS fcall f 0", "*0\r\n"},
		{"COMMAND GETKEYS eval s 0", "*0\r\n"},
	} {
		if got := untilPong(t, r, respArray(strings.Fields(tt.args)...)); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestCommandListFilterBy: COMMAND LIST FILTERBY MODULE, ACLCAT and
// PATTERN list commands and subcommands (in an order of their own, in
// Redis that of a hash table: compared as sets), anything else is a
// syntax error; redis-server 7.0.15's replies.
func TestCommandListFilterBy(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	for _, tt := range []struct{ args, want string }{
		{"COMMAND LIST a", "-ERR syntax error\r\n"},
		{"COMMAND LIST a b", "-ERR syntax error\r\n"},
		{"COMMAND LIST FILTERBY", "-ERR syntax error\r\n"},
		{"COMMAND LIST FILTERBY MODULE", "-ERR syntax error\r\n"},
		{"COMMAND LIST FILTERBY x y", "-ERR syntax error\r\n"},
		{"COMMAND LIST FILTERBY MODULE x y", "-ERR syntax error\r\n"},
		{"COMMAND LIST FILTERBY MODULE x", "*0\r\n"},
		{"COMMAND LIST FILTERBY ACLCAT nosuch", "*0\r\n"},
		{"COMMAND LIST FILTERBY PATTERN nomatch", "*0\r\n"},
		{"COMMAND LIST FILTERBY ACLCAT hyperloglog", "*5\r\n$10\r\npfselftest\r\n$7\r\npfcount\r\n$7\r\npfdebug\r\n$5\r\npfadd\r\n$7\r\npfmerge\r\n"},
		{"COMMAND LIST FILTERBY aclcat HyperLogLog", "*5\r\n$10\r\npfselftest\r\n$7\r\npfcount\r\n$7\r\npfdebug\r\n$5\r\npfadd\r\n$7\r\npfmerge\r\n"},
		{"COMMAND LIST FILTERBY PATTERN XA*", "*3\r\n$10\r\nxautoclaim\r\n$4\r\nxack\r\n$4\r\nxadd\r\n"},
		{"COMMAND LIST FILTERBY PATTERN module|l*", "*3\r\n$13\r\nmodule|loadex\r\n$11\r\nmodule|list\r\n$11\r\nmodule|load\r\n"},
	} {
		if got := untilPong(t, r, respArray(strings.Fields(tt.args)...)); sortedReply(got) != sortedReply(tt.want) {
			t.Errorf("%s: got %q, want %q", tt.args, got, tt.want)
		}
	}
	r.roundTrip(respArray("COMMAND", "HELP"), "*21\r\n+COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+(no subcommand)\r\n+    Return details about all Redis commands.\r\n+COUNT\r\n+    Return the total number of commands in this Redis server.\r\n+LIST\r\n+    Return a list of all commands in this Redis server.\r\n+INFO [<command-name> ...]\r\n+    Return details about multiple Redis commands.\r\n+    If no command names are given, documentation details for all\r\n+    commands are returned.\r\n+DOCS [<command-name> ...]\r\n+    Return documentation details about multiple Redis commands.\r\n+    If no command names are given, documentation details for all\r\n+    commands are returned.\r\n+GETKEYS <full-command>\r\n+    Return the keys from a full Redis command.\r\n+GETKEYSANDFLAGS <full-command>\r\n+    Return the keys and the access flags from a full Redis command.\r\n+HELP\r\n+    Prints this help.\r\n")
}

// sortedReply is a flat array reply of bulk strings with its elements
// sorted; any other reply as it is.
func sortedReply(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")
	if len(lines) < 3 || lines[0][0] != '*' || len(lines)%2 != 1 {
		return s
	}
	var items []string
	for i := 1; i+1 < len(lines); i += 2 {
		items = append(items, lines[i]+"\r\n"+lines[i+1])
	}
	sort.Strings(items)
	return lines[0] + "\r\n" + strings.Join(items, "\r\n") + "\r\n"
}
