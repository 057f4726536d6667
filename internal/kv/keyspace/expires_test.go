package keyspace

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestExpiresLen checks the count ExpiresLen keeps without locking against
// the shards' maps, through every change of a key's expiry: set with and
// without one, PERSIST-like and EXPIRE-like changes, deletes, expiry on
// lookup and by sampling, shard flushes and SWAPDB's shard swaps.
func TestExpiresLen(t *testing.T) {
	a, b := New(), New()
	count := func(ks *Keyspace) int {
		n := 0
		for i := range ks.shards {
			n += len(ks.shards[i].expires)
		}
		return n
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := int64(1000)
	for step := 0; step < 20000; step++ {
		ks := a
		if rng.IntN(2) == 0 {
			ks = b
		}
		k := []byte("k" + strconv.Itoa(rng.IntN(64)))
		i := ShardOf(k)
		ks.LockShard(i)
		switch op := rng.IntN(100); {
		case op < 30:
			exp := int64(0)
			if rng.IntN(2) == 0 {
				exp = now + int64(rng.IntN(50))
			}
			ks.SetStringLocked(k, []byte("v"), exp, now)
		case op < 50:
			if e := ks.LookupLocked(k, now); e != nil {
				exp := int64(0)
				if rng.IntN(2) == 0 {
					exp = now + int64(rng.IntN(50))
				}
				ks.SetExpireLocked(k, e, exp)
			}
		case op < 65:
			ks.DeleteLocked(k)
		case op < 80:
			now += int64(rng.IntN(10))
			ks.LookupLocked(k, now)
		case op < 90:
			ks.UnlockShard(i)
			ks.ExpireSample(i, now, 20)
			ks.LockShard(i)
		case op < 95:
			ks.FlushShardLocked(i)
		default:
			o := a
			if ks == a {
				o = b
			}
			o.LockShard(i)
			ks.SwapShardLocked(o, i)
			o.UnlockShard(i)
		}
		ks.UnlockShard(i)
		if a.ExpiresLen() != count(a) || b.ExpiresLen() != count(b) {
			t.Fatalf("step %d: ExpiresLen %d and %d, the shards hold %d and %d",
				step, a.ExpiresLen(), b.ExpiresLen(), count(a), count(b))
		}
	}
	if count(a)+count(b) == 0 {
		t.Fatal("no key kept an expiry: the test checked nothing")
	}
}
