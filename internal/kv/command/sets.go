package command

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"weak"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

var bSREM = []byte("SREM")

// lookupSet returns the set of key (nil if absent); ok is false after
// replying WRONGTYPE.
func (c *Ctx) lookupSet(key []byte) (*keyspace.Set, bool) { return LookupAs(c, keyspace.Sets, key) }

func cmdSAdd(c *Ctx) {
	s, ok := c.lookupSet(c.Args[1])
	if !ok {
		return
	}
	if s == nil {
		s = keyspace.NewSet()
		c.KS.AddLocked(c.Args[1], keyspace.Sets.NewEntry(s))
	}
	added, lim := 0, keyspace.DefaultIntsetEntries
	if s.TakesInts() { // the other forms do not read it
		lim = c.Track.Settings.IntsetEntries()
	}
	for _, m := range c.Args[2:] {
		if s.AddWithin(m, lim) {
			added++
		}
	}
	if added > 0 {
		c.Dirty++
	}
	c.W.Int(int64(added))
}

func cmdSRem(c *Ctx) {
	s, ok := c.lookupSet(c.Args[1])
	if !ok {
		return
	}
	removed := 0
	if s != nil {
		for _, m := range c.Args[2:] {
			if s.Remove(m) {
				removed++
			}
		}
	}
	if removed > 0 {
		c.Dirty++
		c.dropIfEmpty(c.Args[1], s.Len())
	}
	c.W.Int(int64(removed))
}

func (c *Ctx) replyMembers(members []string) {
	c.W.Set(len(members))
	for _, m := range members {
		c.W.BulkString(m)
	}
}

func cmdSMembers(c *Ctx) {
	s, ok := c.lookupSet(c.Args[1])
	if !ok {
		return
	}
	c.W.Set(s.Len())
	s.Each(func(m []byte) { c.W.Bulk(m) })
}

func cmdSIsMember(c *Ctx) {
	s, ok := c.lookupSet(c.Args[1])
	if !ok {
		return
	}
	if c.Cmd.Name == "sismember" {
		c.W.Int(b2i(s.Has(c.Args[2])))
		return
	}
	c.W.Array(len(c.Args) - 2)
	for _, m := range c.Args[2:] {
		c.W.Int(b2i(s.Has(m)))
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func cmdSCard(c *Ctx) {
	s, ok := c.lookupSet(c.Args[1])
	if !ok {
		return
	}
	c.W.Int(int64(s.Len()))
}

func cmdSPop(c *Ctx) {
	if len(c.Args) > 3 {
		c.W.Error(ErrSyntax)
		return
	}
	count, hasCount, ok := c.optCount(2)
	if !ok {
		return
	}
	s, ok := c.lookupSet(c.Args[1])
	if !ok {
		return
	}
	if s == nil {
		if hasCount {
			c.W.Set(0)
		} else {
			c.W.Null()
		}
		return
	}
	picked := popPicks(s, min(int(count), s.Len()))
	rec := [][]byte{bSREM, c.Args[1]}
	for _, m := range picked {
		s.Remove([]byte(m))
		rec = append(rec, []byte(m))
	}
	if hasCount {
		c.replyMembers(picked)
	} else {
		c.W.BulkString(picked[0])
	}
	if len(picked) > 0 {
		c.Dirty++
		c.Log(rec...)
		c.dropIfEmpty(c.Args[1], s.Len())
	}
}

// popPicks returns the n members SPOP takes. In the order Redis 7.0
// replies them: when it leaves fewer than a fifth of n (or nothing), it
// answers in the set's order (an intset's ascending), else in the order
// of its random picks.
func popPicks(s *keyspace.Set, n int) []string {
	size := s.Len()
	if n >= size {
		return s.Members()
	}
	picked := s.RandomMembers(n)
	if (size-n)*5 <= n && s.Intset() {
		slices.SortFunc(picked, func(a, b string) int {
			x, _ := strconv.ParseInt(a, 10, 64)
			y, _ := strconv.ParseInt(b, 10, 64)
			return cmp.Compare(x, y)
		})
	}
	return picked
}

func cmdSRandMember(c *Ctx) {
	if len(c.Args) > 3 {
		c.W.Error(ErrSyntax)
		return
	}
	var count int64 = 1
	hasCount := len(c.Args) == 3
	if hasCount {
		var ok bool
		if count, ok = c.ArgInt(2); !ok {
			return
		}
		if count < -(1<<40) || count > 1<<40 {
			c.W.Error("ERR value is out of range")
			return
		}
	}
	s, ok := c.lookupSet(c.Args[1])
	if !ok {
		return
	}
	if !hasCount {
		if s == nil {
			c.W.Null()
			return
		}
		c.W.BulkString(s.RandomMembers(1)[0])
		return
	}
	if s == nil || count == 0 {
		c.W.Array(0)
		return
	}
	if count > 0 {
		var picked []string
		if int(count) >= s.Len() {
			picked = s.Members() // as Redis: the whole set in its order
		} else {
			picked = s.RandomMembers(int(count))
		}
		c.W.Array(len(picked))
		for _, m := range picked {
			c.W.BulkString(m)
		}
		return
	}
	all := s.Members()
	c.W.Array(int(-count))
	for i := int64(0); i < -count; i++ {
		c.W.BulkString(all[rand.IntN(len(all))])
	}
}

func cmdSMove(c *Ctx) {
	src, dst, m := c.Args[1], c.Args[2], c.Args[3]
	s, ok := c.lookupSet(src)
	if !ok {
		return
	}
	d, ok := c.lookupSet(dst)
	if !ok {
		return
	}
	if !s.Has(m) {
		c.W.Int(0)
		return
	}
	if string(src) == string(dst) {
		c.W.Int(1)
		return
	}
	s.Remove(m)
	c.Notify('s', "srem", src)
	if s.Len() == 0 {
		c.KS.DeleteLocked(src)
		c.Notify('g', "del", src)
	}
	c.Dirty++
	// the destination changes only if it did not have the member: as
	// Redis, it is not touched otherwise (its WATCHes hold, no "sadd")
	if d != nil && d.Has(m) {
		c.Changed = c.Args[1:2]
		c.W.Int(1)
		return
	}
	if d == nil {
		d = keyspace.NewSet()
		c.KS.AddLocked(dst, keyspace.Sets.NewEntry(d))
	}
	d.AddWithin(m, c.Track.Settings.IntsetEntries())
	c.Notify('s', "sadd", dst)
	c.W.Int(1)
}

// setOp computes SINTER, SUNION or SDIFF of keys; ok is false after
// replying WRONGTYPE.
func (c *Ctx) setOp(op string, keys [][]byte) (map[string]struct{}, bool) {
	sets := make([]*keyspace.Set, len(keys))
	c.reading = true // a STORE's sources count as reads
	for i, k := range keys {
		s, ok := c.lookupSet(k)
		if !ok {
			c.reading = false
			return nil, false
		}
		sets[i] = s
	}
	c.reading = false
	out := make(map[string]struct{})
	switch op {
	case "sinter":
		smallest := 0
		for i, s := range sets {
			if s.Len() == 0 {
				return out, true
			}
			if s.Len() < sets[smallest].Len() {
				smallest = i
			}
		}
		sets[smallest].Each(func(m []byte) {
			for _, s := range sets {
				if !s.Has(m) {
					return
				}
			}
			out[string(m)] = struct{}{}
		})
	case "sunion":
		for _, s := range sets {
			s.Each(func(m []byte) { out[string(m)] = struct{}{} })
		}
	case "sdiff":
		sets[0].Each(func(m []byte) {
			for _, s := range sets[1:] {
				if s.Has(m) {
					return
				}
			}
			out[string(m)] = struct{}{}
		})
	}
	return out, true
}

func cmdSetOp(c *Ctx) {
	name := c.Cmd.Name
	store := len(name) > 5 && name[len(name)-5:] == "store"
	keys := c.Args[1:]
	if store {
		keys = c.Args[2:]
		name = name[:len(name)-5]
	}
	out, ok := c.setOp(name, keys)
	if !ok {
		return
	}
	if !store {
		c.W.Set(len(out))
		for m := range out {
			c.W.BulkString(m)
		}
		return
	}
	dst := c.Args[1]
	existed := c.KS.DeleteLocked(dst)
	if len(out) > 0 {
		ns, lim := keyspace.NewSet(), c.Track.Settings.IntsetEntries()
		for m := range out {
			ns.AddWithin([]byte(m), lim)
		}
		c.KS.AddLocked(dst, keyspace.Sets.NewEntry(ns))
	}
	if existed || len(out) > 0 {
		c.Dirty++
	}
	c.W.Int(int64(len(out)))
}

// SINTERCARD numkeys key [key ...] [LIMIT limit]
func cmdSInterCard(c *Ctx) {
	n, ok := ParseInt(c.Args[1])
	if !ok || n <= 0 {
		c.W.Error("ERR numkeys should be greater than 0")
		return
	}
	if n > int64(len(c.Args)-2) {
		c.W.Error("ERR Number of keys can't be greater than number of args")
		return
	}
	keys := c.Args[2 : 2+n]
	rest := c.Args[2+n:]
	var limit int64
	switch {
	case len(rest) == 0:
	case len(rest) == 2 && EqualFold(rest[0], "limit"):
		l, ok := ParseInt(rest[1])
		if !ok || l < 0 { // as Redis: one error for both
			c.W.Error("ERR LIMIT can't be negative")
			return
		}
		limit = l
	default:
		c.W.Error(ErrSyntax)
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
	c.W.Int(card)
}

func cmdSScan(c *Ctx) {
	cursor, pattern, count, ok := c.scanArgs()
	if !ok {
		return
	}
	s, ok := c.lookupSet(c.Args[1])
	if !ok {
		return
	}
	var picked []string
	var next uint64
	// an intset answers whole at any cursor, with cursor 0, as Redis's
	// compact encodings do
	if s.Intset() || cursor == 0 && s.Len() <= smallScan {
		picked = s.Members()
	} else if s != nil {
		picked, next = c.snapScan(weak.Make(s), s.Members, func(m string) bool { return s.Has(strBytes(m)) }, cursor, count)
	}
	c.replyScan(next, picked, pattern, func(m string) [][]byte { return [][]byte{[]byte(m)} })
}
