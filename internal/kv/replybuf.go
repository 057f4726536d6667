package kv

import (
	"math/bits"
	"sync/atomic"
)

// The reply buffer of a client, as Redis 7.0's per-client reply buffer
// (c->buf): it has a usable size (CLIENT LIST's rbs), 16 KB for a new
// client, and a peak (rbp), the most reply bytes it held since the peak
// was last reset. The client cron (eventLoop.cron, at Redis's pace: every
// client about once a second, every 100 ms when there are few) resets the
// peak every reply-buffer-peak-reset-time (DEBUG REPLYBUFFER
// PEAK-RESET-TIME, 5000 ms by default) and resizes the buffer as Redis's
// clientsCronResizeOutputBuffer: to max(1 KB, peak+1) when the peak stayed
// under half of it, to twice its size (at most 16 KB) when the peak filled
// it. Sizes are those jemalloc gives for the request (zmalloc_usable).
//
// gantry's W.B is that buffer and Redis's reply list at once: a reply
// bigger than the buffer still goes out whole (W.B grows for it, up to
// keptBufSize it stays between writes). What an idle client keeps follows
// the usable size: the cron drops an empty W.B of a bigger capacity (the
// next reply allocates what it needs), and a client idle over idleRelease
// gives it back whatever its size (releaseBuffers). The write path only
// updates the peak.

const (
	// replyChunk is the usable size of a new client's buffer and the most
	// the cron grows it to (Redis's PROTO_REPLY_CHUNK_BYTES).
	replyChunk = 16 << 10
	// replyMin is the least the cron shrinks it to (PROTO_REPLY_MIN_BYTES).
	replyMin = 1 << 10
	// replyPeakResetDefault is Redis's REPLY_BUFFER_DEFAULT_PEAK_RESET_TIME.
	replyPeakResetDefault = 5000
	// cronHz is the server's cron calls a second (Redis's hz 10) and
	// cronMinIter the clients it visits at least per call
	// (CLIENTS_CRON_MIN_ITERATIONS).
	cronHz      = 10
	cronMinIter = 5
)

// replyBufs is the server's side of the reply buffers: DEBUG REPLYBUFFER's
// settings and INFO's counters.
type replyBufs struct {
	// peakResetMs is the time between peak resets; negative: never
	peakResetMs atomic.Int64
	// resizeOff: DEBUG REPLYBUFFER RESIZING 0
	resizeOff atomic.Bool
	// shrinks and expands are INFO's reply_buffer_shrinks and
	// reply_buffer_expands
	shrinks, expands atomic.Int64
}

// replyBuf is a client's reply buffer state. Only its goroutine (its
// event loop) writes it; CLIENT LIST of other clients reads the atomics.
type replyBuf struct {
	size      int   // usable size
	peak      int   // most bytes held since lastReset
	lastReset int64 // Unix ms of the last peak reset
	// shared are size and peak for other clients' CLIENT LIST
	sharedSize, sharedPeak atomic.Int64
}

// init gives a new client Redis's createClient state: a 16 KB buffer whose
// peak is its size. Redis 7.0 stores the time of the last reset in seconds
// and compares it with milliseconds, so the first cron visit always resets
// the peak: lastReset 0 does the same.
func (r *replyBuf) init() {
	r.size, r.peak, r.lastReset = replyChunk, replyChunk, 0
	r.sharedSize.Store(replyChunk)
	r.sharedPeak.Store(replyChunk)
}

// notePeak records that the buffer holds n bytes of replies (called when
// they are written): the buffer holds at most its size, the rest is
// Redis's reply list.
func (r *replyBuf) notePeak(n int) {
	if n > r.peak {
		r.peak = min(n, r.size)
		r.sharedPeak.Store(int64(r.peak))
	}
}

// jemallocSize is the usable size jemalloc gives a request of n bytes
// (n >= 16): four size classes per doubling.
func jemallocSize(n int) int {
	if n <= 16 {
		return 16
	}
	if n <= 128 {
		return (n + 15) &^ 15
	}
	lg := bits.Len(uint(n - 1)) // 2^(lg-1) < n <= 2^lg
	delta := 1 << (lg - 3)
	return (n + delta - 1) &^ (delta - 1)
}

// resize is the cron's visit of the buffer at now (Unix ms), as Redis's
// clientsCronResizeOutputBuffer: held is the reply bytes the client holds
// unsent (the buffer's part of them is kept).
func (r *replyBuf) resize(rb *replyBufs, now int64, held int) {
	if rb.resizeOff.Load() {
		return
	}
	if r.size == 0 { // a client not made by newClient (a primary's link)
		r.init()
	}
	pos := min(held, r.size)
	newSize := 0
	if half := r.size / 2; half >= replyMin && r.peak < half {
		newSize = max(replyMin, r.peak+1)
		rb.shrinks.Add(1)
	} else if r.size*2 < replyChunk*2 && r.peak == r.size {
		newSize = min(replyChunk, r.size*2)
		rb.expands.Add(1)
	}
	if reset := rb.peakResetMs.Load(); reset >= 0 && now-r.lastReset >= reset {
		r.peak, r.lastReset = pos, now
		r.sharedPeak.Store(int64(pos))
	}
	if newSize > 0 {
		r.size = jemallocSize(newSize)
		r.sharedSize.Store(int64(r.size))
	}
}

// resizeReply is the cron's visit of c's reply buffer: after it, an
// empty W.B bigger than the usable size is dropped (the next reply
// allocates what it needs), so that a client keeps at most the usable
// size between its replies.
func (c *Client) resizeReply(now int64) {
	c.reply.resize(&c.srv.rbufs, now, len(c.W.B)-c.wpos)
	if len(c.W.B) == 0 && c.wpos == 0 && cap(c.W.B) > c.reply.size {
		c.W.B = nil
		c.noteMem()
	}
}

// cronReplies visits the reply buffers of clients of the loop at Redis's
// pace: n/hz of its n clients per cron call, at least min(n, 5), from
// where the last call stopped, so that each is visited about once a second
// (every call when there are few).
func (l *eventLoop) cronReplies(now int64, n int) {
	k := n / cronHz
	if k < cronMinIter {
		k = min(n, cronMinIter)
	}
	if len(l.clients) == 0 {
		return
	}
	fd := l.replyNext
	for i := 0; k > 0 && i < len(l.clients); i++ {
		if fd >= len(l.clients) {
			fd = 0
		}
		if c := l.clients[fd]; c != nil {
			c.resizeReply(now)
			k--
		}
		fd++
	}
	l.replyNext = fd
}

// replyFields are CLIENT LIST's obl, oll and omem of a client with unsent
// reply bytes and a reply buffer of usable size rbs, as Redis shows them:
// obl the bytes in the buffer (at most its size), oll the 16 KB blocks of
// the reply list that would hold the rest, omem those bytes (Redis's omem
// leaves the buffer out too).
func replyFields(unsent, rbs int) (obl, oll, omem int) {
	obl = min(unsent, rbs)
	omem = unsent - obl
	return obl, (omem + replyChunk - 1) / replyChunk, omem
}

// sentAll publishes that the client's replies are all written: noteMem
// published them unsent before the write, and CLIENT LIST of other
// clients would show them in obl and omem until its next batch.
func (c *Client) sentAll() {
	if c.shared.omem.Load() != 0 {
		c.shared.omem.Store(0)
	}
}
