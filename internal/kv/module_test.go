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
