package kv

import (
	"math/rand/v2"
)

// zset is the value of a sorted set: a dictionary of scores and a skip list
// ordered by (score, member) whose links carry spans, so ranks are O(log n),
// as in Redis.
type zset struct {
	dict   map[string]float64
	header *zNode
	tail   *zNode
	length int
	level  int
}

type zNode struct {
	member   string
	score    float64
	backward *zNode
	level    []zLevel
}

type zLevel struct {
	forward *zNode
	span    int
}

const zMaxLevel = 32

func newZSet() *zset {
	return &zset{
		dict:   make(map[string]float64),
		header: &zNode{level: make([]zLevel, zMaxLevel)},
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

func (z *zset) card() int { return len(z.dict) }

// add sets member's score; it reports whether the member is new.
func (z *zset) add(member string, score float64) bool {
	old, ok := z.dict[member]
	if ok {
		if old == score {
			return false
		}
		z.slDelete(old, member)
	}
	z.dict[member] = score
	z.slInsert(score, member)
	return !ok
}

// remove deletes member and reports whether it was present.
func (z *zset) remove(member string) bool {
	score, ok := z.dict[member]
	if !ok {
		return false
	}
	delete(z.dict, member)
	z.slDelete(score, member)
	return true
}

func (z *zset) slInsert(score float64, member string) {
	var update [zMaxLevel]*zNode
	var rank [zMaxLevel]int
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		if i < z.level-1 {
			rank[i] = rank[i+1]
		}
		for f := x.level[i].forward; f != nil && zless(f.score, f.member, score, member); f = x.level[i].forward {
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
	x = &zNode{member: member, score: score, level: make([]zLevel, lvl)}
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

func (z *zset) slDelete(score float64, member string) {
	var update [zMaxLevel]*zNode
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && zless(f.score, f.member, score, member); f = x.level[i].forward {
			x = f
		}
		update[i] = x
	}
	x = x.level[0].forward
	if x == nil || x.score != score || x.member != member {
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

// rank returns the 0-based rank of member, or -1.
func (z *zset) rank(member string) int {
	score, ok := z.dict[member]
	if !ok {
		return -1
	}
	x := z.header
	r := 0
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && (f.score < score || (f.score == score && f.member <= member)); f = x.level[i].forward {
			r += x.level[i].span
			x = f
		}
		if x != z.header && x.member == member {
			return r - 1
		}
	}
	return -1
}

// byRank returns the node at 0-based rank r, or nil.
func (z *zset) byRank(r int) *zNode {
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

// scoreRange is a ZRANGEBYSCORE interval.
type scoreRange struct {
	min, max     float64
	minex, maxex bool
}

func (r *scoreRange) gteMin(s float64) bool {
	if r.minex {
		return s > r.min
	}
	return s >= r.min
}

func (r *scoreRange) lteMax(s float64) bool {
	if r.maxex {
		return s < r.max
	}
	return s <= r.max
}

// firstInScore returns the first node inside r, or nil.
func (z *zset) firstInScore(r *scoreRange) *zNode {
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && !r.gteMin(f.score); f = x.level[i].forward {
			x = f
		}
	}
	x = x.level[0].forward
	if x == nil || !r.lteMax(x.score) {
		return nil
	}
	return x
}

// lastInScore returns the last node inside r, or nil.
func (z *zset) lastInScore(r *scoreRange) *zNode {
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && r.lteMax(f.score); f = x.level[i].forward {
			x = f
		}
	}
	if x == z.header || !r.gteMin(x.score) {
		return nil
	}
	return x
}

// lexRange is a ZRANGEBYLEX interval; minInf/maxInf stand for - and +.
type lexRange struct {
	min, max       string
	minex, maxex   bool
	minInf, maxInf bool // "-" as min, "+" as max
	minPos, maxNeg bool // "+" as min (empty), "-" as max (empty)
}

func (r *lexRange) gteMin(m string) bool {
	switch {
	case r.minPos:
		return false
	case r.minInf:
		return true
	case r.minex:
		return m > r.min
	}
	return m >= r.min
}

func (r *lexRange) lteMax(m string) bool {
	switch {
	case r.maxNeg:
		return false
	case r.maxInf:
		return true
	case r.maxex:
		return m < r.max
	}
	return m <= r.max
}

func (z *zset) firstInLex(r *lexRange) *zNode {
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && !r.gteMin(f.member); f = x.level[i].forward {
			x = f
		}
	}
	x = x.level[0].forward
	if x == nil || !r.lteMax(x.member) {
		return nil
	}
	return x
}

func (z *zset) lastInLex(r *lexRange) *zNode {
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && r.lteMax(f.member); f = x.level[i].forward {
			x = f
		}
	}
	if x == z.header || !r.gteMin(x.member) {
		return nil
	}
	return x
}
