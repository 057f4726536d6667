// Package keyspace holds the values of the data store (strings, lists,
// sets, hashes, sorted sets, and any collection type a later feature
// registers with NewType) and the keyspace that maps keys to them. It knows
// nothing of clients, commands, logs or the network: the packages above it
// (command, aof, repl and the server in internal/kv) lock its shards, read
// and change entries, and keep their own per-key state (WATCH, blocked
// clients, keys being migrated) beside it.
//
// The keyspace is split into 256 shards, each guarded by its own mutex; a
// key belongs to the shard of its Redis Cluster hash slot (CRC16 of the key
// or of its {hash tag}, modulo 16384), and inside a shard keys are grouped
// per slot, so the keys of one slot can be counted, listed, moved or
// dropped without touching the others. Methods named ...Locked expect the
// caller to hold the lock of the key's shard (LockShard); callers lock
// several shards in ascending order.
package keyspace

import (
	"sync"
	"sync/atomic"
)

// NumSlots is the number of Redis Cluster hash slots.
const NumSlots = 16384

const (
	// NumShards is the number of shards; it divides NumSlots, and slot s
	// is in shard s % NumShards.
	NumShards     = 256
	slotsPerShard = NumSlots / NumShards
)

// shard is one part of the keyspace. All fields are guarded by mu.
type shard struct {
	mu      sync.Mutex
	slots   [slotsPerShard]map[string]*Entry // keys by slot/NumShards
	keys    int                              // number of keys
	expires map[string]struct{}              // keys with an expiry, sampled by the active expirer
	// memory accounting (memory.go)
	used      int64    // estimated bytes of the shard's keys and values
	published int64    // the part of used the keyspace's total has
	opened    []*Entry // entries opened since the shard was locked
	// eviction (evict.go)
	lastNow int64  // the time of the last lookup: new keys' access time
	rng     uint64 // LFU's random increments
	// hidden: an expired key was left in place (hidden, not deleted: a
	// replica, a write pause), so AddLocked may find one to replace
	hidden bool
	_      [47]byte // 640 bytes: shards on separate cache lines
}

// Keyspace is the set of keys of one database, sharded by hash slot.
type Keyspace struct {
	shards [NumShards]shard
	// expireHook is told about every key deleted because it expired (the
	// replication stream sends a DEL); set once before serving.
	expireHook func(key []byte)
	// replicaMode: on a replica expired keys are hidden from reads but not
	// deleted; the primary's DEL deletes them.
	replicaMode atomic.Bool
	// expiryPaused, when set, reports whether expiry is paused (a write
	// pause): expired keys are hidden, not deleted, as in replica mode;
	// set once before serving
	expiryPaused func() bool
	used         atomic.Int64 // estimated bytes of keys and values (memory.go)
	// expiresN counts the keys with an expiry of every shard, kept with
	// each shard's expires map, so that ExpiresLen (the active expiry
	// cycle asks it ten times a second for each database) locks nothing
	expiresN atomic.Int64
	evict    evictor        // eviction policy and pool (evict.go)
	lazy     *LazyFree      // the background freer (lazyfree.go); nil: none
	scan     *ScanSnapshots // of the big collections being scanned (scansnap.go)
}

// New returns an empty keyspace.
func New() *Keyspace {
	ks := &Keyspace{scan: &ScanSnapshots{}}
	for i := range ks.shards {
		ks.shards[i].expires = make(map[string]struct{})
		ks.shards[i].rng = uint64(i)*0x9e3779b97f4a7c15 + 1
	}
	ks.evict.init()
	return ks
}

// ShardOf returns the shard index of a key.
func ShardOf(key []byte) int { return int(KeySlot(key)) % NumShards }

// LockShard locks shard i.
func (ks *Keyspace) LockShard(i int) { ks.shards[i].mu.Lock() }

// UnlockShard unlocks shard i, after counting what changed in it
// (memory.go).
func (ks *Keyspace) UnlockShard(i int) {
	sh := &ks.shards[i]
	if len(sh.opened) != 0 || sh.used != sh.published {
		ks.settle(sh)
	}
	sh.mu.Unlock()
}

// SettleShard counts what changed in shard i, which the caller holds,
// without unlocking it. A command that moves entries between keyspaces
// (MOVE, COPY ... DB, SWAPDB) settles every shard it holds before it
// unlocks any: an entry still listed as open in the shard it left must
// not be read after the shard it went to is unlocked.
func (ks *Keyspace) SettleShard(i int) {
	sh := &ks.shards[i]
	if len(sh.opened) != 0 || sh.used != sh.published {
		ks.settle(sh)
	}
}

// SetExpireHook sets the function told about every key deleted because
// it expired, with the key's shard locked; it must be set before the
// keyspace is shared.
func (ks *Keyspace) SetExpireHook(fn func(key []byte)) { ks.expireHook = fn }

// SetReplicaMode turns replica mode on or off: a replica hides expired
// keys from reads but leaves deleting them to its primary's DEL.
func (ks *Keyspace) SetReplicaMode(on bool) { ks.replicaMode.Store(on) }

// SetExpiryPause sets the function that tells whether expiry is paused:
// while it is, lookups hide expired keys without deleting them and the
// active expirer deletes none, as Redis keeps the dataset constant while
// writes are paused. It must be set before the keyspace is shared.
func (ks *Keyspace) SetExpiryPause(fn func() bool) { ks.expiryPaused = fn }

// keepExpired reports whether expired keys stay in place now (replica
// mode, paused expiry).
func (ks *Keyspace) keepExpired() bool {
	return ks.replicaMode.Load() || ks.expiryPaused != nil && ks.expiryPaused()
}

// LookupLocked returns the live entry of key, deleting it when it has
// expired at now. It counts as an access for eviction (LRU, LFU), and the
// caller may change the entry until it unlocks the shard.
func (ks *Keyspace) LookupLocked(key []byte, now int64) *Entry {
	return ks.LookupSlotLocked(key, KeySlot(key), now)
}

// LookupSlotLocked is LookupLocked for a caller that knows the key's slot
// (KeySlot(key)) already, as a command's context does (command.Ctx.SlotOf).
func (ks *Keyspace) LookupSlotLocked(key []byte, slot uint16, now int64) *Entry {
	sh := &ks.shards[int(slot)%NumShards]
	sh.lastNow = now // the time a key added next is created at
	e := ks.find(sh, slot, key, now)
	if e == nil {
		return nil
	}
	if ks.evict.policy.Load() == int32(AllKeysLFU) || ks.evict.policy.Load() == int32(VolatileLFU) {
		ks.touch(sh, e, now)
	} else { // the LRU clock, in the same write as the open flag below
		e.m = e.m&^(accessMask<<accessShift) | uint64(lruClock(now))<<accessShift
	}
	sh.open(e)
	return e
}

// PeekLocked returns the live entry of key like LookupLocked, without
// counting an access (OBJECT, eviction's sampling). The caller must not
// change the entry.
func (ks *Keyspace) PeekLocked(key []byte, now int64) *Entry {
	slot := KeySlot(key)
	return ks.find(&ks.shards[int(slot)%NumShards], slot, key, now)
}

// RawLocked returns the entry of key even when its expiry has passed, and
// leaves it in place: DEBUG OBJECT reads the table as Redis's dictFind
// does, without expiring the key.
func (ks *Keyspace) RawLocked(key []byte) *Entry {
	slot := KeySlot(key)
	m := ks.shards[int(slot)%NumShards].slots[int(slot)/NumShards]
	if m == nil {
		return nil
	}
	return m[string(key)]
}

// find returns the live entry of key, deleting it when it has expired.
func (ks *Keyspace) find(sh *shard, slot uint16, key []byte, now int64) *Entry {
	m := sh.slots[int(slot)/NumShards]
	if m == nil {
		return nil
	}
	e := m[string(key)]
	if e == nil {
		return nil
	}
	if e.exp != 0 && e.exp <= now {
		if ks.keepExpired() {
			sh.hidden = true
			return nil
		}
		delete(m, string(key))
		ks.delExpire(sh, key)
		sh.keys--
		sh.drop(len(key), e)
		ks.dropValue(e, false)
		if ks.expireHook != nil {
			ks.expireHook(key)
		}
		return nil
	}
	return e
}

// AddLocked inserts a new key (which must not exist) and returns its entry.
// The caller may change the entry until it unlocks the shard.
func (ks *Keyspace) AddLocked(key []byte, e *Entry) *Entry {
	slot := KeySlot(key)
	sh := &ks.shards[int(slot)%NumShards]
	m := sh.slots[int(slot)/NumShards]
	if m == nil {
		m = make(map[string]*Entry)
		sh.slots[int(slot)/NumShards] = m
	}
	k := string(key)
	if sh.hidden {
		// an expired key left in place (hidden by a lookup) is replaced
		if old := m[k]; old != nil {
			delete(m, k)
			ks.delExpire(sh, key)
			sh.keys--
			sh.drop(len(key), old)
			ks.dropValue(old, false)
		}
	}
	m[k] = e
	sh.keys++
	if e.exp != 0 {
		ks.addExpire(sh, k)
	}
	if e.access() == 0 {
		ks.initAccess(sh, e, sh.lastNow)
	}
	sh.added(len(key), e)
	return e
}

// DeleteLocked removes key and reports whether it existed (expired or not).
func (ks *Keyspace) DeleteLocked(key []byte) bool { return ks.removeLocked(key) != nil }

// removeLocked removes key and returns its entry, nil if it did not exist.
func (ks *Keyspace) removeLocked(key []byte) *Entry {
	slot := KeySlot(key)
	sh := &ks.shards[int(slot)%NumShards]
	m := sh.slots[int(slot)/NumShards]
	if m == nil {
		return nil
	}
	e, ok := m[string(key)]
	if !ok {
		return nil
	}
	delete(m, string(key))
	ks.delExpire(sh, key)
	sh.keys--
	sh.drop(len(key), e)
	if len(m) == 0 {
		sh.slots[int(slot)/NumShards] = nil
	}
	return e
}

// SetExpireLocked changes the expiry of the entry e of key.
func (ks *Keyspace) SetExpireLocked(key []byte, e *Entry, exp int64) {
	if e.exp == exp {
		return
	}
	sh := &ks.shards[ShardOf(key)]
	if exp == 0 {
		ks.delExpire(sh, key)
		sh.used -= expireCost
	} else if e.exp == 0 {
		ks.addExpire(sh, string(key))
		sh.used += expireCost
	}
	e.exp = exp
}

// SetStringLocked sets key to a string value with the given expiry,
// replacing any value. It reuses the entry and its buffer when it can.
func (ks *Keyspace) SetStringLocked(key, val []byte, exp int64, now int64) {
	e := ks.LookupLocked(key, now)
	if e == nil {
		ks.AddLocked(key, NewString(CopyBytes(val), exp))
		return
	}
	ks.ReplaceStringLocked(key, e, val, exp)
}

// ReplaceStringLocked makes e, the live entry of key (from LookupLocked),
// the string val with the given expiry, reusing its buffer when it can.
func (ks *Keyspace) ReplaceStringLocked(key []byte, e *Entry, val []byte, exp int64) {
	if e.IsString() && cap(e.Bytes()) >= len(val) && cap(e.Bytes()) <= 2*len(val)+16 {
		e.SetBytes(append(e.Bytes()[:0], val...))
	} else {
		e.SetBytes(CopyBytes(val))
	}
	ks.SetExpireLocked(key, e, exp)
}

// CopyBytes returns a copy of b that a value can keep (never nil).
func CopyBytes(b []byte) []byte {
	if len(b) == 0 {
		return []byte{}
	}
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// Len returns the number of keys, including expired keys not yet removed.
func (ks *Keyspace) Len() int {
	n := 0
	for i := range ks.shards {
		sh := &ks.shards[i]
		sh.mu.Lock()
		n += sh.keys
		sh.mu.Unlock()
	}
	return n
}

// ShardLenLocked returns the number of keys of shard i, including expired
// keys not yet removed.
func (ks *Keyspace) ShardLenLocked(i int) int { return ks.shards[i].keys }

// ExpiresLen returns the number of keys with an expiry.
func (ks *Keyspace) ExpiresLen() int { return int(ks.expiresN.Load()) }

// addExpire and delExpire add a key to and remove one from the shard's
// keys with an expiry (sh is locked), keeping expiresN.
func (ks *Keyspace) addExpire(sh *shard, k string) {
	n := len(sh.expires)
	sh.expires[k] = struct{}{}
	if len(sh.expires) != n {
		ks.expiresN.Add(1)
	}
}

func (ks *Keyspace) delExpire(sh *shard, key []byte) {
	if n := len(sh.expires); n > 0 {
		delete(sh.expires, string(key))
		if len(sh.expires) != n {
			ks.expiresN.Add(-1)
		}
	}
}

// ForEachInSlotLocked calls fn for each key of a slot (live or expired, the
// caller checks) until fn returns false; the caller holds the slot's shard
// lock. fn must not add or delete keys of the slot.
func (ks *Keyspace) ForEachInSlotLocked(slot int, fn func(key string, e *Entry) bool) {
	m := ks.shards[slot%NumShards].slots[slot/NumShards]
	for k, e := range m {
		if !fn(k, e) {
			return
		}
	}
}

// ForEachInShardLocked calls fn for each key of shard i (live or expired);
// the caller holds its lock. fn must not add or delete keys.
func (ks *Keyspace) ForEachInShardLocked(i int, fn func(key string, e *Entry)) {
	for _, m := range ks.shards[i].slots {
		for k, e := range m {
			fn(k, e)
		}
	}
}

// CountKeysInSlot returns the number of keys stored in a hash slot.
func (ks *Keyspace) CountKeysInSlot(slot int) int {
	sh := &ks.shards[slot%NumShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.slots[slot/NumShards])
}

// KeysInSlot returns up to count keys stored in slot (CLUSTER
// GETKEYSINSLOT).
func (ks *Keyspace) KeysInSlot(slot, count int) []string {
	sh := &ks.shards[slot%NumShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []string
	ks.ForEachInSlotLocked(slot, func(key string, _ *Entry) bool {
		if len(out) >= count {
			return false
		}
		out = append(out, key)
		return true
	})
	return out
}

// FlushShardLocked drops every key of shard i.
func (ks *Keyspace) FlushShardLocked(i int) {
	sh := &ks.shards[i]
	for j := range sh.slots {
		sh.slots[j] = nil
	}
	sh.keys = 0
	ks.expiresN.Add(-int64(len(sh.expires)))
	sh.expires = make(map[string]struct{})
	for _, e := range sh.opened {
		e.m &^= openFlag
	}
	clear(sh.opened)
	sh.opened = sh.opened[:0]
	sh.used = 0
}

// ExpireSample checks up to n keys with an expiry of shard i (map
// iteration starts at a random place) and deletes those expired at now,
// as Redis's active expiry cycle does. It returns how many it deleted; a
// replica deletes none (it waits for the primary's DEL), nor does a
// server whose expiry is paused.
func (ks *Keyspace) ExpireSample(i int, now int64, n int) int {
	if ks.keepExpired() {
		return 0
	}
	sh := &ks.shards[i]
	sh.mu.Lock()
	defer ks.UnlockShard(i)
	var victims []string
	seen := 0
	for k := range sh.expires {
		if seen == n {
			break
		}
		seen++
		slot := KeySlot([]byte(k))
		e := sh.slots[int(slot)/NumShards][k]
		if e != nil && e.exp != 0 && e.exp <= now {
			victims = append(victims, k)
		}
	}
	for _, k := range victims {
		if e := ks.removeLocked([]byte(k)); e != nil {
			ks.dropValue(e, false)
		}
		if ks.expireHook != nil {
			ks.expireHook([]byte(k))
		}
	}
	return len(victims)
}

// SwapShardLocked exchanges the keys of shard i with those of the same
// shard of o (SWAPDB); the caller holds both shards' locks. Each
// keyspace's memory total follows its new keys when the shard is
// unlocked (published stays with the keyspace).
func (ks *Keyspace) SwapShardLocked(o *Keyspace, i int) {
	a, b := &ks.shards[i], &o.shards[i]
	a.slots, b.slots = b.slots, a.slots
	a.keys, b.keys = b.keys, a.keys
	d := int64(len(b.expires) - len(a.expires))
	ks.expiresN.Add(d)
	o.expiresN.Add(-d)
	a.expires, b.expires = b.expires, a.expires
	a.used, b.used = b.used, a.used
	a.opened, b.opened = b.opened, a.opened
}
