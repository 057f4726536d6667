package keyspace

import (
	"math"
	"sync"
	"sync/atomic"
)

// Eviction (maxmemory), as Redis does it: every key carries 24 access bits
// (Entry, bits 40-63), an LRU clock or an LFU counter, updated by each
// lookup; EvictOne samples a few keys of a random shard, keeps the best
// candidates in a pool of 16 that persists between calls, and deletes the
// best one. The caller (the server) decides when memory is over the limit
// and logs and replicates the deletions (SetEvictHook).

// Policy is a maxmemory-policy.
type Policy int32

// The policies of Redis's maxmemory-policy.
const (
	NoEviction Policy = iota
	AllKeysLRU
	AllKeysLFU
	AllKeysRandom
	VolatileLRU
	VolatileLFU
	VolatileRandom
	VolatileTTL
)

var policyNames = [...]string{"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
	"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}

// ParsePolicy returns the policy named s (Redis's names).
func ParsePolicy(s string) (Policy, bool) {
	for i, n := range policyNames {
		if n == s {
			return Policy(i), true
		}
	}
	return 0, false
}

func (p Policy) String() string { return policyNames[p] }

// LFU reports whether the access bits are LFU counters.
func (p Policy) LFU() bool { return p == AllKeysLFU || p == VolatileLFU }

// volatile reports whether only keys with an expiry are evicted.
func (p Policy) volatile() bool { return p >= VolatileLRU }

const (
	lruMax     = accessMask // the LRU clock, in seconds, wraps at 2^24 (194 days)
	lfuInitVal = 5          // a new key's LFU counter, so it is not evicted at once
	poolSize   = 16         // Redis's EVPOOL_SIZE
)

// evictor is the eviction state of a keyspace.
type evictor struct {
	policy    atomic.Int32
	samples   atomic.Int32 // maxmemory-samples
	logFactor atomic.Int32 // lfu-log-factor
	decay     atomic.Int32 // lfu-decay-time, minutes

	mu   sync.Mutex // guards the pool and rng
	pool [poolSize]candidate
	rng  uint64
	// evictHook is told about every key evicted, with its shard locked;
	// set once before serving.
	hook func(key []byte)
}

// candidate is a key of the pool; a higher score is evicted first.
type candidate struct {
	key   string
	shard int
	score uint64
	ok    bool
}

func (ev *evictor) init() {
	ev.samples.Store(5)
	ev.logFactor.Store(10)
	ev.decay.Store(1)
	ev.rng = 0x2545f4914f6cdd1d
}

// SetPolicy sets the eviction policy; switching between LRU and LFU
// reinterprets the access bits, which adjust as keys are used (as in
// Redis).
func (ks *Keyspace) SetPolicy(p Policy) { ks.evict.policy.Store(int32(p)) }

// Policy returns the eviction policy.
func (ks *Keyspace) Policy() Policy { return Policy(ks.evict.policy.Load()) }

// SetSamples sets maxmemory-samples, the keys sampled per eviction.
func (ks *Keyspace) SetSamples(n int) { ks.evict.samples.Store(int32(n)) }

// Samples returns maxmemory-samples.
func (ks *Keyspace) Samples() int { return int(ks.evict.samples.Load()) }

// LFU returns lfu-log-factor and lfu-decay-time (minutes).
func (ks *Keyspace) LFU() (logFactor, decayMinutes int) {
	return int(ks.evict.logFactor.Load()), int(ks.evict.decay.Load())
}

// SetLFU sets lfu-log-factor and lfu-decay-time (minutes).
func (ks *Keyspace) SetLFU(logFactor, decayMinutes int) {
	ks.evict.logFactor.Store(int32(logFactor))
	ks.evict.decay.Store(int32(decayMinutes))
}

// SetEvictHook sets the function told about every key EvictOne deletes,
// with the key's shard locked; it must be set before the keyspace is
// shared.
func (ks *Keyspace) SetEvictHook(fn func(key []byte)) { ks.evict.hook = fn }

// SeedEviction seeds the random choices of eviction and of LFU counters
// (tests make them repeatable; which keys a shard's sample sees still
// depends on Go's map iteration).
func (ks *Keyspace) SeedEviction(seed uint64) {
	ks.evict.mu.Lock()
	ks.evict.rng = seed | 1
	ks.evict.mu.Unlock()
	for i := range ks.shards {
		sh := &ks.shards[i]
		sh.mu.Lock()
		sh.rng = seed*uint64(i+1) | 1
		sh.mu.Unlock()
	}
}

func xorshift(s *uint64) uint64 {
	x := *s
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*s = x
	return x
}

func (e *Entry) access() uint32 { return uint32(e.m >> accessShift) }
func (e *Entry) setAccess(a uint32) {
	e.m = e.m&^(accessMask<<accessShift) | uint64(a&accessMask)<<accessShift
}

func lruClock(now int64) uint32 { return uint32(now/1000) & lruMax }

// idleMs is Redis's estimateObjectIdleTime: the clock wraps once.
func idleMs(lru uint32, now int64) int64 {
	c := lruClock(now)
	if c >= lru {
		return int64(c-lru) * 1000
	}
	return int64(c+(lruMax-lru)) * 1000
}

func lfuMinutes(now int64) uint32 { return uint32(now/60000) & 0xffff }

// lfuDecrement is Redis's LFUDecrAndReturn: the counter less one per
// lfu-decay-time minutes since the key was last accessed.
func (ev *evictor) lfuDecrement(a uint32, now int64) uint32 {
	ldt, counter := a>>8, a&255
	decay := uint32(ev.decay.Load())
	if decay == 0 {
		return counter
	}
	t := lfuMinutes(now)
	elapsed := t - ldt
	if t < ldt {
		elapsed = 65535 - ldt + t
	}
	if p := elapsed / decay; p < counter {
		return counter - p
	}
	return 0
}

// lfuIncrement is Redis's LFULogIncr: the counter grows with probability
// 1/((counter-5)*lfu-log-factor+1), so 255 stands for about a million
// accesses with the default factor 10.
func (ev *evictor) lfuIncrement(counter uint32, rng *uint64) uint32 {
	if counter == 255 {
		return 255
	}
	r := float64(xorshift(rng)>>11) / (1 << 53)
	base := float64(0)
	if counter > lfuInitVal {
		base = float64(counter - lfuInitVal)
	}
	if r < 1/(base*float64(ev.logFactor.Load())+1) {
		counter++
	}
	return counter
}

// touch records an access to e at now.
func (ks *Keyspace) touch(sh *shard, e *Entry, now int64) {
	if Policy(ks.evict.policy.Load()).LFU() {
		c := ks.evict.lfuIncrement(ks.evict.lfuDecrement(e.access(), now), &sh.rng)
		e.setAccess(lfuMinutes(now)<<8 | c)
		return
	}
	e.setAccess(lruClock(now))
}

// initAccess gives a new entry its first access bits.
func (ks *Keyspace) initAccess(_ *shard, e *Entry, now int64) {
	if Policy(ks.evict.policy.Load()).LFU() {
		e.setAccess(lfuMinutes(now)<<8 | lfuInitVal)
		return
	}
	e.setAccess(lruClock(now))
}

// IdleTime returns the seconds since e was last accessed (OBJECT IDLETIME;
// meaningful under an LRU policy or none).
func (e *Entry) IdleTime(now int64) int64 { return idleMs(e.access(), now) / 1000 }

// Freq returns e's LFU counter, decayed to now (OBJECT FREQ; meaningful
// under an LFU policy).
func (ks *Keyspace) Freq(e *Entry, now int64) int {
	return int(ks.evict.lfuDecrement(e.access(), now))
}

// SetAccessLocked sets e's access bits as RESTORE's IDLETIME (seconds,
// under an LRU policy) or FREQ (under an LFU policy) ask; a negative value
// is not given.
func (ks *Keyspace) SetAccessLocked(e *Entry, idle, freq int64, now int64) {
	if ks.Policy().LFU() {
		if freq >= 0 {
			e.setAccess(lfuMinutes(now)<<8 | uint32(min(freq, 255)))
		}
		return
	}
	if idle >= 0 {
		c := int64(lruClock(now)) - min(idle, lruMax)
		if c < 0 {
			c += lruMax
		}
		e.setAccess(uint32(c))
	}
}

// score is how good a victim e is under p at now: longer idle, lower
// frequency, sooner expiry are higher.
func (ks *Keyspace) score(p Policy, e *Entry, now int64) uint64 {
	switch p {
	case AllKeysLFU, VolatileLFU:
		return 255 - uint64(ks.evict.lfuDecrement(e.access(), now))
	case VolatileTTL:
		return math.MaxUint64 - uint64(e.exp)
	}
	return uint64(idleMs(e.access(), now))
}

// EvictOne deletes one key chosen by the policy, calling the evict hook
// with its shard locked, and reports whether it found one: false under
// noeviction, or when no key qualifies (no keys, or none with an expiry
// under a volatile policy). It locks one shard at a time.
func (ks *Keyspace) EvictOne(now int64) bool {
	ev := &ks.evict
	p := ks.Policy()
	if p == NoEviction {
		return false
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if p == AllKeysRandom || p == VolatileRandom {
		return ks.evictRandom(p, now)
	}
	for round := 0; round < 64; round++ { // a bound, in case keys vanish as fast as they are sampled
		if !ks.populate(p, now) && ev.poolEmpty() {
			return false
		}
		// the best candidates first; one deleted or changed since it was
		// sampled is skipped
		for i := poolSize - 1; i >= 0; i-- {
			c := ev.pool[i]
			if !c.ok {
				continue
			}
			ev.pool[i] = candidate{}
			if ks.evictKey(c.shard, c.key, p, now) {
				return true
			}
		}
	}
	return false
}

func (ev *evictor) poolEmpty() bool {
	for _, c := range ev.pool {
		if c.ok {
			return false
		}
	}
	return true
}

// evictKey deletes key if it is still there (with an expiry under a
// volatile policy).
func (ks *Keyspace) evictKey(i int, key string, p Policy, now int64) bool {
	sh := &ks.shards[i]
	sh.mu.Lock()
	defer ks.UnlockShard(i)
	slot := KeySlot([]byte(key))
	e := sh.slots[int(slot)/NumShards][key]
	if e == nil || (p.volatile() && e.exp == 0) {
		return false
	}
	if e := ks.removeLocked([]byte(key)); e != nil {
		ks.dropValue(e, true)
	}
	if ks.evict.hook != nil {
		ks.evict.hook([]byte(key))
	}
	return true
}

// nextShard returns a random shard with keys that qualify under p,
// starting its search at a random one; false if there are none.
func (ks *Keyspace) nextShard(p Policy) (int, bool) {
	start := int(xorshift(&ks.evict.rng) % NumShards)
	for j := 0; j < NumShards; j++ {
		i := (start + j) % NumShards
		sh := &ks.shards[i]
		sh.mu.Lock()
		n := sh.keys
		if p.volatile() {
			n = len(sh.expires)
		}
		sh.mu.Unlock()
		if n > 0 {
			return i, true
		}
	}
	return 0, false
}

// populate samples maxmemory-samples keys of a random shard into the pool,
// as Redis's evictionPoolPopulate; false if no key qualifies.
func (ks *Keyspace) populate(p Policy, now int64) bool {
	i, ok := ks.nextShard(p)
	if !ok {
		return false
	}
	n := int(ks.evict.samples.Load())
	sh := &ks.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock() // nothing changes: no settle needed
	ks.sample(sh, p, n, func(key string, e *Entry) {
		ks.evict.insert(candidate{key: key, shard: i, score: ks.score(p, e, now), ok: true})
	})
	return true
}

// sample calls fn for up to n keys of the shard that qualify under p,
// from random places (a random slot, Go's random map iteration start).
func (ks *Keyspace) sample(sh *shard, p Policy, n int, fn func(key string, e *Entry)) {
	if p.volatile() {
		for k := range sh.expires {
			if n == 0 {
				return
			}
			if e := sh.slots[int(KeySlot([]byte(k)))/NumShards][k]; e != nil {
				fn(k, e)
				n--
			}
		}
		return
	}
	start := int(xorshift(&ks.evict.rng) % slotsPerShard)
	for j := 0; j < slotsPerShard && n > 0; j++ {
		for k, e := range sh.slots[(start+j)%slotsPerShard] {
			if n == 0 {
				return
			}
			fn(k, e)
			n--
		}
	}
}

// insert puts c in the pool, kept in ascending score order; a full pool
// drops its lowest candidate for a better one.
func (ev *evictor) insert(c candidate) {
	for i := range ev.pool {
		if ev.pool[i].ok && ev.pool[i].key == c.key {
			ev.pool[i].ok = false // sampled again: its score is new
		}
	}
	// compact, then find c's place
	n := 0
	for _, x := range ev.pool {
		if x.ok {
			ev.pool[n] = x
			n++
		}
	}
	for j := n; j < poolSize; j++ {
		ev.pool[j] = candidate{}
	}
	k := 0
	for k < n && ev.pool[k].score < c.score {
		k++
	}
	if n == poolSize {
		if k == 0 {
			return // worse than every candidate
		}
		copy(ev.pool[:k-1], ev.pool[1:k]) // drop the worst
		ev.pool[k-1] = c
		return
	}
	copy(ev.pool[k+1:n+1], ev.pool[k:n])
	ev.pool[k] = c
}

// evictRandom deletes a random key (one with an expiry under
// volatile-random).
func (ks *Keyspace) evictRandom(p Policy, now int64) bool {
	for tries := 0; tries < 4; tries++ {
		i, ok := ks.nextShard(p)
		if !ok {
			return false
		}
		var key string
		found := false
		sh := &ks.shards[i]
		sh.mu.Lock()
		ks.sample(sh, p, 1, func(k string, _ *Entry) { key, found = k, true })
		sh.mu.Unlock()
		if found && ks.evictKey(i, key, p, now) {
			return true
		}
	}
	return false
}
