package kv

import "time"

// cronPeriod is how often the server's cron runs (Redis's hz 10).
const cronPeriod = 100 * time.Millisecond

// cronLoop runs the periodic work on clients: each event loop closes its
// idle clients and those stuck over the soft output limit and gives back
// the buffers of idle ones (eventLoop.cron). Clients served by goroutines
// use deadlines instead.
func (s *Server) cronLoop() {
	t := time.NewTicker(cronPeriod)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		for _, l := range s.loops {
			l.requestCron()
		}
	}
}
