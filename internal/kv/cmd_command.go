package kv

import (
	"strings"

	"github.com/gantry-project/gantry/internal/kv/acl"
	"github.com/gantry-project/gantry/internal/kv/command"
)

func (c *Client) commandInfo(cmd *command.Command) {
	c.W.Array(10)
	c.W.BulkString(cmd.Name)
	c.W.Int(int64(cmd.Arity))
	c.W.Set(len(cmd.Flags))
	for _, f := range cmd.Flags {
		c.W.Simple(f)
	}
	c.W.Int(int64(cmd.First))
	c.W.Int(int64(cmd.Last))
	c.W.Int(int64(cmd.Step))
	c.W.Set(1)
	c.W.Simple("@" + cmd.Group)
	c.W.Array(0) // tips
	if cmd.First == 0 {
		c.W.Array(0)
	} else { // one key spec: a range from First to Last by Step
		c.W.Array(1)
		c.W.Map(4)
		c.W.BulkString("flags")
		c.W.Array(0)
		c.W.BulkString("begin_search")
		c.W.Map(2)
		c.W.BulkString("type")
		c.W.BulkString("index")
		c.W.BulkString("spec")
		c.W.Map(1)
		c.W.BulkString("index")
		c.W.Int(int64(cmd.First))
		c.W.BulkString("find_keys")
		c.W.Map(2)
		c.W.BulkString("type")
		c.W.BulkString("range")
		c.W.BulkString("spec")
		c.W.Map(3)
		c.W.BulkString("lastkey")
		if cmd.Last < 0 {
			c.W.Int(int64(cmd.Last))
		} else {
			c.W.Int(int64(cmd.Last - cmd.First))
		}
		c.W.BulkString("keystep")
		c.W.Int(int64(cmd.Step))
		c.W.BulkString("limit")
		c.W.Int(0)
		c.W.BulkString("notes")
		c.W.BulkString("")
	}
	c.W.Array(0) // subcommands
}

func (s *Server) sortedCommands() []*command.Command { return s.cmds.Sorted() }

// COMMAND [COUNT | INFO name... | DOCS name... | LIST [FILTERBY ...] |
// GETKEYS cmd args... | GETKEYSANDFLAGS cmd args... | HELP]
func cmdCommand(c *Client) {
	s := c.srv
	if len(c.Args) == 1 {
		cmds := s.sortedCommands()
		c.W.Array(len(cmds))
		for _, cmd := range cmds {
			c.commandInfo(cmd)
		}
		return
	}
	sub := string(command.LowerInto(nil, c.Args[1]))
	switch sub {
	case "count":
		c.W.Int(int64(s.cmds.Len()))
	case "list":
		if len(c.Args) == 2 {
			cmds := s.sortedCommands()
			c.W.Array(len(cmds))
			for _, cmd := range cmds {
				c.W.BulkString(cmd.Name)
			}
			return
		}
		names, ok := s.commandListFilter(c.Args[2:])
		if !ok {
			c.W.Error("ERR syntax error")
			return
		}
		c.W.Array(len(names))
		for _, n := range names {
			c.W.BulkString(n)
		}
	case "info":
		names := c.Args[2:]
		if len(names) == 0 {
			cmds := s.sortedCommands()
			c.W.Array(len(cmds))
			for _, cmd := range cmds {
				c.commandInfo(cmd)
			}
			return
		}
		c.W.Array(len(names))
		for _, n := range names {
			if cmd := s.cmds.Lookup(n); cmd != nil {
				c.commandInfo(cmd)
			} else {
				c.W.NullArray()
			}
		}
	case "docs":
		var cmds []*command.Command
		if len(c.Args) == 2 {
			cmds = s.sortedCommands()
		} else {
			for _, n := range c.Args[2:] {
				if cmd := s.cmds.Lookup(n); cmd != nil {
					cmds = append(cmds, cmd)
				}
			}
		}
		c.W.Map(len(cmds))
		for _, cmd := range cmds {
			c.W.BulkString(cmd.Name)
			c.W.Map(3)
			c.W.BulkString("summary")
			c.W.BulkString(summary(cmd))
			c.W.BulkString("since")
			c.W.BulkString("1.0.0")
			c.W.BulkString("group")
			c.W.BulkString(cmd.Group)
		}
	case "getkeys", "getkeysandflags":
		if len(c.Args) < 3 {
			c.W.Error("ERR wrong number of arguments for 'command|" + sub + "' command")
			return
		}
		args := c.Args[2:]
		cmd := s.cmds.Lookup(args[0])
		if cmd == nil {
			c.W.Error("ERR Invalid command specified")
			return
		}
		ac := s.users.Catalog().Lookup(cmd.Name, args)
		if !commandHasKeys(cmd, ac, args) {
			c.W.Error("ERR The command has no key arguments")
			return
		}
		if !cmd.ArityOK(len(args)) {
			c.W.Error("ERR Invalid number of arguments specified for command")
			return
		}
		keys, noFlags := commandGetKeys(cmd, args)
		if len(keys) == 0 {
			if noMandatoryKeys(cmd) { // EVAL s 0
				c.W.Array(0)
			} else {
				c.W.Error("ERR Invalid arguments specified for command")
			}
			return
		}
		if sub == "getkeysandflags" {
			c.keysAndFlags(ac, args, keys, noFlags)
			return
		}
		c.W.Array(len(keys))
		for _, k := range keys {
			c.W.Bulk(k)
		}
	case "help":
		writeHelp(c, "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"(no subcommand)", "    Return details about all Redis commands.",
			"COUNT", "    Return the total number of commands in this Redis server.",
			"LIST", "    Return a list of all commands in this Redis server.",
			"INFO [<command-name> ...]", "    Return details about multiple Redis commands.",
			"    If no command names are given, documentation details for all", "    commands are returned.",
			"DOCS [<command-name> ...]", "    Return documentation details about multiple Redis commands.",
			"    If no command names are given, documentation details for all", "    commands are returned.",
			"GETKEYS <full-command>", "    Return the keys from a full Redis command.",
			"GETKEYSANDFLAGS <full-command>", "    Return the keys and the access flags from a full Redis command.",
			"HELP", "    Prints this help.")
	default:
		c.W.Error("ERR unknown subcommand '" + string(c.Args[1]) + "'. Try COMMAND HELP.")
	}
}

// keysAndFlags answers COMMAND GETKEYSANDFLAGS: each key of the call args
// of ac with the flags of its key spec (Redis's RO/RW/OW/RM and
// access/update/insert/delete), or none when noFlags (keys found by a
// getkeys function of Redis's that gives none).
func (c *Client) keysAndFlags(ac acl.Command, args, keys [][]byte, noFlags bool) {
	c.W.Array(len(keys))
	for i, k := range keys {
		var flags []string
		if !noFlags {
			flags, _ = ac.KeyFlags(args, i)
		}
		c.W.Array(2)
		c.W.Bulk(k)
		c.W.Array(len(flags))
		for _, f := range flags {
			c.W.Simple(f)
		}
	}
}

// commandHasKeys is Redis's doesCommandHaveKeys of the command or, for a
// container, of the subcommand args name: a key spec that is a key
// (SPUBLISH's channel is not; MEMORY STATS has none).
func commandHasKeys(cmd *command.Command, ac acl.Command, args [][]byte) bool {
	if cmd.First == 0 && cmd.KeysFn == nil {
		return false
	}
	if !ac.Valid() || ac.Name() == "set" || ac.Name() == "bitfield" { // these two read args
		return true
	}
	flags, isKey := ac.KeyFlags(args, 0)
	return isKey && (len(flags) > 0 || !strings.Contains(ac.Name(), "|"))
}

// commandGetKeys is the keys COMMAND GETKEYS finds in args, as Redis's
// (getkeys.go); noFlags when Redis's getkeys function found them, which
// gives no flags.
func commandGetKeys(cmd *command.Command, args [][]byte) (keys [][]byte, noFlags bool) {
	fn := redisGetKeysSpecs[cmd.Name]
	if fn == nil {
		return cmd.GetKeys(args, nil), false
	}
	pos, noFlags := fn(args)
	keys = make([][]byte, len(pos))
	for i, p := range pos {
		keys[i] = args[p]
	}
	return keys, noFlags
}

// commandListFilter is COMMAND LIST FILTERBY MODULE name | ACLCAT category
// | PATTERN pattern: the commands and subcommands that pass (none is a
// module's: gantry loads none), ok false for any other arguments, Redis's
// syntax error.
func (s *Server) commandListFilter(args [][]byte) (names []string, ok bool) {
	if len(args) != 3 || !command.EqualFold(args[0], "filterby") {
		return nil, false
	}
	cat := s.users.Catalog()
	switch arg := strings.ToLower(string(args[2])); {
	case command.EqualFold(args[1], "module"):
		return nil, true
	case command.EqualFold(args[1], "aclcat"):
		names, _ = cat.InCategory(arg)
		return names, true
	case command.EqualFold(args[1], "pattern"):
		for _, n := range cat.Names() {
			if command.GlobMatch([]byte(arg), []byte(n)) {
				names = append(names, n)
			}
		}
		return names, true
	}
	return nil, false
}

// noMandatoryKeys reports whether cmd may be called with no keys (EVAL,
// FCALL ...): COMMAND GETKEYS answers it an empty array, as Redis.
func noMandatoryKeys(cmd *command.Command) bool {
	for _, f := range cmd.Flags {
		if f == "no_mandatory_keys" || f == "no-mandatory-keys" {
			return true
		}
	}
	return false
}

func summary(cmd *command.Command) string {
	return "The " + cmd.Name + " command (" + cmd.Group + "), as Redis documents it."
}
