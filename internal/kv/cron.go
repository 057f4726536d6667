package kv

import (
	"runtime/debug"
	"time"
)

const (
	// cronPeriod is how often the server's cron runs (Redis's hz 10).
	cronPeriod = 100 * time.Millisecond
	// After big client buffers were dropped (a 512 MB argument, a reply
	// of hundreds of megabytes) the Go runtime keeps their pages for a
	// while; past releaseMin bytes the cron returns them to the OS at
	// once, at most every releaseEvery (it costs a garbage collection).
	releaseMin   = 32 << 20
	releaseEvery = 5 * time.Second
)

// cronLoop runs the periodic work on clients: each event loop closes its
// idle clients and those stuck over the soft output limit and gives back
// the buffers of idle ones (eventLoop.cron); clients served by goroutines
// use deadlines instead. It also returns the memory of big client buffers
// to the OS.
func (s *Server) cronLoop() {
	every := cronPeriod
	if s.cfg.cronEvery > 0 {
		every = s.cfg.cronEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastRelease time.Time
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		for _, l := range s.loops {
			l.requestCron()
		}
		s.sampleMetrics(s.nowMs())
		if s.maxmemory.Load() > 0 {
			s.evictInBackground()
		}
		if lim := s.clientsLimit(); lim > 0 && s.cev.total.Load() > lim {
			s.evictClients(lim)
		}
		s.flushBcast() // changes by expiry and eviction
		if s.released.Load() >= releaseMin && time.Since(lastRelease) >= releaseEvery {
			s.released.Store(0)
			lastRelease = time.Now()
			debug.FreeOSMemory()
		}
	}
}
