package kv

import (
	"time"
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
		deadline := time.Now().Add(period / 4)
		for i := 0; i < numShards && time.Now().Before(deadline); i++ {
			for {
				d := s.ks.expireSample(i, s.nowMs(), 20)
				s.expiredKeys.Add(int64(d))
				if d <= 5 || !time.Now().Before(deadline) {
					break
				}
			}
		}
	}
}

// expireSample checks up to n keys with an expiry of shard i (map
// iteration starts at a random place) and deletes those expired at now. It
// returns how many it deleted.
func (ks *Keyspace) expireSample(i int, now int64, n int) int {
	if ks.replicaMode.Load() { // a replica waits for the primary's DEL
		return 0
	}
	sh := &ks.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var victims []string
	seen := 0
	for k := range sh.expires {
		if seen == n {
			break
		}
		seen++
		slot := KeySlot([]byte(k))
		e := sh.slots[int(slot)/numShards][k]
		if e != nil && e.exp != 0 && e.exp <= now {
			victims = append(victims, k)
		}
	}
	for _, k := range victims {
		ks.deleteLocked([]byte(k))
		if ks.expireHook != nil {
			ks.expireHook([]byte(k))
		}
	}
	return len(victims)
}

// ExpireNow runs one full active expiry pass at the current time (for
// tests and for callers that want expired keys gone now).
func (s *Server) ExpireNow() int {
	n := 0
	now := s.nowMs()
	for i := 0; i < numShards; i++ {
		for {
			d := s.ks.expireSample(i, now, 1<<30)
			n += d
			if d == 0 {
				break
			}
		}
	}
	s.expiredKeys.Add(int64(n))
	return n
}
