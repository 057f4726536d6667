package keyspace

import (
	"encoding/binary"
	"sort"
	"strconv"
)

// An intset is a set of integers stored as Redis 7.0 stores a set whose
// members are all integers: sorted ascending, every one in the same width
// (2, 4 or 8 bytes, little endian), the narrowest that holds them all. A
// wider value upgrades the whole array; a removal never narrows it, as in
// Redis. Here it is one byte slice: a tag byte (isTag|width) then the
// integers. A lookup is a binary search, an insertion or removal moves
// the integers after it, O(n) as in Redis.
//
// The tag is never a small set's count (at most setMaxSmall, 128), so
// that the packed bytes of a Set say which form they hold.
const isTag = 0xF0

// DefaultIntsetEntries is Redis's default set-max-intset-entries.
const DefaultIntsetEntries = 512

// maxIntsetEntries bounds set-max-intset-entries as Redis does (1<<30
// there; here 1<<28, so that the bytes of an intset fit the Set's 32-bit
// length).
const maxIntsetEntries = 1 << 28

// isWidthOf is the narrowest width that holds v.
func isWidthOf(v int64) int {
	switch {
	case v >= -1<<15 && v < 1<<15:
		return 2
	case v >= -1<<31 && v < 1<<31:
		return 4
	}
	return 8
}

// isWidth is an intset's width.
func isWidth(is []byte) int { return int(is[0] &^ isTag) }

// isLen is an intset's count.
func isLen(is []byte) int { return (len(is) - 1) / isWidth(is) }

// isGetW reads integer i of an intset of width w.
func isGetW(is []byte, w, i int) int64 {
	p := 1 + i*w
	switch w {
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(is[p:])))
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(is[p:])))
	}
	return int64(binary.LittleEndian.Uint64(is[p:]))
}

// isGet reads integer i.
func isGet(is []byte, i int) int64 { return isGetW(is, isWidth(is), i) }

func isPutW(is []byte, w, i int, v int64) {
	p := 1 + i*w
	switch w {
	case 2:
		binary.LittleEndian.PutUint16(is[p:], uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(is[p:], uint32(v))
	default:
		binary.LittleEndian.PutUint64(is[p:], uint64(v))
	}
}

// isSearch returns the position of v, or where it would go, and whether
// it is there.
func isSearch(is []byte, v int64) (int, bool) {
	w := isWidth(is)
	n := (len(is) - 1) / w
	if n == 0 {
		return 0, false
	}
	// the ends first, as Redis does: appending ascending integers is common
	if v > isGetW(is, w, n-1) {
		return n, false
	}
	if v < isGetW(is, w, 0) {
		return 0, false
	}
	i := sort.Search(n, func(i int) bool { return isGetW(is, w, i) >= v })
	return i, i < n && isGetW(is, w, i) == v
}

// isNew returns an empty intset of width w with room for n integers.
func isNew(w, n int) []byte {
	is := make([]byte, 1, isRoom(1+n*w))
	is[0] = isTag | byte(w)
	return is
}

// isRoom rounds a capacity up as Go's allocator would (8 bytes under 32,
// 16 up to 256; above, its classes are within an eighth, which the growth
// leaves anyway), so that the capacity counted is about what is taken.
func isRoom(n int) int {
	switch {
	case n <= 32:
		return (n + 7) &^ 7
	case n <= 256:
		return (n + 15) &^ 15
	}
	return n
}

// isGrow extends is by k bytes. Past its capacity the new one has an
// eighth more room, not twice as append gives: Redis reallocates an
// intset to its exact size at every insertion, and an intset is memory
// first (an insertion moves up to all of it anyway).
func isGrow(is []byte, k int) []byte {
	n := len(is) + k
	if n <= cap(is) {
		return is[:n]
	}
	nb := make([]byte, n, isRoom(n+max(n/8, 8)))
	copy(nb, is)
	return nb
}

// isInsert adds v and reports whether it is new; the slice may move.
func isInsert(is []byte, v int64) ([]byte, bool) {
	w := isWidth(is)
	if vw := isWidthOf(v); vw > w {
		// a value that needs a wider width is beyond every integer there:
		// first when negative, last otherwise
		n := isLen(is)
		up := isNew(vw, n+1)[:1+(n+1)*vw]
		off := 0
		if v < 0 {
			isPutW(up, vw, 0, v)
			off = 1
		} else {
			isPutW(up, vw, n, v)
		}
		for i := range n {
			isPutW(up, vw, i+off, isGetW(is, w, i))
		}
		return up, true
	}
	i, found := isSearch(is, v)
	if found {
		return is, false
	}
	p := 1 + i*w
	is = isGrow(is, w)
	copy(is[p+w:], is[p:len(is)-w])
	isPutW(is, w, i, v)
	return is, true
}

// isRemove deletes v and reports whether it was there.
func isRemove(is []byte, v int64) ([]byte, bool) {
	if isWidthOf(v) > isWidth(is) {
		return is, false
	}
	i, found := isSearch(is, v)
	if !found {
		return is, false
	}
	w := isWidth(is)
	p := 1 + i*w
	return append(is[:p], is[p+w:]...), true
}

// parseSetInt reports whether b is the canonical decimal of an int64, as
// Redis's string2ll decides whether a member goes into an intset: no
// sign but a leading '-', no leading zeros, no spaces, and "-0" is not.
func parseSetInt(b []byte) (int64, bool) {
	n := len(b)
	if n == 0 || n > 20 {
		return 0, false
	}
	if n == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	if i == n || b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	var u uint64
	for ; i < n; i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (1<<64-1)/10 || u*10 > 1<<64-1-d {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return int64(-u), true //nolint:gosec // -(1<<63) wraps to MinInt64
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// isEach calls fn with the decimal of every integer, ascending. The
// decimals are written one after another into one buffer made for the
// call, not reused: a caller may keep them, as it may keep the members
// of the other forms (the snapshot writer and SORT do).
func isEach(is []byte, fn func(m []byte)) {
	w := isWidth(is)
	n := (len(is) - 1) / w
	digits := 6 // the longest decimal of the width, "-32768"
	switch w {
	case 4:
		digits = 11
	case 8:
		digits = 20
	}
	buf := make([]byte, 0, n*digits)
	for i := range n {
		start := len(buf)
		buf = strconv.AppendInt(buf, isGetW(is, w, i), 10)
		fn(buf[start:len(buf):len(buf)])
	}
}
