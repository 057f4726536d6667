package keyspace

import "sync/atomic"

// LazyFreeThreshold: a value made of more allocations than this is freed
// by the lazy freer when it is deleted by UNLINK (and the other lazy
// paths); a smaller one is dropped at once, since handing it over costs
// more than freeing it (Redis's LAZYFREE_THRESHOLD).
const LazyFreeThreshold = 64

// lazyQueue bounds the values waiting for the freer; when it is full a
// deleted value is dropped at once, as a synchronous delete.
const lazyQueue = 4096

// releaser is a collection the freer can take apart: freeEffort counts
// its allocations (Redis's lazyfreeGetFreeEffort), release drops its
// internal structures.
type releaser interface {
	freeEffort() int
	release()
}

// LazyFree is Redis's lazy free: values deleted by UNLINK, FLUSHALL and
// FLUSHDB ASYNC and the lazyfree-lazy-* paths go to one background
// goroutine, which takes them apart (clears their maps, slices and trees)
// and counts them. The deleting command only unlinks the key: the work
// of walking a big value's structures, and the garbage collector's of
// reclaiming them piece by piece as one graph, is not on its path. A nil
// *LazyFree frees nothing lazily.
type LazyFree struct {
	// the lazyfree-lazy-* settings the keyspace acts on itself (expiry,
	// eviction); the commands read UserDel and UserFlush
	Expire, Eviction, UserDel, UserFlush atomic.Bool

	jobs    chan lazyJob
	pending atomic.Int64 // lazyfree_pending_objects
	freed   atomic.Int64 // lazyfreed_objects

	// release hands the memory of a big flush back to the system (see
	// SetRelease): releaseMin is the flushed bytes that call for it,
	// releaseFn what does it, wantRelease a request for Run
	releaseMin  atomic.Int64
	releaseFn   atomic.Pointer[func()]
	wantRelease chan struct{}
}

// lazyJob is one value or the keys of flushed shards.
type lazyJob struct {
	v     releaser
	maps  []map[string]*Entry
	n     int64 // objects it counts for
	bytes int64 // the flushed keys' estimated size (FlushAsyncLocked)
}

// NewLazyFree returns a freer whose queue fills until Run takes it.
func NewLazyFree() *LazyFree {
	return &LazyFree{jobs: make(chan lazyJob, lazyQueue), wantRelease: make(chan struct{}, 1)}
}

// SetRelease makes a flush of at least min bytes (the keyspace's
// estimate) call fn on the freer's goroutine once the keys are dropped:
// after a FLUSHALL or FLUSHDB SYNC right away, after an ASYNC one once
// the freer has taken the keys apart. The server's fn is
// debug.FreeOSMemory: Go's collector would free the keys' memory at its
// next cycle, but its scavenger gives the pages back to the system only
// slowly, so a process that held gigabytes would keep them resident
// (Redis 7.0 purges jemalloc after a synchronous flush). Requests made
// while one waits are merged. min 0 or fn nil: never.
func (lf *LazyFree) SetRelease(min int64, fn func()) {
	lf.releaseMin.Store(min)
	if fn == nil {
		lf.releaseFn.Store(nil)
		return
	}
	lf.releaseFn.Store(&fn)
}

// noteFlushed asks for a release after bytes were flushed, when they are
// enough.
func (lf *LazyFree) noteFlushed(bytes int64) {
	if lf == nil {
		return
	}
	if m := lf.releaseMin.Load(); m <= 0 || bytes < m || lf.releaseFn.Load() == nil {
		return
	}
	select {
	case lf.wantRelease <- struct{}{}:
	default: // one is pending already
	}
}

// Release calls SetRelease's fn now (MEMORY PURGE), whatever was freed.
func (lf *LazyFree) Release() {
	if fn := lf.releaseFn.Load(); fn != nil {
		(*fn)()
	}
}

// Run frees what is queued until done is closed, then what is left.
func (lf *LazyFree) Run(done <-chan struct{}) {
	for {
		select {
		case j := <-lf.jobs:
			lf.do(j)
		case <-lf.wantRelease:
			lf.Release()
		case <-done:
			for {
				select {
				case j := <-lf.jobs:
					lf.do(j)
				default:
					return
				}
			}
		}
	}
}

func (lf *LazyFree) do(j lazyJob) {
	if j.v != nil {
		j.v.release()
	}
	for _, m := range j.maps {
		for _, e := range m {
			if r := releaserOf(e); r != nil {
				r.release()
			}
		}
		clear(m)
	}
	lf.pending.Add(-j.n)
	lf.freed.Add(j.n)
	lf.noteFlushed(j.bytes)
}

// Pending returns the objects queued and not freed yet
// (lazyfree_pending_objects).
func (lf *LazyFree) Pending() int64 {
	if lf == nil {
		return 0
	}
	return lf.pending.Load()
}

// Freed returns the objects freed in the background since the start or
// the last ResetStats (lazyfreed_objects).
func (lf *LazyFree) Freed() int64 {
	if lf == nil {
		return 0
	}
	return lf.freed.Load()
}

// ResetStats zeroes Freed (CONFIG RESETSTAT).
func (lf *LazyFree) ResetStats() {
	if lf != nil {
		lf.freed.Store(0)
	}
}

// enqueue hands j to the freer; false when the queue is full.
func (lf *LazyFree) enqueue(j lazyJob) bool {
	lf.pending.Add(j.n)
	select {
	case lf.jobs <- j:
		return true
	default:
		lf.pending.Add(-j.n)
		return false
	}
}

// free hands the value of a deleted entry to the freer when it is big
// enough to be worth it. Only the value is handed over, not the entry:
// the shard may still read the entry's bits before it is unlocked.
func (lf *LazyFree) free(e *Entry) {
	if lf == nil {
		return
	}
	if r := releaserOf(e); r != nil && r.freeEffort() > LazyFreeThreshold {
		lf.enqueue(lazyJob{v: r, n: 1})
	}
}

// releaserOf returns the collection of e, nil for a string (one
// allocation) or a type that cannot be taken apart.
func releaserOf(e *Entry) releaser {
	if e.m&objFlag == 0 {
		return nil
	}
	switch k := Kind(e.m & lenMask); k {
	case kindList:
		return (*List)(e.p)
	case kindSet:
		return (*Set)(e.p)
	case kindHash:
		return (*Hash)(e.p)
	case kindZSet:
		return (*ZSet)(e.p)
	case Streams.kind:
		return (*Stream)(e.p)
	}
	return nil
}

// SetLazyFree makes UnlinkLocked, FlushAsyncLocked and the lazy
// expiry and eviction paths use lf; set once before serving.
func (ks *Keyspace) SetLazyFree(lf *LazyFree) { ks.lazy = lf }

// LazyFree returns the freer set by SetLazyFree (nil if none).
func (ks *Keyspace) LazyFree() *LazyFree { return ks.lazy }

// UnlinkLocked removes key as DeleteLocked does, and hands a big value
// to the lazy freer (UNLINK).
func (ks *Keyspace) UnlinkLocked(key []byte) bool {
	e := ks.removeLocked(key)
	if e == nil {
		return false
	}
	ks.lazy.free(e)
	return true
}

// FlushAsyncLocked drops every key as FlushShardLocked of every shard
// does (the caller holds them all), and hands them to the lazy freer in
// one job that counts each key as an object (FLUSHALL and FLUSHDB ASYNC,
// as Redis's emptyDbAsync). Without a freer, or with its queue full, the
// keys are dropped at once.
func (ks *Keyspace) FlushAsyncLocked() {
	var maps []map[string]*Entry
	var n int64
	bytes := ks.usedLocked()
	if ks.lazy != nil {
		for i := range ks.shards {
			sh := &ks.shards[i]
			for _, m := range sh.slots {
				if m != nil {
					maps = append(maps, m)
				}
			}
			n += int64(sh.keys)
		}
	}
	for i := range ks.shards {
		ks.FlushShardLocked(i)
	}
	ks.scan.Clear()
	if n > 0 && ks.lazy.enqueue(lazyJob{maps: maps, n: n, bytes: bytes}) {
		return
	}
	ks.lazy.noteFlushed(bytes) // dropped at once
}

// FlushLocked drops every key as FlushShardLocked of every shard does
// (the caller holds them all): FLUSHALL and FLUSHDB SYNC. A big flush
// has the freer give the memory back (SetRelease).
func (ks *Keyspace) FlushLocked() {
	bytes := ks.usedLocked()
	for i := range ks.shards {
		ks.FlushShardLocked(i)
	}
	ks.scan.Clear()
	ks.lazy.noteFlushed(bytes)
}

// usedLocked is the estimated size of the keys of every shard (the
// caller holds them all).
func (ks *Keyspace) usedLocked() int64 {
	var n int64
	for i := range ks.shards {
		n += ks.shards[i].used
	}
	return n
}

// dropValue hands the value of an entry deleted by expiry (evicted
// false) or eviction to the freer when the matching setting is on.
func (ks *Keyspace) dropValue(e *Entry, evicted bool) {
	lf := ks.lazy
	if lf == nil {
		return
	}
	if (!evicted && lf.Expire.Load()) || (evicted && lf.Eviction.Load()) {
		lf.free(e)
	}
}

// The collections' efforts count what the collector reclaims one by one:
// a member or element is an allocation (its bytes), a small set or hash
// kept as one packed buffer is one. Their release drops the structures.

// A list's effort is its nodes, as Redis counts a quicklist's: each is
// three allocations, whatever number of elements it packs.
func (l *List) freeEffort() int { return l.Nodes() }

func (l *List) release() {
	if l.d != nil {
		clear(l.d.nodes)
	}
	*l = List{}
}

// A set's are in set.go.

func (h *Hash) freeEffort() int {
	if h.big != nil {
		return len(h.big.m)
	}
	return 1
}

func (h *Hash) release() {
	if h.big != nil {
		clear(h.big.m)
	}
	*h = Hash{}
}

// A sorted set's effort is its members in the big form, 1 in the small
// one (one allocation), as Redis counts a skip list's and a listpack's.
func (z *ZSet) freeEffort() int {
	if z.dict == nil {
		return 1
	}
	return z.length
}

func (z *ZSet) release() {
	if z.dict == nil {
		*z = ZSet{}
		return
	}
	clear(z.dict)
	// unlink the skip list node by node so no node keeps the rest alive
	for n := z.sl.header; n != nil; {
		var next *ZNode
		if len(n.level) > 0 {
			next = n.level[0].forward
		}
		n.backward, n.level = nil, nil
		n = next
	}
	*z = ZSet{}
}

// A stream's effort is its entries plus, per consumer group, the group
// and its pending entries.
func (s *Stream) freeEffort() int {
	n := s.entries.Len()
	for _, g := range s.groups {
		n += 1 + g.pel.Len()
	}
	return n
}

func (s *Stream) release() {
	clear(s.entries.chunks) // a chunk's items and data hold no pointers
	for _, g := range s.groups {
		g.pel.Clear(false)
		for _, c := range g.consumers {
			c.pel.Clear(false)
		}
		clear(g.consumers)
	}
	clear(s.groups)
	clear(s.nodes)
	*s = Stream{entries: &streamEntries{}}
}
