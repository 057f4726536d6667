package kv

import (
	"sync"
	"sync/atomic"
)

// ioStats are the keyspace and network counters of INFO's Stats section
// (keyspace_hits, keyspace_misses, total_net_input_bytes,
// total_net_output_bytes, total_reads_processed, total_writes_processed)
// for the clients of one event loop, or for the clients served by
// goroutines (adminState.io). Only the loop's goroutine adds to a loop's
// counters, so their cache line stays on the loop's core: no command adds
// to a counter another loop adds to. INFO sums them (ioTotals); CONFIG
// RESETSTAT zeroes them. A client adds its keyspace hits and misses once
// per batch of commands (flushTally), the bytes once per read and write.
type ioStats struct {
	hits, misses  atomic.Int64
	netIn, netOut atomic.Int64
	reads, writes atomic.Int64
	_             [128 - 6*8]byte // a cache line (two, with the prefetcher) of its own
}

// noteRead and noteWrite count a read or write of n bytes by a client
// served by a goroutine.
func (st *ioStats) noteRead(n int) {
	st.reads.Add(1)
	st.netIn.Add(int64(n))
}

func (st *ioStats) noteWrite(n int) {
	st.writes.Add(1)
	st.netOut.Add(int64(n))
}

// ioSums are the sums of the ioStats of the server.
type ioSums struct {
	hits, misses, netIn, netOut, reads, writes int64
}

func (st *ioStats) addTo(t *ioSums) {
	t.hits += st.hits.Load()
	t.misses += st.misses.Load()
	t.netIn += st.netIn.Load()
	t.netOut += st.netOut.Load()
	t.reads += st.reads.Load()
	t.writes += st.writes.Load()
}

func (st *ioStats) reset() {
	st.hits.Store(0)
	st.misses.Store(0)
	st.netIn.Store(0)
	st.netOut.Store(0)
	st.reads.Store(0)
	st.writes.Store(0)
}

// ioTotals sums the counters of every loop and of the goroutines' clients.
func (s *Server) ioTotals() ioSums {
	var t ioSums
	s.adm.io.addTo(&t)
	for _, l := range s.loops {
		l.io.addTo(&t)
	}
	return t
}

// resetIO zeroes the counters (CONFIG RESETSTAT).
func (s *Server) resetIO() {
	s.adm.io.reset()
	for _, l := range s.loops {
		l.io.reset()
	}
}

// flushKeyspaceStats adds the keyspace hits and misses the client's
// commands counted (command.Ctx.Lookup) to its loop's counters.
func (c *Client) flushKeyspaceStats() {
	if c.Hits|c.Misses == 0 {
		return
	}
	st := c.io
	if st == nil {
		st = &c.srv.adm.io
	}
	if c.Hits != 0 {
		st.hits.Add(c.Hits)
		c.Hits = 0
	}
	if c.Misses != 0 {
		st.misses.Add(c.Misses)
		c.Misses = 0
	}
}

// metricSamples is how many samples an instantaneous metric averages
// (Redis's STATS_METRIC_SAMPLES), taken every cronPeriod.
const metricSamples = 16

// instMetric is one of INFO's instantaneous_* figures: the rate of a
// counter over the last metricSamples samples, as Redis's
// trackInstantaneousMetric computes it.
type instMetric struct {
	lastMs, lastCount int64
	samples           [metricSamples]int64
	idx               int
}

// sample adds the rate (per second) of count since the last sample.
func (m *instMetric) sample(nowMs, count int64) {
	if m.lastMs != 0 {
		dt := nowMs - m.lastMs
		rate := int64(0)
		if dt > 0 {
			rate = (count - m.lastCount) * 1000 / dt
		}
		m.samples[m.idx] = rate
		m.idx = (m.idx + 1) % metricSamples
	}
	m.lastMs, m.lastCount = nowMs, count
}

// value is the mean of the samples.
func (m *instMetric) value() int64 {
	var sum int64
	for _, v := range m.samples {
		sum += v
	}
	return sum / metricSamples
}

// instMetrics are the instantaneous_* figures of INFO, sampled by the
// server's cron (sampleMetrics).
type instMetrics struct {
	mu                 sync.Mutex
	ops, netIn, netOut instMetric
	replIn, replOut    instMetric // the replication bytes (repl.State.NetBytes)
	peakMem            int64      // used_memory_peak
	clientPeaks        clientPeaks
}

// peakSlots is how many one-second slots client_recent_max_input_buffer
// and client_recent_max_output_buffer cover (Redis's
// CLIENTS_PEAK_MEM_USAGE_SLOTS).
const peakSlots = 8

// clientPeaks are the biggest client buffers seen in each of the last
// peakSlots seconds, as Redis's ClientsPeakMemInput/Output: the slot of a
// second is its Unix time modulo peakSlots, the next slot is cleared at
// each sample, so INFO reports the largest of about the last 8 seconds.
// A second without samples (a stalled cron) leaves its slot as it was, as
// in Redis. CONFIG RESETSTAT keeps them, as Redis's.
type clientPeaks struct {
	in, out [peakSlots]int64
}

// note records buffers of in and out bytes seen at Unix second sec.
func (p *clientPeaks) note(sec, in, out int64) {
	slot := sec % peakSlots
	next := (slot + 1) % peakSlots
	p.in[next], p.out[next] = 0, 0
	p.in[slot] = max(p.in[slot], in)
	p.out[slot] = max(p.out[slot], out)
}

// recent is the biggest input and output buffers of the slots.
func (p *clientPeaks) recent() (in, out int64) {
	for i := range p.in {
		in = max(in, p.in[i])
		out = max(out, p.out[i])
	}
	return in, out
}

// peakScanChunk is how many clients biggestBuffers copies per hold of
// the server's lock.
const peakScanChunk = 256

// biggestBuffers is the largest read buffer and the most unsent reply
// bytes among the connected clients, as of their last batch (each
// client's own goroutine or loop keeps its sizes in atomics). It holds
// s.mu only to copy a chunk of the client list, not across the scan, so
// with thousands of clients accepts and CLIENT commands do not wait for
// it. The list is scanned from its end: a client that leaves meanwhile
// has the last one take its place, which is either scanned already (then
// seen twice) or still ahead, so no client connected throughout is
// missed; one that connects meanwhile is seen at the next sample.
func (s *Server) biggestBuffers() (in, out int64) {
	var buf [peakScanChunk]*Client
	chunk := peakScanChunk
	if s.peakChunk > 0 {
		chunk = min(s.peakChunk, peakScanChunk)
	}
	s.mu.Lock()
	hi := len(s.clientList)
	s.mu.Unlock()
	for hi > 0 {
		s.mu.Lock()
		hi = min(hi, len(s.clientList))
		lo := max(hi-chunk, 0)
		n := copy(buf[:], s.clientList[lo:hi])
		s.mu.Unlock()
		hi = lo
		for _, c := range buf[:n] {
			in = max(in, c.shared.qbufSize.Load())
			out = max(out, c.shared.omem.Load())
		}
		clear(buf[:n])
		if s.peakScanHook != nil {
			s.peakScanHook()
		}
	}
	return in, out
}

// recentBuffers is INFO's client_recent_max_input_buffer and
// client_recent_max_output_buffer.
func (s *Server) recentBuffers() (in, out int64) {
	m := &s.adm.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clientPeaks.recent()
}

// sampleMetrics takes a sample of the instantaneous metrics and of the
// clients' biggest buffers at nowMs (the server's cron, every cronPeriod)
// and updates used_memory_peak.
func (s *Server) sampleMetrics(nowMs int64) {
	t := s.ioTotals()
	ops := s.totalCommands.Load()
	used := s.usedMemory()
	in, out := s.biggestBuffers()
	replIn, replOut := s.repl.NetBytes()
	m := &s.adm.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clientPeaks.note(nowMs/1000, in, out)
	m.ops.sample(nowMs, ops)
	m.netIn.sample(nowMs, t.netIn)
	m.netOut.sample(nowMs, t.netOut)
	m.replIn.sample(nowMs, replIn)
	m.replOut.sample(nowMs, replOut)
	if used > m.peakMem {
		m.peakMem = used
	}
}

// notePeakMemory raises used_memory_peak to the memory used now (INFO
// reads it, as Redis updates its peak when it reports).
func (s *Server) notePeakMemory(used int64) int64 {
	m := &s.adm.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	if used > m.peakMem {
		m.peakMem = used
	}
	return m.peakMem
}

// resetMetrics clears the samples and the peak (CONFIG RESETSTAT, as
// Redis's resetServerStats).
func (s *Server) resetMetrics() {
	m := &s.adm.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops, m.netIn, m.netOut = instMetric{}, instMetric{}, instMetric{}
	m.replIn, m.replOut = instMetric{}, instMetric{}
	m.peakMem = 0
}
