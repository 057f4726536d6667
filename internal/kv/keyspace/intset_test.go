package keyspace

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func isValues(is []byte) []int64 {
	out := make([]int64, 0, isLen(is))
	for i := range isLen(is) {
		out = append(out, isGet(is, i))
	}
	return out
}

// TestIntsetOps: inserts and removals across the width boundaries, both
// ways: the width after each step, the values ascending, and a removal
// never narrowing the width (as Redis).
func TestIntsetOps(t *testing.T) {
	type op struct {
		del  bool
		v    int64
		ok   bool // new / was there
		w    int
		want []int64
	}
	const i16, i32 = math.MaxInt16, math.MaxInt32
	tests := []struct {
		name string
		ops  []op
	}{
		{"16 to 32 up", []op{
			{false, i16, true, 2, []int64{i16}},
			{false, -i16 - 1, true, 2, []int64{-i16 - 1, i16}},
			{false, i16 + 1, true, 4, []int64{-i16 - 1, i16, i16 + 1}},
			{false, i16, false, 4, []int64{-i16 - 1, i16, i16 + 1}},
			{true, i16 + 1, true, 4, []int64{-i16 - 1, i16}},
			{true, i16 + 1, false, 4, []int64{-i16 - 1, i16}},
		}},
		{"16 to 32 down", []op{
			{false, 0, true, 2, []int64{0}},
			{false, -i16 - 2, true, 4, []int64{-i16 - 2, 0}},
			{false, -i16 - 1, true, 4, []int64{-i16 - 2, -i16 - 1, 0}},
		}},
		{"32 to 64 up", []op{
			{false, i32, true, 4, []int64{i32}},
			{false, i32 + 1, true, 8, []int64{i32, i32 + 1}},
			{false, 5, true, 8, []int64{5, i32, i32 + 1}},
			{true, i32, true, 8, []int64{5, i32 + 1}},
		}},
		{"32 to 64 down", []op{
			{false, -i32 - 1, true, 4, []int64{-i32 - 1}},
			{false, -i32 - 2, true, 8, []int64{-i32 - 2, -i32 - 1}},
		}},
		{"16 to 64 at once", []op{
			{false, 1, true, 2, []int64{1}},
			{false, 2, true, 2, []int64{1, 2}},
			{false, math.MaxInt64, true, 8, []int64{1, 2, math.MaxInt64}},
			{false, math.MinInt64, true, 8, []int64{math.MinInt64, 1, 2, math.MaxInt64}},
			{true, math.MinInt64, true, 8, []int64{1, 2, math.MaxInt64}},
			{true, 2, true, 8, []int64{1, math.MaxInt64}},
		}},
		{"middle inserts", []op{
			{false, 10, true, 2, []int64{10}},
			{false, 30, true, 2, []int64{10, 30}},
			{false, 20, true, 2, []int64{10, 20, 30}},
			{false, -1, true, 2, []int64{-1, 10, 20, 30}},
			{true, 20, true, 2, []int64{-1, 10, 30}},
			{true, 99999, false, 2, []int64{-1, 10, 30}}, // wider than the set: not there
			{true, 11, false, 2, []int64{-1, 10, 30}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := isNew(isWidthOf(tc.ops[0].v), 0)
			for i, o := range tc.ops {
				var ok bool
				if o.del {
					is, ok = isRemove(is, o.v)
				} else {
					is, ok = isInsert(is, o.v)
				}
				if ok != o.ok || isWidth(is) != o.w || !slices.Equal(isValues(is), o.want) {
					t.Fatalf("op %d (%v %d): ok %v width %d values %v, want %v %d %v",
						i, o.del, o.v, ok, isWidth(is), isValues(is), o.ok, o.w, o.want)
				}
				for _, v := range o.want {
					if _, found := isSearch(is, v); !found {
						t.Fatalf("op %d: %d not found", i, v)
					}
				}
				var got []string
				isEach(is, func(m []byte) { got = append(got, string(m)) })
				for j, v := range o.want {
					if got[j] != strconv.FormatInt(v, 10) {
						t.Fatalf("op %d: each %v, want %v", i, got, o.want)
					}
				}
			}
		})
	}
}

// TestParseSetInt: what Redis's string2ll takes as an intset member.
func TestParseSetInt(t *testing.T) {
	tests := []struct {
		in string
		v  int64
		ok bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"-1", -1, true},
		{"32767", 32767, true},
		{"-32768", -32768, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"-0", 0, false},
		{"00", 0, false},
		{"007", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"1a", 0, false},
		{"1.0", 0, false},
		{"123456789012345678901", 0, false},
	}
	for _, tc := range tests {
		v, ok := parseSetInt([]byte(tc.in))
		if v != tc.v || ok != tc.ok {
			t.Errorf("parseSetInt(%q) = %d %v, want %d %v", tc.in, v, ok, tc.v, tc.ok)
		}
	}
}

// setForm names a set's form.
func setForm(s *Set) string {
	switch {
	case s.Intset():
		return "intset"
	case s.Small():
		return "small"
	}
	return "map"
}

// TestSetForms: which form a set takes as members come, and the limit
// set-max-intset-entries, read at each add.
func TestSetForms(t *testing.T) {
	many := func(n int, f string) []string {
		var out []string
		for i := range n {
			out = append(out, strconv.Itoa(i)+f)
		}
		return out
	}
	tests := []struct {
		name    string
		members []string
		lim     int
		want    string
	}{
		{"integers", []string{"3", "1", "2"}, 512, "intset"},
		{"a word first", []string{"a", "1"}, 512, "small"},
		{"a word later", []string{"1", "2", "a"}, 512, "small"},
		{"-0", []string{"-0"}, 512, "small"},
		{"past 2^63", []string{"1", "9223372036854775808"}, 512, "small"},
		{"long member", []string{"1", string(make([]byte, 65))}, 512, "map"},
		{"512 integers", many(512, ""), 512, "intset"},
		{"513 integers", many(513, ""), 512, "map"},
		{"limit 2, 3 integers", many(3, ""), 2, "small"},
		{"limit 0", []string{"1"}, 0, "small"},
		{"limit 1000", many(1000, ""), 1000, "intset"},
		{"129 integers then a word", append(many(129, ""), "a"), 512, "map"},
		{"128 integers then a word", append(many(127, ""), "a"), 512, "small"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSet()
			model := map[string]bool{}
			for _, m := range tc.members {
				if s.AddWithin([]byte(m), tc.lim) == model[m] {
					t.Fatalf("add %q: new is %v", m, !model[m])
				}
				model[m] = true
			}
			if f := setForm(s); f != tc.want || s.Len() != len(model) {
				t.Fatalf("form %s len %d, want %s %d", f, s.Len(), tc.want, len(model))
			}
			for m := range model {
				if !s.Has([]byte(m)) {
					t.Fatalf("%q missing", m)
				}
			}
		})
	}
}

// TestSetModel: random adds and removals of integers (around the width
// boundaries), near-integers and words against a map, with the limit
// changing as CONFIG SET would change it.
func TestSetModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := NewSet()
		model := map[string]bool{}
		edges := []int64{0, 1, -1, math.MaxInt16, math.MaxInt16 + 1, math.MinInt16, math.MinInt16 - 1,
			math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1, math.MaxInt64, math.MinInt64}
		member := func() string {
			switch r := rng.IntN(100); {
			case r < 40:
				return strconv.Itoa(rng.IntN(300) - 150)
			case r < 70:
				return strconv.FormatInt(edges[rng.IntN(len(edges))]+int64(rng.IntN(3)-1), 10)
			case r < 72:
				return "-0"
			case r < 74:
				return "0" + strconv.Itoa(rng.IntN(10))
			case r < 76:
				return "w" + strconv.Itoa(rng.IntN(20))
			}
			return strconv.FormatInt(int64(rng.Uint64()), 10)
		}
		lim := 64 + rng.IntN(512)
		wantInts := true
		for step := range 3000 {
			m := member()
			if rng.IntN(3) == 0 {
				if s.Remove([]byte(m)) != model[m] {
					t.Fatalf("seed %d step %d: remove %q", seed, step, m)
				}
				delete(model, m)
			} else {
				if s.AddWithin([]byte(m), lim) == model[m] {
					t.Fatalf("seed %d step %d: add %q", seed, step, m)
				}
				if !model[m] {
					if _, ok := parseSetInt([]byte(m)); !ok || len(model)+1 > lim {
						wantInts = false
					}
				}
				model[m] = true
			}
			if len(model) > 0 && s.Intset() != wantInts || s.Len() != len(model) {
				t.Fatalf("seed %d step %d: intset %v len %d, want %v %d", seed, step, s.Intset(), s.Len(), wantInts, len(model))
			}
			if step%100 == 0 {
				var prev int64
				n := 0
				s.Each(func(b []byte) {
					if !model[string(b)] {
						t.Fatalf("seed %d: member %q not in the model", seed, b)
					}
					if v, _ := parseSetInt(b); s.Intset() && n > 0 && v <= prev {
						t.Fatalf("seed %d: intset not ascending at %q", seed, b)
					} else {
						prev = v
					}
					n++
				})
				if n != len(model) {
					t.Fatalf("seed %d: each %d, model %d", seed, n, len(model))
				}
				c := s.Clone()
				if c.Len() != s.Len() || c.Intset() != s.Intset() || c.Small() != s.Small() {
					t.Fatalf("seed %d: clone differs", seed)
				}
			}
		}
	}
}

// TestIntsetRandom: picks are distinct members, each about equally often
// (an intset's are uniform), with a seeded source.
func TestIntsetRandom(t *testing.T) {
	s := NewSet()
	for i := range 10 {
		s.Add([]byte(strconv.Itoa(i * 1000)))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	counts := map[string]int{}
	for range 10000 {
		got := s.randomMembers(2, rng.IntN)
		if len(got) != 2 || got[0] == got[1] || !s.Has([]byte(got[0])) || !s.Has([]byte(got[1])) {
			t.Fatalf("picks %v", got)
		}
		counts[got[0]]++
	}
	for m, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("%s picked %d times of 10000, want about 1000", m, n)
		}
	}
	if got := s.randomMembers(10, rng.IntN); len(got) != 10 {
		t.Fatalf("all: %v", got)
	}
}

// FuzzIntset: a byte string drives adds and removals of integers of all
// widths; the set must agree with a sorted model.
func FuzzIntset(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0x80, 0xff, 7})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0x00, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewSet()
		model := map[int64]bool{}
		peak := 0
		for i := 0; i+1 < len(data); i += 2 {
			op, b := data[i], data[i+1]
			var v int64
			switch op % 4 {
			case 0:
				v = int64(int8(b))
			case 1:
				v = int64(int8(b)) << 14
			case 2:
				v = int64(int8(b)) << 30
			default:
				v = int64(int8(b)) << 56
			}
			m := []byte(strconv.FormatInt(v, 10))
			if op&0x80 != 0 {
				if s.Remove(m) != model[v] {
					t.Fatalf("remove %d", v)
				}
				delete(model, v)
			} else {
				if s.Add(m) == model[v] {
					t.Fatalf("add %d", v)
				}
				model[v] = true
				peak = max(peak, len(model))
			}
		}
		want := make([]string, 0, len(model))
		keys := make([]int64, 0, len(model))
		for v := range model {
			keys = append(keys, v)
		}
		slices.Sort(keys)
		for _, v := range keys {
			want = append(want, strconv.FormatInt(v, 10))
		}
		if len(model) > 0 && peak <= DefaultIntsetEntries && !s.Intset() {
			t.Fatalf("not an intset: %d members", len(model))
		}
		if got := s.Members(); !slices.Equal(got, want) {
			t.Fatalf("members %v, want %v", got, want)
		}
	})
}
