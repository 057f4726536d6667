package kv

import (
	"math"
	"strconv"

	"github.com/gantry-project/gantry/internal/resp"
)

var bZADD = []byte("ZADD")

// lookupZSet returns the sorted set of key (nil if absent); ok is false
// after replying WRONGTYPE.
func (c *Client) lookupZSet(key []byte) (*zset, bool) { return lookupAs[*zset](c, key) }

func fmtScore(f float64) []byte { return resp.AppendFloat(nil, f) }

// ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]
func cmdZAdd(c *Client) {
	var nx, xx, gt, lt, ch, incr bool
	i := 2
loop:
	for ; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case equalFold(a, "nx"):
			nx = true
		case equalFold(a, "xx"):
			xx = true
		case equalFold(a, "gt"):
			gt = true
		case equalFold(a, "lt"):
			lt = true
		case equalFold(a, "ch"):
			ch = true
		case equalFold(a, "incr"):
			incr = true
		default:
			break loop
		}
	}
	pairs := c.args[i:]
	if len(pairs) == 0 || len(pairs)%2 != 0 {
		c.w.Error(errSyntax)
		return
	}
	if nx && xx {
		c.w.Error("ERR XX and NX options at the same time are not compatible")
		return
	}
	if (gt && lt) || (gt && nx) || (lt && nx) {
		c.w.Error("ERR GT, LT, and/or NX options at the same time are not compatible")
		return
	}
	if incr && len(pairs) != 2 {
		c.w.Error("ERR INCR option supports a single increment-element pair")
		return
	}
	scores := make([]float64, len(pairs)/2)
	for j := range scores {
		f, ok := parseFloat(pairs[2*j])
		if !ok {
			c.w.Error(errNotFloat)
			return
		}
		scores[j] = f
	}
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		if xx {
			if incr {
				c.w.Null()
			} else {
				c.w.Int(0)
			}
			return
		}
		z = newZSet()
		c.srv.ks.addLocked(c.args[1], newObjectEntry(z))
	}
	added, changed := 0, 0
	var last float64
	aborted := false
	for j, score := range scores {
		m := string(pairs[2*j+1])
		old, exists := z.dict[m]
		if incr {
			if exists {
				score += old
			}
			if math.IsNaN(score) {
				c.w.Error("ERR resulting score is not a number (NaN)")
				c.dropIfEmpty(c.args[1], z.card())
				return
			}
		}
		switch {
		case exists && nx, !exists && xx,
			exists && gt && score <= old, exists && lt && score >= old:
			aborted = true
			continue
		}
		last = score
		if !exists {
			z.add(m, score)
			added++
		} else if old != score {
			z.add(m, score)
			changed++
		}
	}
	if added+changed > 0 {
		c.dirty++
		if incr {
			c.log(bZADD, c.args[1], fmtScore(last), pairs[1])
		}
	}
	c.dropIfEmpty(c.args[1], z.card())
	if incr {
		if aborted {
			c.w.Null()
		} else {
			c.w.Double(last)
		}
		return
	}
	if ch {
		c.w.Int(int64(added + changed))
	} else {
		c.w.Int(int64(added))
	}
}

func cmdZRem(c *Client) {
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	n := 0
	if z != nil {
		for _, m := range c.args[2:] {
			if z.remove(string(m)) {
				n++
			}
		}
	}
	if n > 0 {
		c.dirty++
		c.dropIfEmpty(c.args[1], z.card())
	}
	c.w.Int(int64(n))
}

func cmdZScore(c *Client) {
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	if c.cmd.Name == "zscore" {
		if z == nil {
			c.w.Null()
			return
		}
		s, in := z.dict[string(c.args[2])]
		if !in {
			c.w.Null()
			return
		}
		c.w.Double(s)
		return
	}
	c.w.Array(len(c.args) - 2)
	for _, m := range c.args[2:] {
		var s float64
		in := false
		if z != nil {
			s, in = z.dict[string(m)]
		}
		if in {
			c.w.Double(s)
		} else {
			c.w.Null()
		}
	}
}

func cmdZIncrBy(c *Client) {
	by, ok := parseFloat(c.args[2])
	if !ok {
		c.w.Error(errNotFloat)
		return
	}
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	m := string(c.args[3])
	var cur float64
	if z != nil {
		cur = z.dict[m]
	}
	cur += by
	if math.IsNaN(cur) {
		c.w.Error("ERR resulting score is not a number (NaN)")
		return
	}
	if z == nil {
		z = newZSet()
		c.srv.ks.addLocked(c.args[1], newObjectEntry(z))
	}
	z.add(m, cur)
	c.dirty++
	c.log(bZADD, c.args[1], fmtScore(cur), c.args[3])
	c.w.Double(cur)
}

func cmdZCard(c *Client) {
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(z.card()))
}

func parseScoreBound(b []byte) (float64, bool, bool) {
	ex := len(b) > 0 && b[0] == '('
	if ex {
		b = b[1:]
	}
	f, ok := parseFloat(b)
	return f, ex, ok
}

func (c *Client) scoreRangeArgs(minArg, maxArg []byte) (scoreRange, bool) {
	var r scoreRange
	var ok1, ok2 bool
	r.min, r.minex, ok1 = parseScoreBound(minArg)
	r.max, r.maxex, ok2 = parseScoreBound(maxArg)
	if !ok1 || !ok2 {
		c.w.Error("ERR min or max is not a float")
		return r, false
	}
	return r, true
}

func (c *Client) lexRangeArgs(minArg, maxArg []byte) (lexRange, bool) {
	var r lexRange
	bad := func() (lexRange, bool) {
		c.w.Error("ERR min or max not valid string range item")
		return r, false
	}
	switch {
	case string(minArg) == "-":
		r.minInf = true
	case string(minArg) == "+":
		r.minPos = true
	case len(minArg) > 0 && (minArg[0] == '(' || minArg[0] == '['):
		r.min, r.minex = string(minArg[1:]), minArg[0] == '('
	default:
		return bad()
	}
	switch {
	case string(maxArg) == "+":
		r.maxInf = true
	case string(maxArg) == "-":
		r.maxNeg = true
	case len(maxArg) > 0 && (maxArg[0] == '(' || maxArg[0] == '['):
		r.max, r.maxex = string(maxArg[1:]), maxArg[0] == '('
	default:
		return bad()
	}
	return r, true
}

func cmdZCount(c *Client) {
	r, ok := c.scoreRangeArgs(c.args[2], c.args[3])
	if !ok {
		return
	}
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		c.w.Int(0)
		return
	}
	first := z.firstInScore(&r)
	if first == nil {
		c.w.Int(0)
		return
	}
	last := z.lastInScore(&r)
	c.w.Int(int64(z.rank(last.member) - z.rank(first.member) + 1))
}

// ZRANK key member [WITHSCORE] and ZREVRANK.
func cmdZRank(c *Client) {
	withScore := false
	if len(c.args) == 4 && equalFold(c.args[3], "withscore") {
		withScore = true
	} else if len(c.args) != 3 {
		c.w.Error(errSyntax)
		return
	}
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	r := -1
	if z != nil {
		r = z.rank(string(c.args[2]))
	}
	if r < 0 {
		if withScore {
			c.w.NullArray()
		} else {
			c.w.Null()
		}
		return
	}
	if c.cmd.Name == "zrevrank" {
		r = z.card() - 1 - r
	}
	if withScore {
		c.w.Array(2)
		c.w.Int(int64(r))
		c.w.Double(z.dict[string(c.args[2])])
		return
	}
	c.w.Int(int64(r))
}

// replyNodes writes members (with scores) in RESP2 or RESP3 shape.
func (c *Client) replyNodes(nodes []*zNode, withScores bool) {
	if withScores && c.w.RESP3() {
		c.w.Array(len(nodes))
		for _, x := range nodes {
			c.w.Array(2)
			c.w.BulkString(x.member)
			c.w.Double(x.score)
		}
		return
	}
	n := len(nodes)
	if withScores {
		n *= 2
	}
	c.w.Array(n)
	for _, x := range nodes {
		c.w.BulkString(x.member)
		if withScores {
			c.w.Double(x.score)
		}
	}
}

// cmdZRange serves ZRANGE and its older forms (ZRANGEBYSCORE,
// ZREVRANGEBYSCORE, ZREVRANGE, ZRANGEBYLEX, ZREVRANGEBYLEX).
func cmdZRange(c *Client) {
	var byScore, byLex, rev, withScores, hasLimit bool
	var offset, limit int64 = 0, -1
	name := c.cmd.Name
	switch name {
	case "zrangebyscore":
		byScore = true
	case "zrevrangebyscore":
		byScore, rev = true, true
	case "zrevrange":
		rev = true
	case "zrangebylex":
		byLex = true
	case "zrevrangebylex":
		byLex, rev = true, true
	}
	for i := 4; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case equalFold(a, "withscores"):
			withScores = true
		case equalFold(a, "limit") && i+2 < len(c.args):
			var ok bool
			if offset, ok = c.argInt(i + 1); !ok {
				return
			}
			if limit, ok = c.argInt(i + 2); !ok {
				return
			}
			hasLimit = true
			i += 2
		case equalFold(a, "byscore") && name == "zrange":
			byScore = true
		case equalFold(a, "bylex") && name == "zrange":
			byLex = true
		case equalFold(a, "rev") && name == "zrange":
			rev = true
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	if byScore && byLex {
		c.w.Error(errSyntax)
		return
	}
	if hasLimit && !byScore && !byLex {
		c.w.Error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
		return
	}
	if withScores && byLex {
		c.w.Error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
		return
	}
	lo, hi := c.args[2], c.args[3]
	if rev && (byScore || byLex) {
		lo, hi = hi, lo // the reverse forms take max before min
	}
	var sr scoreRange
	var lr lexRange
	var start, stop int64
	var ok bool
	switch {
	case byScore:
		if sr, ok = c.scoreRangeArgs(lo, hi); !ok {
			return
		}
	case byLex:
		if lr, ok = c.lexRangeArgs(lo, hi); !ok {
			return
		}
	default:
		if start, ok = c.argInt(2); !ok {
			return
		}
		if stop, ok = c.argInt(3); !ok {
			return
		}
	}
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		c.w.Array(0)
		return
	}
	var nodes []*zNode
	if !byScore && !byLex {
		s, e, in := normRange(start, stop, z.card())
		if in {
			if rev {
				s, e = z.card()-1-e, z.card()-1-s
			}
			x := z.byRank(s)
			for i := s; i <= e && x != nil; i++ {
				nodes = append(nodes, x)
				x = x.level[0].forward
			}
			if rev {
				for i, j := 0, len(nodes)-1; i < j; i, j = i+1, j-1 {
					nodes[i], nodes[j] = nodes[j], nodes[i]
				}
			}
		}
		c.replyNodes(nodes, withScores)
		return
	}
	var x *zNode
	inRange := func(x *zNode) bool {
		if byScore {
			return sr.gteMin(x.score) && sr.lteMax(x.score)
		}
		return lr.gteMin(x.member) && lr.lteMax(x.member)
	}
	switch {
	case byScore && rev:
		x = z.lastInScore(&sr)
	case byScore:
		x = z.firstInScore(&sr)
	case rev:
		x = z.lastInLex(&lr)
	default:
		x = z.firstInLex(&lr)
	}
	if offset < 0 {
		x = nil
	}
	for ; x != nil && offset > 0; offset-- {
		x = zstep(x, rev)
	}
	for ; x != nil && inRange(x) && limit != 0; limit-- {
		nodes = append(nodes, x)
		x = zstep(x, rev)
	}
	c.replyNodes(nodes, withScores)
}

func zstep(x *zNode, rev bool) *zNode {
	if rev {
		return x.backward
	}
	return x.level[0].forward
}

func cmdZRemRange(c *Client) {
	var sr scoreRange
	var start, stop int64
	var ok bool
	byScore := c.cmd.Name == "zremrangebyscore"
	if byScore {
		if sr, ok = c.scoreRangeArgs(c.args[2], c.args[3]); !ok {
			return
		}
	} else {
		if start, ok = c.argInt(2); !ok {
			return
		}
		if stop, ok = c.argInt(3); !ok {
			return
		}
	}
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		c.w.Int(0)
		return
	}
	var victims []string
	if byScore {
		for x := z.firstInScore(&sr); x != nil && sr.lteMax(x.score); x = x.level[0].forward {
			victims = append(victims, x.member)
		}
	} else if s, e, in := normRange(start, stop, z.card()); in {
		x := z.byRank(s)
		for i := s; i <= e && x != nil; i++ {
			victims = append(victims, x.member)
			x = x.level[0].forward
		}
	}
	for _, m := range victims {
		z.remove(m)
	}
	if len(victims) > 0 {
		c.dirty++
		c.dropIfEmpty(c.args[1], z.card())
	}
	c.w.Int(int64(len(victims)))
}

func cmdZPop(c *Client) {
	if len(c.args) > 3 {
		c.w.Error(errSyntax)
		return
	}
	count, hasCount, ok := c.optCount(2)
	if !ok {
		return
	}
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	max := c.cmd.Name == "zpopmax"
	var nodes []*zNode
	if z != nil {
		for int64(len(nodes)) < count && z.card() > 0 {
			x := z.header.level[0].forward
			if max {
				x = z.tail
			}
			nodes = append(nodes, x)
			z.remove(x.member)
		}
	}
	if hasCount {
		c.replyNodes(nodes, true)
	} else {
		c.w.Array(2 * len(nodes))
		for _, x := range nodes {
			c.w.BulkString(x.member)
			c.w.Double(x.score)
		}
	}
	if len(nodes) > 0 {
		c.dirty++
		c.dropIfEmpty(c.args[1], z.card())
	}
}

func cmdZScan(c *Client) {
	cursor, pattern, count, ok := c.scanArgs()
	if !ok {
		return
	}
	z, ok := c.lookupZSet(c.args[1])
	if !ok {
		return
	}
	var members []string
	if z != nil {
		members = make([]string, 0, z.card())
		for m := range z.dict {
			members = append(members, m)
		}
	}
	picked, next := collScan(members, cursor, count)
	c.replyScan(next, picked, pattern, func(m string) [][]byte {
		return [][]byte{[]byte(m), []byte(strconv.FormatFloat(z.dict[m], 'g', -1, 64))}
	})
}
