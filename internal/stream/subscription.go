package stream

import (
	"context"
	"fmt"
	"time"
)

// SubscribeRequest says where a subscription starts and what it selects.
type SubscribeRequest struct {
	// Resume, when set, starts after the entry at Index: every event of
	// a later entry is delivered, or Subscribe fails with CodeIndexTooOld
	// when some are no longer kept. Unset, the subscription starts with
	// the next entry the broker records.
	Resume bool
	Index  uint64
	Filter Filter
	// Full asks for events' full payloads (Event.Full) rather than their
	// summaries.
	Full bool
}

// Subscription reads batches from the broker at its own pace. Next and
// LastIndex are for one goroutine; Done and Close for any.
type Subscription struct {
	b      *Broker
	filter Filter
	full   bool
	// cursor is the sequence number of the next batch to read;
	// lastIndex the index of the last batch read (matching or not); err
	// why the subscription ended. Guarded by b.mu.
	cursor    uint64
	lastIndex uint64
	err       *Error
	done      chan struct{}
	// held is the memory of the line of the last batch taken, which the
	// subscriber may be writing until it asks for the next (take):
	// not reused before. Guarded by b.mu.
	held *lineMem
}

// Subscribe starts a subscription. It fails with an *Error: CodeIndexTooOld
// when a resume index is older than what is kept, CodeClosed after Close.
func (b *Broker) Subscribe(req SubscribeRequest) (*Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if !b.started {
		b.started = true
		go b.run()
	}
	// The order with Want: store active, then load skipped.
	b.active.Store(true)
	if b.linger != nil {
		b.linger.Stop()
	}
	if sk := b.skipped.Load(); sk > b.floor {
		// Entries were skipped while nobody listened: what the ring
		// holds from before them is no longer continuous with what comes.
		b.floor = sk
		if n := b.ring.newest(); n != nil && n.Index < sk {
			b.ring.clear()
		}
	}
	s := &Subscription{b: b, filter: req.Filter, full: req.Full, done: make(chan struct{})}
	switch {
	case !req.Resume:
		s.cursor = b.ring.next
		if n := b.ring.newest(); n != nil {
			s.lastIndex = n.Index
		} else {
			s.lastIndex = b.floor
		}
	case req.Index < b.floor:
		b.left()
		return nil, &Error{Code: CodeIndexTooOld, Floor: b.floor, Msg: fmt.Sprintf(
			"index %d is older than the events this server keeps: the events of entries %d to %d are gone (the server keeps the last %d entries or %d bytes of events, and records events only while someone subscribes); read the current state and resume from index %d or later",
			req.Index, req.Index+1, b.floor, b.cfg.MaxBatches, b.cfg.MaxBytes, b.floor)}
	default:
		s.cursor = b.ring.search(req.Index)
		s.lastIndex = req.Index
	}
	b.subs[s] = struct{}{}
	if s.full {
		b.full.Add(1)
	}
	return s, nil
}

// Next returns the next batch with events matching the filter (a copy
// holding only those), waiting for one; or an *Error when the
// subscription ended (dropped as slow, reset, closed), or ctx's error.
// The batch's encodings (Batch.Line, Event.Encoded) are valid until the
// next call of Next, NextOrIdle or TryNext: the memory is then reused
// once the ring, too, let go of the batch.
func (s *Subscription) Next(ctx context.Context) (*Batch, error) {
	return s.NextOrIdle(ctx, nil)
}

// NextOrIdle is Next that also returns (nil, nil) when idle fires before
// a matching batch arrives: the caller sends a heartbeat at LastIndex.
func (s *Subscription) NextOrIdle(ctx context.Context, idle <-chan time.Time) (*Batch, error) {
	for {
		batch, notify, err := s.take()
		if err != nil {
			return nil, err
		}
		if batch == nil {
			select {
			case <-notify:
			case <-s.done:
			case <-idle:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		if out := s.match(batch); out != nil {
			return out, nil
		}
	}
}

// TryNext is Next without waiting: it returns (nil, nil) when no
// matching batch is kept yet. A writer drains what is ready with it before
// flushing, so a subscriber that is behind gets many entries per write.
func (s *Subscription) TryNext() (*Batch, error) {
	for {
		batch, _, err := s.take()
		if err != nil || batch == nil {
			return nil, err
		}
		if out := s.match(batch); out != nil {
			return out, nil
		}
	}
}

// take moves the cursor past the next kept batch and returns it, or nil
// with the channel that closes when one arrives; or the subscription's
// error. The caller is done with the batch it took before: its line's
// memory may be reused from now on, so the encodings of a batch (its
// line, its events' Encoded) are read only until the next Next, TryNext
// or NextOrIdle.
func (s *Subscription) take() (*Batch, <-chan struct{}, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	s.held.release()
	s.held = nil
	if s.err != nil {
		return nil, nil, s.err
	}
	batch := b.ring.at(s.cursor)
	if batch != nil {
		s.cursor++
		s.lastIndex = batch.Index
		s.held = batch.mem
		s.held.hold()
	}
	return batch, b.notify, nil
}

// Full reports whether the subscription wants full payloads
// (Event.EncodedFor).
func (s *Subscription) Full() bool { return s.full }

// match returns the part of batch the filter selects, or nil.
func (s *Subscription) match(batch *Batch) *Batch {
	n := 0
	for _, e := range batch.Events {
		if s.filter.Match(e) {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(batch.Events):
		if s.full {
			return &Batch{Index: batch.Index, Events: batch.Events}
		}
		return batch
	}
	out := &Batch{Index: batch.Index, Events: make([]*Event, 0, n)}
	for _, e := range batch.Events {
		if s.filter.Match(e) {
			out.Events = append(out.Events, e)
		}
	}
	return out
}

// LastIndex is the index of the last entry the subscription looked at
// (its events delivered or filtered out): a client may resume from it.
func (s *Subscription) LastIndex() uint64 {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.lastIndex
}

// Done is closed when the subscription ends (Err says why).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is why the subscription ended, or nil.
func (s *Subscription) Err() *Error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.endLocked(s, ErrClosed)
}
