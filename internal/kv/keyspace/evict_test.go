package keyspace

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestSlackCode(t *testing.T) {
	for slack := 0; slack < 1<<20; slack = slack*5/4 + 1 {
		got := slackOf(slackCode(slack))
		if got > slack || got < slack-slack/8-1 {
			t.Fatalf("slack %d decodes to %d", slack, got)
		}
	}
	if got := slackOf(slackCode(1 << 29)); got != 1<<29 {
		t.Fatalf("512 MB of slack decodes to %d", got)
	}
}

// TestEntryBits: the capacity, the access bits and the open flag share a
// word; changing one keeps the others.
func TestEntryBits(t *testing.T) {
	b := make([]byte, 100, 1000)
	e := NewString(b, 0)
	e.setAccess(0xabcdef)
	e.m |= openFlag
	if got := e.Bytes(); len(got) != 100 || cap(got) > 1000 || cap(got) < 900 {
		t.Fatalf("len %d cap %d", len(got), cap(got))
	}
	e.SetBytes([]byte("xyz"))
	if e.access() != 0xabcdef || e.m&openFlag == 0 || string(e.Bytes()) != "xyz" || !e.IsString() {
		t.Fatalf("after SetBytes: access %x open %v %q", e.access(), e.m&openFlag != 0, e.Bytes())
	}
	l := Lists.NewEntry(&List{})
	l.setAccess(7)
	if Lists.Of(l) == nil || l.access() != 7 || l.Kind() != Lists.Kind() {
		t.Fatal("a list with access bits is not a list")
	}
	l.SetBytes([]byte("now a string"))
	if !l.IsString() || Lists.Of(l) != nil || string(l.Bytes()) != "now a string" || l.access() != 7 {
		t.Fatal("a list set to a string")
	}
}

// recount is the memory of a keyspace counted from scratch.
func recount(ks *Keyspace) int64 {
	var n int64
	for i := range ks.shards {
		ks.LockShard(i)
		ks.ForEachInShardLocked(i, func(k string, e *Entry) { n += KeyMemory([]byte(k), e) })
		ks.UnlockShard(i)
	}
	return n
}

// TestMemoryAccounting: after any sequence of changes the keyspace's
// running total equals its memory counted from scratch: values changed in
// place after a lookup, keys added, deleted (opened or not), moved to
// another key in another shard, expired, flushed.
func TestMemoryAccounting(t *testing.T) {
	ks := New()
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() []byte { return fmt.Appendf(nil, "k%d", rng.IntN(300)) }
	lock := func(keys ...[]byte) func() {
		var locked []int
		for _, k := range keys {
			i := ShardOf(k)
			dup := false
			for _, j := range locked {
				dup = dup || j == i
			}
			if !dup {
				locked = append(locked, i)
			}
		}
		// ascending, as the dispatcher locks
		for a := range locked {
			for b := a + 1; b < len(locked); b++ {
				if locked[b] < locked[a] {
					locked[a], locked[b] = locked[b], locked[a]
				}
			}
		}
		for _, i := range locked {
			ks.LockShard(i)
		}
		return func() {
			for _, i := range locked {
				ks.UnlockShard(i)
			}
		}
	}
	now := int64(1_000_000)
	for step := 0; step < 20000; step++ {
		now += int64(rng.IntN(3))
		k := key()
		val := make([]byte, rng.IntN(200))
		switch op := rng.IntN(10); op {
		case 0: // SET
			unlock := lock(k)
			ks.SetStringLocked(k, val, 0, now)
			unlock()
		case 1: // APPEND in place
			unlock := lock(k)
			if e := ks.LookupLocked(k, now); e != nil && e.IsString() {
				e.SetBytes(append(e.Bytes(), val...))
			}
			unlock()
		case 2: // RPUSH / LPOP
			unlock := lock(k)
			e := ks.LookupLocked(k, now)
			if e == nil {
				e = ks.AddLocked(k, Lists.NewEntry(&List{}))
			}
			if l := Lists.Of(e); l != nil {
				l.PushBack(val)
				if rng.IntN(3) == 0 {
					l.PopFront()
				}
			}
			unlock()
		case 3: // HSET of a growing hash, HDEL
			unlock := lock(k)
			e := ks.LookupLocked(k, now)
			if e == nil {
				e = ks.AddLocked(k, Hashes.NewEntry(NewHash()))
			}
			if h := Hashes.Of(e); h != nil {
				h.Set(fmt.Appendf(nil, "f%d", rng.IntN(200)), val)
				h.Del(fmt.Appendf(nil, "f%d", rng.IntN(200)))
			}
			unlock()
		case 4: // SADD, ZADD
			unlock := lock(k)
			e := ks.LookupLocked(k, now)
			if e == nil {
				if rng.IntN(2) == 0 {
					e = ks.AddLocked(k, Sets.NewEntry(NewSet()))
				} else {
					e = ks.AddLocked(k, ZSets.NewEntry(NewZSet()))
				}
			}
			if s := Sets.Of(e); s != nil {
				s.Add(fmt.Appendf(nil, "m%d", rng.IntN(300)))
				s.Remove(fmt.Appendf(nil, "m%d", rng.IntN(300)))
			}
			if z := ZSets.Of(e); z != nil {
				z.Add(fmt.Sprint("m", rng.IntN(300)), rng.Float64())
				z.Remove(fmt.Sprint("m", rng.IntN(300)))
			}
			unlock()
		case 5: // DEL, after a lookup or not
			unlock := lock(k)
			if rng.IntN(2) == 0 {
				ks.LookupLocked(k, now)
			}
			ks.DeleteLocked(k)
			unlock()
		case 6: // RENAME to a key of (usually) another shard
			d := key()
			unlock := lock(k, d)
			if e := ks.LookupLocked(k, now); e != nil && string(k) != string(d) {
				ks.DeleteLocked(d)
				ks.DeleteLocked(k)
				ks.AddLocked(d, e)
				if e.IsString() {
					e.SetBytes(append(e.Bytes(), 'x'))
				}
			}
			unlock()
		case 7: // EXPIRE, PERSIST
			unlock := lock(k)
			if e := ks.LookupLocked(k, now); e != nil {
				exp := int64(0)
				if rng.IntN(2) == 0 {
					exp = now + int64(rng.IntN(20))
				}
				ks.SetExpireLocked(k, e, exp)
			}
			unlock()
		case 8: // active expiry
			ks.ExpireSample(rng.IntN(NumShards), now, 20)
		case 9:
			if rng.IntN(200) == 0 { // FLUSHALL
				for i := 0; i < NumShards; i++ {
					ks.LockShard(i)
				}
				for i := 0; i < NumShards; i++ {
					ks.FlushShardLocked(i)
				}
				for i := 0; i < NumShards; i++ {
					ks.UnlockShard(i)
				}
			}
		}
		if step%1000 == 999 {
			if got, want := ks.UsedMemory(), recount(ks); got != want {
				t.Fatalf("step %d: used memory %d, counted %d", step, got, want)
			}
		}
	}
}

func TestPolicies(t *testing.T) {
	for _, n := range policyNames {
		p, ok := ParsePolicy(n)
		if !ok || p.String() != n {
			t.Errorf("%s: %v %v", n, p, ok)
		}
	}
	if _, ok := ParsePolicy("allkeys-lru "); ok {
		t.Error("a wrong name parsed")
	}
}

// TestLFUCounter: Redis's logarithmic counter grows fast at first and
// slowly after, and loses one per lfu-decay-time minutes of no access.
func TestLFUCounter(t *testing.T) {
	ks := New()
	ks.SeedEviction(42)
	ks.SetPolicy(AllKeysLFU)
	now := int64(1_700_000_000_000)
	k := []byte("k")
	sh := &ks.shards[ShardOf(k)]
	ks.LockShard(ShardOf(k))
	sh.lastNow = now
	e := ks.AddLocked(k, NewString([]byte("v"), 0))
	if f := ks.Freq(e, now); f != lfuInitVal {
		t.Fatalf("new key's counter %d, want %d", f, lfuInitVal)
	}
	for i := 0; i < 100; i++ {
		ks.LookupLocked(k, now)
	}
	after100 := ks.Freq(e, now)
	for i := 0; i < 900; i++ {
		ks.LookupLocked(k, now)
	}
	after10k := ks.Freq(e, now)
	ks.UnlockShard(ShardOf(k))
	// with factor 10: about 10 at 100 hits, 18 at 1,000 (Redis's table)
	if after100 < 7 || after100 > 14 || after10k < 14 || after10k > 24 {
		t.Fatalf("counter %d after 100 accesses, %d after 1,000", after100, after10k)
	}
	if f := ks.Freq(e, now+5*60_000); f != after10k-5 {
		t.Fatalf("after 5 idle minutes %d, want %d", f, after10k-5)
	}
	if f := ks.Freq(e, now+1000*60_000); f != 0 {
		t.Fatalf("after 1000 idle minutes %d", f)
	}
}

// fill adds n string keys "key:i" accessed at now.
func fill(ks *Keyspace, n int, now int64, exp func(i int) int64) {
	for i := 0; i < n; i++ {
		k := fmt.Appendf(nil, "key:%d", i)
		ks.LockShard(ShardOf(k))
		ks.shards[ShardOf(k)].lastNow = now
		ks.AddLocked(k, NewString([]byte("v"), exp(i)))
		ks.UnlockShard(ShardOf(k))
	}
}

func access(ks *Keyspace, i int, now int64) {
	k := fmt.Appendf(nil, "key:%d", i)
	ks.LockShard(ShardOf(k))
	ks.LookupLocked(k, now)
	ks.UnlockShard(ShardOf(k))
}

// evictN evicts n keys and returns the indexes of those evicted.
func evictN(t *testing.T, ks *Keyspace, n int, now int64) []int {
	var got []int
	ks.SetEvictHook(func(key []byte) {
		var i int
		fmt.Sscanf(string(key), "key:%d", &i)
		got = append(got, i)
	})
	for j := 0; j < n; j++ {
		if !ks.EvictOne(now) {
			t.Fatalf("nothing to evict after %d", j)
		}
	}
	return got
}

// TestEvictApproximatesPolicy: of 2,000 keys, the half used recently (or
// often) survives the eviction of 500 under LRU (LFU); volatile-ttl
// evicts the keys closest to expiring; the random policies take any key
// (volatile-random only keys with an expiry).
func TestEvictApproximatesPolicy(t *testing.T) {
	const n = 2000
	t0 := int64(1_700_000_000_000)
	for _, tt := range []struct {
		policy Policy
		setup  func(ks *Keyspace)
		good   func(i int) bool // a key that should be evicted
		want   float64          // at least this share of the evicted keys are good
	}{
		{AllKeysLRU, func(ks *Keyspace) {
			fill(ks, n, t0, func(int) int64 { return 0 })
			for i := n / 2; i < n; i++ {
				access(ks, i, t0+3600_000)
			}
		}, func(i int) bool { return i < n/2 }, 0.9},
		{AllKeysLFU, func(ks *Keyspace) {
			fill(ks, n, t0, func(int) int64 { return 0 })
			for r := 0; r < 20; r++ {
				for i := n / 2; i < n; i++ {
					access(ks, i, t0)
				}
			}
		}, func(i int) bool { return i < n/2 }, 0.9},
		{VolatileTTL, func(ks *Keyspace) {
			fill(ks, n, t0, func(i int) int64 { return t0 + 1000_000 + int64(i)*1000 })
		}, func(i int) bool { return i < n/2 }, 0.9},
		{VolatileLRU, func(ks *Keyspace) {
			fill(ks, n, t0, func(i int) int64 {
				if i%2 == 0 {
					return t0 + 1e9
				}
				return 0
			})
		}, func(i int) bool { return i%2 == 0 }, 1},
		{VolatileRandom, func(ks *Keyspace) {
			fill(ks, n, t0, func(i int) int64 {
				if i%2 == 0 {
					return t0 + 1e9
				}
				return 0
			})
		}, func(i int) bool { return i%2 == 0 }, 1},
		{AllKeysRandom, func(ks *Keyspace) { fill(ks, n, t0, func(int) int64 { return 0 }) },
			func(int) bool { return true }, 1},
	} {
		t.Run(tt.policy.String(), func(t *testing.T) {
			ks := New()
			ks.SeedEviction(7)
			ks.SetPolicy(tt.policy)
			tt.setup(ks)
			now := t0 + 7200_000
			if tt.policy.LFU() { // before the counters decay
				now = t0
			}
			evicted := evictN(t, ks, 500, now)
			good := 0
			seen := map[int]bool{}
			for _, i := range evicted {
				if seen[i] {
					t.Fatalf("key %d evicted twice", i)
				}
				seen[i] = true
				if tt.good(i) {
					good++
				}
			}
			share := float64(good) / float64(len(evicted))
			t.Logf("%s: %.0f%% of the evicted keys were the ones to evict", tt.policy, 100*share)
			if share < tt.want {
				t.Errorf("%s: only %.0f%% of the evicted keys were the ones to evict", tt.policy, 100*share)
			}
			if got := ks.Len(); got != n-500 {
				t.Errorf("%d keys left, want %d", got, n-500)
			}
		})
	}
}

// TestEvictNothing: noeviction evicts nothing; a volatile policy without
// keys with an expiry finds nothing; an empty keyspace neither.
func TestEvictNothing(t *testing.T) {
	ks := New()
	fill(ks, 100, 0, func(int) int64 { return 0 })
	for _, p := range []Policy{NoEviction, VolatileLRU, VolatileLFU, VolatileRandom, VolatileTTL} {
		ks.SetPolicy(p)
		if ks.EvictOne(0) {
			t.Errorf("%s evicted a key", p)
		}
	}
	empty := New()
	empty.SetPolicy(AllKeysLRU)
	if empty.EvictOne(0) {
		t.Error("evicted from an empty keyspace")
	}
}
