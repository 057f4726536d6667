package keyspace

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"unsafe"
)

// A sorted set has two forms, as in Redis. A small one (at most
// ZSetLimits.Entries members, none longer than ZSetLimits.Value bytes) is
// one byte slice of entries sorted by (score, member), like Redis's
// listpack: per entry the score, uvarint(len) and the member, then the
// entry's length written backwards (7 bits a byte, the last byte first)
// so an iterator steps back in O(1). An integral score up to 2^53 is a
// uvarint of its zigzag shifted left once (1 to 8 bytes; -0 is 0, as
// Redis's listpack keeps an integral score as an integer), another is
// the byte 1 and 8 bytes of IEEE 754, little endian.
// Lookups and ranks scan it. A set that passes a limit becomes a
// dictionary of scores plus a skip list ordered by (score, member), whose
// links carry spans so ranks are O(log n), for good; Conform makes a big
// set small again where Redis does (a new destination key, a load). The
// limits are zset-max-listpack-entries and -value, read at each write.

// ZSetLimits bound the small form of a sorted set.
type ZSetLimits struct {
	Entries int // members
	Value   int // bytes of a member
}

// DefaultZSetLimits are Redis 7.0's defaults.
var DefaultZSetLimits = ZSetLimits{Entries: 128, Value: 64}

// ZSet is the value of a sorted set: lp (small) or dict and sl.
type ZSet struct {
	lp     []byte             // small form: score, uvarint len, member, backlen; ...
	dict   map[string]float64 // nil while small
	sl     *zskiplist         // nil while small
	length int                // members
}

// zskiplist is the skip list of a big set.
type zskiplist struct {
	header *ZNode
	tail   *ZNode
	level  int
	bytes  int // of the members (Memory)
}

// ZNode is a skip list node; as a value it is also a (member, score) pair.
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

func newZSkiplist() *zskiplist {
	return &zskiplist{header: &ZNode{level: make([]zLevel, 1)}, level: 1}
}

// NewZSet returns an empty sorted set in the small form.
func NewZSet() *ZSet { return &ZSet{} }

// Packed reports whether z is in the small form (OBJECT ENCODING
// "listpack").
func (z *ZSet) Packed() bool { return z.dict == nil }

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

// bstr views b as a string for a comparison, without copying it.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// --- the small form ---

// zlpBacklenSize is the size of the backwards length l.
func zlpBacklenSize(l int) int {
	n := 1
	for l >= 128 {
		l >>= 7
		n++
	}
	return n
}

// zlpScore decodes the score at lp[pos:] and returns it and its size.
func zlpScore(lp []byte, pos int) (float64, int) {
	b := lp[pos]
	if b&1 != 0 {
		return math.Float64frombits(binary.LittleEndian.Uint64(lp[pos+1:])), 9
	}
	var v uint64
	k := 1
	if b < 0x80 {
		v = uint64(b)
	} else {
		v, k = binary.Uvarint(lp[pos:])
	}
	v >>= 1
	return float64(int64(v>>1) ^ -int64(v&1)), k
}

// zlpIntScore reports whether s is kept as an integer, and its encoding.
func zlpIntScore(s float64) (uint64, bool) {
	if s != math.Trunc(s) || s > 1<<53 || s < -(1<<53) {
		return 0, false
	}
	i := int64(s)
	return (uint64(i<<1) ^ uint64(i>>63)) << 1, true
}

func zlpScoreLen(s float64) int {
	if v, ok := zlpIntScore(s); ok {
		return uvarintLen(v)
	}
	return 9
}

// zlpAt decodes the entry at pos: its member (aliasing lp), its score and
// the position of the next entry.
func zlpAt(lp []byte, pos int) (m []byte, score float64, next int) {
	score, k := zlpScore(lp, pos)
	m, end := lpNext(lp, pos+k)
	return m, score, end + zlpBacklenSize(end-pos)
}

// zlpPrev returns the position of the entry before the one at pos (pos >
// 0), reading the backwards length that ends at pos.
func zlpPrev(lp []byte, pos int) int {
	e := pos - 1
	l, shift := 0, 0
	for {
		b := lp[e]
		l |= int(b&127) << shift
		shift += 7
		if b&128 == 0 {
			break
		}
		e--
	}
	return e - l
}

// zlpEntryLen is the size of an entry of member m and score s.
func zlpEntryLen(m []byte, s float64) int {
	body := zlpScoreLen(s) + uvarintLen(uint64(len(m))) + len(m)
	return body + zlpBacklenSize(body)
}

// zlpFind returns the position of member m's entry and its score, or -1.
// It skips the entries without decoding their scores (ZADD of a present
// member looks it up twice).
func (z *ZSet) zlpFind(m []byte) (int, float64) {
	lp := z.lp
	for pos := 0; pos < len(lp); {
		p := pos
		if lp[p]&1 != 0 { // a float score
			p += 9
		} else {
			for lp[p] >= 0x80 {
				p++
			}
			p++
		}
		var n int
		if b := lp[p]; b < 0x80 {
			n = int(b)
			p++
		} else {
			v, k := binary.Uvarint(lp[p:])
			n = int(v)
			p += k
		}
		if n == len(m) && string(lp[p:p+n]) == string(m) {
			s, _ := zlpScore(lp, pos)
			return pos, s
		}
		p += n
		pos = p + zlpBacklenSize(p-pos)
	}
	return -1, 0
}

// zlpDelete removes the entry at pos.
func (z *ZSet) zlpDelete(pos int) {
	_, _, next := zlpAt(z.lp, pos)
	z.lp = append(z.lp[:pos], z.lp[next:]...)
	z.length--
}

// zlpInsert inserts member m (not present) at its place.
func (z *ZSet) zlpInsert(m []byte, score float64) {
	lp := z.lp
	pos := 0
	for pos < len(lp) {
		em, s, next := zlpAt(lp, pos)
		if zless(score, bstr(m), s, bstr(em)) {
			break
		}
		pos = next
	}
	l := zlpEntryLen(m, score)
	old := len(lp)
	lp = append(lp, make([]byte, l)...)
	copy(lp[pos+l:], lp[pos:old])
	zlpPut(lp[pos:pos+l], m, score)
	z.lp = lp
	z.length++
}

// zlpPut encodes the entry of m and score into e, of zlpEntryLen bytes.
func zlpPut(e []byte, m []byte, score float64) {
	var k int
	if v, ok := zlpIntScore(score); ok {
		k = binary.PutUvarint(e, v)
	} else {
		e[0] = 1
		binary.LittleEndian.PutUint64(e[1:], math.Float64bits(score))
		k = 9
	}
	k += binary.PutUvarint(e[k:], uint64(len(m)))
	k += copy(e[k:], m)
	// the backwards length of the body: high groups first, every byte but
	// the first flagged
	body := k
	n := len(e) - body
	for i := n - 1; i >= 0; i-- {
		g := byte(body>>(7*i)) & 127
		if i < n-1 {
			g |= 128
		}
		e[k] = g
		k++
	}
}

// toBig converts the small form to the dictionary and skip list.
func (z *ZSet) toBig() {
	lp, n := z.lp, z.length
	z.lp = nil
	z.length = 0
	z.dict = make(map[string]float64, max(n, 8))
	z.sl = newZSkiplist()
	for pos := 0; pos < len(lp); {
		m, s, next := zlpAt(lp, pos)
		ms := string(m)
		z.dict[ms] = s
		z.slInsert(s, ms)
		z.sl.bytes += len(ms)
		pos = next
	}
}

// fits reports whether z can be in the small form within lim.
func (z *ZSet) fits(lim ZSetLimits) bool {
	if z.Card() > lim.Entries {
		return false
	}
	if z.dict == nil {
		for pos := 0; pos < len(z.lp); {
			m, _, next := zlpAt(z.lp, pos)
			if len(m) > lim.Value {
				return false
			}
			pos = next
		}
		return true
	}
	for m := range z.dict {
		if len(m) > lim.Value {
			return false
		}
	}
	return true
}

// Conform gives z the form Redis gives a new key of its members within
// lim: small if it fits, else big. Redis does so for a new destination
// key (ZUNIONSTORE, ZRANGESTORE, GEOSEARCHSTORE ...) and a loaded one.
func (z *ZSet) Conform(lim ZSetLimits) {
	fits := z.fits(lim)
	if z.dict == nil {
		if !fits {
			z.toBig()
		}
		return
	}
	if !fits {
		return
	}
	size := 0
	for x := z.sl.header.level[0].forward; x != nil; x = x.level[0].forward {
		size += zlpEntryLen(unsafe.Slice(unsafe.StringData(x.Member), len(x.Member)), x.Score)
	}
	lp := make([]byte, 0, size)
	for x := z.sl.header.level[0].forward; x != nil; x = x.level[0].forward {
		m := unsafe.Slice(unsafe.StringData(x.Member), len(x.Member))
		l := zlpEntryLen(m, x.Score)
		lp = lp[:len(lp)+l]
		zlpPut(lp[len(lp)-l:], m, x.Score)
	}
	n := z.Card()
	z.release()
	z.lp, z.length = lp, n
}

// zsetOf builds a set of distinct members with their scores, in the
// small form if small.
func zsetOf(members [][]byte, scores []float64, small bool) *ZSet {
	z := NewZSet()
	if !small {
		for i, m := range members {
			z.AddWithin(m, scores[i], ZSetLimits{})
		}
		return z
	}
	order := make([]int, len(members))
	size := 0
	for i := range order {
		order[i] = i
		size += zlpEntryLen(members[i], scores[i])
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case zless(scores[a], bstr(members[a]), scores[b], bstr(members[b])):
			return -1
		case zless(scores[b], bstr(members[b]), scores[a], bstr(members[a])):
			return 1
		}
		return 0
	})
	z.lp = make([]byte, 0, size)
	for _, i := range order {
		l := zlpEntryLen(members[i], scores[i])
		z.lp = z.lp[:len(z.lp)+l]
		zlpPut(z.lp[len(z.lp)-l:], members[i], scores[i])
	}
	z.length = len(members)
	return z
}

// Clone returns a copy of z in the same form (COPY).
func (z *ZSet) Clone() *ZSet {
	if z.dict == nil {
		return &ZSet{lp: append([]byte(nil), z.lp...), length: z.length}
	}
	c := &ZSet{dict: make(map[string]float64, len(z.dict)), sl: newZSkiplist()}
	for x := z.sl.header.level[0].forward; x != nil; x = x.level[0].forward {
		c.dict[x.Member] = x.Score
		c.slInsert(x.Score, x.Member)
		c.sl.bytes += len(x.Member)
	}
	return c
}

func (z *ZSet) Card() int { return z.length }

// Add sets member's score; it reports whether the member is new. The set
// stays within DefaultZSetLimits.
func (z *ZSet) Add(member string, score float64) bool {
	if z.dict == nil {
		return z.AddWithin(unsafe.Slice(unsafe.StringData(member), len(member)), score, DefaultZSetLimits)
	}
	return z.addBig(member, score)
}

// AddWithin sets member's score and reports whether the member is new;
// the set leaves its small form when it would pass lim. member is copied.
func (z *ZSet) AddWithin(member []byte, score float64, lim ZSetLimits) bool {
	if z.dict == nil {
		pos, old := z.zlpFind(member)
		if pos >= 0 {
			if old == score {
				return false
			}
			z.zlpDelete(pos)
			z.zlpInsert(member, score)
			return false
		}
		if z.length+1 <= lim.Entries && len(member) <= lim.Value {
			z.zlpInsert(member, score)
			return true
		}
		z.toBig()
	}
	return z.addBig(string(member), score)
}

func (z *ZSet) addBig(member string, score float64) bool {
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
		z.sl.bytes += len(member)
	}
	return !ok
}

// Remove deletes member and reports whether it was present.
func (z *ZSet) Remove(member string) bool {
	if z.dict == nil {
		pos, _ := z.zlpFind(unsafe.Slice(unsafe.StringData(member), len(member)))
		if pos < 0 {
			return false
		}
		z.zlpDelete(pos)
		return true
	}
	score, ok := z.dict[member]
	if !ok {
		return false
	}
	delete(z.dict, member)
	z.slDelete(score, member)
	z.sl.bytes -= len(member)
	return true
}

func (z *ZSet) slInsert(score float64, member string) {
	sl := z.sl
	var update [zMaxLevel]*ZNode
	var rank [zMaxLevel]int
	x := sl.header
	for i := sl.level - 1; i >= 0; i-- {
		if i < sl.level-1 {
			rank[i] = rank[i+1]
		}
		for f := x.level[i].forward; f != nil && zless(f.Score, f.Member, score, member); f = x.level[i].forward {
			rank[i] += x.level[i].span
			x = f
		}
		update[i] = x
	}
	lvl := zRandomLevel()
	if lvl > sl.level {
		// the header grows with the level instead of holding zMaxLevel
		// levels from the start
		for len(sl.header.level) < lvl {
			sl.header.level = append(sl.header.level, zLevel{})
		}
		for i := sl.level; i < lvl; i++ {
			rank[i] = 0
			update[i] = sl.header
			update[i].level[i].span = z.length
		}
		sl.level = lvl
	}
	x = &ZNode{Member: member, Score: score, level: make([]zLevel, lvl)}
	for i := 0; i < lvl; i++ {
		x.level[i].forward = update[i].level[i].forward
		update[i].level[i].forward = x
		x.level[i].span = update[i].level[i].span - (rank[0] - rank[i])
		update[i].level[i].span = rank[0] - rank[i] + 1
	}
	for i := lvl; i < sl.level; i++ {
		update[i].level[i].span++
	}
	if update[0] != sl.header {
		x.backward = update[0]
	}
	if x.level[0].forward != nil {
		x.level[0].forward.backward = x
	} else {
		sl.tail = x
	}
	z.length++
}

func (z *ZSet) slDelete(score float64, member string) {
	sl := z.sl
	var update [zMaxLevel]*ZNode
	x := sl.header
	for i := sl.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && zless(f.Score, f.Member, score, member); f = x.level[i].forward {
			x = f
		}
		update[i] = x
	}
	x = x.level[0].forward
	if x == nil || x.Score != score || x.Member != member {
		return
	}
	for i := 0; i < sl.level; i++ {
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
		sl.tail = x.backward
	}
	for sl.level > 1 && sl.header.level[sl.level-1].forward == nil {
		sl.level--
	}
	z.length--
}

// Rank returns the 0-based rank of member, or -1.
func (z *ZSet) Rank(member string) int {
	if z.dict == nil {
		i := 0
		for pos := 0; pos < len(z.lp); i++ {
			m, _, next := zlpAt(z.lp, pos)
			if bstr(m) == member {
				return i
			}
			pos = next
		}
		return -1
	}
	score, ok := z.dict[member]
	if !ok {
		return -1
	}
	x := z.sl.header
	r := 0
	for i := z.sl.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && (f.Score < score || (f.Score == score && f.Member <= member)); f = x.level[i].forward {
			r += x.level[i].span
			x = f
		}
		if x != z.sl.header && x.Member == member {
			return r - 1
		}
	}
	return -1
}

// ZIter is a position in a sorted set: an entry of the small form or a
// node of the skip list. The zero value is past either end (Valid is
// false). A change to the set invalidates it.
type ZIter struct {
	z   *ZSet  // the set, in the small form
	n   *ZNode // the node, in the big form
	pos int    // the entry's offset in z.lp
}

// Valid reports whether it is at a member.
func (it ZIter) Valid() bool { return it.n != nil || it.z != nil }

// Score returns the member's score.
func (it ZIter) Score() float64 {
	if it.n != nil {
		return it.n.Score
	}
	s, _ := zlpScore(it.z.lp, it.pos)
	return s
}

// MemberBytes returns the member; the slice aliases the set and must not
// be changed.
func (it ZIter) MemberBytes() []byte {
	if it.n != nil {
		return unsafe.Slice(unsafe.StringData(it.n.Member), len(it.n.Member))
	}
	_, k := zlpScore(it.z.lp, it.pos)
	m, _ := lpNext(it.z.lp, it.pos+k)
	return m
}

// Member returns the member as a string (a copy in the small form).
func (it ZIter) Member() string {
	if it.n != nil {
		return it.n.Member
	}
	return string(it.MemberBytes())
}

// Next returns the position after it in (score, member) order.
func (it ZIter) Next() ZIter {
	if it.n != nil {
		return ZIter{n: it.n.level[0].forward}
	}
	_, _, next := zlpAt(it.z.lp, it.pos)
	if next >= len(it.z.lp) {
		return ZIter{}
	}
	return ZIter{z: it.z, pos: next}
}

// Prev returns the position before it.
func (it ZIter) Prev() ZIter {
	if it.n != nil {
		return ZIter{n: it.n.backward}
	}
	if it.pos == 0 {
		return ZIter{}
	}
	return ZIter{z: it.z, pos: zlpPrev(it.z.lp, it.pos)}
}

func (z *ZSet) at(pos int) ZIter {
	if pos < 0 || pos >= len(z.lp) {
		return ZIter{}
	}
	return ZIter{z: z, pos: pos}
}

// First returns the member of the lowest score; not Valid when empty.
func (z *ZSet) First() ZIter {
	if z.dict == nil {
		return z.at(0)
	}
	return ZIter{n: z.sl.header.level[0].forward}
}

// Last returns the member of the highest score; not Valid when empty.
func (z *ZSet) Last() ZIter {
	if z.dict == nil {
		if len(z.lp) == 0 {
			return ZIter{}
		}
		return z.at(zlpPrev(z.lp, len(z.lp)))
	}
	return ZIter{n: z.sl.tail}
}

// ByRank returns the member at 0-based rank r; not Valid out of range.
func (z *ZSet) ByRank(r int) ZIter {
	if r < 0 || r >= z.length {
		return ZIter{}
	}
	if z.dict == nil {
		pos := 0
		for ; r > 0; r-- {
			_, _, pos = zlpAt(z.lp, pos)
		}
		return z.at(pos)
	}
	r++
	x := z.sl.header
	traversed := 0
	for i := z.sl.level - 1; i >= 0; i-- {
		for x.level[i].forward != nil && traversed+x.level[i].span <= r {
			traversed += x.level[i].span
			x = x.level[i].forward
		}
		if traversed == r {
			return ZIter{n: x}
		}
	}
	return ZIter{}
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

// FirstInScore returns the first member inside r; not Valid if none.
func (z *ZSet) FirstInScore(r *ScoreRange) ZIter {
	if z.dict == nil {
		for pos := 0; pos < len(z.lp); {
			_, s, next := zlpAt(z.lp, pos)
			if r.GteMin(s) {
				if r.LteMax(s) {
					return z.at(pos)
				}
				break
			}
			pos = next
		}
		return ZIter{}
	}
	x := z.sl.header
	for i := z.sl.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && !r.GteMin(f.Score); f = x.level[i].forward {
			x = f
		}
	}
	x = x.level[0].forward
	if x == nil || !r.LteMax(x.Score) {
		return ZIter{}
	}
	return ZIter{n: x}
}

// LastInScore returns the last member inside r; not Valid if none.
func (z *ZSet) LastInScore(r *ScoreRange) ZIter {
	if z.dict == nil {
		last := -1
		var ls float64
		for pos := 0; pos < len(z.lp); {
			_, s, next := zlpAt(z.lp, pos)
			if !r.LteMax(s) {
				break
			}
			last, ls = pos, s
			pos = next
		}
		if last < 0 || !r.GteMin(ls) {
			return ZIter{}
		}
		return z.at(last)
	}
	x := z.sl.header
	for i := z.sl.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && r.LteMax(f.Score); f = x.level[i].forward {
			x = f
		}
	}
	if x == z.sl.header || !r.GteMin(x.Score) {
		return ZIter{}
	}
	return ZIter{n: x}
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

// FirstInLex returns the first member inside r; not Valid if none.
func (z *ZSet) FirstInLex(r *LexRange) ZIter {
	if z.dict == nil {
		for pos := 0; pos < len(z.lp); {
			m, _, next := zlpAt(z.lp, pos)
			if r.GteMin(bstr(m)) {
				if r.LteMax(bstr(m)) {
					return z.at(pos)
				}
				break
			}
			pos = next
		}
		return ZIter{}
	}
	x := z.sl.header
	for i := z.sl.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && !r.GteMin(f.Member); f = x.level[i].forward {
			x = f
		}
	}
	x = x.level[0].forward
	if x == nil || !r.LteMax(x.Member) {
		return ZIter{}
	}
	return ZIter{n: x}
}

// LastInLex returns the last member inside r; not Valid if none.
func (z *ZSet) LastInLex(r *LexRange) ZIter {
	if z.dict == nil {
		last := -1
		var lm []byte
		for pos := 0; pos < len(z.lp); {
			m, _, next := zlpAt(z.lp, pos)
			if !r.LteMax(bstr(m)) {
				break
			}
			last, lm = pos, m
			pos = next
		}
		if last < 0 || !r.GteMin(bstr(lm)) {
			return ZIter{}
		}
		return z.at(last)
	}
	x := z.sl.header
	for i := z.sl.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && r.LteMax(f.Member); f = x.level[i].forward {
			x = f
		}
	}
	if x == z.sl.header || !r.GteMin(x.Member) {
		return ZIter{}
	}
	return ZIter{n: x}
}

// Score returns the score of member.
func (z *ZSet) Score(member string) (float64, bool) {
	if z.dict == nil {
		pos, s := z.zlpFind(unsafe.Slice(unsafe.StringData(member), len(member)))
		return s, pos >= 0
	}
	s, ok := z.dict[member]
	return s, ok
}

// ScoreBytes is Score for a member given as bytes, without copying it.
func (z *ZSet) ScoreBytes(member []byte) (float64, bool) {
	if z.dict == nil {
		pos, s := z.zlpFind(member)
		return s, pos >= 0
	}
	s, ok := z.dict[string(member)]
	return s, ok
}

// Members calls fn for every member and its score, in no particular
// order (in order in the small form, whose members are copied).
func (z *ZSet) Members(fn func(member string, score float64)) {
	if z.dict == nil {
		for pos := 0; pos < len(z.lp); {
			m, s, next := zlpAt(z.lp, pos)
			fn(string(m), s)
			pos = next
		}
		return
	}
	for m, s := range z.dict {
		fn(m, s)
	}
}
