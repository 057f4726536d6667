package keyspace

// SlotLens returns the number of keys in each hash slot's map (the
// keyspace's tables, DEBUG HTSTATS), locking one shard at a time.
func (ks *Keyspace) SlotLens() []int {
	out := make([]int, 0, NumSlots)
	for i := range ks.shards {
		sh := &ks.shards[i]
		sh.mu.Lock()
		for _, m := range sh.slots {
			out = append(out, len(m))
		}
		sh.mu.Unlock()
	}
	return out
}

// ExpireLens returns the number of keys with an expiry in each shard's
// table of them, locking one shard at a time.
func (ks *Keyspace) ExpireLens() []int {
	out := make([]int, 0, NumShards)
	for i := range ks.shards {
		sh := &ks.shards[i]
		sh.mu.Lock()
		out = append(out, len(sh.expires))
		sh.mu.Unlock()
	}
	return out
}
