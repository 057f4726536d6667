package kv

import (
	"math"
	"strconv"
)

var (
	posInf = math.Inf(1)
	negInf = math.Inf(-1)
)

// maxStringSize is proto-max-bulk-len, the largest string value (a variable
// so fuzz tests can lower it).
var maxStringSize = 512 * 1024 * 1024

var (
	bSET     = []byte("SET")
	bPXAT    = []byte("PXAT")
	bKEEPTTL = []byte("KEEPTTL")
	bDEL     = []byte("DEL")
	bPEXAT   = []byte("PEXPIREAT")
	bPERSIST = []byte("PERSIST")
)

func (c *Client) lookup(key []byte) *entry { return c.srv.ks.lookupLocked(key, c.now) }

// lookupAs returns the value of key as a T (the zero T if the key is
// absent); ok is false after replying WRONGTYPE. lookupList, lookupSet,
// lookupZSet and lookupHash are its instances.
func lookupAs[T any](c *Client, key []byte) (v T, ok bool) {
	e := c.lookup(key)
	if e == nil {
		return v, true
	}
	v, ok = e.object().(T)
	if !ok {
		c.w.Error(errWrongType)
	}
	return v, ok
}

// lookupString returns the string entry of key (nil if absent); ok is false
// after replying WRONGTYPE.
func (c *Client) lookupString(key []byte) (*entry, bool) {
	e := c.lookup(key)
	if e != nil && !e.isString() {
		c.w.Error(errWrongType)
		return nil, false
	}
	return e, true
}

// expireArg converts an expiry argument of a kind (EX, PX, EXAT, PXAT) into
// absolute Unix milliseconds, replying the Redis error when it is invalid.
func (c *Client) expireArg(kind string, arg []byte) (int64, bool) {
	n, ok := parseInt(arg)
	if !ok {
		c.w.Error(errNotInt)
		return 0, false
	}
	bad := func() (int64, bool) {
		c.w.Error("ERR invalid expire time in '" + c.cmd.Name + "' command")
		return 0, false
	}
	if n <= 0 {
		return bad()
	}
	switch kind {
	case "ex", "exat":
		if n > math.MaxInt64/1000 {
			return bad()
		}
		n *= 1000
	}
	switch kind {
	case "ex", "px":
		if n > math.MaxInt64-c.now {
			return bad()
		}
		n += c.now
	}
	return n, true
}

func cmdGet(c *Client) {
	e, ok := c.lookupString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Null()
		return
	}
	c.w.Bulk(e.bytes())
}

// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
func cmdSet(c *Client) {
	key, val := c.args[1], c.args[2]
	var nx, xx, get, keepttl, hasExp bool
	var exp int64
	for i := 3; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case equalFold(a, "nx") && !xx:
			nx = true
		case equalFold(a, "xx") && !nx:
			xx = true
		case equalFold(a, "get"):
			get = true
		case equalFold(a, "keepttl") && !hasExp:
			keepttl = true
		case (equalFold(a, "ex") || equalFold(a, "px") || equalFold(a, "exat") || equalFold(a, "pxat")) && !keepttl && !hasExp && i+1 < len(c.args):
			var ok bool
			if exp, ok = c.expireArg(string(lowerInto(nil, a)), c.args[i+1]); !ok {
				return
			}
			hasExp = true
			i++
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	c.setGeneric(key, val, nx, xx, get, keepttl, hasExp, exp)
}

func (c *Client) setGeneric(key, val []byte, nx, xx, get, keepttl, hasExp bool, exp int64) {
	e := c.lookup(key)
	if get && e != nil && !e.isString() {
		c.w.Error(errWrongType)
		return
	}
	var old []byte
	if get && e != nil {
		old = append([]byte(nil), e.bytes()...)
	}
	if (nx && e != nil) || (xx && e == nil) {
		if get {
			c.replyOld(e, old)
		} else {
			c.w.Null()
		}
		return
	}
	if keepttl && e != nil {
		exp = e.exp
	}
	if hasExp && exp <= c.now { // an expiry in the past deletes the key
		c.srv.ks.deleteLocked(key)
		c.dirty++
		c.log(bDEL, key)
	} else {
		c.srv.ks.setStringLocked(key, val, exp, c.now)
		c.dirty++
		switch {
		case hasExp:
			var tmp [20]byte
			c.log(bSET, key, val, bPXAT, strconv.AppendInt(tmp[:0], exp, 10))
		case keepttl:
			c.log(bSET, key, val, bKEEPTTL)
		case c.cmd.Name != "set" || len(c.args) > 3:
			c.log(bSET, key, val)
		}
	}
	if get {
		c.replyOld(e, old)
		return
	}
	if c.cmd.Name == "setnx" {
		c.w.Int(1)
		return
	}
	c.w.OK()
}

func (c *Client) replyOld(e *entry, old []byte) {
	if e == nil {
		c.w.Null()
	} else {
		c.w.Bulk(old)
	}
}

func cmdSetNX(c *Client) {
	if e := c.lookup(c.args[1]); e != nil {
		c.w.Int(0)
		return
	}
	c.setGeneric(c.args[1], c.args[2], true, false, false, false, false, 0)
}

func cmdSetEX(c *Client) {
	kind := "ex"
	if c.cmd.Name == "psetex" {
		kind = "px"
	}
	exp, ok := c.expireArg(kind, c.args[2])
	if !ok {
		return
	}
	c.setGeneric(c.args[1], c.args[3], false, false, false, false, true, exp)
}

func cmdMGet(c *Client) {
	c.w.Array(len(c.args) - 1)
	for _, k := range c.args[1:] {
		e := c.lookup(k)
		if e == nil || !e.isString() {
			c.w.Null()
		} else {
			c.w.Bulk(e.bytes())
		}
	}
}

func cmdMSet(c *Client) {
	if len(c.args)%2 != 1 {
		c.wrongArgs()
		return
	}
	if c.cmd.Name == "msetnx" {
		for i := 1; i < len(c.args); i += 2 {
			if c.lookup(c.args[i]) != nil {
				c.w.Int(0)
				return
			}
		}
	}
	for i := 1; i < len(c.args); i += 2 {
		c.srv.ks.setStringLocked(c.args[i], c.args[i+1], 0, c.now)
	}
	c.dirty++
	if c.cmd.Name == "msetnx" {
		c.w.Int(1)
		return
	}
	c.w.OK()
}

func cmdGetSet(c *Client) {
	e, ok := c.lookupString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Null()
	} else {
		c.w.Bulk(e.bytes())
	}
	c.srv.ks.setStringLocked(c.args[1], c.args[2], 0, c.now)
	c.dirty++
	c.log(bSET, c.args[1], c.args[2])
}

func cmdGetDel(c *Client) {
	e, ok := c.lookupString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Null()
		return
	}
	c.w.Bulk(e.bytes())
	c.srv.ks.deleteLocked(c.args[1])
	c.dirty++
	c.log(bDEL, c.args[1])
}

// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]
func cmdGetEx(c *Client) {
	key := c.args[1]
	var persist, hasExp bool
	var exp int64
	for i := 2; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case equalFold(a, "persist") && !hasExp && !persist:
			persist = true
		case (equalFold(a, "ex") || equalFold(a, "px") || equalFold(a, "exat") || equalFold(a, "pxat")) && !persist && !hasExp && i+1 < len(c.args):
			var ok bool
			if exp, ok = c.expireArg(string(lowerInto(nil, a)), c.args[i+1]); !ok {
				return
			}
			hasExp = true
			i++
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	e, ok := c.lookupString(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.Null()
		return
	}
	c.w.Bulk(e.bytes())
	switch {
	case hasExp && exp <= c.now:
		c.srv.ks.deleteLocked(key)
		c.dirty++
		c.log(bDEL, key)
	case hasExp:
		c.srv.ks.setExpireLocked(key, e, exp)
		c.dirty++
		c.log(bPEXAT, key, []byte(strconv.FormatInt(exp, 10)))
	case persist && e.exp != 0:
		c.srv.ks.setExpireLocked(key, e, 0)
		c.dirty++
		c.log(bPERSIST, key)
	}
}

func cmdAppend(c *Client) {
	e, ok := c.lookupString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.srv.ks.setStringLocked(c.args[1], c.args[2], 0, c.now)
		c.w.Int(int64(len(c.args[2])))
	} else {
		if len(e.bytes())+len(c.args[2]) > maxStringSize {
			c.w.Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
			return
		}
		e.setBytes(append(e.bytes(), c.args[2]...))
		c.w.Int(int64(len(e.bytes())))
	}
	c.dirty++
}

func cmdStrlen(c *Client) {
	e, ok := c.lookupString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(len(e.bytes())))
}

func cmdGetRange(c *Client) {
	start, end, ok := c.argInts2(2)
	if !ok {
		return
	}
	e, ok := c.lookupString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Bulk(nil)
		return
	}
	n := int64(len(e.bytes()))
	if start < 0 && end < 0 && start > end {
		c.w.Bulk(nil)
		return
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if start < 0 {
		start = 0
	}
	if end < 0 {
		end = 0
	}
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		c.w.Bulk(nil)
		return
	}
	c.w.Bulk(e.bytes()[start : end+1])
}

func cmdSetRange(c *Client) {
	off, ok := c.argInt(2)
	if !ok {
		return
	}
	if off < 0 {
		c.w.Error("ERR offset is out of range")
		return
	}
	val := c.args[3]
	e, ok := c.lookupString(c.args[1])
	if !ok {
		return
	}
	if e == nil && len(val) == 0 {
		c.w.Int(0)
		return
	}
	if off+int64(len(val)) > int64(maxStringSize) {
		c.w.Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
		return
	}
	if e == nil {
		e = c.srv.ks.addLocked(c.args[1], newStringEntry(nil, 0))
	}
	if len(val) == 0 {
		c.w.Int(int64(len(e.bytes())))
		return
	}
	need := int(off) + len(val)
	if need > len(e.bytes()) {
		nb := make([]byte, need)
		copy(nb, e.bytes())
		e.setBytes(nb)
	}
	copy(e.bytes()[off:], val)
	c.dirty++
	c.w.Int(int64(len(e.bytes())))
}

func cmdIncr(c *Client) {
	var by int64 = 1
	switch c.cmd.Name {
	case "decr":
		by = -1
	case "incrby", "decrby":
		n, ok := c.argInt(2)
		if !ok {
			return
		}
		if c.cmd.Name == "decrby" {
			if n == math.MinInt64 {
				c.w.Error("ERR decrement would overflow")
				return
			}
			n = -n
		}
		by = n
	}
	e, ok := c.lookupString(c.args[1])
	if !ok {
		return
	}
	var cur int64
	if e != nil {
		if cur, ok = parseInt(e.bytes()); !ok {
			c.w.Error(errNotInt)
			return
		}
	}
	if (by > 0 && cur > math.MaxInt64-by) || (by < 0 && cur < math.MinInt64-by) {
		c.w.Error(errOverflow)
		return
	}
	cur += by
	var tmp [20]byte
	v := strconv.AppendInt(tmp[:0], cur, 10)
	if e == nil {
		c.srv.ks.addLocked(c.args[1], newStringEntry(copyBytes(v), 0))
	} else {
		e.setBytes(append(e.bytes()[:0], v...))
	}
	c.dirty++
	c.w.Int(cur)
}

func cmdIncrByFloat(c *Client) {
	by, ok := parseFloat(c.args[2])
	if !ok {
		c.w.Error(errNotFloat)
		return
	}
	e, ok := c.lookupString(c.args[1])
	if !ok {
		return
	}
	var cur float64
	if e != nil {
		if cur, ok = parseFloat(e.bytes()); !ok {
			c.w.Error(errNotFloat)
			return
		}
	}
	cur += by
	if math.IsNaN(cur) || math.IsInf(cur, 0) {
		c.w.Error("ERR increment would produce NaN or Infinity")
		return
	}
	v := []byte(strconv.FormatFloat(cur, 'f', -1, 64))
	if e == nil {
		c.srv.ks.addLocked(c.args[1], newStringEntry(v, 0))
	} else {
		e.setBytes(v)
	}
	c.dirty++
	c.log(bSET, c.args[1], v, bKEEPTTL)
	c.w.Bulk(v)
}
