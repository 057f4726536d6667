package kv

import (
	"sort"
)

func (c *Client) commandInfo(cmd *Command) {
	c.w.Array(10)
	c.w.BulkString(cmd.Name)
	c.w.Int(int64(cmd.Arity))
	c.w.Set(len(cmd.Flags))
	for _, f := range cmd.Flags {
		c.w.Simple(f)
	}
	c.w.Int(int64(cmd.First))
	c.w.Int(int64(cmd.Last))
	c.w.Int(int64(cmd.Step))
	c.w.Set(1)
	c.w.Simple("@" + cmd.Group)
	c.w.Array(0) // tips
	if cmd.First == 0 {
		c.w.Array(0)
	} else { // one key spec: a range from First to Last by Step
		c.w.Array(1)
		c.w.Map(4)
		c.w.BulkString("flags")
		c.w.Array(0)
		c.w.BulkString("begin_search")
		c.w.Map(2)
		c.w.BulkString("type")
		c.w.BulkString("index")
		c.w.BulkString("spec")
		c.w.Map(1)
		c.w.BulkString("index")
		c.w.Int(int64(cmd.First))
		c.w.BulkString("find_keys")
		c.w.Map(2)
		c.w.BulkString("type")
		c.w.BulkString("range")
		c.w.BulkString("spec")
		c.w.Map(3)
		c.w.BulkString("lastkey")
		if cmd.Last < 0 {
			c.w.Int(int64(cmd.Last))
		} else {
			c.w.Int(int64(cmd.Last - cmd.First))
		}
		c.w.BulkString("keystep")
		c.w.Int(int64(cmd.Step))
		c.w.BulkString("limit")
		c.w.Int(0)
		c.w.BulkString("notes")
		c.w.BulkString("")
	}
	c.w.Array(0) // subcommands
}

func (s *Server) sortedCommands() []*Command {
	out := make([]*Command, 0, len(s.cmds))
	for _, cmd := range s.cmds {
		out = append(out, cmd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// COMMAND [COUNT | INFO name... | DOCS name... | LIST | GETKEYS cmd args...]
func cmdCommand(c *Client) {
	s := c.srv
	if len(c.args) == 1 {
		cmds := s.sortedCommands()
		c.w.Array(len(cmds))
		for _, cmd := range cmds {
			c.commandInfo(cmd)
		}
		return
	}
	sub := string(lowerInto(nil, c.args[1]))
	switch sub {
	case "count":
		c.w.Int(int64(len(s.cmds)))
	case "list":
		cmds := s.sortedCommands()
		c.w.Array(len(cmds))
		for _, cmd := range cmds {
			c.w.BulkString(cmd.Name)
		}
	case "info":
		names := c.args[2:]
		if len(names) == 0 {
			cmds := s.sortedCommands()
			c.w.Array(len(cmds))
			for _, cmd := range cmds {
				c.commandInfo(cmd)
			}
			return
		}
		c.w.Array(len(names))
		for _, n := range names {
			if cmd := s.cmds[string(lowerInto(nil, n))]; cmd != nil {
				c.commandInfo(cmd)
			} else {
				c.w.NullArray()
			}
		}
	case "docs":
		var cmds []*Command
		if len(c.args) == 2 {
			cmds = s.sortedCommands()
		} else {
			for _, n := range c.args[2:] {
				if cmd := s.cmds[string(lowerInto(nil, n))]; cmd != nil {
					cmds = append(cmds, cmd)
				}
			}
		}
		c.w.Map(len(cmds))
		for _, cmd := range cmds {
			c.w.BulkString(cmd.Name)
			c.w.Map(3)
			c.w.BulkString("summary")
			c.w.BulkString(summary(cmd))
			c.w.BulkString("since")
			c.w.BulkString("1.0.0")
			c.w.BulkString("group")
			c.w.BulkString(cmd.Group)
		}
	case "getkeys":
		if len(c.args) < 3 {
			c.w.Error("ERR wrong number of arguments for 'command|getkeys' command")
			return
		}
		args := c.args[2:]
		cmd := s.cmds[string(lowerInto(nil, args[0]))]
		if cmd == nil {
			c.w.Error("ERR Invalid command specified")
			return
		}
		if (cmd.Arity > 0 && len(args) != cmd.Arity) || (cmd.Arity < 0 && len(args) < -cmd.Arity) {
			c.w.Error("ERR Invalid number of arguments specified for command")
			return
		}
		keys := cmd.getKeys(args, nil)
		if len(keys) == 0 {
			c.w.Error("ERR The command has no key arguments")
			return
		}
		c.w.Array(len(keys))
		for _, k := range keys {
			c.w.Bulk(k)
		}
	case "help":
		c.w.Array(1)
		c.w.Simple("COMMAND [COUNT | INFO | DOCS | LIST | GETKEYS]")
	default:
		c.w.Error("ERR unknown subcommand '" + string(c.args[1]) + "'. Try COMMAND HELP.")
	}
}

func summary(cmd *Command) string {
	return "The " + cmd.Name + " command (" + cmd.Group + "), as Redis documents it."
}
