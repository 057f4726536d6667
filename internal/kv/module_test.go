package kv

import "testing"

const moduleHelpReply = "*11\r\n+MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+LIST\r\n+    Return a list of loaded modules.\r\n+LOAD <path> [<arg> ...]\r\n+    Load a module library from <path>, passing to it any optional arguments.\r\n+LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]\r\n+    Load a module library from <path>, while passing it module configurations and optional arguments.\r\n+UNLOAD <name>\r\n+    Unload a module.\r\n+HELP\r\n+    Prints this help.\r\n"

const moduleRefusedReply = "-ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n"

// TestModuleCommand: MODULE with enable-module-command no (Redis's
// default), yes and local (the test connects over loopback), with
// redis-server 7.0.15's replies, byte for byte.
func TestModuleCommand(t *testing.T) {
	common := []struct {
		args []string
		want string
	}{
		{[]string{"MODULE"}, "-ERR wrong number of arguments for 'module' command\r\n"},
		{[]string{"module", "foo"}, "-ERR unknown subcommand 'foo'. Try MODULE HELP.\r\n"},
		{[]string{"MODULE", "LIST"}, "*0\r\n"},
		{[]string{"MODULE", "LIST", "x"}, "-ERR wrong number of arguments for 'module|list' command\r\n"},
		{[]string{"MODULE", "HELP"}, moduleHelpReply},
		{[]string{"MODULE", "help", "x"}, "-ERR wrong number of arguments for 'module|help' command\r\n"},
		{[]string{"MODULE", "LOAD"}, "-ERR wrong number of arguments for 'module|load' command\r\n"},
		{[]string{"MODULE", "LOADEX"}, "-ERR wrong number of arguments for 'module|loadex' command\r\n"},
		{[]string{"MODULE", "UNLOAD"}, "-ERR wrong number of arguments for 'module|unload' command\r\n"},
		{[]string{"MODULE", "UNLOAD", "foo", "bar"}, "-ERR wrong number of arguments for 'module|unload' command\r\n"},
		{[]string{"CONFIG", "SET", "enable-module-command", "yes"}, "-ERR CONFIG SET failed (possibly related to argument 'enable-module-command') - can't set immutable config\r\n"},
	}
	allowed := []struct {
		args []string
		want string
	}{
		{[]string{"MODULE", "LOAD", "/nonexist"}, "-ERR Error loading the extension. Please check the server logs.\r\n"},
		{[]string{"MODULE", "LOADEX", "/x"}, "-ERR Error loading the extension. Please check the server logs.\r\n"},
		{[]string{"MODULE", "LOADEX", "/x", "CONFIG", "a", "b", "ARGS", "c"}, "-ERR Error loading the extension. Please check the server logs.\r\n"},
		{[]string{"MODULE", "UNLOAD", "foo"}, "-ERR Error unloading module: no such module with that name\r\n"},
	}
	for _, mode := range []struct{ set, shown string }{{"", "no"}, {"no", "no"}, {"yes", "yes"}, {"local", "local"}} {
		t.Run(mode.shown+"/"+mode.set, func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EnableModuleCommand = mode.set })
			r := e.raw()
			for _, tt := range common {
				r.roundTrip(respArray(tt.args...), tt.want)
			}
			r.roundTrip(respArray("CONFIG", "GET", "enable-module-command"),
				"*2\r\n$21\r\nenable-module-command\r\n$"+string(rune('0'+len(mode.shown)))+"\r\n"+mode.shown+"\r\n")
			for _, tt := range allowed {
				want := tt.want
				if mode.shown == "no" {
					want = moduleRefusedReply
				}
				r.roundTrip(respArray(tt.args...), want)
			}
		})
	}
	if _, err := New(Config{EnableModuleCommand: "maybe"}); err == nil {
		t.Error("enable-module-command maybe: want an error")
	}
}

// TestProtectedCommandOrder: DEBUG and MODULE LOAD, LOADEX and UNLOAD are
// refused by enable-debug-command and enable-module-command right after
// the command's name and arity are checked, before authentication, ACL
// permissions and MULTI's queueing, as redis-server 7.0.15's
// processCommand (its CMD_PROTECTED check): an unauthenticated client
// gets the refusal rather than NOAUTH, a transaction is aborted, a user
// denied the command gets the refusal rather than NOPERM. The replies are
// redis-server 7.0.15's (requirepass pw, both settings no), in order on
// one connection.
func TestProtectedCommandOrder(t *testing.T) {
	const debugRefusedReply = "-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n"
	e := startServer(t, func(c *Config) { c.RequirePass = "pw" })
	r := e.raw()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"DEBUG", "HELP"}, debugRefusedReply},
		{[]string{"DEBUG"}, "-ERR wrong number of arguments for 'debug' command\r\n"},
		{[]string{"DEBUG", "nosuch"}, debugRefusedReply},
		{[]string{"MODULE", "LOAD", "/x"}, moduleRefusedReply},
		{[]string{"MODULE", "LOAD"}, "-ERR wrong number of arguments for 'module|load' command\r\n"},
		{[]string{"MODULE", "UNLOAD", "x"}, moduleRefusedReply},
		{[]string{"MODULE", "LOADEX", "/x"}, moduleRefusedReply},
		{[]string{"MODULE", "LIST"}, "-NOAUTH Authentication required.\r\n"},
		{[]string{"MODULE", "nosuch"}, "-ERR unknown subcommand 'nosuch'. Try MODULE HELP.\r\n"},
		{[]string{"MULTI"}, "-NOAUTH Authentication required.\r\n"},
		{[]string{"AUTH", "pw"}, "+OK\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"DEBUG", "HELP"}, debugRefusedReply},
		{[]string{"MODULE", "LIST"}, "+QUEUED\r\n"},
		{[]string{"EXEC"}, "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"MODULE", "UNLOAD", "x"}, moduleRefusedReply},
		{[]string{"EXEC"}, "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{[]string{"ACL", "SETUSER", "u", "on", ">p", "+@all", "-debug", "-module|load"}, "+OK\r\n"},
		{[]string{"AUTH", "u", "p"}, "+OK\r\n"},
		{[]string{"DEBUG", "HELP"}, debugRefusedReply},
		{[]string{"MODULE", "LOAD", "/x"}, moduleRefusedReply},
		{[]string{"MODULE", "LIST"}, "*0\r\n"},
	} {
		r.roundTrip(respArray(tt.args...), tt.want)
	}
}
