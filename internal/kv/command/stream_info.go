package command

import (
	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

var xinfoHelp = []string{
	"XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"CONSUMERS <key> <groupname>",
	"    Show consumers of <groupname>.",
	"GROUPS <key>",
	"    Show the stream consumer groups.",
	"STREAM <key> [FULL [COUNT <count>]",
	"    Show information about the stream.",
	"HELP",
	"    Prints this help.",
}

// XINFO STREAM key [FULL [COUNT n]] | GROUPS key | CONSUMERS key group |
// HELP, with Redis 7.0's fields.
func cmdXInfo(c *Ctx) {
	sub, ok := c.subcommand()
	if !ok {
		return
	}
	if sub == "help" {
		c.replyHelp(xinfoHelp)
		return
	}
	s, ok := c.lookupStream(c.Args[2])
	if !ok {
		return
	}
	if s == nil {
		c.W.Error(ErrNoSuchKey)
		return
	}
	switch sub {
	case "consumers":
		g := s.Group(c.Args[3])
		if g == nil {
			c.W.Error("NOGROUP No such consumer group '" + string(c.Args[3]) + "' for key name '" + string(c.Args[2]) + "'")
			return
		}
		cons := g.Consumers()
		c.W.Array(len(cons))
		for _, x := range cons {
			c.W.Map(3)
			c.W.BulkString("name")
			c.W.BulkString(x.Name)
			c.W.BulkString("pending")
			c.W.Int(int64(x.PendingLen()))
			c.W.BulkString("idle")
			c.W.Int(max(c.Now-x.SeenTime, 0))
		}
	case "groups":
		groups := s.Groups()
		c.W.Array(len(groups))
		for _, g := range groups {
			c.W.Map(6)
			c.W.BulkString("name")
			c.W.BulkString(g.Name)
			c.W.BulkString("consumers")
			c.W.Int(int64(g.NumConsumers()))
			c.W.BulkString("pending")
			c.W.Int(int64(g.PendingLen()))
			c.W.BulkString("last-delivered-id")
			c.replyStreamID(g.LastID)
			c.replyEntriesRead(g)
			c.replyLag(s, g)
		}
	case "stream":
		c.xinfoStream(s)
	}
}

func (c *Ctx) replyEntriesRead(g *keyspace.StreamGroup) {
	c.W.BulkString("entries-read")
	if g.EntriesRead == keyspace.InvalidEntriesRead {
		c.W.Null()
	} else {
		c.W.Int(g.EntriesRead)
	}
}

func (c *Ctx) replyLag(s *keyspace.Stream, g *keyspace.StreamGroup) {
	c.W.BulkString("lag")
	if lag, ok := s.Lag(g); ok {
		c.W.Int(lag)
	} else {
		c.W.Null()
	}
}

func (c *Ctx) xinfoStream(s *keyspace.Stream) {
	full, count := false, int64(10)
	switch opts := c.Args[3:]; {
	case len(opts) == 0:
	case (len(opts) == 1 || len(opts) == 3) && EqualFold(opts[0], "full"):
		full = true
		if len(opts) == 3 {
			if !EqualFold(opts[1], "count") {
				c.SubcommandSyntax()
				return
			}
			n, ok := c.ArgInt(5)
			if !ok {
				return
			}
			if n >= 0 {
				count = n
			}
		}
	default:
		c.SubcommandSyntax()
		return
	}
	if full {
		c.W.Map(9)
	} else {
		c.W.Map(10)
	}
	c.W.BulkString("length")
	c.W.Int(int64(s.Len()))
	c.W.BulkString("radix-tree-keys")
	c.W.Int(int64(s.Nodes()))
	c.W.BulkString("radix-tree-nodes")
	c.W.Int(int64(s.RaxNodes()))
	c.W.BulkString("last-generated-id")
	c.replyStreamID(s.LastID())
	c.W.BulkString("max-deleted-entry-id")
	c.replyStreamID(s.MaxDeletedID())
	c.W.BulkString("entries-added")
	c.W.Int(s.EntriesAdded())
	c.W.BulkString("recorded-first-entry-id")
	c.replyStreamID(s.FirstID())
	if !full {
		c.W.BulkString("groups")
		c.W.Int(int64(len(s.Groups())))
		for _, rev := range []bool{false, true} {
			if rev {
				c.W.BulkString("last-entry")
			} else {
				c.W.BulkString("first-entry")
			}
			found := false
			s.Range(keyspace.StreamID{}, keyspace.MaxStreamID, rev, func(e keyspace.StreamEntry) bool {
				c.replyEntry(e)
				found = true
				return false
			})
			if !found {
				c.W.Null()
			}
		}
		return
	}
	c.W.BulkString("entries")
	var entries []keyspace.StreamEntry
	s.Range(keyspace.StreamID{}, keyspace.MaxStreamID, false, func(e keyspace.StreamEntry) bool {
		entries = append(entries, e)
		return count == 0 || int64(len(entries)) < count
	})
	c.W.Array(len(entries))
	for _, e := range entries {
		c.replyEntry(e)
	}
	c.W.BulkString("groups")
	groups := s.Groups()
	c.W.Array(len(groups))
	type pend struct {
		id keyspace.StreamID
		p  *keyspace.PendingEntry
	}
	collect := func(g *keyspace.StreamGroup, cons *keyspace.StreamConsumer) []pend {
		var out []pend
		g.PendingRange(cons, keyspace.StreamID{}, keyspace.MaxStreamID, func(id keyspace.StreamID, p *keyspace.PendingEntry) bool {
			out = append(out, pend{id, p})
			return count == 0 || int64(len(out)) < count
		})
		return out
	}
	for _, g := range groups {
		c.W.Map(7)
		c.W.BulkString("name")
		c.W.BulkString(g.Name)
		c.W.BulkString("last-delivered-id")
		c.replyStreamID(g.LastID)
		c.replyEntriesRead(g)
		c.replyLag(s, g)
		c.W.BulkString("pel-count")
		c.W.Int(int64(g.PendingLen()))
		c.W.BulkString("pending")
		pel := collect(g, nil)
		c.W.Array(len(pel))
		for _, x := range pel {
			c.W.Array(4)
			c.replyStreamID(x.id)
			c.W.BulkString(x.p.Consumer.Name)
			c.W.Int(x.p.DeliveryTime)
			c.W.Int(x.p.DeliveryCount)
		}
		c.W.BulkString("consumers")
		cons := g.Consumers()
		c.W.Array(len(cons))
		for _, cn := range cons {
			c.W.Map(4)
			c.W.BulkString("name")
			c.W.BulkString(cn.Name)
			c.W.BulkString("seen-time")
			c.W.Int(cn.SeenTime)
			c.W.BulkString("pel-count")
			c.W.Int(int64(cn.PendingLen()))
			c.W.BulkString("pending")
			pel := collect(g, cn)
			c.W.Array(len(pel))
			for _, x := range pel {
				c.W.Array(3)
				c.replyStreamID(x.id)
				c.W.Int(x.p.DeliveryTime)
				c.W.Int(x.p.DeliveryCount)
			}
		}
	}
}
