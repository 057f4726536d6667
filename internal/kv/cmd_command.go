package kv

import (
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

// COMMAND [COUNT | INFO name... | DOCS name... | LIST | GETKEYS cmd args...]
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
		cmds := s.sortedCommands()
		c.W.Array(len(cmds))
		for _, cmd := range cmds {
			c.W.BulkString(cmd.Name)
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
	case "getkeys":
		if len(c.Args) < 3 {
			c.W.Error("ERR wrong number of arguments for 'command|getkeys' command")
			return
		}
		args := c.Args[2:]
		cmd := s.cmds.Lookup(args[0])
		if cmd == nil {
			c.W.Error("ERR Invalid command specified")
			return
		}
		if !cmd.ArityOK(len(args)) {
			c.W.Error("ERR Invalid number of arguments specified for command")
			return
		}
		keys := cmd.GetKeys(args, nil)
		if len(keys) == 0 {
			c.W.Error("ERR The command has no key arguments")
			return
		}
		c.W.Array(len(keys))
		for _, k := range keys {
			c.W.Bulk(k)
		}
	case "help":
		c.W.Array(1)
		c.W.Simple("COMMAND [COUNT | INFO | DOCS | LIST | GETKEYS]")
	default:
		c.W.Error("ERR unknown subcommand '" + string(c.Args[1]) + "'. Try COMMAND HELP.")
	}
}

func summary(cmd *command.Command) string {
	return "The " + cmd.Name + " command (" + cmd.Group + "), as Redis documents it."
}
