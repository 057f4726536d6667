// Package kv is the data store of a gantry peer: a keyspace of strings,
// lists, sets, hashes and sorted sets with expiry and persistence, served
// over the Redis protocol.
//
// The keyspace is split into 256 shards, each guarded by its own mutex; a key
// belongs to the shard of its Redis Cluster hash slot (CRC16 of the key or of
// its {hash tag}, modulo 16384), and inside a shard keys are grouped per slot,
// so a later issue can list, count, move or drop the keys of one slot without
// touching the others. A command locks the shards of its keys in ascending
// order, so commands on different shards run in parallel and multi-key
// commands and transactions are atomic.
package kv

import (
	"math"
	"sync"
	"sync/atomic"
	"unsafe"
)

// NumSlots is the number of Redis Cluster hash slots.
const NumSlots = 16384

const (
	numShards     = 256 // must divide NumSlots
	slotsPerShard = NumSlots / numShards
)

// entry is the value of a key, in 24 bytes (the smallest size class that
// holds an expiry and a pointer): a string keeps its bytes at p with length
// n and capacity c; any other kind keeps its object at p (a *list, a
// *set, a *hash or a *zset), n = objMark and c the
// kind.
type entry struct {
	exp int64          // expiry in Unix milliseconds, 0 for none
	p   unsafe.Pointer // string bytes or the object
	n   uint32         // string length, or objMark
	c   uint32         // string capacity, or the kind of object
}

const objMark = ^uint32(0)

const (
	kindList uint32 = iota + 1
	kindSet
	kindHash
	kindZSet
)

func newStringEntry(b []byte, exp int64) *entry {
	e := &entry{exp: exp}
	e.setBytes(b)
	return e
}

func newObjectEntry(o any) *entry {
	e := &entry{}
	e.setObject(o)
	return e
}

func (e *entry) isString() bool { return e.n != objMark }

// bytes returns the string value; it aliases the stored bytes.
func (e *entry) bytes() []byte {
	if e.p == nil || e.n == objMark {
		return nil
	}
	return unsafe.Slice((*byte)(e.p), e.c)[:e.n]
}

// setBytes makes the entry a string holding b (which it takes over).
func (e *entry) setBytes(b []byte) {
	if cap(b) > math.MaxUint32-1 { // not reachable with 512 MB strings
		b = b[:len(b):len(b)]
	}
	e.p, e.n, e.c = unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)), uint32(cap(b))
	if cap(b) == 0 {
		e.p = nil
	}
}

// setObject makes the entry hold a collection.
func (e *entry) setObject(o any) {
	e.n = objMark
	switch v := o.(type) {
	case *list:
		e.p, e.c = unsafe.Pointer(v), kindList
	case *zset:
		e.p, e.c = unsafe.Pointer(v), kindZSet
	case *set:
		e.p, e.c = unsafe.Pointer(v), kindSet
	case *hash:
		e.p, e.c = unsafe.Pointer(v), kindHash
	default:
		panic("kv: unknown value type")
	}
}

// object returns the collection of a non-string entry, nil for a string.
func (e *entry) object() any {
	if e.n != objMark {
		return nil
	}
	switch e.c {
	case kindList:
		return (*list)(e.p)
	case kindZSet:
		return (*zset)(e.p)
	case kindSet:
		return (*set)(e.p)
	case kindHash:
		return (*hash)(e.p)
	}
	return nil
}

func (e *entry) kind() string {
	if e.n != objMark {
		return "string"
	}
	switch e.c {
	case kindList:
		return "list"
	case kindSet:
		return "set"
	case kindHash:
		return "hash"
	case kindZSet:
		return "zset"
	}
	return "none"
}

// shard is one part of the keyspace. All fields are guarded by mu.
type shard struct {
	mu      sync.Mutex
	slots   [slotsPerShard]map[string]*entry // keys by slot/numShards
	keys    int                              // number of keys
	expires map[string]struct{}              // keys with an expiry, sampled by the active expirer
	// watchers of keys (WATCH) and clients blocked on keys (BLPOP ...).
	watchers map[string][]*Client
	blocked  map[string][]chan struct{}
	// moving are the keys MIGRATE is sending (writes to them get TRYAGAIN)
	moving map[string]struct{}
	// snapDone is true while a rewrite runs once this shard has been
	// written to the new snapshot: its later writes go to the new log too.
	snapDone bool
	_        [40]byte // keep shards on separate cache lines
}

// Keyspace is the set of keys of one database, sharded by hash slot.
type Keyspace struct {
	shards [numShards]shard
	// expireHook is told about every key deleted because it expired (the
	// replication stream sends a DEL); set once before serving.
	expireHook func(key []byte)
	// replicaMode: on a replica expired keys are hidden from reads but not
	// deleted; the primary's DEL deletes them.
	replicaMode atomic.Bool
}

func newKeyspace() *Keyspace {
	ks := &Keyspace{}
	for i := range ks.shards {
		ks.shards[i].expires = make(map[string]struct{})
	}
	return ks
}

// shardOf returns the shard index of a key.
func shardOf(key []byte) int { return int(KeySlot(key)) % numShards }

// lookupLocked returns the live entry of key, deleting it when it has
// expired at now. The caller holds the key's shard lock.
func (ks *Keyspace) lookupLocked(key []byte, now int64) *entry {
	slot := KeySlot(key)
	sh := &ks.shards[int(slot)%numShards]
	m := sh.slots[int(slot)/numShards]
	if m == nil {
		return nil
	}
	e := m[string(key)]
	if e == nil {
		return nil
	}
	if e.exp != 0 && e.exp <= now {
		if ks.replicaMode.Load() {
			return nil
		}
		delete(m, string(key))
		delete(sh.expires, string(key))
		sh.keys--
		if ks.expireHook != nil {
			ks.expireHook(key)
		}
		return nil
	}
	return e
}

// addLocked inserts a new key (which must not exist) and returns its entry.
func (ks *Keyspace) addLocked(key []byte, e *entry) *entry {
	slot := KeySlot(key)
	sh := &ks.shards[int(slot)%numShards]
	m := sh.slots[int(slot)/numShards]
	if m == nil {
		m = make(map[string]*entry)
		sh.slots[int(slot)/numShards] = m
	}
	k := string(key)
	m[k] = e
	sh.keys++
	if e.exp != 0 {
		sh.expires[k] = struct{}{}
	}
	return e
}

// deleteLocked removes key and reports whether it existed (expired or not).
func (ks *Keyspace) deleteLocked(key []byte) bool {
	slot := KeySlot(key)
	sh := &ks.shards[int(slot)%numShards]
	m := sh.slots[int(slot)/numShards]
	if m == nil {
		return false
	}
	if _, ok := m[string(key)]; !ok {
		return false
	}
	delete(m, string(key))
	delete(sh.expires, string(key))
	sh.keys--
	if len(m) == 0 {
		sh.slots[int(slot)/numShards] = nil
	}
	return true
}

// setExpireLocked changes the expiry of an existing entry.
func (ks *Keyspace) setExpireLocked(key []byte, e *entry, exp int64) {
	if e.exp == exp {
		return
	}
	sh := &ks.shards[shardOf(key)]
	if exp == 0 {
		delete(sh.expires, string(key))
	} else if e.exp == 0 {
		sh.expires[string(key)] = struct{}{}
	}
	e.exp = exp
}

// setStringLocked sets key to a string value with the given expiry,
// replacing any value. It reuses the entry and its buffer when it can.
func (ks *Keyspace) setStringLocked(key, val []byte, exp int64, now int64) {
	e := ks.lookupLocked(key, now)
	if e == nil {
		ks.addLocked(key, newStringEntry(copyBytes(val), exp))
		return
	}
	if e.isString() && cap(e.bytes()) >= len(val) && cap(e.bytes()) <= 2*len(val)+16 {
		e.setBytes(append(e.bytes()[:0], val...))
	} else {
		e.setBytes(copyBytes(val))
	}
	ks.setExpireLocked(key, e, exp)
}

func copyBytes(b []byte) []byte {
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

// forEachInSlotLocked calls fn for each key of a slot (live or expired, the
// caller checks); the caller holds the slot's shard lock. fn must not add or
// delete keys of the slot.
func (ks *Keyspace) forEachInSlotLocked(slot int, fn func(key string, e *entry) bool) {
	m := ks.shards[slot%numShards].slots[slot/numShards]
	for k, e := range m {
		if !fn(k, e) {
			return
		}
	}
}

// CountKeysInSlot returns the number of keys stored in a hash slot.
func (ks *Keyspace) CountKeysInSlot(slot int) int {
	sh := &ks.shards[slot%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.slots[slot/numShards])
}

// flushShardLocked drops every key of a shard.
func (ks *Keyspace) flushShardLocked(i int) {
	sh := &ks.shards[i]
	for j := range sh.slots {
		sh.slots[j] = nil
	}
	sh.keys = 0
	sh.expires = make(map[string]struct{})
}
