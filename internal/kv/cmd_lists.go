package kv

import (
	"strconv"
)

// lookupList returns the list of key (nil if absent); ok is false after
// replying WRONGTYPE.
func (c *Client) lookupList(key []byte) (*list, bool) { return lookupAs[*list](c, key) }

func (c *Client) createList(key []byte) *list {
	l := &list{}
	c.srv.ks.addLocked(key, newObjectEntry(l))
	return l
}

// dropIfEmpty deletes a collection key whose last element was removed.
func (c *Client) dropIfEmpty(key []byte, n int) {
	if n == 0 {
		c.srv.ks.deleteLocked(key)
	}
}

func cmdPush(c *Client) {
	name := c.cmd.Name
	l, ok := c.lookupList(c.args[1])
	if !ok {
		return
	}
	if l == nil {
		if name == "lpushx" || name == "rpushx" {
			c.w.Int(0)
			return
		}
		l = c.createList(c.args[1])
	}
	left := name[0] == 'l'
	for _, v := range c.args[2:] {
		if left {
			l.pushFront(copyBytes(v))
		} else {
			l.pushBack(copyBytes(v))
		}
	}
	c.dirty++
	c.w.Int(int64(l.len()))
}

// optCount parses an optional positive count argument at args[i].
func (c *Client) optCount(i int) (n int64, has bool, ok bool) {
	if i >= len(c.args) {
		return 1, false, true
	}
	n, ok = parseInt(c.args[i])
	if !ok || n < 0 {
		c.w.Error("ERR value is out of range, must be positive")
		return 0, false, false
	}
	return n, true, true
}

func cmdPop(c *Client) {
	if len(c.args) > 3 {
		c.wrongArgs()
		return
	}
	count, hasCount, ok := c.optCount(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.args[1])
	if !ok {
		return
	}
	if l == nil {
		if hasCount {
			c.w.NullArray()
		} else {
			c.w.Null()
		}
		return
	}
	left := c.cmd.Name == "lpop"
	if !hasCount {
		c.w.Bulk(popList(l, left))
	} else {
		n := min(int(count), l.len())
		c.w.Array(n)
		for i := 0; i < n; i++ {
			c.w.Bulk(popList(l, left))
		}
		if n == 0 {
			return
		}
	}
	c.dirty++
	c.dropIfEmpty(c.args[1], l.len())
}

func popList(l *list, left bool) []byte {
	if left {
		return l.popFront()
	}
	return l.popBack()
}

func cmdLLen(c *Client) {
	l, ok := c.lookupList(c.args[1])
	if !ok {
		return
	}
	if l == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(l.len()))
}

func cmdLRange(c *Client) {
	start, stop, ok := c.argInts2(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.args[1])
	if !ok {
		return
	}
	if l == nil {
		c.w.Array(0)
		return
	}
	s, e, ok := normRange(start, stop, l.len())
	if !ok {
		c.w.Array(0)
		return
	}
	c.w.Array(e - s + 1)
	for i := s; i <= e; i++ {
		c.w.Bulk(l.at(i))
	}
}

func cmdLIndex(c *Client) {
	idx, ok := c.argInt(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.args[1])
	if !ok {
		return
	}
	if l == nil {
		c.w.Null()
		return
	}
	i, in := normIndex(idx, l.len())
	if !in {
		c.w.Null()
		return
	}
	c.w.Bulk(l.at(i))
}

func cmdLSet(c *Client) {
	idx, ok := c.argInt(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.args[1])
	if !ok {
		return
	}
	if l == nil {
		c.w.Error(errNoSuchKey)
		return
	}
	i, in := normIndex(idx, l.len())
	if !in {
		c.w.Error("ERR index out of range")
		return
	}
	l.set(i, copyBytes(c.args[3]))
	c.dirty++
	c.w.OK()
}

func cmdLRem(c *Client) {
	count, ok := c.argInt(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.args[1])
	if !ok {
		return
	}
	if l == nil {
		c.w.Int(0)
		return
	}
	elem := string(c.args[3])
	s := l.slice()
	removed := 0
	if count >= 0 {
		out := s[:0]
		for _, v := range s {
			if string(v) == elem && (count == 0 || int64(removed) < count) {
				removed++
				continue
			}
			out = append(out, v)
		}
		clear(s[len(out):])
		l.replace(out)
	} else {
		keep := make([]bool, len(s))
		for i := len(s) - 1; i >= 0; i-- {
			if string(s[i]) == elem && int64(removed) < -count {
				removed++
				continue
			}
			keep[i] = true
		}
		out := s[:0]
		for i, v := range s {
			if keep[i] {
				out = append(out, v)
			}
		}
		clear(s[len(out):])
		l.replace(out)
	}
	if removed > 0 {
		c.dirty++
		c.dropIfEmpty(c.args[1], l.len())
	}
	c.w.Int(int64(removed))
}

func cmdLTrim(c *Client) {
	start, stop, ok := c.argInts2(2)
	if !ok {
		return
	}
	l, ok := c.lookupList(c.args[1])
	if !ok {
		return
	}
	if l == nil {
		c.w.OK()
		return
	}
	s, e, in := normRange(start, stop, l.len())
	if !in {
		c.srv.ks.deleteLocked(c.args[1])
	} else {
		all := l.slice()
		kept := make([][]byte, e-s+1)
		copy(kept, all[s:e+1])
		l.replace(kept)
	}
	c.dirty++
	c.w.OK()
}

func cmdLInsert(c *Client) {
	var before bool
	switch {
	case equalFold(c.args[2], "before"):
		before = true
	case equalFold(c.args[2], "after"):
	default:
		c.w.Error(errSyntax)
		return
	}
	l, ok := c.lookupList(c.args[1])
	if !ok {
		return
	}
	if l == nil {
		c.w.Int(0)
		return
	}
	pivot := string(c.args[3])
	for i := 0; i < l.len(); i++ {
		if string(l.at(i)) == pivot {
			if !before {
				i++
			}
			l.insertAt(i, copyBytes(c.args[4]))
			c.dirty++
			c.w.Int(int64(l.len()))
			return
		}
	}
	c.w.Int(-1)
}

// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
func cmdLPos(c *Client) {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for i := 3; i < len(c.args); i += 2 {
		if i+1 >= len(c.args) {
			c.w.Error(errSyntax)
			return
		}
		n, ok := c.argInt(i + 1)
		if !ok {
			return
		}
		switch {
		case equalFold(c.args[i], "rank"):
			if n == 0 {
				c.w.Error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the last match")
				return
			}
			if n == -1<<63 {
				c.w.Error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
				return
			}
			rank = n
		case equalFold(c.args[i], "count"):
			if n < 0 {
				c.w.Error("ERR COUNT can't be negative")
				return
			}
			count = n
		case equalFold(c.args[i], "maxlen"):
			if n < 0 {
				c.w.Error("ERR MAXLEN can't be negative")
				return
			}
			maxlen = n
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	l, ok := c.lookupList(c.args[1])
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
		elem := string(c.args[2])
		n := l.len()
		skip := rank - 1
		step, i := 1, 0
		if rank < 0 {
			skip, step, i = -rank-1, -1, n-1
		}
		for scanned := int64(0); i >= 0 && i < n && (maxlen == 0 || scanned < maxlen); i, scanned = i+step, scanned+1 {
			if string(l.at(i)) != elem {
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
			c.w.Null()
		} else {
			c.w.Int(found[0])
		}
		return
	}
	c.w.Array(len(found))
	for _, f := range found {
		c.w.Int(f)
	}
}

func parseSide(b []byte) (left bool, ok bool) {
	switch {
	case equalFold(b, "left"):
		return true, true
	case equalFold(b, "right"):
		return false, true
	}
	return false, false
}

// moveLocked pops from src and pushes to dst, replying the element or
// null; it returns false when src is empty (or the reply was an error).
func (c *Client) moveLocked(src, dst []byte, fromLeft, toLeft bool, replyNull bool) bool {
	l, ok := c.lookupList(src)
	if !ok {
		return true
	}
	if l == nil {
		if replyNull {
			c.w.Null()
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
		dl.pushFront(v)
	} else {
		dl.pushBack(v)
	}
	c.dropIfEmpty(src, l.len()) // src == dst keeps its element
	c.dirty++
	c.w.Bulk(v)
	return true
}

func cmdLMove(c *Client) {
	fromLeft, toLeft := false, true
	if c.cmd.Name == "lmove" {
		var ok1, ok2 bool
		fromLeft, ok1 = parseSide(c.args[3])
		toLeft, ok2 = parseSide(c.args[4])
		if !ok1 || !ok2 {
			c.w.Error(errSyntax)
			return
		}
	}
	c.moveLocked(c.args[1], c.args[2], fromLeft, toLeft, true)
}

// parseMPop parses "numkeys key... LEFT|RIGHT [COUNT n]" at args[pos:].
func (c *Client) parseMPop(pos int) (keys [][]byte, left bool, count int64, ok bool) {
	n, ok := parseInt(c.args[pos])
	if !ok {
		c.w.Error(errNotInt)
		return nil, false, 0, false
	}
	if n <= 0 {
		c.w.Error("ERR numkeys should be greater than 0")
		return nil, false, 0, false
	}
	if n > int64(len(c.args)-pos-2) {
		c.w.Error(errSyntax)
		return nil, false, 0, false
	}
	keys = c.args[pos+1 : pos+1+int(n)]
	rest := c.args[pos+1+int(n):]
	left, ok = parseSide(rest[0])
	if !ok {
		c.w.Error(errSyntax)
		return nil, false, 0, false
	}
	count = 1
	switch {
	case len(rest) == 1:
	case len(rest) == 3 && equalFold(rest[1], "count"):
		count, ok = parseInt(rest[2])
		if !ok || count <= 0 {
			c.w.Error("ERR count should be greater than 0")
			return nil, false, 0, false
		}
	default:
		c.w.Error(errSyntax)
		return nil, false, 0, false
	}
	return keys, left, count, true
}

// mpopLocked pops up to count elements from the first non-empty list of
// keys; it reports whether it found one (or replied an error).
func (c *Client) mpopLocked(keys [][]byte, left bool, count int64) bool {
	for _, k := range keys {
		l, ok := c.lookupList(k)
		if !ok {
			return true
		}
		if l == nil {
			continue
		}
		n := min(int(count), l.len())
		c.w.Array(2)
		c.w.Bulk(k)
		c.w.Array(n)
		for i := 0; i < n; i++ {
			c.w.Bulk(popList(l, left))
		}
		c.dirty++
		cmd := []byte("RPOP")
		if left {
			cmd = []byte("LPOP")
		}
		c.log(cmd, k, []byte(strconv.Itoa(n)))
		c.dropIfEmpty(k, l.len())
		return true
	}
	return false
}

func cmdLMPop(c *Client) {
	keys, left, count, ok := c.parseMPop(1)
	if !ok {
		return
	}
	if !c.mpopLocked(keys, left, count) {
		c.w.NullArray()
	}
}
