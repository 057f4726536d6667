package command

import (
	"cmp"
	"hash/maphash"
	"slices"
	"strconv"
	"unsafe"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// scanSeed orders the members of a collection for SSCAN, HSCAN and ZSCAN.
var scanSeed = maphash.MakeSeed()

// scanHash is a member's position in cursor order, in [1, 2^63).
func scanHash(m string) uint64 { return maphash.String(scanSeed, m)>>1 | 1 }

// Collection scans. Small collections (up to 128 members) are returned
// whole with cursor 0, as Redis does for its compact encodings. Larger
// ones are walked in the order of a hash of the member: a call returns the
// members of the next count positions at or above the cursor (and those
// of the same hash), and the next cursor is the last hash plus one, so a
// member present during the whole scan is returned exactly once however
// the collection changes meanwhile.
//
// The order comes from a snapshot of the members sorted by hash, built in
// O(n log n) by a call at cursor 0 (or one finding no snapshot covering
// its cursor) and kept in the server's ScanSnapshots, keyed by a weak
// pointer to the collection; later calls binary-search it and cost their
// count. Members removed since are skipped (the caller's present checks
// the live collection); members added since are not returned by a scan
// continuing on it, which Redis's guarantees allow. Snapshots of scans
// started at different times are ordered by the same hash, so a newer one
// serves an older scan's cursor. The snapshot is dropped when its scan
// returns cursor 0.

// smallScan is the most members a collection returned whole has.
const smallScan = 128

// scanEntries are the members with a hash at or above from, sorted by it.
func scanEntries(members []string, from uint64) []keyspace.ScanEntry {
	out := make([]keyspace.ScanEntry, 0, len(members))
	for _, m := range members {
		if h := scanHash(m); h >= from {
			out = append(out, keyspace.ScanEntry{H: h, M: m})
		}
	}
	slices.SortFunc(out, func(a, b keyspace.ScanEntry) int { return cmp.Compare(a.H, b.H) })
	return out
}

// snapScan picks the members to return for a call of the scan of a big
// collection: key is a weak pointer to it, members lists its members (to
// build a snapshot) and present tells whether one is still in it.
func (c *Ctx) snapScan(key any, members func() []string, present func(m string) bool,
	cursor uint64, count int) (picked []string, next uint64) {
	t := c.KS.ScanSnapshots()
	var snap []keyspace.ScanEntry
	if cursor != 0 {
		snap = t.Get(key, cursor)
	}
	if snap == nil {
		snap = scanEntries(members(), cursor)
		t.Put(key, cursor, snap)
	}
	i, _ := slices.BinarySearchFunc(snap, cursor, func(e keyspace.ScanEntry, c uint64) int { return cmp.Compare(e.H, c) })
	end := min(i+count, len(snap))
	for end < len(snap) && end > i && snap[end].H == snap[end-1].H {
		end++
	}
	for _, e := range snap[i:end] {
		if present(e.M) {
			picked = append(picked, e.M)
		}
	}
	if end == len(snap) {
		t.Drop(key)
		return picked, 0
	}
	return picked, snap[end-1].H + 1
}

// strBytes is s as bytes, without copying; they must not be changed.
func strBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

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
