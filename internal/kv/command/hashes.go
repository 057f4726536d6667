package command

import (
	"math"
	"math/rand/v2"
	"strconv"
	"weak"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

var bHSET = []byte("HSET")

// lookupHash returns the hash of key (nil if absent); ok is false after
// replying WRONGTYPE.
func (c *Ctx) lookupHash(key []byte) (*keyspace.Hash, bool) { return LookupAs(c, keyspace.Hashes, key) }

func (c *Ctx) hashForWrite(key []byte) (*keyspace.Hash, bool) {
	h, ok := c.lookupHash(key)
	if ok && h == nil {
		h = keyspace.NewHash()
		c.KS.AddLocked(key, keyspace.Hashes.NewEntry(h))
	}
	return h, ok
}

func cmdHSet(c *Ctx) {
	if len(c.Args)%2 != 0 {
		c.WrongArgs()
		return
	}
	h, ok := c.hashForWrite(c.Args[1])
	if !ok {
		return
	}
	added := 0
	lim := c.Track.Settings.HashLimits()
	for i := 2; i < len(c.Args); i += 2 {
		if h.SetWithin(c.Args[i], c.Args[i+1], lim) {
			added++
		}
	}
	c.Dirty++
	if c.Cmd.Name == "hmset" {
		c.W.OK()
		return
	}
	c.W.Int(int64(added))
}

func cmdHSetNX(c *Ctx) {
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	if h != nil && h.Has(c.Args[2]) {
		c.W.Int(0)
		return
	}
	h, _ = c.hashForWrite(c.Args[1])
	h.SetWithin(c.Args[2], c.Args[3], c.Track.Settings.HashLimits())
	c.Dirty++
	c.W.Int(1)
}

func cmdHGet(c *Ctx) {
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	if h == nil {
		c.W.Null()
		return
	}
	v, in := h.Get(c.Args[2])
	if !in {
		c.W.Null()
		return
	}
	c.W.Bulk(v)
}

func cmdHMGet(c *Ctx) {
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	c.W.Array(len(c.Args) - 2)
	for _, f := range c.Args[2:] {
		if h == nil {
			c.W.Null()
		} else if v, in := h.Get(f); in {
			c.W.Bulk(v)
		} else {
			c.W.Null()
		}
	}
}

// cmdHGetAll serves HGETALL (a map in RESP3), HKEYS and HVALS.
func cmdHGetAll(c *Ctx) {
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	if h == nil {
		h = keyspace.NewHash()
	}
	switch c.Cmd.Name {
	case "hgetall":
		c.W.Map(h.Len())
		h.Each(func(f, v []byte) {
			c.W.Bulk(f)
			c.W.Bulk(v)
		})
	case "hkeys":
		c.W.Array(h.Len())
		h.Each(func(f, _ []byte) { c.W.Bulk(f) })
	default:
		c.W.Array(h.Len())
		h.Each(func(_, v []byte) { c.W.Bulk(v) })
	}
}

func cmdHDel(c *Ctx) {
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	n := 0
	for _, f := range c.Args[2:] {
		if h != nil && h.Del(f) {
			n++
		}
	}
	if n > 0 {
		c.Dirty++
		c.dropIfEmpty(c.Args[1], h.Len())
	}
	c.W.Int(int64(n))
}

func cmdHExists(c *Ctx) {
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	c.W.Int(b2i(h != nil && h.Has(c.Args[2])))
}

func cmdHLen(c *Ctx) {
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	if h == nil {
		c.W.Int(0)
		return
	}
	c.W.Int(int64(h.Len()))
}

func cmdHStrlen(c *Ctx) {
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	if h == nil {
		c.W.Int(0)
		return
	}
	v, _ := h.Get(c.Args[2])
	c.W.Int(int64(len(v)))
}

func cmdHIncrBy(c *Ctx) {
	by, ok := c.ArgInt(3)
	if !ok {
		return
	}
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	var cur int64
	if v, in := hashGet(h, c.Args[2]); in {
		if cur, ok = ParseInt(v); !ok {
			c.W.Error("ERR hash value is not an integer")
			return
		}
	}
	if (by > 0 && cur > math.MaxInt64-by) || (by < 0 && cur < math.MinInt64-by) {
		c.W.Error(ErrOverflow)
		return
	}
	cur += by
	h, _ = c.hashForWrite(c.Args[1])
	h.SetWithin(c.Args[2], strconv.AppendInt(nil, cur, 10), c.Track.Settings.HashLimits())
	c.Dirty++
	c.W.Int(cur)
}

func cmdHIncrByFloat(c *Ctx) {
	by, ok := ParseFloat(c.Args[3])
	if !ok {
		c.W.Error(ErrNotFloat)
		return
	}
	if math.IsNaN(by) || math.IsInf(by, 0) { // as Redis, before the key is read
		c.W.Error("ERR value is NaN or Infinity")
		return
	}
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	var cur float64
	if v, in := hashGet(h, c.Args[2]); in {
		if cur, ok = ParseFloat(v); !ok {
			c.W.Error("ERR hash value is not a float")
			return
		}
	}
	cur += by
	if math.IsNaN(cur) || math.IsInf(cur, 0) {
		c.W.Error("ERR increment would produce NaN or Infinity")
		return
	}
	v := strconv.FormatFloat(cur, 'f', -1, 64)
	h, _ = c.hashForWrite(c.Args[1])
	h.SetWithin(c.Args[2], []byte(v), c.Track.Settings.HashLimits())
	c.Dirty++
	c.Log(bHSET, c.Args[1], c.Args[2], []byte(v))
	c.W.BulkString(v)
}

// HRANDFIELD key [count [WITHVALUES]]
func cmdHRandField(c *Ctx) {
	var count int64 = 1
	hasCount, withValues := len(c.Args) >= 3, false
	if len(c.Args) > 4 || (len(c.Args) == 4 && !EqualFold(c.Args[3], "withvalues")) {
		c.W.Error(ErrSyntax)
		return
	}
	if hasCount {
		var ok bool
		if count, ok = c.ArgInt(2); !ok {
			return
		}
		if count < -(1<<40) || count > 1<<40 {
			c.W.Error("ERR value is out of range")
			return
		}
		withValues = len(c.Args) == 4
	}
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	var pairs [][2][]byte // field and value
	if h != nil {
		h.Each(func(f, v []byte) { pairs = append(pairs, [2][]byte{f, v}) })
	}
	if !hasCount {
		if len(pairs) == 0 {
			c.W.Null()
			return
		}
		c.W.Bulk(pairs[rand.IntN(len(pairs))][0])
		return
	}
	var picked [][2][]byte
	if count >= 0 {
		for _, i := range rand.Perm(len(pairs)) {
			if int64(len(picked)) >= count {
				break
			}
			picked = append(picked, pairs[i])
		}
	} else if len(pairs) > 0 {
		for i := int64(0); i < -count; i++ {
			picked = append(picked, pairs[rand.IntN(len(pairs))])
		}
	}
	if withValues && c.W.RESP3() {
		c.W.Array(len(picked))
		for _, p := range picked {
			c.W.Array(2)
			c.W.Bulk(p[0])
			c.W.Bulk(p[1])
		}
		return
	}
	n := len(picked)
	if withValues {
		n *= 2
	}
	c.W.Array(n)
	for _, p := range picked {
		c.W.Bulk(p[0])
		if withValues {
			c.W.Bulk(p[1])
		}
	}
}

func cmdHScan(c *Ctx) {
	cursor, pattern, count, ok := c.scanArgs()
	if !ok {
		return
	}
	h, ok := c.lookupHash(c.Args[1])
	if !ok {
		return
	}
	if h == nil {
		c.replyScan(0, nil, pattern, nil)
		return
	}
	if cursor == 0 && h.Len() <= smallScan {
		var fields []string
		values := map[string][]byte{}
		h.Each(func(f, v []byte) {
			fields = append(fields, string(f))
			values[string(f)] = append([]byte(nil), v...)
		})
		c.replyScan(0, fields, pattern, func(f string) [][]byte { return [][]byte{[]byte(f), values[f]} })
		return
	}
	values := map[string][]byte{}
	picked, next := c.snapScan(weak.Make(h), h.Fields, func(f string) bool {
		v, ok := h.Get(strBytes(f))
		if ok {
			values[f] = v
		}
		return ok
	}, cursor, count)
	c.replyScan(next, picked, pattern, func(f string) [][]byte { return [][]byte{[]byte(f), values[f]} })
}

// hashGet reads a field of a hash that may be nil.
func hashGet(h *keyspace.Hash, f []byte) ([]byte, bool) {
	if h == nil {
		return nil, false
	}
	return h.Get(f)
}
