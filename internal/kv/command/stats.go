package command

import (
	"sync/atomic"
)

// CallStats are the statistics of one command for INFO commandstats and
// LATENCY HISTOGRAM: calls, microseconds spent, calls refused before
// running (rejected) and calls that answered an error (failed). The server
// updates them after each call; they are atomics so INFO reads them from
// any connection.
type CallStats struct {
	Calls    atomic.Int64
	Usec     atomic.Int64
	Rejected atomic.Int64
	Failed   atomic.Int64
	hist     atomic.Pointer[hdrCounts] // latency histogram (hdr.go), nil before the first call
	// Container is set (before serving) for commands whose subcommands
	// have statistics of their own (CLIENT, CONFIG ...).
	Container bool
}

// Record counts one call that took usec microseconds, in the latency
// histogram too if hist (latency-tracking on).
func (s *CallStats) Record(usec int64, hist bool) {
	s.Calls.Add(1)
	s.Usec.Add(usec)
	if hist {
		s.AddLatency(UsecIndex(usec), 1)
	}
}

// Reset zeroes the statistics (CONFIG RESETSTAT).
func (s *CallStats) Reset() {
	s.Calls.Store(0)
	s.Usec.Store(0)
	s.Rejected.Store(0)
	s.Failed.Store(0)
	s.hist.Store(nil) // freed, as Redis frees its histograms
}
