package keyspace

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestHashEncodings drives the compact and the map form of a hash with
// random operations and compares both with a plain map.
func TestHashEncodings(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		h := NewHash()
		model := map[string]string{}
		for op := 0; op < 400; op++ {
			f := fmt.Sprint("f", r.IntN(150))
			switch r.IntN(4) {
			case 0, 1:
				v := strings.Repeat("v", r.IntN(8))
				if r.IntN(200) == 0 {
					v = strings.Repeat("x", 100) // forces the map form
				}
				_, existed := model[f]
				if added := h.Set([]byte(f), []byte(v)); added == existed {
					t.Fatalf("set %s: added=%v, existed=%v", f, added, existed)
				}
				model[f] = v
			case 2:
				_, existed := model[f]
				if h.Del([]byte(f)) != existed {
					t.Fatalf("del %s", f)
				}
				delete(model, f)
			case 3:
				v, ok := h.Get([]byte(f))
				mv, mok := model[f]
				if ok != mok || string(v) != mv {
					t.Fatalf("get %s = %q %v, want %q %v", f, v, ok, mv, mok)
				}
			}
			if h.Len() != len(model) {
				t.Fatalf("len %d, want %d", h.Len(), len(model))
			}
		}
		seen := 0
		h.Each(func(f, v []byte) {
			seen++
			if model[string(f)] != string(v) {
				t.Fatalf("each: %s=%s, want %s", f, v, model[string(f)])
			}
		})
		if seen != len(model) {
			t.Fatalf("each saw %d fields, want %d", seen, len(model))
		}
	}
}

// TestSetEncodings drives the compact and the map form of a set with
// random operations and compares both with a plain map.
func TestSetEncodings(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 50; round++ {
		s := NewSet()
		model := map[string]bool{}
		for op := 0; op < 400; op++ {
			m := fmt.Sprint("m", r.IntN(160))
			if r.IntN(300) == 0 {
				m = strings.Repeat("y", 80) // forces the map form
			}
			switch r.IntN(3) {
			case 0:
				if s.Add([]byte(m)) == model[m] {
					t.Fatalf("add %s", m)
				}
				model[m] = true
			case 1:
				if s.Remove([]byte(m)) != model[m] {
					t.Fatalf("remove %s", m)
				}
				delete(model, m)
			case 2:
				if s.Has([]byte(m)) != model[m] {
					t.Fatalf("has %s", m)
				}
			}
			if s.Len() != len(model) {
				t.Fatalf("len %d, want %d", s.Len(), len(model))
			}
		}
		got := s.Members()
		if len(got) != len(model) {
			t.Fatalf("members: %d, want %d", len(got), len(model))
		}
		for _, m := range got {
			if !model[m] {
				t.Fatalf("member %s not in model", m)
			}
		}
	}
	var nilSet *Set
	if nilSet.Len() != 0 || nilSet.Has([]byte("x")) || len(nilSet.Members()) != 0 {
		t.Fatal("nil set is not empty")
	}
}

// TestZSetRanks checks the skip list's spans against a sorted model.
func TestZSetRanks(t *testing.T) {
	z := NewZSet()
	model := map[string]float64{}
	for i := 0; i < 2000; i++ {
		m := strconv.Itoa(i * 7919 % 1000)
		s := float64(i*31%97) / 3
		z.Add(m, s)
		model[m] = s
		if i%5 == 0 {
			victim := strconv.Itoa(i * 13 % 1000)
			z.Remove(victim)
			delete(model, victim)
		}
	}
	if z.Card() != len(model) || z.length != len(model) {
		t.Fatalf("card %d length %d, model %d", z.Card(), z.length, len(model))
	}
	rank := 0
	for x := z.sl.header.level[0].forward; x != nil; x = x.level[0].forward {
		if got := z.Rank(x.Member); got != rank {
			t.Fatalf("rank(%s) = %d, want %d", x.Member, got, rank)
		}
		if y := z.ByRank(rank); y.n != x {
			t.Fatalf("byRank(%d) wrong", rank)
		}
		if x.level[0].forward != nil && !zless(x.Score, x.Member, x.level[0].forward.Score, x.level[0].forward.Member) {
			t.Fatalf("order broken at %s", x.Member)
		}
		rank++
	}
	if rank != len(model) {
		t.Fatalf("walked %d nodes, want %d", rank, len(model))
	}
}

// TestSmallSetHashMemory: a small set or hash is a 16-byte (set) or
// 32-byte (hash) header and one packed slice (SADD k 1 2 3, an intset: 7
// bytes; HSET k a 1 b 1 c 1: 14), its
// count in the slice; the map form's fields are behind a pointer.
func TestSmallSetHashMemory(t *testing.T) {
	s := NewSet()
	for _, m := range []string{"1", "2", "3"} {
		s.Add([]byte(m))
	}
	if m := s.Memory(); m > 32+8 {
		t.Errorf("set of 3: memory %d, want at most 40", m)
	}
	h := NewHash()
	for _, f := range []string{"a", "b", "c"} {
		h.Set([]byte(f), []byte("1"))
	}
	if m := h.Memory(); m > 32+16 {
		t.Errorf("hash of 3: memory %d, want at most 48", m)
	}
	for _, m := range []string{"1", "2", "3"} {
		s.Remove([]byte(m))
	}
	for _, f := range []string{"a", "b", "c"} {
		h.Del([]byte(f))
	}
	if s.Len() != 0 || h.Len() != 0 || !s.Small() || !h.Small() {
		t.Errorf("emptied: set %d, hash %d", s.Len(), h.Len())
	}
}

// TestHashCountLimit: the small form counts up to 65,535 fields; a hash
// allowed more (hash-max-listpack-entries) becomes a map there.
func TestHashCountLimit(t *testing.T) {
	h := NewHash()
	lim := HashLimits{Entries: 1 << 20, Value: 64}
	h.SetWithin([]byte("0"), nil, lim)
	for i := 1; i < 1<<16-2; i++ { // as SetWithin appends, without its search
		h.lp = append(h.lp, byte(len(strconv.Itoa(i))))
		h.lp = strconv.AppendInt(h.lp, int64(i), 10)
		h.lp = append(h.lp, 0)
		h.addN(1)
	}
	h.SetWithin([]byte("65534"), nil, lim)
	if !h.Small() || h.Len() != 1<<16-1 {
		t.Fatalf("65,535 fields: small %v, len %d", h.Small(), h.Len())
	}
	h.SetWithin([]byte("65535"), nil, lim)
	if h.Small() || h.Len() != 1<<16 {
		t.Fatalf("65,536 fields: small %v, len %d", h.Small(), h.Len())
	}
	if v, ok := h.Get([]byte("4242")); !ok || len(v) != 0 {
		t.Fatalf("field 4242: %q %v", v, ok)
	}
}

// FuzzSetHash runs the operations the input spells on a Set and a Hash
// (limits lowered to 6 fields) and on maps, and checks that a small one
// is its 32-byte header and its slice.
func FuzzSetHash(f *testing.F) {
	f.Add([]byte("\x00\x01\x00\x02\x01\x01\x02\x03\x00\x07"))
	f.Fuzz(func(t *testing.T, p []byte) {
		s, h := NewSet(), NewHash()
		ms, mh := map[string]bool{}, map[string]string{}
		lim := HashLimits{Entries: 6, Value: 40}
		for i := 0; i+1 < len(p); i += 2 {
			op, arg := p[i]%4, int(p[i+1])
			k := strconv.Itoa(arg % 9)
			if arg >= 250 {
				k = strings.Repeat("k", 60+arg-250) // over the small forms' lengths
			}
			switch op {
			case 0:
				if s.Add([]byte(k)) == ms[k] {
					t.Fatalf("Add(%q) on %v", k, ms)
				}
				ms[k] = true
			case 1:
				if s.Remove([]byte(k)) != ms[k] {
					t.Fatalf("Remove(%q) on %v", k, ms)
				}
				delete(ms, k)
			case 2:
				v := strings.Repeat("v", arg%5)
				_, had := mh[k]
				if h.SetWithin([]byte(k), []byte(v), lim) == had {
					t.Fatalf("Set(%q) on %v", k, mh)
				}
				mh[k] = v
			case 3:
				_, had := mh[k]
				if h.Del([]byte(k)) != had {
					t.Fatalf("Del(%q) on %v", k, mh)
				}
				delete(mh, k)
			}
			if s.Len() != len(ms) || h.Len() != len(mh) {
				t.Fatalf("len %d %d, models %d %d", s.Len(), h.Len(), len(ms), len(mh))
			}
			n := 0
			s.Each(func(m []byte) {
				n++
				if !ms[string(m)] {
					t.Fatalf("member %q not in %v", m, ms)
				}
			})
			h.Each(func(f, v []byte) {
				n++
				if w, ok := mh[string(f)]; !ok || w != string(v) {
					t.Fatalf("field %q=%q, model %v", f, v, mh)
				}
			})
			if n != len(ms)+len(mh) {
				t.Fatalf("each: %d, models %d", n, len(ms)+len(mh))
			}
			if s.Small() && s.Memory() > 16+int64(cap(s.lp())) || h.Small() && h.Memory() > 32+int64(cap(h.lp)) {
				t.Fatalf("small: memory %d %d for slices of %d %d", s.Memory(), h.Memory(), cap(s.lp()), cap(h.lp))
			}
		}
	})
}
