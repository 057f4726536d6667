package stream

import "iter"

// Batch is the events of one committed entry. The broker's batches are
// shared by every subscriber and never modified once in the ring;
// Subscription.Next returns a filtered copy of the slice.
type Batch struct {
	Index  uint64
	Events []*Event
	// line is the batch as one line of the stream (nil without events);
	// the events' encodings are slices of it.
	line []byte
	// mem is the memory line lies in, referenced by the batch while the
	// ring holds it (nil without a line).
	mem  *lineMem
	size int    // encoded bytes
	seq  uint64 // position in the ring's sequence
}

// ring holds the most recent batches, at most len(buf) of them and about
// maxBytes of encoded events (the newest batch is always kept). Batches
// are numbered by a sequence that never restarts, so a subscriber's
// cursor stays meaningful across evictions and clears.
type ring struct {
	buf   []*Batch
	first uint64 // sequence number of the oldest batch kept
	next  uint64 // sequence number the next batch gets
	bytes int
}

// Line returns the batch's line of the stream, {"index":N,"groups":[...]}
// with a newline, when the batch holds every event of its entry with
// their summaries (what a subscriber without filter or full payloads
// reads); nil otherwise: the caller writes the events one by one.
func (b *Batch) Line() []byte { return b.line }

func newRing(n int) ring { return ring{buf: make([]*Batch, n)} }

func (r *ring) len() int { return int(r.next - r.first) }

// at returns the batch numbered seq, or nil when it is not kept.
func (r *ring) at(seq uint64) *Batch {
	if seq < r.first || seq >= r.next {
		return nil
	}
	return r.buf[seq%uint64(len(r.buf))]
}

// newest returns the newest batch kept, or nil.
func (r *ring) newest() *Batch {
	if r.next == r.first {
		return nil
	}
	return r.at(r.next - 1)
}

// push appends b, then evicts the oldest batches while the ring holds
// more than it may; it yields each evicted batch.
func (r *ring) push(b *Batch, maxBytes int) iter.Seq[*Batch] {
	return func(yield func(*Batch) bool) {
		for r.len() == len(r.buf) {
			old := r.evict()
			if !yield(old) {
				return
			}
		}
		b.seq = r.next
		r.buf[r.next%uint64(len(r.buf))] = b
		r.next++
		r.bytes += b.size
		for r.bytes > maxBytes && r.len() > 1 {
			old := r.evict()
			if !yield(old) {
				return
			}
		}
	}
}

func (r *ring) evict() *Batch {
	i := r.first % uint64(len(r.buf))
	old := r.buf[i]
	r.buf[i] = nil
	r.first++
	r.bytes -= old.size
	old.mem.release()
	return old
}

// clear forgets every batch; sequence numbers go on.
func (r *ring) clear() {
	for r.first < r.next {
		r.evict()
	}
}

// search returns the sequence number of the first batch with an index
// above after (r.next when there is none).
func (r *ring) search(after uint64) uint64 {
	lo, hi := r.first, r.next
	for lo < hi {
		mid := lo + (hi-lo)/2
		if r.at(mid).Index <= after {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
