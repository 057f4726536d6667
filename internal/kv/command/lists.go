package command

import (
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// lookupList returns the list of key (nil if absent); ok is false after
// replying WRONGTYPE.
func (c *Ctx) lookupList(key []byte) (*keyspace.List, bool) { return LookupAs(c, keyspace.Lists, key) }

func (c *Ctx) createList(key []byte) *keyspace.List {
	l := &keyspace.List{}
	c.KS.AddLocked(key, keyspace.Lists.NewEntry(l))
	return l
}

// dropIfEmpty deletes a collection key whose last element was removed.
func (c *Ctx) dropIfEmpty(key []byte, n int) {
	if n == 0 {
		c.KS.DeleteLocked(key)
	}
}

func cmdPush(c *Ctx) {
	name := c.Cmd.Name
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	if l == nil {
		if name == "lpushx" || name == "rpushx" {
			c.W.Int(0)
			return
		}
		l = c.createList(c.Args[1])
	}
	left := name[0] == 'l'
	for _, v := range c.Args[2:] {
		if left {
			l.PushFront(v)
		} else {
			l.PushBack(v)
		}
	}
	c.Dirty++
	c.W.Int(int64(l.Len()))
}

// optCount parses an optional positive count argument at args[i].
func (c *Ctx) optCount(i int) (n int64, has bool, ok bool) {
	if i >= len(c.Args) {
		return 1, false, true
	}
	n, ok = ParseInt(c.Args[i])
	if !ok || n < 0 {
		c.W.Error("ERR value is out of range, must be positive")
		return 0, false, false
	}
	return n, true, true
}

func cmdPop(c *Ctx) {
	if len(c.Args) > 3 {
		c.WrongArgs()
		return
	}
	count, hasCount, ok := c.optCount(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	if l == nil {
		if hasCount {
			c.W.NullArray()
		} else {
			c.W.Null()
		}
		return
	}
	left := c.Cmd.Name == "lpop"
	if !hasCount {
		c.W.Bulk(popList(l, left))
	} else {
		n := min(int(count), l.Len())
		c.W.Array(n)
		for i := 0; i < n; i++ {
			c.W.Bulk(popList(l, left))
		}
		if n == 0 {
			return
		}
	}
	c.Dirty++
	c.dropIfEmpty(c.Args[1], l.Len())
}

func popList(l *keyspace.List, left bool) []byte {
	if left {
		return l.PopFront()
	}
	return l.PopBack()
}

func cmdLLen(c *Ctx) {
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	if l == nil {
		c.W.Int(0)
		return
	}
	c.W.Int(int64(l.Len()))
}

func cmdLRange(c *Ctx) {
	start, stop, ok := c.argInts2(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	if l == nil {
		c.W.Array(0)
		return
	}
	s, e, ok := normRange(start, stop, l.Len())
	if !ok {
		c.W.Array(0)
		return
	}
	c.W.Array(e - s + 1)
	l.Range(s, e, c.W.Bulk)
}

func cmdLIndex(c *Ctx) {
	idx, ok := c.ArgInt(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	if l == nil {
		c.W.Null()
		return
	}
	i, in := normIndex(idx, l.Len())
	if !in {
		c.W.Null()
		return
	}
	c.W.Bulk(l.At(i))
}

func cmdLSet(c *Ctx) {
	idx, ok := c.ArgInt(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	if l == nil {
		c.W.Error(ErrNoSuchKey)
		return
	}
	i, in := normIndex(idx, l.Len())
	if !in {
		c.W.Error("ERR index out of range")
		return
	}
	l.Set(i, c.Args[3])
	c.Dirty++
	c.W.OK()
}

func cmdLRem(c *Ctx) {
	count, ok := c.ArgInt(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	if l == nil {
		c.W.Int(0)
		return
	}
	removed := l.Remove(c.Args[3], int(max(min(count, 1<<40), -1<<40)))
	if removed > 0 {
		c.Dirty++
		c.dropIfEmpty(c.Args[1], l.Len())
	}
	c.W.Int(int64(removed))
}

func cmdLTrim(c *Ctx) {
	start, stop, ok := c.argInts2(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	if l == nil {
		c.W.OK()
		return
	}
	s, e, in := normRange(start, stop, l.Len())
	if !in {
		c.KS.DeleteLocked(c.Args[1])
	} else {
		l.Trim(s, e)
	}
	c.Dirty++
	c.W.OK()
}

func cmdLInsert(c *Ctx) {
	var before bool
	switch {
	case EqualFold(c.Args[2], "before"):
		before = true
	case EqualFold(c.Args[2], "after"):
	default:
		c.W.Error(ErrSyntax)
		return
	}
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	if l == nil {
		c.W.Int(0)
		return
	}
	pivot := string(c.Args[3])
	for i := 0; i < l.Len(); i++ {
		if string(l.At(i)) == pivot {
			if !before {
				i++
			}
			l.InsertAt(i, c.Args[4])
			c.Dirty++
			c.W.Int(int64(l.Len()))
			return
		}
	}
	c.W.Int(-1)
}

// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
func cmdLPos(c *Ctx) {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for i := 3; i < len(c.Args); i += 2 {
		if i+1 >= len(c.Args) {
			c.W.Error(ErrSyntax)
			return
		}
		n, ok := c.ArgInt(i + 1)
		if !ok {
			return
		}
		switch {
		case EqualFold(c.Args[i], "rank"):
			if n == 0 {
				c.W.Error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the last match")
				return
			}
			if n == -1<<63 {
				c.W.Error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
				return
			}
			rank = n
		case EqualFold(c.Args[i], "count"):
			if n < 0 {
				c.W.Error("ERR COUNT can't be negative")
				return
			}
			count = n
		case EqualFold(c.Args[i], "maxlen"):
			if n < 0 {
				c.W.Error("ERR MAXLEN can't be negative")
				return
			}
			maxlen = n
		default:
			c.W.Error(ErrSyntax)
			return
		}
	}
	l, ok := c.lookupList(c.Args[1])
	if !ok {
		return
	}
	var found []int64
	want := count
	if want == 0 {
		want = -1 // all
	} else if want < 0 {
		want = 1
	}
	if l != nil {
		elem := string(c.Args[2])
		n := l.Len()
		skip := rank - 1
		step, i := 1, 0
		if rank < 0 {
			skip, step, i = -rank-1, -1, n-1
		}
		for scanned := int64(0); i >= 0 && i < n && (maxlen == 0 || scanned < maxlen); i, scanned = i+step, scanned+1 {
			if string(l.At(i)) != elem {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			found = append(found, int64(i))
			if want > 0 && int64(len(found)) >= want {
				break
			}
		}
	}
	if count < 0 {
		if len(found) == 0 {
			c.W.Null()
		} else {
			c.W.Int(found[0])
		}
		return
	}
	c.W.Array(len(found))
	for _, f := range found {
		c.W.Int(f)
	}
}

func parseSide(b []byte) (left bool, ok bool) {
	switch {
	case EqualFold(b, "left"):
		return true, true
	case EqualFold(b, "right"):
		return false, true
	}
	return false, false
}

// moveLocked pops from src and pushes to dst, replying the element or
// null; it returns false when src is empty (or the reply was an error).
func (c *Ctx) moveLocked(src, dst []byte, fromLeft, toLeft bool, replyNull bool) bool {
	l, ok := c.lookupList(src)
	if !ok {
		return true
	}
	if l == nil {
		if replyNull {
			c.W.Null()
		}
		return false
	}
	dl, ok := c.lookupList(dst)
	if !ok {
		return true
	}
	v := popList(l, fromLeft)
	if dl == nil {
		dl = c.createList(dst)
	}
	if toLeft {
		dl.PushFront(v)
	} else {
		dl.PushBack(v)
	}
	c.dropIfEmpty(src, l.Len()) // src == dst keeps its element
	c.Dirty++
	c.W.Bulk(v)
	return true
}

func cmdLMove(c *Ctx) {
	fromLeft, toLeft := false, true
	if c.Cmd.Name == "lmove" {
		var ok1, ok2 bool
		fromLeft, ok1 = parseSide(c.Args[3])
		toLeft, ok2 = parseSide(c.Args[4])
		if !ok1 || !ok2 {
			c.W.Error(ErrSyntax)
			return
		}
	}
	c.moveLocked(c.Args[1], c.Args[2], fromLeft, toLeft, true)
}

// parseMPop parses "numkeys key... LEFT|RIGHT [COUNT n]" at args[pos:].
func (c *Ctx) parseMPop(pos int) (keys [][]byte, left bool, count int64, ok bool) {
	n, ok := ParseInt(c.Args[pos])
	if !ok || n <= 0 { // Redis answers this for a non-number too
		c.W.Error("ERR numkeys should be greater than 0")
		return nil, false, 0, false
	}
	if n > int64(len(c.Args)-pos-2) {
		c.W.Error(ErrSyntax)
		return nil, false, 0, false
	}
	keys = c.Args[pos+1 : pos+1+int(n)]
	rest := c.Args[pos+1+int(n):]
	left, ok = parseSide(rest[0])
	if !ok {
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
	return keys, left, count, true
}

// mpopLocked pops up to count elements from the first non-empty list of
// keys; it reports whether it found one (or replied an error).
func (c *Ctx) mpopLocked(keys [][]byte, left bool, count int64) bool {
	return c.mpopListLocked(keys, left, count, false)
}

// mpopListLocked is mpopLocked; woken is set for a blocked BLMPOP's tries
// after the first, which pass over a key of another type, as Redis.
func (c *Ctx) mpopListLocked(keys [][]byte, left bool, count int64, woken bool) bool {
	for _, k := range keys {
		var l *keyspace.List
		ok := true
		if woken {
			if e := c.Lookup(k); e != nil {
				l = keyspace.Lists.Of(e)
			}
		} else {
			l, ok = c.lookupList(k)
		}
		if !ok {
			return true
		}
		if l == nil {
			continue
		}
		n := min(int(count), l.Len())
		c.W.Array(2)
		c.W.Bulk(k)
		c.W.Array(n)
		for i := 0; i < n; i++ {
			c.W.Bulk(popList(l, left))
		}
		c.Dirty++
		cmd := []byte("RPOP")
		if left {
			cmd = []byte("LPOP")
		}
		c.Log(cmd, k, []byte(strconv.Itoa(n)))
		c.dropIfEmpty(k, l.Len())
		return true
	}
	return false
}

func cmdLMPop(c *Ctx) {
	keys, left, count, ok := c.parseMPop(1)
	if !ok {
		return
	}
	if !c.mpopLocked(keys, left, count) {
		c.W.NullArray()
	}
}
