package keyspace

// LenLocked is Len for a caller that holds every shard (EXEC, a script):
// it takes no lock.
func (ks *Keyspace) LenLocked() int {
	n := 0
	for i := range ks.shards {
		n += ks.shards[i].keys
	}
	return n
}

// SlotLensLocked is SlotLens for a caller that holds every shard.
func (ks *Keyspace) SlotLensLocked() []int {
	out := make([]int, 0, NumSlots)
	for i := range ks.shards {
		for _, m := range ks.shards[i].slots {
			out = append(out, len(m))
		}
	}
	return out
}

// ExpireLensLocked is ExpireLens for a caller that holds every shard.
func (ks *Keyspace) ExpireLensLocked() []int {
	out := make([]int, 0, NumShards)
	for i := range ks.shards {
		out = append(out, len(ks.shards[i].expires))
	}
	return out
}
