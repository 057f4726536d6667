package command

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Sorted-set commands across keys and the remaining range commands:
// ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD, ZRANGESTORE,
// ZRANDMEMBER, ZLEXCOUNT, ZREMRANGEBYLEX. Inputs may be sets (every member
// scores 1), as in Redis.

// StoreNumKeys is the key extractor of ZUNIONSTORE, ZINTERSTORE,
// ZDIFFSTORE: the destination, then numkeys keys.
func StoreNumKeys(args [][]byte, dst [][]byte) [][]byte {
	if len(args) < 2 {
		return dst
	}
	return NumKeysAt(2)(args, append(dst, args[1]))
}

type zaggregate int

const (
	aggSum zaggregate = iota
	aggMin
	aggMax
)

// zsetOpArgs are the parsed arguments of ZUNION, ZINTER, ZDIFF and their
// STORE forms.
type zsetOpArgs struct {
	op         string // "union", "inter" or "diff"
	store      bool
	keys       [][]byte
	weights    []float64
	agg        zaggregate
	withScores bool
}

func (c *Ctx) parseZSetOp() (a zsetOpArgs, ok bool) {
	name := c.Cmd.Name
	a.store = name[len(name)-5:] == "store"
	a.op = name[1:]
	if a.store {
		a.op = name[1 : len(name)-5]
	}
	pos := 1
	if a.store {
		pos = 2
	}
	n, ok := ParseInt(c.Args[pos])
	if !ok {
		c.W.Error(ErrNotInt)
		return a, false
	}
	if n < 1 {
		c.W.Error("ERR at least 1 input key is needed for '" + name + "' command")
		return a, false
	}
	if n > int64(len(c.Args)-pos-1) {
		c.W.Error(ErrSyntax)
		return a, false
	}
	a.keys = c.Args[pos+1 : pos+1+int(n)]
	a.weights = make([]float64, n)
	for i := range a.weights {
		a.weights[i] = 1
	}
	for i := pos + 1 + int(n); i < len(c.Args); i++ {
		rem := len(c.Args) - i - 1
		switch arg := c.Args[i]; {
		case a.op != "diff" && EqualFold(arg, "weights") && rem >= int(n):
			for j := range a.weights {
				w, ok := ParseFloat(c.Args[i+1+j])
				if !ok {
					c.W.Error("ERR weight value is not a float")
					return a, false
				}
				a.weights[j] = w
			}
			i += int(n)
		case a.op != "diff" && EqualFold(arg, "aggregate") && rem >= 1:
			switch g := c.Args[i+1]; {
			case EqualFold(g, "sum"):
				a.agg = aggSum
			case EqualFold(g, "min"):
				a.agg = aggMin
			case EqualFold(g, "max"):
				a.agg = aggMax
			default:
				c.W.Error(ErrSyntax)
				return a, false
			}
			i++
		case !a.store && EqualFold(arg, "withscores"):
			a.withScores = true
		default:
			c.W.Error(ErrSyntax)
			return a, false
		}
	}
	return a, true
}

// zsetInput is one input of a set operation: a sorted set, a set, or
// nothing (a missing key).
type zsetInput struct {
	z *keyspace.ZSet
	s *keyspace.Set
}

func (in zsetInput) card() int {
	switch {
	case in.z != nil:
		return in.z.Card()
	case in.s != nil:
		return in.s.Len()
	}
	return 0
}

func (in zsetInput) score(m string) (float64, bool) {
	switch {
	case in.z != nil:
		return in.z.Score(m)
	case in.s != nil:
		return 1, in.s.Has([]byte(m))
	}
	return 0, false
}

func (in zsetInput) each(fn func(m string, score float64)) {
	switch {
	case in.z != nil:
		in.z.Members(fn)
	case in.s != nil:
		in.s.Each(func(m []byte) { fn(string(m), 1) })
	}
}

// zsetInputs looks the keys up; ok is false after replying WRONGTYPE.
func (c *Ctx) zsetInputs(keys [][]byte) ([]zsetInput, bool) {
	ins := make([]zsetInput, len(keys))
	for i, k := range keys {
		e := c.readKey(k)
		if e == nil {
			continue
		}
		if z := keyspace.ZSets.Of(e); z != nil {
			ins[i].z = z
		} else if s := keyspace.Sets.Of(e); s != nil {
			ins[i].s = s
		} else {
			c.W.Error(ErrWrongType)
			return nil, false
		}
	}
	return ins, true
}

// weighted is score*weight with NaN (0 times infinity) read as 0, as Redis
// does for the first value of a member.
func weighted(score, w float64) float64 {
	v := score * w
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// aggregate folds v into acc as Redis's zunionInterAggregate: a NaN sum
// becomes 0, MIN and MAX keep acc on ties and on NaN.
func aggregate(agg zaggregate, acc, v float64) float64 {
	switch agg {
	case aggMin:
		if v < acc {
			return v
		}
		return acc
	case aggMax:
		if v > acc {
			return v
		}
		return acc
	}
	if s := acc + v; !math.IsNaN(s) {
		return s
	}
	return 0 // inf + -inf
}

// zsetOp computes the result of a union, intersection or difference. The
// inputs of a union or an intersection are taken from the smallest to the
// largest, as Redis does: with infinities, NaN and signed zeros the order
// of aggregation shows in the result.
func zsetOp(a *zsetOpArgs, ins []zsetInput) *keyspace.ZSet {
	out := keyspace.NewZSet()
	order := make([]int, len(ins))
	for i := range order {
		order[i] = i
	}
	if a.op != "diff" {
		slices.SortStableFunc(order, func(x, y int) int { return ins[x].card() - ins[y].card() })
	}
	switch a.op {
	case "union":
		acc := map[string]float64{}
		var seen []string // first-seen order, so equal scores tie alike
		for _, i := range order {
			ins[i].each(func(m string, s float64) {
				v := weighted(s, a.weights[i])
				if old, ok := acc[m]; ok {
					acc[m] = aggregate(a.agg, old, v)
				} else {
					acc[m] = v
					seen = append(seen, m)
				}
			})
		}
		for _, m := range seen {
			out.Add(m, acc[m])
		}
	case "inter":
		first := order[0]
		if ins[first].card() == 0 {
			return out
		}
		ins[first].each(func(m string, s float64) {
			acc := weighted(s, a.weights[first])
			for _, j := range order[1:] {
				sj, ok := ins[j].score(m)
				if !ok {
					return
				}
				acc = aggregate(a.agg, acc, sj*a.weights[j]) // NaN goes to the aggregate
			}
			out.Add(m, acc)
		})
	case "diff":
		ins[0].each(func(m string, s float64) {
			for _, in := range ins[1:] {
				if _, ok := in.score(m); ok {
					return
				}
			}
			out.Add(m, s)
		})
	}
	return out
}

// ZUNION|ZINTER|ZDIFF numkeys key ... [WEIGHTS w ...] [AGGREGATE
// SUM|MIN|MAX] [WITHSCORES] and the STORE forms with a destination first.
func cmdZSetOp(c *Ctx) {
	a, ok := c.parseZSetOp()
	if !ok {
		return
	}
	ins, ok := c.zsetInputs(a.keys)
	if !ok {
		return
	}
	res := zsetOp(&a, ins)
	if a.store {
		c.storeZSet(c.Args[1], res)
		c.W.Int(int64(res.Card()))
		return
	}
	nodes := make([]keyspace.ZIter, 0, res.Card())
	for x := res.First(); x.Valid(); x = x.Next() {
		nodes = append(nodes, x)
	}
	c.replyNodes(nodes, a.withScores)
}

// storeZSet replaces dst with z (deleting dst when z is empty), logged
// as the command itself (the result is deterministic), in the form
// Redis gives a new key (ZSet.Conform, zset-max-listpack-entries/-value;
// the small form keeps no negative zero, as Redis's listpack).
func (c *Ctx) storeZSet(dst []byte, z *keyspace.ZSet) {
	z.Conform(c.Track.Settings.ZSetLimits())
	existed := c.Lookup(dst) != nil
	if existed {
		c.KS.DeleteLocked(dst)
	}
	if z.Card() > 0 {
		c.KS.AddLocked(dst, keyspace.ZSets.NewEntry(z))
	}
	if existed || z.Card() > 0 {
		c.Dirty++
	}
}

// ZINTERCARD numkeys key [key ...] [LIMIT limit]
func cmdZInterCard(c *Ctx) {
	n, ok := ParseInt(c.Args[1])
	if !ok {
		c.W.Error(ErrNotInt)
		return
	}
	if n < 1 {
		c.W.Error("ERR at least 1 input key is needed for 'zintercard' command")
		return
	}
	if n > int64(len(c.Args)-2) {
		c.W.Error(ErrSyntax)
		return
	}
	var limit int64
	for i := 2 + int(n); i < len(c.Args); i += 2 {
		if !EqualFold(c.Args[i], "limit") || i+1 >= len(c.Args) {
			c.W.Error(ErrSyntax)
			return
		}
		l, ok := ParseInt(c.Args[i+1])
		if !ok || l < 0 {
			c.W.Error("ERR LIMIT can't be negative")
			return
		}
		limit = l
	}
	ins, ok := c.zsetInputs(c.Args[2 : 2+n])
	if !ok {
		return
	}
	a := zsetOpArgs{op: "inter", weights: make([]float64, n)}
	for i := range a.weights {
		a.weights[i] = 1
	}
	res := zsetOp(&a, ins)
	card := int64(res.Card())
	if limit > 0 {
		card = min(card, limit)
	}
	c.W.Int(card)
}

// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
func cmdZRangeStore(c *Ctx) {
	a, ok := c.parseZRange("zrangestore", 3)
	if !ok {
		return
	}
	z, ok := c.lookupZSet(c.Args[2])
	if !ok {
		return
	}
	res := keyspace.NewZSet()
	if z != nil {
		for _, x := range a.collect(z) {
			res.Add(x.Member(), x.Score())
		}
	}
	c.storeZSet(c.Args[1], res)
	c.W.Int(int64(res.Card()))
}

// maxRandomPicks bounds the repeated picks of ZRANDMEMBER with a negative
// count: Redis streams any number into the client's buffer, gantry builds
// the reply in memory first.
const maxRandomPicks = 1 << 24

// ZRANDMEMBER key [count [WITHSCORES]]: a negative count may repeat
// members.
func cmdZRandMember(c *Ctx) {
	if len(c.Args) > 4 || (len(c.Args) == 4 && !EqualFold(c.Args[3], "withscores")) {
		c.W.Error(ErrSyntax)
		return
	}
	hasCount := len(c.Args) >= 3
	count := int64(1)
	if hasCount {
		var ok bool
		if count, ok = c.ArgInt(2); !ok {
			return
		}
		if count == math.MinInt64 {
			c.W.Error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
			return
		}
		if len(c.Args) == 4 && (count < -math.MaxInt64/2 || count > math.MaxInt64/2) {
			c.W.Error("ERR value is out of range") // twice as many replies with the scores
			return
		}
		if count < -maxRandomPicks {
			// the reply is built in memory: a bounded number of repeats
			c.W.Error("ERR value is out of range, gantry returns at most " + strconv.Itoa(maxRandomPicks) + " repeated members")
			return
		}
	}
	withScores := len(c.Args) == 4
	z, ok := c.lookupZSet(c.Args[1])
	if !ok {
		return
	}
	if !hasCount {
		if z == nil {
			c.W.Null()
			return
		}
		c.W.Bulk(z.ByRank(rand.IntN(z.Card())).MemberBytes())
		return
	}
	if z == nil {
		c.W.Array(0)
		return
	}
	if count >= 0 {
		var picked []keyspace.ZIter
		for _, i := range rand.Perm(z.Card())[:min(int64(z.Card()), count)] {
			picked = append(picked, z.ByRank(i))
		}
		c.replyNodes(picked, withScores)
		return
	}
	// repeats allowed: written as picked, without a list of -count nodes
	n := int(-count)
	switch {
	case withScores && c.W.RESP3():
	case withScores:
		n *= 2
	}
	c.W.Array(n)
	var all []keyspace.ZIter // a small set's members: ByRank scans it
	if z.Packed() {
		all = make([]keyspace.ZIter, 0, z.Card())
		for x := z.First(); x.Valid(); x = x.Next() {
			all = append(all, x)
		}
	}
	for i := int64(0); i < -count; i++ {
		var x keyspace.ZIter
		if all != nil {
			x = all[rand.IntN(len(all))]
		} else {
			x = z.ByRank(rand.IntN(z.Card()))
		}
		if withScores && c.W.RESP3() {
			c.W.Array(2)
		}
		c.W.Bulk(x.MemberBytes())
		if withScores {
			c.W.Double(x.Score())
		}
	}
}

// ZLEXCOUNT key min max
func cmdZLexCount(c *Ctx) {
	r, ok := c.lexRangeArgs(c.Args[2], c.Args[3])
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
	// as Redis's skip list: from the rank of the first member in range to
	// the rank of the last (members of different scores make the answer
	// meaningless, never a crash)
	first := z.FirstInLex(&r)
	if !first.Valid() {
		c.W.Int(0)
		return
	}
	n := z.Card() - z.Rank(first.Member())
	if last := z.LastInLex(&r); last.Valid() {
		n -= z.Card() - 1 - z.Rank(last.Member())
	}
	c.W.Int(int64(max(n, 0)))
}

// ZREMRANGEBYLEX key min max
func cmdZRemRangeByLex(c *Ctx) {
	r, ok := c.lexRangeArgs(c.Args[2], c.Args[3])
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
	var victims []string
	for x := z.FirstInLex(&r); x.Valid() && r.LteMax(x.Member()); x = x.Next() {
		victims = append(victims, x.Member())
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
