package stream

import (
	"slices"
	"sync"
	"sync/atomic"
)

// lineMem is memory the ring's lines are kept in: a large line's own
// buffer, or a slab shared by the lines of small entries. refs counts
// what may still read it: the batches in the ring whose line lies in it,
// the subscriptions that took one of them and may be writing it
// (Subscription.held), and the broker while it fills a slab. At zero it
// goes back to its pool, and the broker copies later lines into it
// rather than into fresh memory: under load the lines were a third of
// the bytes the stream allocated, each a fresh allocation the collector
// paid for and, being new pages, a copy that faulted them in.
type lineMem struct {
	buf  []byte
	refs atomic.Int32
	pool *linePool
}

// hold adds a reference; release drops one, giving the memory back to the
// pool with the last.
func (m *lineMem) hold() {
	if m != nil {
		m.refs.Add(1)
	}
}

func (m *lineMem) release() {
	if m != nil && m.refs.Add(-1) == 0 {
		m.pool.put(m)
	}
}

// linePool keeps memory nobody reads any more, up to maxBytes of it and
// maxLineMems buffers: the most recently freed, as the ring lets go of
// lines of the sizes entries have now (a plan's line and its reports'
// differ by a fifth); the older are left to the collector.
type linePool struct {
	mu       sync.Mutex
	free     []*lineMem
	bytes    int
	maxBytes int
}

// maxLineMems bounds the buffers a pool keeps (it looks through them all
// for one that fits).
const maxLineMems = 16

func (p *linePool) put(m *lineMem) {
	if cap(m.buf) > p.maxBytes {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, m)
	p.bytes += cap(m.buf)
	drop := 0
	for len(p.free)-drop > maxLineMems || p.bytes > p.maxBytes {
		p.bytes -= cap(p.free[drop].buf)
		drop++
	}
	if drop > 0 {
		n := copy(p.free, p.free[drop:])
		clear(p.free[n:])
		p.free = p.free[:n]
	}
}

// get returns memory for n bytes with one reference (the caller's): the
// smallest kept buffer of n to 2n bytes, or a new one.
func (p *linePool) get(n int) *lineMem {
	p.mu.Lock()
	best := -1
	for i, m := range p.free {
		if c := cap(m.buf); c >= n && c <= 2*n && (best < 0 || c < cap(p.free[best].buf)) {
			best = i
		}
	}
	var m *lineMem
	if best >= 0 {
		m = p.free[best]
		p.free = slices.Delete(p.free, best, best+1) // in order: oldest first
		p.bytes -= cap(m.buf)
	}
	p.mu.Unlock()
	if m == nil {
		// A sixteenth more, so that lines a little larger fit it too.
		m = &lineMem{buf: make([]byte, 0, (n+n/16+4095)&^4095), pool: p}
	}
	m.buf = m.buf[:0]
	m.refs.Store(1)
	return m
}
