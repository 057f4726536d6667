package kv

import (
	"math/bits"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// DEBUG HTSTATS <dbid> and DEBUG HTSTATS-KEY <key> answer in the layout
// of redis-server 7.0.15's dictGetStats (a verbatim string; 7.0 has no
// FULL argument), with gantry's own tables:
//
//   - the keys: one map per hash slot, so "table size" is 16384, a
//     slot's "chain" is its map's keys, and "different slots" the slots
//     with keys;
//   - the expiries: one map per shard (256), a shard's "chain" its keys
//     with an expiry;
//   - a set's, hash's or sorted set's members (HTSTATS-KEY, for the
//     encodings OBJECT ENCODING calls hashtable and skiplist): one Go
//     map, open addressing, so every element has a slot of its own
//     (chains of 1); the table size is an estimate, the smallest power
//     of two (at least 8) that holds the elements at Go's maximum load
//     of 7/8 (the runtime does not tell a map's capacity).
//
// Nothing rehashes incrementally: there is never a "rehashing target".

// htStatsVectLen is Redis's DICT_STATS_VECTLEN: chains of 49 and more
// count as 49 in the distribution.
const htStatsVectLen = 50

// htTable is what dictGetStatsHt reports of a table.
type htTable struct {
	size, elems, used, maxChain int
	vec                         [htStatsVectLen]int
}

// chains makes the htTable of size slots whose non-empty ones have the
// chain lengths lens (the slots not in lens are empty).
func chains(size int, lens []int) *htTable {
	t := &htTable{size: size}
	t.vec[0] = size - len(lens)
	for _, n := range lens {
		t.elems += n
		if n > 0 {
			t.used++
		}
		t.maxChain = max(t.maxChain, n)
		t.vec[min(n, htStatsVectLen-1)]++
	}
	return t
}

// String formats t as Redis's dictGetStatsHt.
func (t *htTable) String() string {
	var b strings.Builder
	b.WriteString("Hash table 0 stats (main hash table):\n")
	if t.elems == 0 {
		b.WriteString("No stats available for empty dictionaries\n")
		return b.String()
	}
	avg := strconv.FormatFloat(float64(float32(t.elems)/float32(t.used)), 'f', 2, 64)
	b.WriteString(" table size: " + strconv.Itoa(t.size) + "\n number of elements: " + strconv.Itoa(t.elems) +
		"\n different slots: " + strconv.Itoa(t.used) + "\n max chain length: " + strconv.Itoa(t.maxChain) +
		"\n avg chain length (counted): " + avg + "\n avg chain length (computed): " + avg +
		"\n Chain length distribution:\n")
	for i, n := range t.vec {
		if n == 0 {
			continue
		}
		// Redis computes the share in float and prints it as a double
		pct := float64(float32(n) / float32(t.size) * 100)
		b.WriteString("   " + strconv.Itoa(i) + ": " + strconv.Itoa(n) + " (" + strconv.FormatFloat(pct, 'f', 2, 64) + "%)\n")
	}
	return b.String()
}

// goMap is the htTable of a Go map of n elements: each in a slot of its
// own, in an estimated goMapSlots(n).
func goMap(n int) *htTable {
	t := &htTable{size: goMapSlots(n), elems: n, used: n, maxChain: min(n, 1)}
	t.vec[0], t.vec[1] = t.size-n, n
	return t
}

// goMapSlots estimates the slots of a Go map of n elements (see above).
func goMapSlots(n int) int {
	need := (n*8 + 6) / 7
	if need <= 8 {
		return 8
	}
	return 1 << bits.Len(uint(need-1))
}

// debugHTStats is DEBUG HTSTATS <dbid>.
func debugHTStats(c *Client) {
	s := c.srv
	id, err := strconv.ParseInt(string(c.Args[2]), 10, 64)
	if err != nil {
		c.W.Error("ERR value is not an integer or out of range")
		return
	}
	if id < 0 || id >= int64(len(s.dbKS)) {
		c.W.Error("ERR Out of range database")
		return
	}
	ks := s.dbKS[id]
	slots, expires := ks.SlotLens, ks.ExpireLens
	if c.AllLocked { // inside EXEC, which holds every shard
		slots, expires = ks.SlotLensLocked, ks.ExpireLensLocked
	}
	c.W.Verbatim("[Dictionary HT]\n" + chains(keyspace.NumSlots, slots()).String() +
		"[Expires HT]\n" + chains(keyspace.NumShards, expires()).String())
}

// debugHTStatsKey is DEBUG HTSTATS-KEY <key>.
func debugHTStatsKey(c *Client) {
	c.withKey(c.Args[2], func(e *keyspace.Entry) {
		if e == nil {
			c.W.Error("ERR no such key")
			return
		}
		n := 0
		switch enc := command.Encoding(e); {
		case enc == "hashtable" && e.Kind() == keyspace.Sets.Kind():
			n = keyspace.Sets.Of(e).Len()
		case enc == "hashtable" && e.Kind() == keyspace.Hashes.Kind():
			n = keyspace.Hashes.Of(e).Len()
		case enc == "skiplist" && e.Kind() == keyspace.ZSets.Kind():
			n = keyspace.ZSets.Of(e).Card()
		default:
			c.W.Error("ERR The value stored at the specified key is not represented using an hash table")
			return
		}
		c.W.Verbatim(goMap(n).String())
	})
}
