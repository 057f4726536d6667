package command

import (
	"math/bits"
	"sync/atomic"
)

// The latency histogram of a command is laid out as Redis's: an HDR
// histogram (HdrHistogram) of the call's duration in nanoseconds, from
// 1 ns to 1 s, with 2 significant figures. That makes 256 sub-buckets
// (2*10^2 rounded up to a power of two) and 23 buckets, the first of
// resolution 1 ns, each next one of twice the resolution of the one
// before: 3072 counts. A value v is counted at the index HdrHistogram's
// counts_index_for gives; INFO latencystats reports a percentile as the
// highest value equivalent to the index it falls in, and LATENCY
// HISTOGRAM walks the counts with HdrHistogram's logarithmic iterator, so
// both show what redis-server shows for the same durations.
//
// The index is computed here rather than with the HdrHistogram Go port:
// its Histogram is not safe for concurrent use, and a command's
// histogram takes calls from every event loop (adds to atomic counts,
// gathered per batch by the client's tally), so only its index
// arithmetic would be of use, a few lines.
const (
	hdrHalfMagnitude = 7                               // log2 of half the sub-buckets
	hdrHalfCount     = 1 << hdrHalfMagnitude           // 128
	hdrSubMask       = 2*hdrHalfCount - 1              // 255
	hdrBuckets       = 23                              // to cover hdrMaxNs with 256 sub-buckets
	hdrCountsLen     = (hdrBuckets + 1) * hdrHalfCount // 3072
	hdrMinNs         = 1                               // LATENCY_HISTOGRAM_MIN_VALUE
	hdrMaxNs         = 1_000_000_000                   // LATENCY_HISTOGRAM_MAX_VALUE
	hdrLogFirst      = 1024                            // LATENCY HISTOGRAM's first level, ns
)

// hdrBuckets is the fewest buckets that cover hdrMaxNs, as HdrHistogram's
// buckets_needed_to_cover_value (a constant overflow otherwise).
const (
	_ = uint(2*hdrHalfCount<<(hdrBuckets-1) - hdrMaxNs - 1)
	_ = uint(hdrMaxNs - 2*hdrHalfCount<<(hdrBuckets-2))
)

// hdrCounts are the counts of one command's histogram.
type hdrCounts [hdrCountsLen]atomic.Int64

// hdrIndex is the index of the count of v (1 <= v <= hdrMaxNs).
func hdrIndex(v int64) int {
	bucket := bits.Len64(uint64(v)|hdrSubMask) - (hdrHalfMagnitude + 1)
	sub := int(v >> bucket)
	return (bucket+1)<<hdrHalfMagnitude + sub - hdrHalfCount
}

// hdrValueAt is the lowest value counted at index i.
func hdrValueAt(i int) int64 {
	bucket := i>>hdrHalfMagnitude - 1
	sub := i&(hdrHalfCount-1) + hdrHalfCount
	if bucket < 0 {
		sub -= hdrHalfCount
		bucket = 0
	}
	return int64(sub) << bucket
}

// hdrLowest and hdrHighest are the lowest and the highest value counted
// at the index of v (HdrHistogram's lowest_equivalent_value and
// highest_equivalent_value).
func hdrLowest(v int64) int64 { return hdrValueAt(hdrIndex(v)) }

func hdrHighest(v int64) int64 {
	bucket := bits.Len64(uint64(v)|hdrSubMask) - (hdrHalfMagnitude + 1)
	return hdrLowest(v) + int64(1)<<bucket - 1
}

// UsecIndex is the index at which Redis counts a call of usec
// microseconds: it records usec*1000 ns, at least 1 ns and at most 1 s.
func UsecIndex(usec int64) int {
	ns := int64(hdrMaxNs)
	if usec < hdrMaxNs/1000 {
		ns = max(usec*1000, hdrMinNs)
	}
	return hdrIndex(ns)
}

// AddLatency counts n calls at index i (UsecIndex) of the histogram,
// allocating it with the command's first call, as Redis does.
func (s *CallStats) AddLatency(i int, n int64) {
	h := s.hist.Load()
	if h == nil {
		h = new(hdrCounts)
		if !s.hist.CompareAndSwap(nil, h) {
			h = s.hist.Load()
		}
	}
	h[i].Add(n)
}

// Latency is a copy of a command's histogram, read by INFO latencystats
// and LATENCY HISTOGRAM.
type Latency struct {
	counts [hdrCountsLen]int64
	total  int64
}

// Latency copies the histogram; nil if the command has none (no call since
// the start or CONFIG RESETSTAT).
func (s *CallStats) Latency() *Latency {
	h := s.hist.Load()
	if h == nil {
		return nil
	}
	l := new(Latency)
	for i := range h {
		n := h[i].Load()
		l.counts[i] = n
		l.total += n
	}
	if l.total == 0 {
		return nil
	}
	return l
}

// Total is the number of calls counted.
func (l *Latency) Total() int64 { return l.total }

// Percentile is the value in ns at percentile p (0 to 100), as
// hdr_value_at_percentile: the count at p is rounded to the nearest call
// (at least the first), and the value is the highest one equivalent to
// that call's, or the lowest for p 0.
func (l *Latency) Percentile(p float64) int64 {
	want := int64(min(p, 100)/100*float64(l.total) + 0.5)
	want = max(want, 1)
	var v, cum int64
	for i, n := range l.counts {
		if cum += n; cum >= want {
			v = hdrValueAt(i)
			break
		}
	}
	if p == 0 {
		return hdrLowest(v)
	}
	return hdrHighest(v)
}

// LogBuckets are LATENCY HISTOGRAM's histogram_usec: HdrHistogram's
// logarithmic iteration (hdr_iter_log) from 1024 ns by powers of two. Each
// step walks the counts up to the first index at or past its level and
// reports the highest value (µs, truncated) equivalent to that index with
// the cumulative count up to it; steps that add nothing are left out, as
// Redis's fillCommandCDF does.
func (l *Latency) LogBuckets() [][2]int64 {
	idx := -1
	var cum, value, highest int64
	levelLow := hdrLowest(hdrLogFirst)
	step := func() bool {
		if cum >= l.total && (idx >= hdrCountsLen || hdrValueAt(idx+1) <= levelLow) {
			return false
		}
		for value < levelLow {
			if idx++; idx >= hdrCountsLen {
				return true
			}
			cum += l.counts[idx]
			value = hdrValueAt(idx)
			highest = hdrHighest(value)
		}
		levelLow = hdrLowest(2 * levelLow) // the levels are powers of two: their own lowest
		return true
	}
	var out [][2]int64
	for prev := int64(0); step(); prev = cum {
		if cum > prev {
			out = append(out, [2]int64{highest / 1000, cum})
		}
	}
	return out
}
