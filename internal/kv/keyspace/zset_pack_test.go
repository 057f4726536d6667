package keyspace

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// zmodel is a sorted set as a slice sorted by (score, member).
type zmodel []ZNode

func (m zmodel) find(member string) int {
	for i, x := range m {
		if x.Member == member {
			return i
		}
	}
	return -1
}

func (m *zmodel) add(member string, score float64) bool {
	i := m.find(member)
	if i >= 0 {
		*m = slices.Delete(*m, i, i+1)
	}
	j, _ := slices.BinarySearchFunc(*m, ZNode{Member: member, Score: score}, func(a, b ZNode) int {
		switch {
		case zless(a.Score, a.Member, b.Score, b.Member):
			return -1
		case zless(b.Score, b.Member, a.Score, a.Member):
			return 1
		}
		return 0
	})
	*m = slices.Insert(*m, j, ZNode{Member: member, Score: score})
	return i < 0
}

func (m *zmodel) remove(member string) bool {
	i := m.find(member)
	if i >= 0 {
		*m = slices.Delete(*m, i, i+1)
	}
	return i >= 0
}

// zcheck compares z with the model: order both ways, ranks, scores.
func zcheck(t *testing.T, z *ZSet, m zmodel) {
	t.Helper()
	if z.Card() != len(m) {
		t.Fatalf("card %d, model %d", z.Card(), len(m))
	}
	i := 0
	for x := z.First(); x.Valid(); x = x.Next() {
		if i >= len(m) || x.Member() != m[i].Member || x.Score() != m[i].Score {
			t.Fatalf("forward %d: %q %v, model %v", i, x.Member(), x.Score(), m)
		}
		i++
	}
	if i != len(m) {
		t.Fatalf("forward: %d members, model %d", i, len(m))
	}
	for x := z.Last(); x.Valid(); x = x.Prev() {
		i--
		if i < 0 || string(x.MemberBytes()) != m[i].Member || x.Score() != m[i].Score {
			t.Fatalf("backward %d: %q, model %v", i, x.Member(), m)
		}
	}
	if i != 0 {
		t.Fatalf("backward stopped at %d", i)
	}
	for r, x := range m {
		if got := z.Rank(x.Member); got != r {
			t.Fatalf("rank(%q) = %d, want %d", x.Member, got, r)
		}
		if it := z.ByRank(r); !it.Valid() || it.Member() != x.Member {
			t.Fatalf("byRank(%d) wrong", r)
		}
		if s, ok := z.Score(x.Member); !ok || s != x.Score {
			t.Fatalf("score(%q) = %v %v, want %v", x.Member, s, ok, x.Score)
		}
	}
	if z.ByRank(len(m)).Valid() || z.ByRank(-1).Valid() {
		t.Fatal("byRank out of range is valid")
	}
}

// zcheckRanges compares the range lookups with the model's.
func zcheckRanges(t *testing.T, z *ZSet, m zmodel, sr ScoreRange, lr LexRange) {
	t.Helper()
	first, last := -1, -1
	for i, x := range m {
		if sr.GteMin(x.Score) && sr.LteMax(x.Score) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	at := func(it ZIter) int {
		if !it.Valid() {
			return -1
		}
		return z.Rank(it.Member())
	}
	if got := at(z.FirstInScore(&sr)); got != first {
		t.Fatalf("FirstInScore %+v = %d, want %d (%v)", sr, got, first, m)
	}
	if got := at(z.LastInScore(&sr)); got != last {
		t.Fatalf("LastInScore %+v = %d, want %d (%v)", sr, got, last, m)
	}
	// lex ranges are defined when all scores are equal, as in Redis
	for _, x := range m {
		if x.Score != m[0].Score {
			return
		}
	}
	first, last = -1, -1
	for i, x := range m {
		if lr.GteMin(x.Member) {
			if lr.LteMax(x.Member) {
				first = i
			}
			break
		}
	}
	for i, x := range m {
		if !lr.LteMax(x.Member) {
			break
		}
		last = i
	}
	if last >= 0 && !lr.GteMin(m[last].Member) {
		last = -1
	}
	if got := at(z.FirstInLex(&lr)); got != first {
		t.Fatalf("FirstInLex %+v = %d, want %d (%v)", lr, got, first, m)
	}
	if got := at(z.LastInLex(&lr)); got != last {
		t.Fatalf("LastInLex %+v = %d, want %d (%v)", lr, got, last, m)
	}
}

func TestZSetForms(t *testing.T) {
	long := strings.Repeat("x", 65)
	for _, tt := range []struct {
		name   string
		lim    ZSetLimits
		adds   []string // members, scored by their position
		packed bool
	}{
		{"empty stays small", DefaultZSetLimits, nil, true},
		{"3 members", DefaultZSetLimits, []string{"a", "b", "c"}, true},
		{"128 members", DefaultZSetLimits, zmembers(128, 1), true},
		{"129 members", DefaultZSetLimits, zmembers(129, 1), false},
		{"member of 64 bytes", DefaultZSetLimits, []string{strings.Repeat("x", 64)}, true},
		{"member of 65 bytes", DefaultZSetLimits, []string{"a", long}, false},
		{"entries 0", ZSetLimits{Entries: 0, Value: 64}, []string{"a"}, false},
		{"entries 2", ZSetLimits{Entries: 2, Value: 64}, []string{"a", "b", "c"}, false},
		{"value 1000: backlen of 2 bytes", ZSetLimits{Entries: 128, Value: 1000}, []string{strings.Repeat("y", 200), "a", strings.Repeat("z", 900)}, true},
		{"value 20000: backlen of 3 bytes", ZSetLimits{Entries: 128, Value: 20000}, []string{strings.Repeat("q", 17000), "b"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			z := NewZSet()
			var m zmodel
			for i, a := range tt.adds {
				if !z.AddWithin([]byte(a), float64(len(tt.adds)-i), tt.lim) {
					t.Fatalf("add %q: not new", a)
				}
				m.add(a, float64(len(tt.adds)-i))
			}
			if z.Packed() != tt.packed {
				t.Fatalf("packed %v, want %v", z.Packed(), tt.packed)
			}
			zcheck(t, z, m)
			// the form holds for good: removing the members keeps it
			for _, a := range tt.adds {
				if !z.Remove(a) || z.Remove(a) {
					t.Fatalf("remove %q", a)
				}
				m.remove(a)
				zcheck(t, z, m)
			}
			if z.Packed() != tt.packed {
				t.Fatalf("after removals packed %v, want %v", z.Packed(), tt.packed)
			}
		})
	}
}

func zmembers(n, width int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "m" + strconv.Itoa(i) + strings.Repeat("-", width)
	}
	return out
}

func TestZSetUpdateKeepsForm(t *testing.T) {
	z := NewZSet()
	for i, a := range []string{"a", "b", "c"} {
		z.Add(a, float64(i))
	}
	if z.Add("b", 1) || z.Add("b", 7) {
		t.Fatal("update reported new")
	}
	if s, _ := z.Score("b"); s != 7 || z.Last().Member() != "b" || !z.Packed() {
		t.Fatalf("score %v last %q packed %v", s, z.Last().Member(), z.Packed())
	}
	// a limit passed on an update of a present member changes nothing
	z.AddWithin([]byte("a"), 9, ZSetLimits{Entries: 1, Value: 0})
	if !z.Packed() {
		t.Fatal("an update converted the set")
	}
}

func TestZSetNegativeZero(t *testing.T) {
	// Redis's listpack keeps -0 as 0; its skip list keeps -0
	z := NewZSet()
	z.Add("a", math.Copysign(0, -1))
	if s, _ := z.Score("a"); math.Signbit(s) {
		t.Fatal("small form kept -0")
	}
	big := NewZSet()
	big.AddWithin([]byte("a"), math.Copysign(0, -1), ZSetLimits{})
	if s, _ := big.Score("a"); big.Packed() || !math.Signbit(s) {
		t.Fatalf("big form: packed %v, score %v", big.Packed(), s)
	}
	big.Conform(DefaultZSetLimits)
	if s, _ := big.Score("a"); !big.Packed() || math.Signbit(s) {
		t.Fatalf("conformed: packed %v, -0 kept %v", big.Packed(), math.Signbit(s))
	}
}

func TestZSetConformAndClone(t *testing.T) {
	lim := ZSetLimits{Entries: 4, Value: 8}
	z := NewZSet()
	var m zmodel
	for i, a := range []string{"d", "c", "b", "a", "e"} {
		z.AddWithin([]byte(a), float64(i%2), lim)
		m.add(a, float64(i%2))
	}
	if z.Packed() {
		t.Fatal("5 members within 4 are small")
	}
	z.Remove("e")
	m.remove("e")
	if z.Packed() {
		t.Fatal("a big set became small by a removal")
	}
	c := z.Clone()
	if c.Packed() {
		t.Fatal("clone of a big set is small")
	}
	zcheck(t, c, m)
	z.Conform(lim)
	if !z.Packed() {
		t.Fatal("4 members within 4 not made small")
	}
	zcheck(t, z, m)
	c = z.Clone()
	if !c.Packed() {
		t.Fatal("clone of a small set is big")
	}
	c.Add("f", 3) // the clone is a copy
	zcheck(t, z, m)
	z.Conform(ZSetLimits{Entries: 3, Value: 8})
	if z.Packed() {
		t.Fatal("4 members within 3 kept small")
	}
	zcheck(t, z, m)
}

// TestZSetHeaderGrows checks that a skip list's header has the levels in
// use, not 32 from the start.
func TestZSetHeaderGrows(t *testing.T) {
	z := NewZSet()
	z.AddWithin([]byte("a"), 1, ZSetLimits{})
	if z.Packed() || len(z.sl.header.level) > z.sl.level || len(z.sl.header.level) >= zMaxLevel {
		t.Fatalf("header levels %d for level %d", len(z.sl.header.level), z.sl.level)
	}
	for i := range 10000 {
		z.Add(strconv.Itoa(i), float64(i))
	}
	if len(z.sl.header.level) < z.sl.level {
		t.Fatalf("header levels %d below level %d", len(z.sl.header.level), z.sl.level)
	}
	if got := z.Memory(); got > 2*int64(z.Card())*zsetMemberCost {
		t.Fatalf("memory %d for %d members", got, z.Card())
	}
}

// TestZSetModel runs random operations on sets of both forms and
// compares them with a sorted slice.
func TestZSetModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		lim := ZSetLimits{Entries: 1 + r.IntN(40), Value: 1 + r.IntN(12)}
		zsetModelRun(t, r, lim, 600, seed%2 == 0)
	}
}

// zsetModelRun runs ops random operations; with sameScore every score is
// 0 (so lex ranges are checked).
func zsetModelRun(t *testing.T, r *rand.Rand, lim ZSetLimits, ops int, sameScore bool) {
	t.Helper()
	z := NewZSet()
	var m zmodel
	member := func() string {
		b := make([]byte, 1+r.IntN(14))
		for i := range b {
			b[i] = "abcde"[r.IntN(5)]
		}
		return string(b)
	}
	score := func() float64 {
		if sameScore {
			return 0
		}
		switch r.IntN(8) {
		case 0:
			return math.Inf(1)
		case 1:
			return math.Inf(-1)
		case 2:
			return 0
		}
		return float64(r.IntN(9)) / 2
	}
	for i := 0; i < ops; i++ {
		switch op := r.IntN(10); {
		case op < 5:
			mb, s := member(), score()
			if got, want := z.AddWithin([]byte(mb), s, lim), m.add(mb, s); got != want {
				t.Fatalf("add %q: %v, model %v", mb, got, want)
			}
		case op < 8:
			mb := member()
			if len(m) > 0 && r.IntN(2) == 0 {
				mb = m[r.IntN(len(m))].Member
			}
			if got, want := z.Remove(mb), m.remove(mb); got != want {
				t.Fatalf("remove %q: %v, model %v", mb, got, want)
			}
		case op < 9:
			z.Conform(lim)
		default:
			lo, hi := score(), score()
			zcheckRanges(t, z, m,
				ScoreRange{Min: lo, Max: hi, MinEx: r.IntN(2) == 0, MaxEx: r.IntN(2) == 0},
				LexRange{Min: member(), Max: member(), MinEx: r.IntN(2) == 0, MaxEx: r.IntN(2) == 0,
					MinInf: r.IntN(5) == 0, MaxInf: r.IntN(5) == 0})
		}
		// never small beyond the limits
		fits := len(m) <= lim.Entries
		for _, x := range m {
			fits = fits && len(x.Member) <= lim.Value
		}
		if z.Packed() && !fits {
			t.Fatalf("small beyond the limits %+v: %d members", lim, len(m))
		}
		zcheck(t, z, m)
	}
}

// FuzzZSetPacked applies operations decoded from the input to a set and
// to the model.
func FuzzZSetPacked(f *testing.F) {
	f.Add([]byte("\x00a\x01\x00b\x02\x01a\x03"), uint8(8), uint8(4))
	f.Add([]byte("\x00aaaaaaaaa\x05\x00b\x00\x02"), uint8(2), uint8(200))
	f.Fuzz(zsetFuzzOps)
}

func zsetFuzzOps(t *testing.T, ops []byte, entries, value uint8) {
	ops = ops[:min(len(ops), 4096)] // the model is slow
	{
		lim := ZSetLimits{Entries: int(entries), Value: int(value)}
		z := NewZSet()
		var m zmodel
		for len(ops) >= 2 {
			op, n := ops[0]%4, int(ops[1])%20
			ops = ops[2:]
			n = min(n, len(ops))
			mb := string(ops[:n])
			ops = ops[n:]
			var s float64
			if len(ops) > 0 {
				s = float64(int8(ops[0])) / 4
				ops = ops[1:]
			}
			switch op {
			case 0, 1:
				if got, want := z.AddWithin([]byte(mb), s, lim), m.add(mb, s); got != want {
					t.Fatalf("add %q: %v, model %v", mb, got, want)
				}
			case 2:
				if got, want := z.Remove(mb), m.remove(mb); got != want {
					t.Fatalf("remove %q: %v, model %v", mb, got, want)
				}
			case 3:
				z.Conform(lim)
				zcheckRanges(t, z, m, ScoreRange{Min: s, Max: s + 2}, LexRange{Min: mb, MaxInf: true})
			}
			if z.Packed() && (len(m) > lim.Entries || slices.ContainsFunc(m, func(x ZNode) bool { return len(x.Member) > lim.Value })) {
				t.Fatalf("small beyond %+v", lim)
			}
			if z.Card() != len(m) {
				t.Fatalf("card %d, model %d", z.Card(), len(m))
			}
		}
		zcheck(t, z, m)
	}
}

// TestZSetPackedScores checks that scores of every kind read back from
// the small form (an integral one is kept as an integer).
func TestZSetPackedScores(t *testing.T) {
	z := NewZSet()
	var m zmodel
	for i, s := range []float64{0, 1, -1, 63, 64, -65, 1 << 20, 1 << 53, -(1 << 53), 1<<53 + 2, -(1<<53 + 2),
		0.5, -2.25, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), 1e300, 123456789012345678} {
		mb := "m" + strconv.Itoa(i)
		z.Add(mb, s)
		m.add(mb, s)
	}
	if !z.Packed() {
		t.Fatal("not small")
	}
	zcheck(t, z, m)
	if l := zlpEntryLen([]byte("a"), 3); l != 4 {
		t.Fatalf("entry of a small integer score: %d bytes, want 4", l)
	}
}

// TestZSetPackedNoAllocs checks that reads, steps and updates of the small
// form in place allocate nothing.
func TestZSetPackedNoAllocs(t *testing.T) {
	z := NewZSet()
	for i := range 50 {
		z.Add("member-"+strconv.Itoa(i), float64(i%7)/2)
	}
	m := []byte("member-17")
	sr := ScoreRange{Min: 1, Max: 2}
	allocs := testing.AllocsPerRun(100, func() {
		z.AddWithin(m, 1.5, DefaultZSetLimits)  // present at that score
		z.AddWithin(m, 3.25, DefaultZSetLimits) // moved: fits the capacity
		z.AddWithin(m, 1.5, DefaultZSetLimits)
		z.ScoreBytes(m)
		z.Score("member-3")
		z.Rank("member-40")
		n := 0
		for x := z.FirstInScore(&sr); x.Valid() && sr.LteMax(x.Score()); x = x.Next() {
			n += len(x.MemberBytes())
		}
		for x := z.Last(); x.Valid(); x = x.Prev() {
			n += len(x.MemberBytes())
		}
		_ = z.ByRank(25).MemberBytes()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}
