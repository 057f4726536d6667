package kv

import "github.com/gantry-project/gantry/internal/kv/command"

const moduleRefused = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."

// MODULE LIST | LOAD path [arg ...] | LOADEX path [...] | UNLOAD name |
// HELP. gantry loads no modules: LIST is empty, LOAD and LOADEX fail as
// Redis's for a library that does not load, UNLOAD finds no module. The
// dispatcher has checked the subcommand and its arity (the ACL catalog's)
// and refused LOAD, LOADEX and UNLOAD unless enable-module-command allows
// them (protectedRefused).
func cmdModule(c *Client) {
	sub := string(command.LowerInto(nil, c.Args[1]))
	switch sub {
	case "help":
		writeHelp(c, "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"LIST", "    Return a list of loaded modules.",
			"LOAD <path> [<arg> ...]", "    Load a module library from <path>, passing to it any optional arguments.",
			"LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
			"    Load a module library from <path>, while passing it module configurations and optional arguments.",
			"UNLOAD <name>", "    Unload a module.",
			"HELP", "    Prints this help.")
	case "list":
		c.W.Array(0)
	case "load", "loadex":
		c.W.Error("ERR Error loading the extension. Please check the server logs.")
	case "unload":
		c.W.Error("ERR Error unloading module: no such module with that name")
	default: // the catalog knows no other subcommand
		c.W.Error(command.UnknownSubError("module", c.Args[1]))
	}
}

// protectedRefused refuses, as Redis 7.0.15's processCommand, a call of a
// command it flags protected that enable-debug-command (DEBUG) or
// enable-module-command (MODULE LOAD, LOADEX and UNLOAD) does not allow:
// "yes", or "local" for a client on loopback. Redis checks it right after
// the command's name and arity, before authentication, ACL permissions
// and MULTI's queueing: an unauthenticated client is refused with this
// error rather than NOAUTH, and a transaction is aborted at EXEC. The
// dispatcher calls it for DEBUG and MODULE only; it replies the refusal.
func (c *Client) protectedRefused(cmd *command.Command, args [][]byte) bool {
	var mode, msg string
	switch cmd.Name {
	case "debug":
		mode, msg = c.srv.adm.debugMode, debugRefused
	case "module":
		var buf [16]byte
		switch string(command.LowerInto(buf[:0], args[1])) {
		case "load", "loadex", "unload":
			mode, msg = c.srv.adm.moduleMode, moduleRefused
		default:
			return false
		}
	default:
		return false
	}
	if mode == "yes" || mode == "local" && c.loopback() {
		return false
	}
	c.refuse(cmd, msg)
	return true
}
