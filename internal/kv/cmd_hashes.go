package kv

import (
	"math"
	"math/rand/v2"
	"strconv"
)

var bHSET = []byte("HSET")

// lookupHash returns the hash of key (nil if absent); ok is false after
// replying WRONGTYPE.
func (c *Client) lookupHash(key []byte) (*hash, bool) { return lookupAs[*hash](c, key) }

func (c *Client) hashForWrite(key []byte) (*hash, bool) {
	h, ok := c.lookupHash(key)
	if ok && h == nil {
		h = newHash()
		c.srv.ks.addLocked(key, newObjectEntry(h))
	}
	return h, ok
}

func cmdHSet(c *Client) {
	if len(c.args)%2 != 0 {
		c.wrongArgs()
		return
	}
	h, ok := c.hashForWrite(c.args[1])
	if !ok {
		return
	}
	added := 0
	for i := 2; i < len(c.args); i += 2 {
		if h.set(c.args[i], c.args[i+1]) {
			added++
		}
	}
	c.dirty++
	if c.cmd.Name == "hmset" {
		c.w.OK()
		return
	}
	c.w.Int(int64(added))
}

func cmdHSetNX(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	if h != nil && h.has(c.args[2]) {
		c.w.Int(0)
		return
	}
	h, _ = c.hashForWrite(c.args[1])
	h.set(c.args[2], c.args[3])
	c.dirty++
	c.w.Int(1)
}

func cmdHGet(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	if h == nil {
		c.w.Null()
		return
	}
	v, in := h.get(c.args[2])
	if !in {
		c.w.Null()
		return
	}
	c.w.Bulk(v)
}

func cmdHMGet(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	c.w.Array(len(c.args) - 2)
	for _, f := range c.args[2:] {
		if h == nil {
			c.w.Null()
		} else if v, in := h.get(f); in {
			c.w.Bulk(v)
		} else {
			c.w.Null()
		}
	}
}

// cmdHGetAll serves HGETALL (a map in RESP3), HKEYS and HVALS.
func cmdHGetAll(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	if h == nil {
		h = newHash()
	}
	switch c.cmd.Name {
	case "hgetall":
		c.w.Map(h.len())
		h.each(func(f, v []byte) {
			c.w.Bulk(f)
			c.w.Bulk(v)
		})
	case "hkeys":
		c.w.Array(h.len())
		h.each(func(f, _ []byte) { c.w.Bulk(f) })
	default:
		c.w.Array(h.len())
		h.each(func(_, v []byte) { c.w.Bulk(v) })
	}
}

func cmdHDel(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	n := 0
	for _, f := range c.args[2:] {
		if h != nil && h.del(f) {
			n++
		}
	}
	if n > 0 {
		c.dirty++
		c.dropIfEmpty(c.args[1], h.len())
	}
	c.w.Int(int64(n))
}

func cmdHExists(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	c.w.Int(b2i(h != nil && h.has(c.args[2])))
}

func cmdHLen(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	if h == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(h.len()))
}

func cmdHStrlen(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	if h == nil {
		c.w.Int(0)
		return
	}
	v, _ := h.get(c.args[2])
	c.w.Int(int64(len(v)))
}

func cmdHIncrBy(c *Client) {
	by, ok := c.argInt(3)
	if !ok {
		return
	}
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	var cur int64
	if v, in := hashGet(h, c.args[2]); in {
		if cur, ok = parseInt(v); !ok {
			c.w.Error("ERR hash value is not an integer")
			return
		}
	}
	if (by > 0 && cur > math.MaxInt64-by) || (by < 0 && cur < math.MinInt64-by) {
		c.w.Error(errOverflow)
		return
	}
	cur += by
	h, _ = c.hashForWrite(c.args[1])
	h.set(c.args[2], strconv.AppendInt(nil, cur, 10))
	c.dirty++
	c.w.Int(cur)
}

func cmdHIncrByFloat(c *Client) {
	by, ok := parseFloat(c.args[3])
	if !ok {
		c.w.Error(errNotFloat)
		return
	}
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	var cur float64
	if v, in := hashGet(h, c.args[2]); in {
		if cur, ok = parseFloat(v); !ok {
			c.w.Error("ERR hash value is not a float")
			return
		}
	}
	cur += by
	if math.IsNaN(cur) || math.IsInf(cur, 0) {
		c.w.Error("ERR increment would produce NaN or Infinity")
		return
	}
	v := strconv.FormatFloat(cur, 'f', -1, 64)
	h, _ = c.hashForWrite(c.args[1])
	h.set(c.args[2], []byte(v))
	c.dirty++
	c.log(bHSET, c.args[1], c.args[2], []byte(v))
	c.w.BulkString(v)
}

// HRANDFIELD key [count [WITHVALUES]]
func cmdHRandField(c *Client) {
	var count int64 = 1
	hasCount, withValues := len(c.args) >= 3, false
	if len(c.args) > 4 || (len(c.args) == 4 && !equalFold(c.args[3], "withvalues")) {
		c.w.Error(errSyntax)
		return
	}
	if hasCount {
		var ok bool
		if count, ok = c.argInt(2); !ok {
			return
		}
		if count < -(1<<40) || count > 1<<40 {
			c.w.Error("ERR value is out of range")
			return
		}
		withValues = len(c.args) == 4
	}
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	var pairs [][2][]byte // field and value
	if h != nil {
		h.each(func(f, v []byte) { pairs = append(pairs, [2][]byte{f, v}) })
	}
	if !hasCount {
		if len(pairs) == 0 {
			c.w.Null()
			return
		}
		c.w.Bulk(pairs[rand.IntN(len(pairs))][0])
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
	if withValues && c.w.RESP3() {
		c.w.Array(len(picked))
		for _, p := range picked {
			c.w.Array(2)
			c.w.Bulk(p[0])
			c.w.Bulk(p[1])
		}
		return
	}
	n := len(picked)
	if withValues {
		n *= 2
	}
	c.w.Array(n)
	for _, p := range picked {
		c.w.Bulk(p[0])
		if withValues {
			c.w.Bulk(p[1])
		}
	}
}

func cmdHScan(c *Client) {
	cursor, pattern, count, ok := c.scanArgs()
	if !ok {
		return
	}
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	values := map[string][]byte{}
	if h != nil {
		h.each(func(f, v []byte) { values[string(f)] = append([]byte(nil), v...) })
	}
	fields := make([]string, 0, len(values))
	for f := range values {
		fields = append(fields, f)
	}
	picked, next := collScan(fields, cursor, count)
	c.replyScan(next, picked, pattern, func(f string) [][]byte { return [][]byte{[]byte(f), values[f]} })
}

// hashGet reads a field of a hash that may be nil.
func hashGet(h *hash, f []byte) ([]byte, bool) {
	if h == nil {
		return nil, false
	}
	return h.get(f)
}
