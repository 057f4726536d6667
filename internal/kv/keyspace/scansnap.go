package keyspace

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// ScanEntry is a member of a collection at its position in the order
// SSCAN, HSCAN and ZSCAN walk: H is the member's hash.
type ScanEntry struct {
	H uint64
	M string
}

// scanEntryBytes is what a ScanEntry costs besides its member's bytes.
const scanEntryBytes = 24

// DefaultScanSnapshotBudget is the most bytes a table of scan snapshots
// (a server's, which its databases share) holds by default.
const DefaultScanSnapshotBudget = 64 << 20

// ScanSnapshots keeps, for the big collections being scanned, their
// members sorted by hash, so that a call of SSCAN, HSCAN or ZSCAN costs a
// binary search and its COUNT instead of sorting the collection again.
// It is a side table so the collections' headers stay as small as they
// are: it is keyed by a weak pointer to the collection (weak.Pointer, so
// a freed collection never matches a new one at its address), bounded by
// a budget of bytes, least recently used first out. A snapshot is
// immutable once stored; its own mutex guards the table, as callers hold
// only their key's shard.
type ScanSnapshots struct {
	mu     sync.Mutex
	budget int64
	m      map[any]*list.Element // of *scanSnap
	lru    list.List             // front: most recently used
	bytes  atomic.Int64
}

type scanSnap struct {
	key     any
	from    uint64 // entries are the members with a hash at or above it
	entries []ScanEntry
	bytes   int64
}

// ScanSnapshots returns the keyspace's table of scan snapshots.
func (ks *Keyspace) ScanSnapshots() *ScanSnapshots { return ks.scan }

// ShareScanSnapshots makes ks use o's table of scan snapshots, so that
// the databases of a server share one budget (the keys, weak pointers
// to collections, never collide).
func (ks *Keyspace) ShareScanSnapshots(o *Keyspace) { ks.scan = o.scan }

// SetBudget sets the most bytes the table holds (0: the default) and
// evicts down to it.
func (t *ScanSnapshots) SetBudget(n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.budget = n
	t.evictLocked(0)
}

// Bytes is the estimated memory of the snapshots held: per member 24
// bytes and the member's bytes (a snapshot keeps a removed member alive).
func (t *ScanSnapshots) Bytes() int64 { return t.bytes.Load() }

// Len is the number of snapshots held.
func (t *ScanSnapshots) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *ScanSnapshots) limit() int64 {
	if t.budget > 0 {
		return t.budget
	}
	return DefaultScanSnapshotBudget
}

// Get returns the snapshot of the collection key (a weak.Pointer to
// it) if it covers cursor, nil when there is none, and marks it used.
func (t *ScanSnapshots) Get(key any, cursor uint64) []ScanEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	if e == nil || cursor < e.Value.(*scanSnap).from {
		return nil
	}
	t.lru.MoveToFront(e)
	return e.Value.(*scanSnap).entries
}

// Put stores entries, the members with a hash at or above from, as the
// snapshot of key, replacing any, and evicts the least recently used
// snapshots over the budget; a snapshot bigger than the budget is not
// kept (false).
func (t *ScanSnapshots) Put(key any, from uint64, entries []ScanEntry) bool {
	n := int64(len(entries)) * scanEntryBytes
	for i := range entries {
		n += int64(len(entries[i].M))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropLocked(key)
	if n > t.limit() {
		return false
	}
	t.evictLocked(n)
	if t.m == nil {
		t.m = map[any]*list.Element{}
	}
	t.m[key] = t.lru.PushFront(&scanSnap{key: key, from: from, entries: entries, bytes: n})
	t.bytes.Add(n)
	return true
}

// Drop forgets the snapshot of key (its scan is over).
func (t *ScanSnapshots) Drop(key any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropLocked(key)
}

// Clear forgets every snapshot (a database was flushed; the scans of the
// others rebuild theirs).
func (t *ScanSnapshots) Clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m = nil
	t.lru.Init()
	t.bytes.Store(0)
}

func (t *ScanSnapshots) dropLocked(key any) {
	if e := t.m[key]; e != nil {
		t.removeLocked(e)
	}
}

func (t *ScanSnapshots) removeLocked(e *list.Element) {
	s := e.Value.(*scanSnap)
	t.lru.Remove(e)
	delete(t.m, s.key)
	t.bytes.Add(-s.bytes)
}

// evictLocked drops least recently used snapshots until room more bytes
// fit in the budget.
func (t *ScanSnapshots) evictLocked(room int64) {
	for t.lru.Len() > 0 && t.bytes.Load()+room > t.limit() {
		t.removeLocked(t.lru.Back())
	}
}
