package command

import (
	"slices"
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// ZMPOP, BZMPOP, BZPOPMIN and BZPOPMAX. The blocking forms run through the
// server's blocking path (BlockingPop); all are logged as the ZPOPMIN or
// ZPOPMAX of what they popped.

var (
	bZPOPMIN = []byte("ZPOPMIN")
	bZPOPMAX = []byte("ZPOPMAX")
)

// parseZMPop parses "numkeys key... MIN|MAX [COUNT n]" at args[pos:].
func (c *Ctx) parseZMPop(pos int) (keys [][]byte, max bool, count int64, ok bool) {
	n, ok := ParseInt(c.Args[pos])
	if !ok || n <= 0 {
		c.W.Error("ERR numkeys should be greater than 0")
		return nil, false, 0, false
	}
	if n > int64(len(c.Args)-pos-2) {
		c.W.Error(ErrSyntax)
		return nil, false, 0, false
	}
	keys = c.Args[pos+1 : pos+1+int(n)]
	rest := c.Args[pos+1+int(n):]
	switch {
	case EqualFold(rest[0], "min"):
	case EqualFold(rest[0], "max"):
		max = true
	default:
		c.W.Error(ErrSyntax)
		return nil, false, 0, false
	}
	count = 1
	switch {
	case len(rest) == 1:
	case len(rest) == 3 && EqualFold(rest[1], "count"):
		count, ok = ParseInt(rest[2])
		if !ok || count <= 0 {
			c.W.Error("ERR count should be greater than 0")
			return nil, false, 0, false
		}
	default:
		c.W.Error(ErrSyntax)
		return nil, false, 0, false
	}
	return keys, max, count, true
}

// popZSet pops up to count members from the low (or high) end of z.
func popZSet(z *keyspace.ZSet, max bool, count int64) []keyspace.ZNode {
	var out []keyspace.ZNode
	for int64(len(out)) < count && z.Card() > 0 {
		x := z.First()
		if max {
			x = z.Last()
		}
		m := x.Member()
		out = append(out, keyspace.ZNode{Member: m, Score: x.Score()})
		z.Remove(m)
	}
	return out
}

// zsetToPop returns the sorted set of key; a blocked command woken again
// (retry) skips a key of another type, as Redis keeps such a client
// blocked, where the first try replies WRONGTYPE (done).
func (c *Ctx) zsetToPop(key []byte, retry bool) (z *keyspace.ZSet, done bool) {
	if retry {
		if e := c.Lookup(key); e != nil {
			return keyspace.ZSets.Of(e), false
		}
		return nil, false
	}
	z, ok := c.lookupZSet(key)
	return z, !ok
}

// zmpopLocked pops from the first non-empty sorted set of keys and replies
// [key, [[member, score] ...]]; it reports whether it found one (or
// replied an error).
func (c *Ctx) zmpopLocked(keys [][]byte, max bool, count int64, retry bool) bool {
	for _, k := range keys {
		z, done := c.zsetToPop(k, retry)
		if done {
			return true
		}
		if z == nil {
			continue
		}
		nodes := popZSet(z, max, count)
		c.W.Array(2)
		c.W.Bulk(k)
		c.W.Array(len(nodes))
		for _, x := range nodes {
			c.W.Array(2)
			c.W.BulkString(x.Member)
			c.W.Double(x.Score)
		}
		c.logZPop(k, max, len(nodes))
		c.dropIfEmpty(k, z.Card())
		return true
	}
	return false
}

func (c *Ctx) logZPop(key []byte, max bool, n int) {
	cmd := bZPOPMIN
	if max {
		cmd = bZPOPMAX
	}
	c.Dirty++
	c.Log(cmd, key, strconv.AppendInt(nil, int64(n), 10))
}

// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
func cmdZMPop(c *Ctx) {
	keys, max, count, ok := c.parseZMPop(1)
	if !ok {
		return
	}
	if !c.zmpopLocked(keys, max, count, false) {
		c.W.NullArray()
	}
}

// parseBZPop parses BZPOPMIN, BZPOPMAX (key... timeout) and BZMPOP
// (timeout numkeys key... MIN|MAX [COUNT n]) into b.
func parseBZPop(c *Ctx, b *BlockingPop) bool {
	timeoutArg := c.Args[len(c.Args)-1]
	if c.Cmd.Name == "bzmpop" {
		timeoutArg = c.Args[1]
	}
	var ok bool
	if b.Timeout, ok = c.parseTimeout(timeoutArg); !ok {
		return false
	}
	retry := resumed(c)
	b.detach = func() { c.resume = &blockResume{args: cloneArgs(c.Args)} }
	if c.Cmd.Name == "bzmpop" {
		keys, max, count, ok := c.parseZMPop(2)
		if !ok {
			return false
		}
		b.try = func() bool {
			done := c.zmpopLocked(keys, max, count, retry)
			retry = true
			return done
		}
	} else {
		keys := c.Args[1 : len(c.Args)-1]
		max := c.Cmd.Name == "bzpopmax"
		b.try = func() bool {
			defer func() { retry = true }()
			for _, k := range keys {
				z, done := c.zsetToPop(k, retry)
				if done {
					return true
				}
				if z == nil {
					continue
				}
				x := popZSet(z, max, 1)[0]
				c.W.Array(3)
				c.W.Bulk(k)
				c.W.BulkString(x.Member)
				c.W.Double(x.Score)
				c.logZPop(k, max, 1)
				c.dropIfEmpty(k, z.Card())
				return true
			}
			return false
		}
	}
	return true
}

// blockResume marks the second run of a blocking command that left the
// event loop: it was checked and blocked already.
type blockResume struct{ args [][]byte }

// resumed reports (and forgets) whether c runs a command again after it
// left the event loop to wait.
func resumed(c *Ctx) bool {
	r, ok := c.resume.(*blockResume)
	c.resume = nil
	return ok && slices.EqualFunc(r.args, c.Args, func(a, b []byte) bool { return string(a) == string(b) })
}
