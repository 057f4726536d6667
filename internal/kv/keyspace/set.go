package keyspace

import (
	"encoding/binary"
	"math/rand/v2"
)

// Small sets are one byte slice of length-prefixed members, like small
// hashes (see hash.go); a set past setMaxSmall members or with a member
// longer than setMaxSmallLen bytes becomes a map for good.
const (
	setMaxSmall    = 128
	setMaxSmallLen = 64
)

// Set is the value of a set key: lp (small) or big's map. The methods
// accept a nil *Set as the empty set. A small set is the 32-byte Set and
// lp: its count in lp's first byte (at most setMaxSmall), then its
// members; what only a big one needs is in big.
type Set struct {
	lp  []byte
	big *setMap // nil while small
}

// setMap is a big set.
type setMap struct {
	m     map[string]struct{}
	bytes int // of the members (Memory)
}

func NewSet() *Set { return &Set{} }

func (s *Set) Len() int {
	switch {
	case s == nil:
		return 0
	case s.big != nil:
		return len(s.big.m)
	}
	return s.n()
}

// n is a small set's count.
func (s *Set) n() int {
	if len(s.lp) == 0 {
		return 0
	}
	return int(s.lp[0])
}

func (s *Set) Small() bool { return s.big == nil }

// find returns the position of a member's entry in lp and of the next
// entry, or -1.
func (s *Set) find(b []byte) (int, int) {
	for pos := 1; pos < len(s.lp); {
		m, next := lpNext(s.lp, pos)
		if string(m) == string(b) {
			return pos, next
		}
		pos = next
	}
	return -1, -1
}

func (s *Set) Has(b []byte) bool {
	if s == nil {
		return false
	}
	if s.big != nil {
		_, ok := s.big.m[string(b)]
		return ok
	}
	p, _ := s.find(b)
	return p >= 0
}

// Add adds a member and reports whether it is new.
func (s *Set) Add(b []byte) bool {
	if big := s.big; big != nil {
		if _, ok := big.m[string(b)]; ok {
			return false
		}
		big.m[string(b)] = struct{}{}
		big.bytes += len(b)
		return true
	}
	if len(b) > setMaxSmallLen || s.n() >= setMaxSmall {
		if s.Has(b) {
			return false
		}
		s.toMap()
		return s.Add(b)
	}
	if p, _ := s.find(b); p >= 0 {
		return false
	}
	if len(s.lp) == 0 {
		s.lp = append(s.lp, 0)
	}
	s.lp = binary.AppendUvarint(s.lp, uint64(len(b)))
	s.lp = append(s.lp, b...)
	s.lp[0]++
	return true
}

// Remove deletes a member and reports whether it was there.
func (s *Set) Remove(b []byte) bool {
	if s == nil {
		return false
	}
	if big := s.big; big != nil {
		_, ok := big.m[string(b)]
		if ok {
			delete(big.m, string(b))
			big.bytes -= len(b)
		}
		return ok
	}
	p, next := s.find(b)
	if p < 0 {
		return false
	}
	s.lp = append(s.lp[:p], s.lp[next:]...)
	s.lp[0]--
	return true
}

// Each calls fn for every member; the slice is valid during the call only
// and fn must not change the set.
func (s *Set) Each(fn func(m []byte)) {
	if s == nil {
		return
	}
	if s.big != nil {
		for m := range s.big.m {
			fn([]byte(m))
		}
		return
	}
	for pos := 1; pos < len(s.lp); {
		var m []byte
		m, pos = lpNext(s.lp, pos)
		fn(m)
	}
}

// Members returns the members as strings.
func (s *Set) Members() []string {
	out := make([]string, 0, s.Len())
	if s != nil && s.big != nil {
		for m := range s.big.m {
			out = append(out, m)
		}
		return out
	}
	s.Each(func(m []byte) { out = append(out, string(m)) })
	return out
}

func (s *Set) toMap() {
	big := &setMap{m: make(map[string]struct{}, s.n()+1)}
	s.Each(func(b []byte) {
		big.m[string(b)] = struct{}{}
		big.bytes += len(b)
	})
	s.big, s.lp = big, nil
}

// RandomMembers returns n distinct members (n <= Len). Go's map iteration
// starts at a random place, which is what Redis's random picks promise too
// (not a uniform distribution).
func (s *Set) RandomMembers(n int) []string {
	out := make([]string, 0, n)
	if n <= 0 {
		return out
	}
	if s.big != nil && n*2 < len(s.big.m) {
		for m := range s.big.m {
			out = append(out, m)
			if len(out) == n {
				break
			}
		}
		return out
	}
	all := s.Members()
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return append(out, all[:n]...)
}
