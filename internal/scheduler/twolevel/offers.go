package twolevel

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// Using, declining and expiring offers.

// lookup returns fw's outstanding offer id, or ErrOfferNotOutstanding.
func (a *Allocator) lookup(fwID, id string) (*offer, error) {
	o := a.offers[id]
	if o == nil || o.fw.id != fwID {
		return nil, fmt.Errorf("offer %s: %w (rescinded, expired, already used or declined, or not this framework's)", id, ErrOfferNotOutstanding)
	}
	return o, nil
}

// Use takes res from an outstanding offer of framework fwID for a launch:
// the offer keeps the rest, and res counts as being launched on the node
// (neither free nor offered) until Settle. It fails, changing nothing,
// for an offer that is not outstanding or holds less than res.
func (a *Allocator) Use(fwID, offerID string, res structs.Resources) error {
	o, err := a.lookup(fwID, offerID)
	if err != nil {
		return err
	}
	if ok, dim := o.res.Fits(res); !ok || res.CPU < 0 || res.MemoryMB < 0 {
		return fmt.Errorf("offer %s: %w: %s asked of %s (%s)", offerID, ErrOfferExceeded, res, o.res, dim)
	}
	n, f := o.node, o.fw
	a.uncount(n)
	o.res = o.res.Sub(res)
	a.addAlloc(f, &f.offered, res, -1)
	a.addAlloc(f, &f.pending, res, +1)
	n.pending = n.pending.Add(res)
	a.count(n)
	return nil
}

// Settle ends a launch that Use started: res of framework fwID on node
// nodeID is no longer being launched (it is either in the node's usage
// now, which the caller sets with SetNodeUsage, or was not placed).
func (a *Allocator) Settle(fwID, nodeID string, res structs.Resources) {
	f, n := a.frameworks[fwID], a.nodes[nodeID]
	if n != nil {
		a.uncount(n)
		n.pending = n.pending.Sub(res)
		if n.pending.CPU < 0 || n.pending.MemoryMB < 0 {
			n.pending = structs.Resources{} // defensive: never negative
		}
		a.count(n)
		a.wantVisit(n)
	}
	if f != nil {
		a.addAlloc(f, &f.pending, res, -1)
		a.forgetIdle()
	}
}

// Decline closes outstanding offers of framework fwID; what they still
// hold returns to the pool, filtered for the framework for refuse (0 =
// no filter). Offers that are not outstanding are skipped and reported
// (ErrOfferNotOutstanding); the others are declined anyway.
func (a *Allocator) Decline(fwID string, offerIDs []string, refuse time.Duration, now time.Time) error {
	a.tick(now)
	var firstErr error
	for _, id := range offerIDs {
		o, err := a.lookup(fwID, id)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		a.close(o, now)
		o.fw.stats.declined++
		a.stats.declined++
		if refuse > 0 && !o.res.IsZero() {
			a.addFilter(o.fw, o.node, o.res, now.Add(refuse))
		}
	}
	return firstErr
}

// Accept closes offers a framework used (after Use took what its launches
// need): counted as accepted, the rest declined with a filter of refuse.
func (a *Allocator) Accept(fwID string, offerIDs []string, refuse time.Duration, now time.Time) error {
	a.tick(now)
	var firstErr error
	for _, id := range offerIDs {
		o, err := a.lookup(fwID, id)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		a.close(o, now)
		o.fw.stats.accepted++
		a.stats.accepted++
		if refuse > 0 && !o.res.IsZero() {
			a.addFilter(o.fw, o.node, o.res, now.Add(refuse))
		}
	}
	return firstErr
}

// tick moves the allocator's idea of the time forward.
func (a *Allocator) tick(now time.Time) {
	if now.After(a.lastNow) {
		a.lastNow = now
	}
}

// Outstanding reports whether offerID is an outstanding offer of fwID.
func (a *Allocator) Outstanding(fwID, offerID string) bool {
	_, err := a.lookup(fwID, offerID)
	return err == nil
}

// OfferOf returns the resources an outstanding offer still holds and its
// node.
func (a *Allocator) OfferOf(fwID, offerID string) (structs.Resources, string, error) {
	o, err := a.lookup(fwID, offerID)
	if err != nil {
		return structs.Resources{}, "", err
	}
	return o.res, o.node.id, nil
}

// close removes an offer; its resources return to the node's free room.
func (a *Allocator) close(o *offer, now time.Time) {
	n, f := o.node, o.fw
	a.uncount(n)
	n.offer = nil
	o.closed = true
	if o.queued {
		a.offerExpiry.closed()
	}
	a.count(n)
	a.addAlloc(f, &f.offered, o.res, -1)
	f.offers--
	delete(a.offers, o.id)
	if !o.created.IsZero() && !now.IsZero() {
		d := now.Sub(o.created)
		a.stats.holds.Add(d)
		if len(a.stats.holdLog) < maxHoldLog {
			a.stats.holdLog = append(a.stats.holdLog, d)
		}
	}
	a.wantVisit(n)
}

// rescind closes an offer on the allocator's own account and tells its
// framework.
func (a *Allocator) rescind(o *offer, reason string, expired bool, now time.Time) {
	a.close(o, now)
	if expired {
		o.fw.stats.expired++
		a.stats.expired++
	} else {
		o.fw.stats.rescinded++
		a.stats.rescinded++
	}
	a.out = append(a.out, Output{Kind: OutputRescind, Framework: o.fw.id, OfferID: o.id, Reason: reason, Expired: expired})
	a.forgetIdle()
}

func (a *Allocator) addFilter(f *framework, n *node, refused structs.Resources, until time.Time) {
	if old := f.filters[n]; old != nil {
		a.filterHeap.remove(old)
	}
	flt := &filter{fw: f, n: n, refused: refused, until: until, idx: -1}
	f.filters[n] = flt
	a.filterHeap.push(flt)
}

// dropFilter removes a framework's filter on a node.
func (a *Allocator) dropFilter(f *framework, n *node) {
	if flt := f.filters[n]; flt != nil {
		a.filterHeap.remove(flt)
		delete(f.filters, n)
	}
}

// dropFilters removes every filter of a framework.
func (a *Allocator) dropFilters(f *framework) {
	for n := range f.filters {
		a.dropFilter(f, n)
	}
}

// Expire rescinds the offers whose timeout passed and lifts the filters
// that lapsed (their nodes are looked at again). Allocate calls it.
func (a *Allocator) Expire(now time.Time) {
	a.tick(now)
	for {
		o, ok := a.offerExpiry.popDue(now)
		if !ok {
			break
		}
		if !o.closed {
			a.rescind(o, "offer timed out", true, now)
		}
	}
	for {
		flt, ok := a.filterHeap.popDue(now)
		if !ok {
			break
		}
		if flt.fw.filters[flt.n] == flt {
			delete(flt.fw.filters, flt.n)
			a.wantVisit(flt.n)
		}
	}
}

// NextDeadline returns the earliest time an offer expires or a filter
// lapses, if any: the caller runs a round then.
func (a *Allocator) NextDeadline() (time.Time, bool) {
	t1, ok1 := a.offerExpiry.peek()
	t2, ok2 := a.filterHeap.peek()
	switch {
	case ok1 && ok2:
		if t2.Before(t1) {
			return t2, true
		}
		return t1, true
	case ok1:
		return t1, true
	}
	return t2, ok2
}

// HasWork reports whether a round would look at any node.
func (a *Allocator) HasWork() bool { return len(a.visit) > 0 }

// offerQueue holds outstanding offers in the order they expire: every
// offer gets the same timeout, so that is the order they were made in,
// and a FIFO does what a heap would at O(1). Closed offers are skipped
// when they reach the front, and compacted away once they are more than
// half the queue, so it holds at most twice the offers outstanding.
type offerQueue struct {
	q      []*offer
	head   int
	nclose int // closed offers still in q[head:]
}

func (q *offerQueue) push(o *offer) {
	o.queued = true
	q.q = append(q.q, o)
}

// closed notes that an offer in the queue was closed.
func (q *offerQueue) closed() {
	q.nclose++
	if live := len(q.q) - q.head - q.nclose; q.nclose > 64 && q.nclose > live {
		kept := q.q[:0]
		for _, o := range q.q[q.head:] {
			if o.closed {
				o.queued = false
			} else {
				kept = append(kept, o)
			}
		}
		clear(q.q[len(kept):])
		q.q, q.head, q.nclose = kept, 0, 0
	}
}

func (q *offerQueue) peek() (time.Time, bool) {
	for q.head < len(q.q) && q.q[q.head].closed {
		q.q[q.head].queued = false
		q.q[q.head] = nil
		q.head++
		q.nclose--
	}
	if q.head == len(q.q) {
		q.q, q.head = q.q[:0], 0
		return time.Time{}, false
	}
	return q.q[q.head].expires, true
}

// popDue returns the first live offer if it expired by now.
func (q *offerQueue) popDue(now time.Time) (*offer, bool) {
	at, ok := q.peek()
	if !ok || at.After(now) {
		return nil, false
	}
	o := q.q[q.head]
	o.queued = false
	q.q[q.head] = nil
	q.head++
	return o, true
}

// timed is an item of a timeHeap: its deadline and its slot in the heap
// (-1 when not in it), so it can be removed when it no longer applies.
type timed interface {
	deadline() time.Time
	slot() *int
}

func (f *filter) deadline() time.Time { return f.until }
func (f *filter) slot() *int          { return &f.idx }

// timeHeap is a min-heap of items by deadline, with removal: closed offers
// and replaced filters leave it at once, so it holds only what is live.
type timeHeap[T timed] struct{ items []T }

func (h *timeHeap[T]) Len() int           { return len(h.items) }
func (h *timeHeap[T]) Less(i, j int) bool { return h.items[i].deadline().Before(h.items[j].deadline()) }
func (h *timeHeap[T]) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.items[i].slot() = i
	*h.items[j].slot() = j
}
func (h *timeHeap[T]) Push(x any) {
	it := x.(T)
	*it.slot() = len(h.items)
	h.items = append(h.items, it)
}
func (h *timeHeap[T]) Pop() any {
	old := h.items
	it := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero
	h.items = old[:len(old)-1]
	*it.slot() = -1
	return it
}

func (h *timeHeap[T]) push(item T) { heap.Push(h, item) }

func (h *timeHeap[T]) remove(item T) {
	if i := *item.slot(); i >= 0 && i < len(h.items) {
		heap.Remove(h, i)
	}
}

func (h *timeHeap[T]) peek() (time.Time, bool) {
	if len(h.items) == 0 {
		return time.Time{}, false
	}
	return h.items[0].deadline(), true
}

func (h *timeHeap[T]) popDue(now time.Time) (T, bool) {
	var zero T
	if len(h.items) == 0 || h.items[0].deadline().After(now) {
		return zero, false
	}
	return heap.Pop(h).(T), true
}
