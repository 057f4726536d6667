package kv

import (
	"math"
	"math/rand/v2"
	"strconv"
)

var bHSET = []byte("HSET")

// lookupHash returns the hash of key (nil if absent); ok is false after
// replying WRONGTYPE.
func (c *Client) lookupHash(key []byte) (hash, bool) {
	e := c.lookup(key)
	if e == nil {
		return nil, true
	}
	h, isHash := e.object().(hash)
	if !isHash {
		c.w.Error(errWrongType)
		return nil, false
	}
	return h, true
}

func (c *Client) hashForWrite(key []byte) (hash, bool) {
	h, ok := c.lookupHash(key)
	if ok && h == nil {
		h = make(hash)
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
		f := c.args[i]
		if old, in := h[string(f)]; in {
			if old != string(c.args[i+1]) {
				h[string(f)] = string(c.args[i+1])
			}
			continue
		}
		h[string(f)] = string(c.args[i+1])
		added++
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
	if _, in := h[string(c.args[2])]; in {
		c.w.Int(0)
		return
	}
	h, _ = c.hashForWrite(c.args[1])
	h[string(c.args[2])] = string(c.args[3])
	c.dirty++
	c.w.Int(1)
}

func cmdHGet(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	v, in := h[string(c.args[2])]
	if !in {
		c.w.Null()
		return
	}
	c.w.BulkString(v)
}

func cmdHMGet(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	c.w.Array(len(c.args) - 2)
	for _, f := range c.args[2:] {
		if v, in := h[string(f)]; in {
			c.w.BulkString(v)
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
	switch c.cmd.Name {
	case "hgetall":
		c.w.Map(len(h))
		for f, v := range h {
			c.w.BulkString(f)
			c.w.BulkString(v)
		}
	case "hkeys":
		c.w.Array(len(h))
		for f := range h {
			c.w.BulkString(f)
		}
	default:
		c.w.Array(len(h))
		for _, v := range h {
			c.w.BulkString(v)
		}
	}
}

func cmdHDel(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	n := 0
	for _, f := range c.args[2:] {
		if _, in := h[string(f)]; in {
			delete(h, string(f))
			n++
		}
	}
	if n > 0 {
		c.dirty++
		c.dropIfEmpty(c.args[1], len(h))
	}
	c.w.Int(int64(n))
}

func cmdHExists(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	_, in := h[string(c.args[2])]
	c.w.Int(b2i(in))
}

func cmdHLen(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	c.w.Int(int64(len(h)))
}

func cmdHStrlen(c *Client) {
	h, ok := c.lookupHash(c.args[1])
	if !ok {
		return
	}
	c.w.Int(int64(len(h[string(c.args[2])])))
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
	if v, in := h[string(c.args[2])]; in {
		if cur, ok = parseInt([]byte(v)); !ok {
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
	h[string(c.args[2])] = strconv.FormatInt(cur, 10)
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
	if v, in := h[string(c.args[2])]; in {
		if cur, ok = parseFloat([]byte(v)); !ok {
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
	h[string(c.args[2])] = v
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
	if !hasCount {
		if h == nil {
			c.w.Null()
			return
		}
		for f := range h {
			c.w.BulkString(f)
			return
		}
	}
	var fields []string
	if count >= 0 {
		for f := range h {
			if int64(len(fields)) >= count {
				break
			}
			fields = append(fields, f)
		}
	} else if len(h) > 0 {
		all := make([]string, 0, len(h))
		for f := range h {
			all = append(all, f)
		}
		for i := int64(0); i < -count; i++ {
			fields = append(fields, all[rand.IntN(len(all))])
		}
	}
	if withValues && c.w.RESP3() {
		c.w.Array(len(fields))
		for _, f := range fields {
			c.w.Array(2)
			c.w.BulkString(f)
			c.w.BulkString(h[f])
		}
		return
	}
	n := len(fields)
	if withValues {
		n *= 2
	}
	c.w.Array(n)
	for _, f := range fields {
		c.w.BulkString(f)
		if withValues {
			c.w.BulkString(h[f])
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
	fields := make([]string, 0, len(h))
	for f := range h {
		fields = append(fields, f)
	}
	picked, next := collScan(fields, cursor, count)
	c.replyScan(next, picked, pattern, func(f string) [][]byte { return [][]byte{[]byte(f), []byte(h[f])} })
}
