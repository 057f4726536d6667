package peer

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestKeySlot(t *testing.T) {
	// values from the Redis Cluster specification and redis-cli CLUSTER KEYSLOT
	tests := []struct {
		key  string
		want uint16
	}{
		{"foo", 12182},
		{"bar", 5061},
		{"hello", 866},
		{"{user1000}.following", KeySlot([]byte("user1000"))},
		{"{user1000}.followers", KeySlot([]byte("user1000"))},
		{"foo{}{bar}", KeySlot([]byte("foo{}{bar}"))}, // empty tag: the whole key
		{"foo{{bar}}zap", KeySlot([]byte("{bar"))},
		{"foo{bar}{zap}", KeySlot([]byte("bar"))},
	}
	for _, tt := range tests {
		if got := KeySlot([]byte(tt.key)); got != tt.want {
			t.Errorf("KeySlot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestSlotClaims(t *testing.T) {
	a, b := testID(0), testID(1) // a < b
	tests := []struct {
		name   string
		claims []SlotOwner
		want   SlotOwner
	}{
		{"first claim wins an empty slot", []SlotOwner{{a, 0}}, SlotOwner{a, 0}},
		{"higher epoch wins", []SlotOwner{{a, 1}, {b, 2}}, SlotOwner{b, 2}},
		{"lower epoch loses", []SlotOwner{{b, 2}, {a, 1}}, SlotOwner{b, 2}},
		{"tie: smaller id wins, order 1", []SlotOwner{{a, 3}, {b, 3}}, SlotOwner{a, 3}},
		{"tie: smaller id wins, order 2", []SlotOwner{{b, 3}, {a, 3}}, SlotOwner{a, 3}},
		{"same owner newer epoch", []SlotOwner{{a, 1}, {a, 5}}, SlotOwner{a, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m SlotMap
			for _, c := range tt.claims {
				m.Claim(42, c.Node, c.Epoch)
			}
			if got := m.Owner(42); got != tt.want {
				t.Errorf("owner = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseSlotRange(t *testing.T) {
	tests := []struct {
		in      string
		want    SlotRange
		wantErr bool
	}{
		{"0", SlotRange{0, 0}, false},
		{"16383", SlotRange{16383, 16383}, false},
		{"0-5460", SlotRange{0, 5460}, false},
		{"16384", SlotRange{}, true},
		{"-1", SlotRange{}, true},
		{"10-5", SlotRange{}, true},
		{"x", SlotRange{}, true},
		{"1-", SlotRange{}, true},
	}
	for _, tt := range tests {
		got, err := ParseSlotRange(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSlotRange(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ErrBadSlot) {
			t.Errorf("ParseSlotRange(%q) err = %v, want ErrBadSlot", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("ParseSlotRange(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestSplitEven(t *testing.T) {
	for n := 1; n <= 7; n++ {
		rs := SplitEven(n)
		next, min, max := 0, NumSlots, 0
		for _, r := range rs {
			if int(r.Start) != next {
				t.Fatalf("n=%d: range %v does not start at %d", n, r, next)
			}
			next = int(r.End) + 1
			min, max = minInt(min, r.Len()), maxInt(max, r.Len())
		}
		if next != NumSlots || max-min > 1 {
			t.Errorf("n=%d: ranges %v cover up to %d, sizes %d..%d", n, rs, next, min, max)
		}
	}
	// what redis-cli --cluster create assigns to three primaries
	if got := SplitEven(3); got[0] != (SlotRange{0, 5460}) || got[1] != (SlotRange{5461, 10922}) {
		t.Errorf("SplitEven(3) = %v", got)
	}
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func TestSlotsOf(t *testing.T) {
	var m SlotMap
	a := testID(0)
	for _, s := range []uint16{1, 2, 3, 7, 16383} {
		m.Set(s, a, 1)
	}
	got := m.SlotsOf(a)
	want := []SlotRange{{1, 3}, {7, 7}, {16383, 16383}}
	if len(got) != len(want) {
		t.Fatalf("SlotsOf = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("SlotsOf = %v, want %v", got, want)
		}
	}
}

// TestSetRange: assigning ranges keeps the per-owner counts that
// Primaries and CountOf read, as slot-by-slot Set does.
func TestSetRange(t *testing.T) {
	a, b := testID(0), testID(1)
	var byRange, bySlot SlotMap
	steps := []struct {
		r    SlotRange
		node NodeID
	}{{SlotRange{0, 99}, a}, {SlotRange{50, 149}, b}, {SlotRange{0, 9}, ""}, {SlotRange{140, 160}, a}}
	for _, st := range steps {
		byRange.setRange(st.r, st.node, 7)
		for s := int(st.r.Start); s <= int(st.r.End); s++ {
			bySlot.Set(uint16(s), st.node, 7)
		}
	}
	if byRange.owners != bySlot.owners {
		t.Fatal("owners differ")
	}
	for _, id := range []NodeID{a, b} {
		if byRange.CountOf(id) != bySlot.CountOf(id) {
			t.Errorf("count of %s: %d, want %d", id[36:], byRange.CountOf(id), bySlot.CountOf(id))
		}
	}
	if byRange.Primaries() != 2 || byRange.Count() != 151 {
		t.Errorf("primaries %d, count %d", byRange.Primaries(), byRange.Count())
	}
}

// TestSlotMapCountKept: Count (kept as slots change) equals the slots
// with an owner, through claims, sets, unassignments and range sets.
func TestSlotMapCountKept(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ids := []NodeID{"", "a", "b", "c"}
	var m SlotMap
	for i := range 500 {
		s := uint16(rng.IntN(NumSlots))
		node := ids[rng.IntN(len(ids))]
		switch rng.IntN(3) {
		case 0:
			m.Claim(s, node, rng.Uint64N(5))
		case 1:
			m.Set(s, node, rng.Uint64N(5))
		default:
			end := min(int(s)+rng.IntN(3000), NumSlots-1)
			m.setRange(SlotRange{s, uint16(end)}, node, rng.Uint64N(5))
		}
		want := 0
		for _, o := range m.owners {
			if o.Node != "" {
				want++
			}
		}
		if got := m.Count(); got != want {
			t.Fatalf("step %d: Count %d, %d slots assigned", i, got, want)
		}
		if i%50 == 0 && m.clone().Count() != want {
			t.Fatalf("step %d: clone's Count %d, want %d", i, m.clone().Count(), want)
		}
	}
}
