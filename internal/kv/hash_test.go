package kv

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestHashEncodings drives the compact and the map form of a hash with
// random operations and compares both with a plain map.
func TestHashEncodings(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		h := newHash()
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
				if added := h.set([]byte(f), []byte(v)); added == existed {
					t.Fatalf("set %s: added=%v, existed=%v", f, added, existed)
				}
				model[f] = v
			case 2:
				_, existed := model[f]
				if h.del([]byte(f)) != existed {
					t.Fatalf("del %s", f)
				}
				delete(model, f)
			case 3:
				v, ok := h.get([]byte(f))
				mv, mok := model[f]
				if ok != mok || string(v) != mv {
					t.Fatalf("get %s = %q %v, want %q %v", f, v, ok, mv, mok)
				}
			}
			if h.len() != len(model) {
				t.Fatalf("len %d, want %d", h.len(), len(model))
			}
		}
		seen := 0
		h.each(func(f, v []byte) {
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
		s := newSet()
		model := map[string]bool{}
		for op := 0; op < 400; op++ {
			m := fmt.Sprint("m", r.IntN(160))
			if r.IntN(300) == 0 {
				m = strings.Repeat("y", 80) // forces the map form
			}
			switch r.IntN(3) {
			case 0:
				if s.add([]byte(m)) == model[m] {
					t.Fatalf("add %s", m)
				}
				model[m] = true
			case 1:
				if s.remove([]byte(m)) != model[m] {
					t.Fatalf("remove %s", m)
				}
				delete(model, m)
			case 2:
				if s.has([]byte(m)) != model[m] {
					t.Fatalf("has %s", m)
				}
			}
			if s.len() != len(model) {
				t.Fatalf("len %d, want %d", s.len(), len(model))
			}
		}
		got := s.members()
		if len(got) != len(model) {
			t.Fatalf("members: %d, want %d", len(got), len(model))
		}
		for _, m := range got {
			if !model[m] {
				t.Fatalf("member %s not in model", m)
			}
		}
	}
	var nilSet *set
	if nilSet.len() != 0 || nilSet.has([]byte("x")) || len(nilSet.members()) != 0 {
		t.Fatal("nil set is not empty")
	}
}
