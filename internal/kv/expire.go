package kv

import (
	"time"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// activeExpireLoop removes expired keys nobody reads, as Redis's active
// expiry cycle does: ActiveExpireHz times a second it visits the shards in
// turn, samples 20 keys with an expiry from each, deletes the expired ones
// and samples the shard again while more than a quarter of a sample had
// expired, within a time budget of a quarter of the period.
func (s *Server) activeExpireLoop() {
	period := time.Second / time.Duration(s.cfg.ActiveExpireHz)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		if s.adm.activeExpireOff.Load() { // DEBUG SET-ACTIVE-EXPIRE 0
			continue
		}
		start := time.Now()
		deadline := start.Add(period / 4)
		for _, ks := range s.dbKS {
			if ks.ExpiresLen() == 0 {
				continue
			}
			for i := 0; i < keyspace.NumShards && time.Now().Before(deadline); i++ {
				for {
					d := ks.ExpireSample(i, s.nowMs(), 20) // keyExpired counts them
					if d <= 5 || !time.Now().Before(deadline) {
						break
					}
				}
			}
		}
		s.noteLatency("expire-cycle", time.Since(start))
	}
}

// ExpireNow runs one full active expiry pass at the current time (for
// tests and for callers that want expired keys gone now).
func (s *Server) ExpireNow() int {
	n := 0
	now := s.nowMs()
	for _, ks := range s.dbKS {
		for i := 0; i < keyspace.NumShards; i++ {
			for {
				d := ks.ExpireSample(i, now, 1<<30)
				n += d
				if d == 0 {
					break
				}
			}
		}
	}
	return n
}

// keyExpired is the keyspace's hook for a key of database db it deleted
// because it expired, on access or by the active expirer (its shard
// locked): counted in INFO's expired_keys, as Redis counts both.
func (s *Server) keyExpired(db int, key []byte) {
	s.expiredKeys.Add(1)
	s.expired(db, key)
}

// expiryPaused reports whether expiry is paused: while client writes are
// (CLIENT PAUSE WRITE), Redis neither deletes an expired key a command
// reads (it answers as if it were gone) nor runs its active expiry, so
// the dataset stays as it is; the next access after the pause deletes it.
func (s *Server) expiryPaused() bool { return s.repl != nil && s.repl.Paused() }
