package keyspace

import (
	"math/rand/v2"
)

// ZSet is the value of a sorted set: a dictionary of scores and a skip list
// ordered by (score, member) whose links carry spans, so ranks are O(log n),
// as in Redis.
type ZSet struct {
	dict   map[string]float64
	header *ZNode
	tail   *ZNode
	length int
	level  int
	bytes  int // of the members (Memory)
}

type ZNode struct {
	Member   string
	Score    float64
	backward *ZNode
	level    []zLevel
}

type zLevel struct {
	forward *ZNode
	span    int
}

const zMaxLevel = 32

func NewZSet() *ZSet {
	return &ZSet{
		dict:   make(map[string]float64),
		header: &ZNode{level: make([]zLevel, zMaxLevel)},
		level:  1,
	}
}

func zless(s1 float64, m1 string, s2 float64, m2 string) bool {
	return s1 < s2 || (s1 == s2 && m1 < m2)
}

func zRandomLevel() int {
	lvl := 1
	for lvl < zMaxLevel && rand.Uint32()&0xffff < 0xffff/4 {
		lvl++
	}
	return lvl
}

func (z *ZSet) Card() int { return len(z.dict) }

// Add sets member's score; it reports whether the member is new.
func (z *ZSet) Add(member string, score float64) bool {
	old, ok := z.dict[member]
	if ok {
		if old == score {
			return false
		}
		z.slDelete(old, member)
	}
	z.dict[member] = score
	z.slInsert(score, member)
	if !ok {
		z.bytes += len(member)
	}
	return !ok
}

// Remove deletes member and reports whether it was present.
func (z *ZSet) Remove(member string) bool {
	score, ok := z.dict[member]
	if !ok {
		return false
	}
	delete(z.dict, member)
	z.slDelete(score, member)
	z.bytes -= len(member)
	return true
}

func (z *ZSet) slInsert(score float64, member string) {
	var update [zMaxLevel]*ZNode
	var rank [zMaxLevel]int
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		if i < z.level-1 {
			rank[i] = rank[i+1]
		}
		for f := x.level[i].forward; f != nil && zless(f.Score, f.Member, score, member); f = x.level[i].forward {
			rank[i] += x.level[i].span
			x = f
		}
		update[i] = x
	}
	lvl := zRandomLevel()
	if lvl > z.level {
		for i := z.level; i < lvl; i++ {
			rank[i] = 0
			update[i] = z.header
			update[i].level[i].span = z.length
		}
		z.level = lvl
	}
	x = &ZNode{Member: member, Score: score, level: make([]zLevel, lvl)}
	for i := 0; i < lvl; i++ {
		x.level[i].forward = update[i].level[i].forward
		update[i].level[i].forward = x
		x.level[i].span = update[i].level[i].span - (rank[0] - rank[i])
		update[i].level[i].span = rank[0] - rank[i] + 1
	}
	for i := lvl; i < z.level; i++ {
		update[i].level[i].span++
	}
	if update[0] != z.header {
		x.backward = update[0]
	}
	if x.level[0].forward != nil {
		x.level[0].forward.backward = x
	} else {
		z.tail = x
	}
	z.length++
}

func (z *ZSet) slDelete(score float64, member string) {
	var update [zMaxLevel]*ZNode
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && zless(f.Score, f.Member, score, member); f = x.level[i].forward {
			x = f
		}
		update[i] = x
	}
	x = x.level[0].forward
	if x == nil || x.Score != score || x.Member != member {
		return
	}
	for i := 0; i < z.level; i++ {
		if update[i].level[i].forward == x {
			update[i].level[i].span += x.level[i].span - 1
			update[i].level[i].forward = x.level[i].forward
		} else {
			update[i].level[i].span--
		}
	}
	if x.level[0].forward != nil {
		x.level[0].forward.backward = x.backward
	} else {
		z.tail = x.backward
	}
	for z.level > 1 && z.header.level[z.level-1].forward == nil {
		z.level--
	}
	z.length--
}

// Rank returns the 0-based rank of member, or -1.
func (z *ZSet) Rank(member string) int {
	score, ok := z.dict[member]
	if !ok {
		return -1
	}
	x := z.header
	r := 0
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && (f.Score < score || (f.Score == score && f.Member <= member)); f = x.level[i].forward {
			r += x.level[i].span
			x = f
		}
		if x != z.header && x.Member == member {
			return r - 1
		}
	}
	return -1
}

// ByRank returns the node at 0-based rank r, or nil.
func (z *ZSet) ByRank(r int) *ZNode {
	r++
	x := z.header
	traversed := 0
	for i := z.level - 1; i >= 0; i-- {
		for x.level[i].forward != nil && traversed+x.level[i].span <= r {
			traversed += x.level[i].span
			x = x.level[i].forward
		}
		if traversed == r {
			return x
		}
	}
	return nil
}

// ScoreRange is a ZRANGEBYSCORE interval.
type ScoreRange struct {
	Min, Max     float64
	MinEx, MaxEx bool
}

func (r *ScoreRange) GteMin(s float64) bool {
	if r.MinEx {
		return s > r.Min
	}
	return s >= r.Min
}

func (r *ScoreRange) LteMax(s float64) bool {
	if r.MaxEx {
		return s < r.Max
	}
	return s <= r.Max
}

// FirstInScore returns the first node inside r, or nil.
func (z *ZSet) FirstInScore(r *ScoreRange) *ZNode {
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && !r.GteMin(f.Score); f = x.level[i].forward {
			x = f
		}
	}
	x = x.level[0].forward
	if x == nil || !r.LteMax(x.Score) {
		return nil
	}
	return x
}

// LastInScore returns the last node inside r, or nil.
func (z *ZSet) LastInScore(r *ScoreRange) *ZNode {
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && r.LteMax(f.Score); f = x.level[i].forward {
			x = f
		}
	}
	if x == z.header || !r.GteMin(x.Score) {
		return nil
	}
	return x
}

// LexRange is a ZRANGEBYLEX interval; minInf/maxInf stand for - and +.
type LexRange struct {
	Min, Max       string
	MinEx, MaxEx   bool
	MinInf, MaxInf bool // "-" as min, "+" as max
	MinPos, MaxNeg bool // "+" as min (empty), "-" as max (empty)
}

func (r *LexRange) GteMin(m string) bool {
	switch {
	case r.MinPos:
		return false
	case r.MinInf:
		return true
	case r.MinEx:
		return m > r.Min
	}
	return m >= r.Min
}

func (r *LexRange) LteMax(m string) bool {
	switch {
	case r.MaxNeg:
		return false
	case r.MaxInf:
		return true
	case r.MaxEx:
		return m < r.Max
	}
	return m <= r.Max
}

func (z *ZSet) FirstInLex(r *LexRange) *ZNode {
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && !r.GteMin(f.Member); f = x.level[i].forward {
			x = f
		}
	}
	x = x.level[0].forward
	if x == nil || !r.LteMax(x.Member) {
		return nil
	}
	return x
}

func (z *ZSet) LastInLex(r *LexRange) *ZNode {
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && r.LteMax(f.Member); f = x.level[i].forward {
			x = f
		}
	}
	if x == z.header || !r.GteMin(x.Member) {
		return nil
	}
	return x
}

// Score returns the score of member.
func (z *ZSet) Score(member string) (float64, bool) {
	s, ok := z.dict[member]
	return s, ok
}

// ScoreBytes is Score for a member given as bytes, without copying it.
func (z *ZSet) ScoreBytes(member []byte) (float64, bool) {
	s, ok := z.dict[string(member)]
	return s, ok
}

// Members calls fn for every member and its score, in no order.
func (z *ZSet) Members(fn func(member string, score float64)) {
	for m, s := range z.dict {
		fn(m, s)
	}
}

// First returns the node of the lowest score, nil when empty.
func (z *ZSet) First() *ZNode { return z.header.level[0].forward }

// Last returns the node of the highest score, nil when empty.
func (z *ZSet) Last() *ZNode { return z.tail }

// Next returns the node after x in score order, nil at the end.
func (x *ZNode) Next() *ZNode { return x.level[0].forward }

// Prev returns the node before x in score order, nil at the start.
func (x *ZNode) Prev() *ZNode { return x.backward }
