package kv

import (
	"math/bits"

	"github.com/gantry-project/gantry/internal/kv/command"
)

// callTally gathers the statistics of the commands a client runs in one
// batch (Client.process) and adds them to the shared atomics once, when
// the batch ends or before a different command runs: a pipeline of 16
// GETs makes four atomic additions where it made sixty-four
// (total_commands_processed, and commandstats' calls, microseconds and
// latency bucket). No reply of a batch is sent before its tally is added,
// and a command that reads the statistics (INFO, LATENCY HISTOGRAM,
// CONFIG RESETSTAT) is a different command, so it runs after the flush:
// no client sees a reply whose command is not counted yet.
type callTally struct {
	on    bool  // inside Client.process: tally instead of adding at once
	total int64 // commands dispatched, for total_commands_processed
	// stats is the command whose calls, usec and hist are tallied
	stats       *command.CallStats
	calls, usec int64
	hist        [tallyUsec]int32 // calls by duration in µs, under tallyUsec
	used        uint32           // bit i set: hist[i] > 0
}

// tallyUsec bounds the durations tallied (in µs): a longer call adds to its
// command's latency histogram at once, a cost small beside its own.
const tallyUsec = 32

// The durations' bits fit in used (a constant overflow otherwise).
const _ = uint32(1) << (tallyUsec - 1)

// tallyCall tallies one call of the command of st that took usec
// microseconds, and its latency if hist (latency-tracking on).
func (c *Client) tallyCall(st *command.CallStats, usec int64, hist bool) {
	t := &c.tally
	if t.stats != st {
		if t.stats != nil {
			t.flushStats()
		}
		t.stats = st
	}
	t.calls++
	t.usec += usec
	if !hist {
		return
	}
	if uint64(usec) < tallyUsec {
		t.hist[usec]++
		t.used |= 1 << usec
	} else {
		st.AddLatency(command.UsecIndex(usec), 1)
	}
}

// flushTally adds the tally to the server's statistics and empties it.
func (c *Client) flushTally() {
	t := &c.tally
	if t.total > 0 {
		c.srv.totalCommands.Add(t.total)
		t.total = 0
	}
	t.flushStats()
	t.stats = nil
	c.flushKeyspaceStats()
}

// flushStats adds the tallied calls to their command's statistics.
func (t *callTally) flushStats() {
	if st := t.stats; st != nil && t.calls > 0 {
		st.Calls.Add(t.calls)
		st.Usec.Add(t.usec)
		for m := t.used; m != 0; m &= m - 1 {
			i := bits.TrailingZeros32(m)
			st.AddLatency(command.UsecIndex(int64(i)), int64(t.hist[i]))
			t.hist[i] = 0
		}
		t.calls, t.usec, t.used = 0, 0, 0
	}
}
