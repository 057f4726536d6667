package kv

import "github.com/gantry-project/gantry/internal/kv/command"

const moduleRefused = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."

// MODULE LIST | LOAD path [arg ...] | LOADEX path [...] | UNLOAD name |
// HELP. gantry loads no modules: LIST is empty, LOAD and LOADEX fail as
// Redis's for a library that does not load, UNLOAD finds no module. The
// dispatcher has checked the subcommand and its arity (the ACL catalog's);
// LOAD, LOADEX and UNLOAD are refused unless enable-module-command is yes
// (or local and the client connects over loopback), as Redis 7.0.15's
// protected subcommands.
func cmdModule(c *Client) {
	sub := string(command.LowerInto(nil, c.Args[1]))
	switch sub {
	case "load", "loadex", "unload":
		switch mode := c.srv.adm.moduleMode; {
		case mode == "yes":
		case mode == "local" && c.loopback():
		default:
			c.W.Error(moduleRefused)
			return
		}
	}
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
