package command

import (
	"math"
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

var (
	posInf = math.Inf(1)
	negInf = math.Inf(-1)
)

// MaxStringSize is proto-max-bulk-len, the largest string value (a variable
// so fuzz tests can lower it).
var MaxStringSize = 512 * 1024 * 1024

var (
	bSET     = []byte("SET")
	bPXAT    = []byte("PXAT")
	bKEEPTTL = []byte("KEEPTTL")
	bDEL     = []byte("DEL")
	bPEXAT   = []byte("PEXPIREAT")
	bPERSIST = []byte("PERSIST")
)

// Lookup returns the live entry of key (nil if absent); its shard is locked.
// The lookups of a command that does not write count as keyspace hits or
// misses, as Redis's lookupKeyRead does, and those of a write command
// reading a key it does not write (GETSET, a STORE's sources: readKey).
func (c *Ctx) Lookup(key []byte) *keyspace.Entry {
	e := c.KS.LookupSlotLocked(key, c.SlotOf(key), c.Now)
	if cmd := c.Cmd; cmd != nil && (cmd.Mask&Write == 0 || c.reading) {
		if e != nil {
			c.Hits++
		} else {
			c.Misses++
		}
	}
	return e
}

// LookupAs returns the value of key if it is of type t (nil if the key
// is absent); ok is false after replying WRONGTYPE. A command of a new
// value type reads its keys with it.
func LookupAs[T any](c *Ctx, t *keyspace.Type[T], key []byte) (v *T, ok bool) {
	e := c.Lookup(key)
	if e == nil {
		return nil, true
	}
	if v = t.Of(e); v == nil {
		c.W.Error(ErrWrongType)
		return nil, false
	}
	return v, true
}

// readKey is Lookup of a key a write command reads (Redis's
// lookupKeyRead): it counts as a keyspace hit or miss.
func (c *Ctx) readKey(key []byte) *keyspace.Entry {
	c.reading = true
	e := c.Lookup(key)
	c.reading = false
	return e
}

// lookupString returns the string entry of key (nil if absent); ok is false
// after replying WRONGTYPE.
func (c *Ctx) lookupString(key []byte) (*keyspace.Entry, bool) {
	e := c.Lookup(key)
	if e != nil && !e.IsString() {
		c.W.Error(ErrWrongType)
		return nil, false
	}
	return e, true
}

// expireArg converts an expiry argument of a kind (EX, PX, EXAT, PXAT) into
// absolute Unix milliseconds, replying the Redis error when it is invalid.
func (c *Ctx) expireArg(kind string, arg []byte) (int64, bool) {
	n, ok := ParseInt(arg)
	if !ok {
		c.W.Error(ErrNotInt)
		return 0, false
	}
	bad := func() (int64, bool) {
		c.W.Error("ERR invalid expire time in '" + c.Cmd.Name + "' command")
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
		if n > math.MaxInt64-c.Now {
			return bad()
		}
		n += c.Now
	}
	return n, true
}

func cmdGet(c *Ctx) {
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	if e == nil {
		c.W.Null()
		return
	}
	c.W.Bulk(e.Bytes())
}

// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
func cmdSet(c *Ctx) {
	key, val := c.Args[1], c.Args[2]
	var nx, xx, get, keepttl, hasExp bool
	var exp int64
	for i := 3; i < len(c.Args); i++ {
		a := c.Args[i]
		switch {
		case EqualFold(a, "nx") && !xx:
			nx = true
		case EqualFold(a, "xx") && !nx:
			xx = true
		case EqualFold(a, "get"):
			get = true
		case EqualFold(a, "keepttl") && !hasExp:
			keepttl = true
		case (EqualFold(a, "ex") || EqualFold(a, "px") || EqualFold(a, "exat") || EqualFold(a, "pxat")) && !keepttl && !hasExp && i+1 < len(c.Args):
			var ok bool
			if exp, ok = c.expireArg(string(LowerInto(nil, a)), c.Args[i+1]); !ok {
				return
			}
			hasExp = true
			i++
		default:
			c.W.Error(ErrSyntax)
			return
		}
	}
	c.setGeneric(key, val, nx, xx, get, keepttl, hasExp, exp)
}

func (c *Ctx) setGeneric(key, val []byte, nx, xx, get, keepttl, hasExp bool, exp int64) {
	c.reading = get // SET ... GET reads the old value
	e := c.Lookup(key)
	c.reading = false
	if get && e != nil && !e.IsString() {
		c.W.Error(ErrWrongType)
		return
	}
	var old []byte
	if get && e != nil {
		old = append([]byte(nil), e.Bytes()...)
	}
	if (nx && e != nil) || (xx && e == nil) {
		if get {
			c.replyOld(e, old)
		} else {
			c.W.Null()
		}
		return
	}
	if keepttl && e != nil {
		exp = e.Expiry()
	}
	if hasExp && exp <= c.Now { // an expiry in the past deletes the key
		c.KS.DeleteLocked(key)
		c.Dirty++
		c.Log(bDEL, key)
	} else {
		if e != nil { // e is the entry SetStringLocked would look up again
			c.KS.ReplaceStringLocked(key, e, val, exp)
		} else {
			c.KS.AddLocked(key, keyspace.NewString(keyspace.CopyBytes(val), exp))
		}
		c.Dirty++
		switch {
		case hasExp:
			var tmp [20]byte
			c.Log(bSET, key, val, bPXAT, strconv.AppendInt(tmp[:0], exp, 10))
		case keepttl:
			c.Log(bSET, key, val, bKEEPTTL)
		case c.Cmd.Name != "set" || len(c.Args) > 3:
			c.Log(bSET, key, val)
		}
	}
	if get {
		c.replyOld(e, old)
		return
	}
	if c.Cmd.Name == "setnx" {
		c.W.Int(1)
		return
	}
	c.W.OK()
}

func (c *Ctx) replyOld(e *keyspace.Entry, old []byte) {
	if e == nil {
		c.W.Null()
	} else {
		c.W.Bulk(old)
	}
}

func cmdSetNX(c *Ctx) {
	if e := c.Lookup(c.Args[1]); e != nil {
		c.W.Int(0)
		return
	}
	c.setGeneric(c.Args[1], c.Args[2], true, false, false, false, false, 0)
}

func cmdSetEX(c *Ctx) {
	kind := "ex"
	if c.Cmd.Name == "psetex" {
		kind = "px"
	}
	exp, ok := c.expireArg(kind, c.Args[2])
	if !ok {
		return
	}
	c.setGeneric(c.Args[1], c.Args[3], false, false, false, false, true, exp)
}

func cmdMGet(c *Ctx) {
	c.W.Array(len(c.Args) - 1)
	for _, k := range c.Args[1:] {
		e := c.Lookup(k)
		if e == nil || !e.IsString() {
			c.W.Null()
		} else {
			c.W.Bulk(e.Bytes())
		}
	}
}

func cmdMSet(c *Ctx) {
	if len(c.Args)%2 != 1 {
		c.WrongArgs()
		return
	}
	if c.Cmd.Name == "msetnx" {
		for i := 1; i < len(c.Args); i += 2 {
			if c.Lookup(c.Args[i]) != nil {
				c.W.Int(0)
				return
			}
		}
	}
	for i := 1; i < len(c.Args); i += 2 {
		c.KS.SetStringLocked(c.Args[i], c.Args[i+1], 0, c.Now)
	}
	c.Dirty++
	if c.Cmd.Name == "msetnx" {
		c.W.Int(1)
		return
	}
	c.W.OK()
}

func cmdGetSet(c *Ctx) {
	c.reading = true
	e, ok := c.lookupString(c.Args[1])
	c.reading = false
	if !ok {
		return
	}
	if e == nil {
		c.W.Null()
	} else {
		c.W.Bulk(e.Bytes())
	}
	c.KS.SetStringLocked(c.Args[1], c.Args[2], 0, c.Now)
	c.Dirty++
	c.Log(bSET, c.Args[1], c.Args[2])
}

func cmdGetDel(c *Ctx) {
	c.reading = true
	e, ok := c.lookupString(c.Args[1])
	c.reading = false
	if !ok {
		return
	}
	if e == nil {
		c.W.Null()
		return
	}
	c.W.Bulk(e.Bytes())
	c.KS.DeleteLocked(c.Args[1])
	c.Dirty++
	c.Log(bDEL, c.Args[1])
}

// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]
func cmdGetEx(c *Ctx) {
	key := c.Args[1]
	var persist, hasExp bool
	var exp int64
	for i := 2; i < len(c.Args); i++ {
		a := c.Args[i]
		switch {
		case EqualFold(a, "persist") && !hasExp && !persist:
			persist = true
		case (EqualFold(a, "ex") || EqualFold(a, "px") || EqualFold(a, "exat") || EqualFold(a, "pxat")) && !persist && !hasExp && i+1 < len(c.Args):
			var ok bool
			if exp, ok = c.expireArg(string(LowerInto(nil, a)), c.Args[i+1]); !ok {
				return
			}
			hasExp = true
			i++
		default:
			c.W.Error(ErrSyntax)
			return
		}
	}
	c.reading = true
	e, ok := c.lookupString(key)
	c.reading = false
	if !ok {
		return
	}
	if e == nil {
		c.W.Null()
		return
	}
	c.W.Bulk(e.Bytes())
	switch {
	case hasExp && exp <= c.Now:
		c.KS.DeleteLocked(key)
		c.Dirty++
		c.Log(bDEL, key)
	case hasExp:
		c.KS.SetExpireLocked(key, e, exp)
		c.Dirty++
		c.Log(bPEXAT, key, []byte(strconv.FormatInt(exp, 10)))
	case persist && e.Expiry() != 0:
		c.KS.SetExpireLocked(key, e, 0)
		c.Dirty++
		c.Log(bPERSIST, key)
	}
}

func cmdAppend(c *Ctx) {
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	if e == nil {
		c.KS.SetStringLocked(c.Args[1], c.Args[2], 0, c.Now)
		c.W.Int(int64(len(c.Args[2])))
	} else {
		if len(e.Bytes())+len(c.Args[2]) > MaxStringSize {
			c.W.Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
			return
		}
		e.SetBytes(append(e.Bytes(), c.Args[2]...))
		c.W.Int(int64(len(e.Bytes())))
	}
	c.Dirty++
}

func cmdStrlen(c *Ctx) {
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	if e == nil {
		c.W.Int(0)
		return
	}
	c.W.Int(int64(len(e.Bytes())))
}

func cmdGetRange(c *Ctx) {
	start, end, ok := c.argInts2(2)
	if !ok {
		return
	}
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	if e == nil {
		c.W.Bulk(nil)
		return
	}
	n := int64(len(e.Bytes()))
	if start < 0 && end < 0 && start > end {
		c.W.Bulk(nil)
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
		c.W.Bulk(nil)
		return
	}
	c.W.Bulk(e.Bytes()[start : end+1])
}

func cmdSetRange(c *Ctx) {
	off, ok := c.ArgInt(2)
	if !ok {
		return
	}
	if off < 0 {
		c.W.Error("ERR offset is out of range")
		return
	}
	val := c.Args[3]
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	if e == nil && len(val) == 0 {
		c.W.Int(0)
		return
	}
	if off > int64(MaxStringSize)-int64(len(val)) { // not off+len: it overflows
		c.W.Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
		return
	}
	if e == nil {
		e = c.KS.AddLocked(c.Args[1], keyspace.NewString(nil, 0))
	}
	if len(val) == 0 {
		c.W.Int(int64(len(e.Bytes())))
		return
	}
	need := int(off) + len(val)
	if need > len(e.Bytes()) {
		nb := make([]byte, need)
		copy(nb, e.Bytes())
		e.SetBytes(nb)
	}
	copy(e.Bytes()[off:], val)
	c.Dirty++
	c.W.Int(int64(len(e.Bytes())))
}

func cmdIncr(c *Ctx) {
	var by int64 = 1
	switch c.Cmd.Name {
	case "decr":
		by = -1
	case "incrby", "decrby":
		n, ok := c.ArgInt(2)
		if !ok {
			return
		}
		if c.Cmd.Name == "decrby" {
			if n == math.MinInt64 {
				c.W.Error("ERR decrement would overflow")
				return
			}
			n = -n
		}
		by = n
	}
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	var cur int64
	if e != nil {
		if cur, ok = parseCounter(e.Bytes()); !ok {
			c.W.Error(ErrNotInt)
			return
		}
	}
	if (by > 0 && cur > math.MaxInt64-by) || (by < 0 && cur < math.MinInt64-by) {
		c.W.Error(ErrOverflow)
		return
	}
	cur += by
	// formatted once, for the value and for the reply ":n\r\n"
	var tmp [24]byte
	tmp[0] = ':'
	r := strconv.AppendInt(tmp[:1], cur, 10)
	v := r[1:]
	if e == nil {
		c.KS.AddLocked(c.Args[1], keyspace.NewString(keyspace.CopyBytes(v), 0))
	} else {
		e.SetBytes(append(e.Bytes()[:0], v...))
	}
	c.Dirty++
	c.W.Raw(append(r, '\r', '\n'))
}

// parseCounter parses the value of a counter (INCR and the like): the
// short ones without the general parser.
func parseCounter(b []byte) (int64, bool) {
	if len(b) > 0 {
		if n, ok := smallInt(b); ok {
			return n, true
		}
	}
	return ParseInt(b)
}

func cmdIncrByFloat(c *Ctx) {
	by, ok := ParseFloat(c.Args[2])
	if !ok {
		c.W.Error(ErrNotFloat)
		return
	}
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	var cur float64
	if e != nil {
		if cur, ok = ParseFloat(e.Bytes()); !ok {
			c.W.Error(ErrNotFloat)
			return
		}
	}
	cur += by
	if math.IsNaN(cur) || math.IsInf(cur, 0) {
		c.W.Error("ERR increment would produce NaN or Infinity")
		return
	}
	v := []byte(strconv.FormatFloat(cur, 'f', -1, 64))
	if e == nil {
		c.KS.AddLocked(c.Args[1], keyspace.NewString(v, 0))
	} else {
		e.SetBytes(v)
	}
	c.Dirty++
	c.Log(bSET, c.Args[1], v, bKEEPTTL)
	c.W.Bulk(v)
}
