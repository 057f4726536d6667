package keyspace

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"unsafe"
)

// A set has three forms:
//
//   - an intset (intset.go), while every member is the canonical decimal
//     of an int64 and there are at most set-max-intset-entries of them, as
//     in Redis 7.0;
//   - small: one byte slice of length-prefixed members, like small hashes
//     (see hash.go), up to setMaxSmall members of up to setMaxSmallLen
//     bytes each;
//   - big: a Go map, for good.
//
// A set starts as an intset when its first member is an integer. An
// intset that gets a non-integer member or passes set-max-intset-entries
// becomes what a set of that size has: small if it fits the small form's
// limits, else the map (Redis 7.0 makes a hashtable of it either way).
// Neither form goes back to an intset; a new destination (SINTERSTORE,
// SUNIONSTORE, SDIFFSTORE, SMOVE to a new key) and RESTORE make one again.
const (
	setMaxSmall    = 128
	setMaxSmallLen = 64
)

// Set is the value of a set key, 16 bytes: p is nil (empty), the first
// byte of the packed bytes (an intset or the small form, n of c bytes
// used) or, when n is bigSet, the map. The methods accept a nil *Set as
// the empty set. The small form's count is its first byte (at most
// setMaxSmall); an intset's first byte is isTag|width.
type Set struct {
	p    unsafe.Pointer
	n, c uint32
}

// bigSet in Set.n marks the map form.
const bigSet = 1<<32 - 1

// setMap is a big set.
type setMap struct {
	m     map[string]struct{}
	bytes int // of the members (Memory)
}

func NewSet() *Set { return &Set{} }

// lp returns the packed bytes (intset or small form); nil for a big set.
func (s *Set) lp() []byte {
	if s.n == bigSet || s.p == nil {
		return nil
	}
	return unsafe.Slice((*byte)(s.p), s.c)[:s.n]
}

func (s *Set) setLP(b []byte) {
	if len(b) == 0 {
		s.p, s.n, s.c = nil, 0, 0
		return
	}
	s.p, s.n, s.c = unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)), uint32(cap(b)) //nolint:gosec // bounded by the forms' limits
}

// big returns the map form, or nil.
func (s *Set) big() *setMap {
	if s.n != bigSet {
		return nil
	}
	return (*setMap)(s.p)
}

func (s *Set) setBig(m *setMap) { s.p, s.n, s.c = unsafe.Pointer(m), bigSet, 0 }

// isInts reports whether the packed bytes are an intset.
func (s *Set) isInts() bool { return s.n != bigSet && s.n > 0 && *(*byte)(s.p)&isTag == isTag }

func (s *Set) Len() int {
	switch {
	case s == nil || s.n == 0:
		return 0
	case s.n == bigSet:
		return len((*setMap)(s.p).m)
	case s.isInts():
		return isLen(s.lp())
	}
	return int(*(*byte)(s.p))
}

// Small reports whether the set is not a map (an intset or the small
// form).
func (s *Set) Small() bool { return s == nil || s.n != bigSet }

// TakesInts reports whether an add may make or grow an intset, and so
// reads set-max-intset-entries: the set is empty or an intset.
func (s *Set) TakesInts() bool {
	return s == nil || s.n == 0 || s.n != bigSet && *(*byte)(s.p)&isTag == isTag
}

// Intset reports whether the set is an intset (OBJECT ENCODING "intset").
func (s *Set) Intset() bool { return s != nil && s.isInts() }

// findIn returns the position of a member's entry in lp, the small form,
// and of the next entry, or -1.
func findIn(lp, b []byte) (int, int) {
	for pos := 1; pos < len(lp); {
		m, next := lpNext(lp, pos)
		if string(m) == string(b) {
			return pos, next
		}
		pos = next
	}
	return -1, -1
}

func (s *Set) Has(b []byte) bool {
	if s == nil || s.n == 0 {
		return false
	}
	if big := s.big(); big != nil {
		_, ok := big.m[string(b)]
		return ok
	}
	if s.isInts() {
		v, ok := parseSetInt(b)
		if !ok {
			return false
		}
		_, found := isSearch(s.lp(), v)
		return found
	}
	p, _ := findIn(s.lp(), b)
	return p >= 0
}

// Add adds a member and reports whether it is new, with Redis's default
// set-max-intset-entries.
func (s *Set) Add(b []byte) bool { return s.AddWithin(b, DefaultIntsetEntries) }

// AddWithin adds a member and reports whether it is new; an intset holds
// at most maxInts members (set-max-intset-entries). The map and a member
// already in the small form are the fast paths (redis-benchmark's SADD).
func (s *Set) AddWithin(b []byte, maxInts int) bool {
	if s.n == bigSet {
		big := (*setMap)(s.p)
		if _, ok := big.m[string(b)]; ok {
			return false
		}
		big.m[string(b)] = struct{}{}
		big.bytes += len(b)
		return true
	}
	if s.n != 0 {
		if lp := unsafe.Slice((*byte)(s.p), s.n); lp[0]&isTag != isTag {
			if p, _ := findIn(lp, b); p >= 0 {
				return false
			}
		}
	}
	return s.addNew(b, maxInts)
}

// addNew is AddWithin to an empty set, an intset, or a small form that
// has not got b.
func (s *Set) addNew(b []byte, maxInts int) bool {
	lp := s.lp()
	if len(lp) == 0 {
		// a new set is an intset if its first member is an integer
		if v, ok := parseSetInt(b); ok && maxInts >= 1 {
			is := isNew(isWidthOf(v), 1)
			is, _ = isInsert(is, v)
			s.setLP(is)
			return true
		}
	} else if lp[0]&isTag == isTag {
		v, ok := parseSetInt(b)
		if ok {
			if _, found := isSearch(lp, v); found {
				return false
			}
			if isLen(lp) < min(maxInts, maxIntsetEntries) {
				lp, _ = isInsert(lp, v)
				s.setLP(lp)
				return true
			}
		}
		s.fromInts(1)
		return s.AddWithin(b, maxInts)
	}
	if len(b) > setMaxSmallLen || len(lp) > 0 && int(lp[0]) >= setMaxSmall {
		s.toMap(1)
		return s.AddWithin(b, maxInts)
	}
	if len(lp) == 0 {
		lp = append(lp, 0)
	}
	lp = binary.AppendUvarint(lp, uint64(len(b)))
	lp = append(lp, b...)
	lp[0]++
	s.setLP(lp)
	return true
}

// fromInts turns an intset into the form a set of its members and extra
// more has: small if they fit it, else the map.
func (s *Set) fromInts(extra int) {
	is := s.lp()
	n := isLen(is)
	if n+extra > setMaxSmall {
		s.toMap(extra)
		return
	}
	lp := make([]byte, 1, 1+(n+extra)*8)
	isEach(is, func(m []byte) {
		lp = append(lp, byte(len(m)))
		lp = append(lp, m...)
	})
	lp[0] = byte(n)
	s.setLP(lp)
}

// Remove deletes a member and reports whether it was there.
func (s *Set) Remove(b []byte) bool {
	if s == nil || s.n == 0 {
		return false
	}
	if big := s.big(); big != nil {
		_, ok := big.m[string(b)]
		if ok {
			delete(big.m, string(b))
			big.bytes -= len(b)
		}
		return ok
	}
	if s.isInts() {
		v, ok := parseSetInt(b)
		if !ok {
			return false
		}
		is, removed := isRemove(s.lp(), v)
		if removed {
			s.setLPKeep(is)
		}
		return removed
	}
	lp := s.lp()
	p, next := findIn(lp, b)
	if p < 0 {
		return false
	}
	lp = append(lp[:p], lp[next:]...)
	lp[0]--
	s.setLPKeep(lp)
	return true
}

// setLPKeep stores packed bytes that keep their form when they lose
// their last member (an empty intset's tag stays: the key is deleted).
func (s *Set) setLPKeep(b []byte) {
	s.p, s.n, s.c = unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)), uint32(cap(b)) //nolint:gosec // bounded by the forms' limits
}

// Each calls fn for every member (an intset's ascending); fn must not
// change the set. The slice is the set's own bytes (small form, map key)
// or, for an intset, a decimal made for the call: valid as long as the
// set is not changed.
func (s *Set) Each(fn func(m []byte)) {
	if s == nil || s.n == 0 {
		return
	}
	if big := s.big(); big != nil {
		for m := range big.m {
			fn([]byte(m))
		}
		return
	}
	lp := s.lp()
	if s.isInts() {
		isEach(lp, fn)
		return
	}
	for pos := 1; pos < len(lp); {
		var m []byte
		m, pos = lpNext(lp, pos)
		fn(m)
	}
}

// Members returns the members as strings.
func (s *Set) Members() []string {
	out := make([]string, 0, s.Len())
	if s == nil {
		return out
	}
	if big := s.big(); big != nil {
		for m := range big.m {
			out = append(out, m)
		}
		return out
	}
	s.Each(func(m []byte) { out = append(out, string(m)) })
	return out
}

func (s *Set) toMap(extra int) {
	big := &setMap{m: make(map[string]struct{}, s.Len()+extra)}
	s.Each(func(b []byte) {
		big.m[string(b)] = struct{}{}
		big.bytes += len(b)
	})
	s.setBig(big)
}

// Clone returns a copy of the set in the same form (COPY, as Redis's
// setTypeDup keeps an intset an intset).
func (s *Set) Clone() *Set {
	c := &Set{}
	if big := s.big(); big != nil {
		nb := &setMap{m: make(map[string]struct{}, len(big.m)), bytes: big.bytes}
		for m := range big.m {
			nb.m[m] = struct{}{}
		}
		c.setBig(nb)
		return c
	}
	c.setLP(append([]byte(nil), s.lp()...))
	return c
}

// RandomMembers returns n distinct members (n <= Len). An intset's are
// uniform picks, as Redis's intsetRandom; a map's iteration starts at a
// random place, which is what Redis's random picks promise for a
// hashtable (not a uniform distribution).
func (s *Set) RandomMembers(n int) []string {
	return s.randomMembers(n, rand.IntN)
}

func (s *Set) randomMembers(n int, intn func(int) int) []string {
	out := make([]string, 0, n)
	if n <= 0 {
		return out
	}
	if big := s.big(); big != nil && n*2 < len(big.m) {
		for m := range big.m {
			out = append(out, m)
			if len(out) == n {
				break
			}
		}
		return out
	}
	if s.isInts() {
		is := s.lp()
		size := isLen(is)
		if n*2 < size {
			// distinct uniform indices by rejection, few retries when n
			// is under half the set
			seen := make(map[int]struct{}, n)
			for len(out) < n {
				i := intn(size)
				if _, dup := seen[i]; dup {
					continue
				}
				seen[i] = struct{}{}
				out = append(out, strconv.FormatInt(isGet(is, i), 10))
			}
			return out
		}
	}
	all := s.Members()
	for i := len(all) - 1; i > 0; i-- { // Fisher-Yates
		j := intn(i + 1)
		all[i], all[j] = all[j], all[i]
	}
	return append(out, all[:n]...)
}

// Memory is the estimated size of a set: its header, and its packed
// bytes (intset or small form) or its map.
func (s *Set) Memory() int64 {
	if big := s.big(); big != nil {
		return setCost + setMapCost + int64(len(big.m))*setMemberCost + int64(big.bytes)
	}
	return setCost + int64(s.c)
}

// setCost and setMapCost are the Set and a big one's setMap.
const (
	setCost    = int64(unsafe.Sizeof(Set{}))
	setMapCost = int64(unsafe.Sizeof(setMap{}))
)

// The effort of freeing a set: a member of a map is an allocation, the
// packed bytes are one.
func (s *Set) freeEffort() int {
	if big := s.big(); big != nil {
		return len(big.m)
	}
	return 1
}

func (s *Set) release() {
	if big := s.big(); big != nil {
		clear(big.m)
	}
	*s = Set{}
}
