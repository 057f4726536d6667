package keyspace

import "unsafe"

// Memory accounting (maxmemory). The keyspace keeps an estimate of the
// bytes its keys and values take, updated as they change rather than
// measured (runtime.ReadMemStats stops the world; it cannot run per
// command). The estimate counts what a key costs in Go's structures: the
// slot map's slot, the key's bytes, the 24-byte entry, the expiry map's
// slot, and the value: a string's capacity, a collection's structure and
// the bytes of its members, with per-member costs of its maps and nodes.
// The costs below were measured against the Go heap
// (TestMemoryEstimate compares them on strings, lists, sets, hashes and
// sorted sets); like Redis's used_memory for maxmemory, the estimate
// leaves out client buffers and the replication backlog.
//
// How it stays current without a lookup before and after every command:
// LookupLocked opens the entry it returns (openFlag), subtracting its
// size from its shard's total, and notes it; when the shard is unlocked
// (UnlockShard) every noted entry still open adds its size, as it is after
// the command, and is closed. A deleted open entry is closed at once
// (its size was subtracted when it was opened); an added entry is opened,
// so whatever the command does to it afterwards is counted. The keyspace's
// total (UsedMemory) takes each shard's change at unlock, one atomic add
// per unlock that changed something; reads change nothing.
const (
	// keyCost is a key's slot in its slot map (16-byte header, 8-byte
	// pointer, control byte, at the maps' average load) and its entry.
	keyCost = 84
	// expireCost is a key's slot in its shard's map of expiring keys.
	expireCost = 32
	// objCost is a collection's structure.
	objCost = 48
	// per member: a big set's and a big hash's map slot, at the maps'
	// average load, and the rounding of the strings' allocations; a
	// sorted set's dictionary slot, skip list node and levels. A list
	// counts its nodes (list.go).
	setMemberCost  = 60
	hashFieldCost  = 92
	zsetMemberCost = 128
	// zsetCost is a sorted set's structure (ZSet); zsetHeaderCost its
	// skip list's (zskiplist) and the list's header node without the
	// levels, zsetDictCost its dictionary's header and first group (a big
	// set of few members, after zset-max-listpack-entries 0 or a long
	// member, pays them).
	zsetCost       = 48
	zsetHeaderCost = 32 + 64
	zsetDictCost   = 200
)

// kindMem are the memory functions of the kinds (NewType), by Kind; a
// string's is not used.
var kindMem = []func(unsafe.Pointer) int64{nil}

// memorySizer is a collection that estimates its own size; a type without
// it counts as objCost.
type memorySizer interface{ Memory() int64 }

// memoryFunc returns the memory function of a type: whether it has a
// Memory method is asked once, not at every lookup and unlock (a failed
// interface assertion, for a stream, cost more than its bookkeeping).
func memoryFunc[T any]() func(unsafe.Pointer) int64 {
	if _, ok := any((*T)(nil)).(memorySizer); ok {
		return memoryOf[T]
	}
	return func(unsafe.Pointer) int64 { return objCost }
}

func memoryOf[T any](p unsafe.Pointer) int64 {
	if m, ok := any((*T)(p)).(memorySizer); ok {
		return m.Memory()
	}
	return objCost
}

// memory is the estimated size of the value.
func (e *Entry) memory() int64 {
	if e.m&objFlag == 0 {
		if e.p == nil {
			return 0
		}
		return int64(e.m&lenMask) + int64(slackOf(e.m>>slackShift&0xff))
	}
	// the built-in types directly: an interface assertion per call costs
	// more than the rest of the bookkeeping
	switch k := Kind(e.m & lenMask); k {
	case kindList:
		return (*List)(e.p).Memory()
	case kindSet:
		return (*Set)(e.p).Memory()
	case kindHash:
		return (*Hash)(e.p).Memory()
	case kindZSet:
		return (*ZSet)(e.p).Memory()
	default:
		return kindMem[k](e.p)
	}
}

// Memory returns the estimated size of the value in bytes.
func (e *Entry) Memory() int64 { return e.memory() }

// keyMemory is the estimated size of a key beside its value.
func keyMemory(key int, exp int64) int64 {
	n := int64(keyCost + key)
	if exp != 0 {
		n += expireCost
	}
	return n
}

// KeyMemory returns the estimated size of key and its value.
func KeyMemory(key []byte, e *Entry) int64 { return keyMemory(len(key), e.exp) + e.memory() }

// Memory is the estimated size of a list.
func (l *List) Memory() int64 {
	if l.d != nil {
		return int64(listCost + dequeCost + l.d.mem)
	}
	return int64(listCost + cap(l.sd))
}

// A set's Memory is in set.go.

// Memory is the estimated size of a hash: its header, and its packed
// fields or its map.
func (h *Hash) Memory() int64 {
	if h.big == nil {
		return hashCost + int64(cap(h.lp))
	}
	return hashCost + hashMapCost + int64(len(h.big.m))*hashFieldCost + int64(h.big.bytes)
}

// hashCost and hashMapCost are the Hash and a big one's hashMap.
const (
	hashCost    = int64(unsafe.Sizeof(Hash{}))
	hashMapCost = int64(unsafe.Sizeof(hashMap{}))
)

// Memory is the estimated size of a sorted set: in the small form its
// structure and its slice; in the big form also the skip list's header
// (a node and its levels) and, per member, the dictionary's slot, the
// node and its levels.
func (z *ZSet) Memory() int64 {
	if z.dict == nil {
		return zsetCost + int64(cap(z.lp))
	}
	return zsetCost + zsetHeaderCost + zsetDictCost + int64(cap(z.sl.header.level))*16 + int64(len(z.dict))*zsetMemberCost + int64(z.sl.bytes)
}

// open marks e as being measured again: its size leaves the shard's total
// until settle adds it back.
func (sh *shard) open(e *Entry) {
	if e.m&openFlag != 0 {
		return
	}
	e.m |= openFlag
	sh.used -= e.memory()
	sh.opened = append(sh.opened, e)
}

// added counts a key added with its entry: the entry is open, so its
// size is counted (as it is then) when the shard is unlocked. Its size is
// in no total now: it is new, or it was deleted (drop) from another key.
func (sh *shard) added(key int, e *Entry) {
	sh.used += keyMemory(key, e.exp)
	if e.m&openFlag == 0 {
		e.m |= openFlag
		sh.opened = append(sh.opened, e)
	}
}

// drop takes a deleted key out of the shard's total.
func (sh *shard) drop(key int, e *Entry) {
	sh.used -= keyMemory(key, e.exp)
	if e.m&openFlag != 0 {
		e.m &^= openFlag // its size left the total when it was opened
	} else {
		sh.used -= e.memory()
	}
}

// settle adds the size of the entries still open and publishes the
// shard's change to the keyspace's total; it runs before the shard is
// unlocked.
func (ks *Keyspace) settle(sh *shard) {
	if n := len(sh.opened); n > 0 {
		for i, e := range sh.opened {
			if e.m&openFlag != 0 {
				e.m &^= openFlag
				sh.used += e.memory()
			}
			sh.opened[i] = nil
		}
		sh.opened = sh.opened[:0]
		if n > 1024 { // after a command on many keys
			sh.opened = nil
		}
	}
	if d := sh.used - sh.published; d != 0 {
		ks.used.Add(d)
		sh.published = sh.used
	}
}

// UsedMemory returns the estimated bytes of the keys and values.
func (ks *Keyspace) UsedMemory() int64 { return ks.used.Load() }
