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

// Set is the value of a set key: lp (small) or m (large). The methods
// accept a nil *Set as the empty set.
type Set struct {
	lp    []byte
	n     int
	m     map[string]struct{}
	bytes int // of the members while m is used (Memory)
}

func NewSet() *Set { return &Set{} }

func (s *Set) Len() int {
	switch {
	case s == nil:
		return 0
	case s.m != nil:
		return len(s.m)
	}
	return s.n
}

func (s *Set) Small() bool { return s.m == nil }

// find returns the position of a member's entry in lp and of the next
// entry, or -1.
func (s *Set) find(b []byte) (int, int) {
	for pos := 0; pos < len(s.lp); {
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
	if s.m != nil {
		_, ok := s.m[string(b)]
		return ok
	}
	p, _ := s.find(b)
	return p >= 0
}

// Add adds a member and reports whether it is new.
func (s *Set) Add(b []byte) bool {
	if s.m == nil && (len(b) > setMaxSmallLen || s.n >= setMaxSmall) {
		if s.Has(b) {
			return false
		}
		s.toMap()
	}
	if s.m != nil {
		if _, ok := s.m[string(b)]; ok {
			return false
		}
		s.m[string(b)] = struct{}{}
		s.bytes += len(b)
		return true
	}
	if p, _ := s.find(b); p >= 0 {
		return false
	}
	s.lp = binary.AppendUvarint(s.lp, uint64(len(b)))
	s.lp = append(s.lp, b...)
	s.n++
	return true
}

// Remove deletes a member and reports whether it was there.
func (s *Set) Remove(b []byte) bool {
	if s == nil {
		return false
	}
	if s.m != nil {
		_, ok := s.m[string(b)]
		if ok {
			delete(s.m, string(b))
			s.bytes -= len(b)
		}
		return ok
	}
	p, next := s.find(b)
	if p < 0 {
		return false
	}
	s.lp = append(s.lp[:p], s.lp[next:]...)
	s.n--
	return true
}

// Each calls fn for every member; the slice is valid during the call only
// and fn must not change the set.
func (s *Set) Each(fn func(m []byte)) {
	if s == nil {
		return
	}
	if s.m != nil {
		for m := range s.m {
			fn([]byte(m))
		}
		return
	}
	for pos := 0; pos < len(s.lp); {
		var m []byte
		m, pos = lpNext(s.lp, pos)
		fn(m)
	}
}

// Members returns the members as strings.
func (s *Set) Members() []string {
	out := make([]string, 0, s.Len())
	if s != nil && s.m != nil {
		for m := range s.m {
			out = append(out, m)
		}
		return out
	}
	s.Each(func(m []byte) { out = append(out, string(m)) })
	return out
}

func (s *Set) toMap() {
	m := make(map[string]struct{}, s.n+1)
	s.bytes = 0
	s.Each(func(b []byte) {
		m[string(b)] = struct{}{}
		s.bytes += len(b)
	})
	s.m, s.lp, s.n = m, nil, 0
}

// RandomMembers returns n distinct members (n <= Len). Go's map iteration
// starts at a random place, which is what Redis's random picks promise too
// (not a uniform distribution).
func (s *Set) RandomMembers(n int) []string {
	out := make([]string, 0, n)
	if n <= 0 {
		return out
	}
	if s.m != nil && n*2 < len(s.m) {
		for m := range s.m {
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
