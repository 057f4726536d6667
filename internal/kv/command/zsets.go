package command

import (
	"math"
	"strconv"
	"weak"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

var bZADD = []byte("ZADD")

// lookupZSet returns the sorted set of key (nil if absent); ok is false
// after replying WRONGTYPE.
func (c *Ctx) lookupZSet(key []byte) (*keyspace.ZSet, bool) { return LookupAs(c, keyspace.ZSets, key) }

func fmtScore(f float64) []byte { return resp.AppendFloat(nil, f) }

// ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]
func cmdZAdd(c *Ctx) {
	var nx, xx, gt, lt, ch, incr bool
	i := 2
loop:
	for ; i < len(c.Args); i++ {
		a := c.Args[i]
		if len(a) != 2 && len(a) != 4 { // the options' lengths: a score is not looked at six times
			break
		}
		switch {
		case EqualFold(a, "nx"):
			nx = true
		case EqualFold(a, "xx"):
			xx = true
		case EqualFold(a, "gt"):
			gt = true
		case EqualFold(a, "lt"):
			lt = true
		case EqualFold(a, "ch"):
			ch = true
		case EqualFold(a, "incr"):
			incr = true
		default:
			break loop
		}
	}
	pairs := c.Args[i:]
	if len(pairs) == 0 || len(pairs)%2 != 0 {
		c.W.Error(ErrSyntax)
		return
	}
	if nx && xx {
		c.W.Error("ERR XX and NX options at the same time are not compatible")
		return
	}
	if (gt && lt) || (gt && nx) || (lt && nx) {
		c.W.Error("ERR GT, LT, and/or NX options at the same time are not compatible")
		return
	}
	if incr && len(pairs) != 2 {
		c.W.Error("ERR INCR option supports a single increment-element pair")
		return
	}
	scores := make([]float64, len(pairs)/2)
	for j := range scores {
		f, ok := ParseFloat(pairs[2*j])
		if !ok {
			c.W.Error(ErrNotFloat)
			return
		}
		scores[j] = f
	}
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	if z == nil {
		if xx {
			if incr {
				c.W.Null()
			} else {
				c.W.Int(0)
			}
			return
		}
		z = keyspace.NewZSet()
		c.KS.AddLocked(c.Args[1], keyspace.ZSets.NewEntry(z))
	}
	added, changed := 0, 0
	var last float64
	aborted := false
	var lim keyspace.ZSetLimits // read only to add to a small set: a big one stays big
	limRead := false
	for j, score := range scores {
		m := pairs[2*j+1] // copied only into the set: a ZADD of a member present at its score allocates nothing
		old, exists := z.ScoreBytes(m)
		if incr {
			if exists {
				score += old
			}
			if math.IsNaN(score) {
				c.W.Error("ERR resulting score is not a number (NaN)")
				c.dropIfEmpty(c.Args[1], z.Card())
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
			if !limRead && z.Packed() {
				lim, limRead = c.Track.Settings.ZSetLimits(), true
			}
			z.AddWithin(m, score, lim)
			added++
		} else if old != score {
			z.AddWithin(m, score, lim)
			changed++
		}
	}
	if added+changed > 0 {
		c.Dirty++
		if incr {
			c.Log(bZADD, c.Args[1], fmtScore(last), pairs[1])
		}
	}
	c.dropIfEmpty(c.Args[1], z.Card())
	if incr {
		if aborted {
			c.W.Null()
		} else {
			c.W.Double(last)
		}
		return
	}
	if ch {
		c.W.Int(int64(added + changed))
	} else {
		c.W.Int(int64(added))
	}
}

func cmdZRem(c *Ctx) {
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	n := 0
	if z != nil {
		for _, m := range c.Args[2:] {
			if z.Remove(string(m)) {
				n++
			}
		}
	}
	if n > 0 {
		c.Dirty++
		c.dropIfEmpty(c.Args[1], z.Card())
	}
	c.W.Int(int64(n))
}

func cmdZScore(c *Ctx) {
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	if c.Cmd.Name == "zscore" {
		if z == nil {
			c.W.Null()
			return
		}
		s, in := z.Score(string(c.Args[2]))
		if !in {
			c.W.Null()
			return
		}
		c.W.Double(s)
		return
	}
	c.W.Array(len(c.Args) - 2)
	for _, m := range c.Args[2:] {
		var s float64
		in := false
		if z != nil {
			s, in = z.Score(string(m))
		}
		if in {
			c.W.Double(s)
		} else {
			c.W.Null()
		}
	}
}

func cmdZIncrBy(c *Ctx) {
	by, ok := ParseFloat(c.Args[2])
	if !ok {
		c.W.Error(ErrNotFloat)
		return
	}
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	m := c.Args[3]
	var cur float64
	if z != nil {
		cur, _ = z.ScoreBytes(m)
	}
	cur += by
	if math.IsNaN(cur) {
		c.W.Error("ERR resulting score is not a number (NaN)")
		return
	}
	if z == nil {
		z = keyspace.NewZSet()
		c.KS.AddLocked(c.Args[1], keyspace.ZSets.NewEntry(z))
	}
	z.AddWithin(m, cur, c.Track.Settings.ZSetLimits())
	c.Dirty++
	c.Log(bZADD, c.Args[1], fmtScore(cur), c.Args[3])
	c.W.Double(cur)
}

func cmdZCard(c *Ctx) {
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	if z == nil {
		c.W.Int(0)
		return
	}
	c.W.Int(int64(z.Card()))
}

func parseScoreBound(b []byte) (float64, bool, bool) {
	ex := len(b) > 0 && b[0] == '('
	if ex {
		b = b[1:]
	}
	f, ok := ParseFloat(b)
	return f, ex, ok
}

func (c *Ctx) scoreRangeArgs(minArg, maxArg []byte) (keyspace.ScoreRange, bool) {
	var r keyspace.ScoreRange
	var ok1, ok2 bool
	r.Min, r.MinEx, ok1 = parseScoreBound(minArg)
	r.Max, r.MaxEx, ok2 = parseScoreBound(maxArg)
	if !ok1 || !ok2 {
		c.W.Error("ERR min or max is not a float")
		return r, false
	}
	return r, true
}

func (c *Ctx) lexRangeArgs(minArg, maxArg []byte) (keyspace.LexRange, bool) {
	var r keyspace.LexRange
	bad := func() (keyspace.LexRange, bool) {
		c.W.Error("ERR min or max not valid string range item")
		return r, false
	}
	switch {
	case string(minArg) == "-":
		r.MinInf = true
	case string(minArg) == "+":
		r.MinPos = true
	case len(minArg) > 0 && (minArg[0] == '(' || minArg[0] == '['):
		r.Min, r.MinEx = string(minArg[1:]), minArg[0] == '('
	default:
		return bad()
	}
	switch {
	case string(maxArg) == "+":
		r.MaxInf = true
	case string(maxArg) == "-":
		r.MaxNeg = true
	case len(maxArg) > 0 && (maxArg[0] == '(' || maxArg[0] == '['):
		r.Max, r.MaxEx = string(maxArg[1:]), maxArg[0] == '('
	default:
		return bad()
	}
	return r, true
}

func cmdZCount(c *Ctx) {
	r, ok := c.scoreRangeArgs(c.Args[2], c.Args[3])
	if !ok {
		return
	}
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	if z == nil {
		c.W.Int(0)
		return
	}
	first := z.FirstInScore(&r)
	if !first.Valid() {
		c.W.Int(0)
		return
	}
	last := z.LastInScore(&r)
	c.W.Int(int64(z.Rank(last.Member()) - z.Rank(first.Member()) + 1))
}

// ZRANK key member [WITHSCORE] and ZREVRANK.
func cmdZRank(c *Ctx) {
	withScore := false
	if len(c.Args) == 4 && EqualFold(c.Args[3], "withscore") {
		withScore = true
	} else if len(c.Args) != 3 {
		c.W.Error(ErrSyntax)
		return
	}
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	r := -1
	if z != nil {
		r = z.Rank(string(c.Args[2]))
	}
	if r < 0 {
		if withScore {
			c.W.NullArray()
		} else {
			c.W.Null()
		}
		return
	}
	if c.Cmd.Name == "zrevrank" {
		r = z.Card() - 1 - r
	}
	if withScore {
		c.W.Array(2)
		c.W.Int(int64(r))
		s, _ := z.Score(string(c.Args[2]))
		c.W.Double(s)
		return
	}
	c.W.Int(int64(r))
}

// replyNodes writes members (with scores) in RESP2 or RESP3 shape.
func (c *Ctx) replyNodes(nodes []keyspace.ZIter, withScores bool) {
	if withScores && c.W.RESP3() {
		c.W.Array(len(nodes))
		for _, x := range nodes {
			c.W.Array(2)
			c.W.Bulk(x.MemberBytes())
			c.W.Double(x.Score())
		}
		return
	}
	n := len(nodes)
	if withScores {
		n *= 2
	}
	c.W.Array(n)
	for _, x := range nodes {
		c.W.Bulk(x.MemberBytes())
		if withScores {
			c.W.Double(x.Score())
		}
	}
}

// replyPairs is replyNodes for members taken out of their set.
func (c *Ctx) replyPairs(pairs []keyspace.ZNode, withScores bool) {
	if withScores && c.W.RESP3() {
		c.W.Array(len(pairs))
		for _, x := range pairs {
			c.W.Array(2)
			c.W.BulkString(x.Member)
			c.W.Double(x.Score)
		}
		return
	}
	n := len(pairs)
	if withScores {
		n *= 2
	}
	c.W.Array(n)
	for _, x := range pairs {
		c.W.BulkString(x.Member)
		if withScores {
			c.W.Double(x.Score)
		}
	}
}

// zrangeArgs is a parsed range of ZRANGE and its older forms, or of
// ZRANGESTORE.
type zrangeArgs struct {
	byScore, byLex, rev, withScores bool
	offset, limit                   int64
	sr                              keyspace.ScoreRange
	lr                              keyspace.LexRange
	start, stop                     int64
}

// parseZRange parses the range of command name whose min and max are at
// c.Args[base] and c.Args[base+1], options after them.
func (c *Ctx) parseZRange(name string, base int) (a zrangeArgs, ok bool) {
	var hasLimit bool
	a.limit = -1
	switch name {
	case "zrangebyscore":
		a.byScore = true
	case "zrevrangebyscore":
		a.byScore, a.rev = true, true
	case "zrevrange":
		a.rev = true
	case "zrangebylex":
		a.byLex = true
	case "zrevrangebylex":
		a.byLex, a.rev = true, true
	}
	general := name == "zrange" || name == "zrangestore"
	for i := base + 2; i < len(c.Args); i++ {
		arg := c.Args[i]
		switch {
		case EqualFold(arg, "withscores") && name != "zrangestore":
			a.withScores = true
		case EqualFold(arg, "limit") && i+2 < len(c.Args):
			if a.offset, ok = c.ArgInt(i + 1); !ok {
				return a, false
			}
			if a.limit, ok = c.ArgInt(i + 2); !ok {
				return a, false
			}
			hasLimit = true
			i += 2
		case EqualFold(arg, "byscore") && general:
			a.byScore = true
		case EqualFold(arg, "bylex") && general:
			a.byLex = true
		case EqualFold(arg, "rev") && general:
			a.rev = true
		default:
			c.W.Error(ErrSyntax)
			return a, false
		}
	}
	if a.byScore && a.byLex {
		c.W.Error(ErrSyntax)
		return a, false
	}
	if hasLimit && !a.byScore && !a.byLex {
		c.W.Error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
		return a, false
	}
	if a.withScores && a.byLex {
		c.W.Error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
		return a, false
	}
	lo, hi := c.Args[base], c.Args[base+1]
	if a.rev && (a.byScore || a.byLex) {
		lo, hi = hi, lo // the reverse forms take max before min
	}
	switch {
	case a.byScore:
		a.sr, ok = c.scoreRangeArgs(lo, hi)
	case a.byLex:
		a.lr, ok = c.lexRangeArgs(lo, hi)
	default:
		if a.start, ok = c.ArgInt(base); ok {
			a.stop, ok = c.ArgInt(base + 1)
		}
	}
	return a, ok
}

// collect returns the nodes of z in the range, in reply order.
func (a *zrangeArgs) collect(z *keyspace.ZSet) []keyspace.ZIter {
	var nodes []keyspace.ZIter
	if !a.byScore && !a.byLex {
		s, e, in := normRange(a.start, a.stop, z.Card())
		if in {
			if a.rev {
				s, e = z.Card()-1-e, z.Card()-1-s
			}
			x := z.ByRank(s)
			for i := s; i <= e && x.Valid(); i++ {
				nodes = append(nodes, x)
				x = x.Next()
			}
			if a.rev {
				for i, j := 0, len(nodes)-1; i < j; i, j = i+1, j-1 {
					nodes[i], nodes[j] = nodes[j], nodes[i]
				}
			}
		}
		return nodes
	}
	var x keyspace.ZIter
	inRange := func(x keyspace.ZIter) bool {
		if a.byScore {
			return a.sr.GteMin(x.Score()) && a.sr.LteMax(x.Score())
		}
		m := x.MemberBytes()
		return a.lr.GteMin(string(m)) && a.lr.LteMax(string(m))
	}
	switch {
	case a.byScore && a.rev:
		x = z.LastInScore(&a.sr)
	case a.byScore:
		x = z.FirstInScore(&a.sr)
	case a.rev:
		x = z.LastInLex(&a.lr)
	default:
		x = z.FirstInLex(&a.lr)
	}
	offset, limit := a.offset, a.limit
	if offset < 0 {
		x = keyspace.ZIter{}
	}
	for ; x.Valid() && offset > 0; offset-- {
		x = zstep(x, a.rev)
	}
	for ; x.Valid() && inRange(x) && limit != 0; limit-- {
		nodes = append(nodes, x)
		x = zstep(x, a.rev)
	}
	return nodes
}

// cmdZRange serves ZRANGE and its older forms (ZRANGEBYSCORE,
// ZREVRANGEBYSCORE, ZREVRANGE, ZRANGEBYLEX, ZREVRANGEBYLEX).
func cmdZRange(c *Ctx) {
	a, ok := c.parseZRange(c.Cmd.Name, 2)
	if !ok {
		return
	}
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	if z == nil {
		c.W.Array(0)
		return
	}
	c.replyNodes(a.collect(z), a.withScores)
}

func zstep(x keyspace.ZIter, rev bool) keyspace.ZIter {
	if rev {
		return x.Prev()
	}
	return x.Next()
}

func cmdZRemRange(c *Ctx) {
	var sr keyspace.ScoreRange
	var start, stop int64
	var ok bool
	byScore := c.Cmd.Name == "zremrangebyscore"
	if byScore {
		if sr, ok = c.scoreRangeArgs(c.Args[2], c.Args[3]); !ok {
			return
		}
	} else {
		if start, ok = c.ArgInt(2); !ok {
			return
		}
		if stop, ok = c.ArgInt(3); !ok {
			return
		}
	}
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	if z == nil {
		c.W.Int(0)
		return
	}
	var victims []string
	if byScore {
		for x := z.FirstInScore(&sr); x.Valid() && sr.LteMax(x.Score()); x = x.Next() {
			victims = append(victims, x.Member())
		}
	} else if s, e, in := normRange(start, stop, z.Card()); in {
		x := z.ByRank(s)
		for i := s; i <= e && x.Valid(); i++ {
			victims = append(victims, x.Member())
			x = x.Next()
		}
	}
	for _, m := range victims {
		z.Remove(m)
	}
	if len(victims) > 0 {
		c.Dirty++
		c.dropIfEmpty(c.Args[1], z.Card())
	}
	c.W.Int(int64(len(victims)))
}

func cmdZPop(c *Ctx) {
	if len(c.Args) > 3 {
		c.W.Error(ErrSyntax)
		return
	}
	count, hasCount, ok := c.optCount(2)
	if !ok {
		return
	}
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	max := c.Cmd.Name == "zpopmax"
	var nodes []keyspace.ZNode
	if z != nil {
		nodes = popZSet(z, max, count)
	}
	if hasCount {
		c.replyPairs(nodes, true)
	} else {
		c.W.Array(2 * len(nodes))
		for _, x := range nodes {
			c.W.BulkString(x.Member)
			c.W.Double(x.Score)
		}
	}
	if len(nodes) > 0 {
		c.Dirty++
		c.dropIfEmpty(c.Args[1], z.Card())
	}
}

func cmdZScan(c *Ctx) {
	cursor, pattern, count, ok := c.scanArgs()
	if !ok {
		return
	}
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	if z == nil {
		c.replyScan(0, nil, pattern, nil)
		return
	}
	packed := z.Packed()
	scores := map[string]float64{}
	var picked []string
	var next uint64
	if cursor == 0 && (packed || z.Card() <= smallScan) {
		// returned whole (a listpack in its order), with the scores read
		// as the members are
		picked = make([]string, 0, z.Card())
		z.Members(func(m string, s float64) {
			picked = append(picked, m)
			scores[m] = s
		})
	} else {
		present := func(m string) bool {
			s, ok := z.Score(m)
			if ok {
				scores[m] = s
			}
			return ok
		}
		if packed { // one pass over the listpack, not a search per member
			all := map[string]float64{}
			z.Members(func(m string, s float64) { all[m] = s })
			present = func(m string) bool {
				s, ok := all[m]
				if ok {
					scores[m] = s
				}
				return ok
			}
		}
		picked, next = c.snapScan(weak.Make(z), func() []string {
			ms := make([]string, 0, z.Card())
			z.Members(func(m string, _ float64) { ms = append(ms, m) })
			return ms
		}, present, cursor, count)
	}
	c.replyScan(next, picked, pattern, func(m string) [][]byte {
		return [][]byte{[]byte(m), scanScore(scores[m], packed)}
	})
}

// scanScore formats a score as ZSCAN shows it: Redis's listpack holds
// the text of a score, an integral one up to 2^62 as an integer (so -0 is
// 0); its skip list is printed with %.17g.
func scanScore(s float64, packed bool) []byte {
	switch {
	case math.IsInf(s, 1):
		return []byte("inf")
	case math.IsInf(s, -1):
		return []byte("-inf")
	case packed && s >= -(1<<62) && s <= 1<<62 && s == math.Trunc(s):
		return strconv.AppendInt(nil, int64(s), 10)
	}
	return strconv.AppendFloat(nil, s, 'g', 17, 64)
}
