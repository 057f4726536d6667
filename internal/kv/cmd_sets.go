package kv

import (
	"math/rand/v2"
)

var bSREM = []byte("SREM")

// lookupSet returns the set of key (nil if absent); ok is false after
// replying WRONGTYPE.
func (c *Client) lookupSet(key []byte) (*set, bool) { return lookupAs[*set](c, key) }

func cmdSAdd(c *Client) {
	s, ok := c.lookupSet(c.args[1])
	if !ok {
		return
	}
	if s == nil {
		s = newSet()
		c.srv.ks.addLocked(c.args[1], newObjectEntry(s))
	}
	added := 0
	for _, m := range c.args[2:] {
		if s.add(m) {
			added++
		}
	}
	if added > 0 {
		c.dirty++
	}
	c.w.Int(int64(added))
}

func cmdSRem(c *Client) {
	s, ok := c.lookupSet(c.args[1])
	if !ok {
		return
	}
	removed := 0
	if s != nil {
		for _, m := range c.args[2:] {
			if s.remove(m) {
				removed++
			}
		}
	}
	if removed > 0 {
		c.dirty++
		c.dropIfEmpty(c.args[1], s.len())
	}
	c.w.Int(int64(removed))
}

func (c *Client) replyMembers(members []string) {
	c.w.Set(len(members))
	for _, m := range members {
		c.w.BulkString(m)
	}
}

func cmdSMembers(c *Client) {
	s, ok := c.lookupSet(c.args[1])
	if !ok {
		return
	}
	c.w.Set(s.len())
	s.each(func(m []byte) { c.w.Bulk(m) })
}

func cmdSIsMember(c *Client) {
	s, ok := c.lookupSet(c.args[1])
	if !ok {
		return
	}
	if c.cmd.Name == "sismember" {
		c.w.Int(b2i(s.has(c.args[2])))
		return
	}
	c.w.Array(len(c.args) - 2)
	for _, m := range c.args[2:] {
		c.w.Int(b2i(s.has(m)))
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func cmdSCard(c *Client) {
	s, ok := c.lookupSet(c.args[1])
	if !ok {
		return
	}
	c.w.Int(int64(s.len()))
}

// randomMembers returns n distinct members (n <= len(s)). Go's map
// iteration starts at a random place, which is what Redis's random picks
// promise too (not a uniform distribution).
func randomMembers(s *set, n int) []string {
	out := make([]string, 0, n)
	if n <= 0 {
		return out
	}
	if s.m != nil && n*2 < len(s.m) {
		for m := range s.m {
			out = append(out, m)
			if len(out) == n {
				break
			}
		}
		return out
	}
	all := s.members()
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return append(out, all[:n]...)
}

func cmdSPop(c *Client) {
	if len(c.args) > 3 {
		c.w.Error(errSyntax)
		return
	}
	count, hasCount, ok := c.optCount(2)
	if !ok {
		return
	}
	s, ok := c.lookupSet(c.args[1])
	if !ok {
		return
	}
	if s == nil {
		if hasCount {
			c.w.Set(0)
		} else {
			c.w.Null()
		}
		return
	}
	picked := randomMembers(s, min(int(count), s.len()))
	rec := [][]byte{bSREM, c.args[1]}
	for _, m := range picked {
		s.remove([]byte(m))
		rec = append(rec, []byte(m))
	}
	if hasCount {
		c.replyMembers(picked)
	} else {
		c.w.BulkString(picked[0])
	}
	if len(picked) > 0 {
		c.dirty++
		c.log(rec...)
		c.dropIfEmpty(c.args[1], s.len())
	}
}

func cmdSRandMember(c *Client) {
	if len(c.args) > 3 {
		c.w.Error(errSyntax)
		return
	}
	var count int64 = 1
	hasCount := len(c.args) == 3
	if hasCount {
		var ok bool
		if count, ok = c.argInt(2); !ok {
			return
		}
		if count < -(1<<40) || count > 1<<40 {
			c.w.Error("ERR value is out of range")
			return
		}
	}
	s, ok := c.lookupSet(c.args[1])
	if !ok {
		return
	}
	if !hasCount {
		if s == nil {
			c.w.Null()
			return
		}
		c.w.BulkString(randomMembers(s, 1)[0])
		return
	}
	if s == nil || count == 0 {
		c.w.Array(0)
		return
	}
	if count > 0 {
		picked := randomMembers(s, min(int(count), s.len()))
		c.w.Array(len(picked))
		for _, m := range picked {
			c.w.BulkString(m)
		}
		return
	}
	all := s.members()
	c.w.Array(int(-count))
	for i := int64(0); i < -count; i++ {
		c.w.BulkString(all[rand.IntN(len(all))])
	}
}

func cmdSMove(c *Client) {
	src, dst, m := c.args[1], c.args[2], c.args[3]
	s, ok := c.lookupSet(src)
	if !ok {
		return
	}
	d, ok := c.lookupSet(dst)
	if !ok {
		return
	}
	if !s.has(m) {
		c.w.Int(0)
		return
	}
	if string(src) == string(dst) {
		c.w.Int(1)
		return
	}
	s.remove(m)
	c.dropIfEmpty(src, s.len())
	if d == nil {
		d = newSet()
		c.srv.ks.addLocked(dst, newObjectEntry(d))
	}
	d.add(m)
	c.dirty++
	c.w.Int(1)
}

// setOp computes SINTER, SUNION or SDIFF of keys; ok is false after
// replying WRONGTYPE.
func (c *Client) setOp(op string, keys [][]byte) (map[string]struct{}, bool) {
	sets := make([]*set, len(keys))
	for i, k := range keys {
		s, ok := c.lookupSet(k)
		if !ok {
			return nil, false
		}
		sets[i] = s
	}
	out := make(map[string]struct{})
	switch op {
	case "sinter":
		smallest := 0
		for i, s := range sets {
			if s.len() == 0 {
				return out, true
			}
			if s.len() < sets[smallest].len() {
				smallest = i
			}
		}
		sets[smallest].each(func(m []byte) {
			for _, s := range sets {
				if !s.has(m) {
					return
				}
			}
			out[string(m)] = struct{}{}
		})
	case "sunion":
		for _, s := range sets {
			s.each(func(m []byte) { out[string(m)] = struct{}{} })
		}
	case "sdiff":
		sets[0].each(func(m []byte) {
			for _, s := range sets[1:] {
				if s.has(m) {
					return
				}
			}
			out[string(m)] = struct{}{}
		})
	}
	return out, true
}

func cmdSetOp(c *Client) {
	name := c.cmd.Name
	store := len(name) > 5 && name[len(name)-5:] == "store"
	keys := c.args[1:]
	if store {
		keys = c.args[2:]
		name = name[:len(name)-5]
	}
	out, ok := c.setOp(name, keys)
	if !ok {
		return
	}
	if !store {
		c.w.Set(len(out))
		for m := range out {
			c.w.BulkString(m)
		}
		return
	}
	dst := c.args[1]
	existed := c.srv.ks.deleteLocked(dst)
	if len(out) > 0 {
		ns := newSet()
		for m := range out {
			ns.add([]byte(m))
		}
		c.srv.ks.addLocked(dst, newObjectEntry(ns))
	}
	if existed || len(out) > 0 {
		c.dirty++
	}
	c.w.Int(int64(len(out)))
}

// SINTERCARD numkeys key [key ...] [LIMIT limit]
func cmdSInterCard(c *Client) {
	n, ok := c.argInt(1)
	if !ok {
		return
	}
	if n <= 0 {
		c.w.Error("ERR numkeys should be greater than 0")
		return
	}
	if n > int64(len(c.args)-2) {
		c.w.Error("ERR Number of keys can't be greater than number of args")
		return
	}
	keys := c.args[2 : 2+n]
	rest := c.args[2+n:]
	var limit int64
	switch {
	case len(rest) == 0:
	case len(rest) == 2 && equalFold(rest[0], "limit"):
		l, ok := parseInt(rest[1])
		if !ok {
			c.w.Error(errNotInt)
			return
		}
		if l < 0 {
			c.w.Error("ERR LIMIT can't be negative")
			return
		}
		limit = l
	default:
		c.w.Error(errSyntax)
		return
	}
	out, ok := c.setOp("sinter", keys)
	if !ok {
		return
	}
	card := int64(len(out))
	if limit > 0 && card > limit {
		card = limit
	}
	c.w.Int(card)
}

func cmdSScan(c *Client) {
	cursor, pattern, count, ok := c.scanArgs()
	if !ok {
		return
	}
	s, ok := c.lookupSet(c.args[1])
	if !ok {
		return
	}
	picked, next := collScan(s.members(), cursor, count)
	c.replyScan(next, picked, pattern, func(m string) [][]byte { return [][]byte{[]byte(m)} })
}
