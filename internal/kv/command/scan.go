package command

import (
	"hash/maphash"
	"slices"
	"strconv"
)

// scanSeed orders the members of a collection for SSCAN, HSCAN and ZSCAN.
var scanSeed = maphash.MakeSeed()

// scanHash is a member's position in cursor order, in [1, 2^63).
func scanHash(m string) uint64 { return maphash.String(scanSeed, m)>>1 | 1 }

// collScan picks the members to return for a collection scan. Small
// collections (up to 128 members) are returned whole with cursor 0, as Redis
// does for its compact encodings. Larger ones are walked in the order of a
// hash of the member: a call returns the count members with the lowest
// hashes at or above the cursor, and the next cursor is the last hash plus
// one, so a member present during the whole scan is returned exactly once
// however the collection changes meanwhile.
func collScan(members []string, cursor uint64, count int) (picked []string, next uint64) {
	if cursor == 0 && len(members) <= 128 {
		return members, 0
	}
	type hm struct {
		h uint64
		m string
	}
	cand := make([]hm, 0, len(members))
	for _, m := range members {
		if h := scanHash(m); h >= cursor {
			cand = append(cand, hm{h, m})
		}
	}
	slices.SortFunc(cand, func(a, b hm) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	n := min(count, len(cand))
	for n < len(cand) && n > 0 && cand[n].h == cand[n-1].h {
		n++
	}
	for _, x := range cand[:n] {
		picked = append(picked, x.m)
	}
	if n == len(cand) {
		return picked, 0
	}
	return picked, cand[n-1].h + 1
}

// replyScan writes [cursor, [items...]]; each picked member may expand to
// several items (field and value, member and score).
func (c *Ctx) replyScan(next uint64, picked []string, pattern []byte, items func(m string) [][]byte) {
	var out [][]byte
	for _, m := range picked {
		if pattern != nil && !GlobMatch(pattern, []byte(m)) {
			continue
		}
		out = append(out, items(m)...)
	}
	c.W.Array(2)
	c.W.BulkString(strconv.FormatUint(next, 10))
	c.W.Array(len(out))
	for _, o := range out {
		c.W.Bulk(o)
	}
}

// scanArgs parses "key cursor [MATCH p] [COUNT n]" of SSCAN/HSCAN/ZSCAN.
func (c *Ctx) scanArgs() (cursor uint64, pattern []byte, count int, ok bool) {
	cursor, ok = parseCursor(c.Args[2])
	if !ok {
		c.W.Error("ERR invalid cursor")
		return 0, nil, 0, false
	}
	pattern, count, _, ok = c.scanOpts(3, false)
	return cursor, pattern, count, ok
}
