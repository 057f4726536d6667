package keyspace

// TryLockShard locks shard i if no one holds it and reports whether it
// did: a command that already holds some shards (inside EXEC) may take
// more this way without the risk of a lock-order deadlock.
func (ks *Keyspace) TryLockShard(i int) bool { return ks.shards[i].mu.TryLock() }
