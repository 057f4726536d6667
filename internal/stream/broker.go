package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Error codes of a stream's last line (WireBatch.Code) and of the errors
// Subscribe and Next return.
const (
	// CodeIndexTooOld: the events after the index asked for are no longer
	// kept (the ring moved on, or nobody was subscribed then).
	CodeIndexTooOld = "index_too_old"
	// CodeSlow: the subscriber fell further behind than the ring holds.
	CodeSlow = "slow_subscriber"
	// CodeReset: the events were interrupted (a snapshot restore replaced
	// the state, or the broker could not keep up with the commits).
	CodeReset = "reset"
	// CodeClosed: the server is stopping.
	CodeClosed = "closed"
)

// Error is why a subscription could not start or ended.
type Error struct {
	Code string
	Msg  string
	// Floor is the lowest index a new subscription may resume from.
	Floor uint64
}

func (e *Error) Error() string { return e.Msg }

// ErrClosed ends every subscription when the broker closes.
var ErrClosed = &Error{Code: CodeClosed, Msg: "event stream closed: the server is stopping"}

// DeriveFunc returns the events of one committed entry. It runs on the
// broker's goroutine, after the entry was applied.
type DeriveFunc func() []*Event

// Config sizes the broker. Every field has a default (DefaultConfig).
type Config struct {
	// MaxBatches bounds the entries kept in the ring.
	MaxBatches int
	// MaxBytes bounds the encoded events kept in the ring.
	MaxBytes int
	// QueueLen bounds the entries applied but not yet derived; when it is
	// full the broker cannot keep up and resets (CodeReset) rather than
	// make the FSM wait.
	QueueLen int
	// Linger keeps recording events for a while after the last subscriber
	// left, so a client that reconnects resumes without a gap.
	Linger time.Duration
	Logger *slog.Logger
}

// DefaultConfig: 16,384 entries or 64 MiB of events, whichever is reached
// first; a queue of 1,024 entries (each holds two state snapshots and the
// decoded entry until derived, so the queue is kept short); one minute of
// linger.
func DefaultConfig() Config {
	return Config{MaxBatches: 16384, MaxBytes: 64 << 20, QueueLen: 1024, Linger: time.Minute}
}

// Validate checks the sizes.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBatches < 1 {
		errs = append(errs, fmt.Errorf("event stream: max batches must be at least 1 (got %d)", c.MaxBatches))
	}
	if c.MaxBytes < 1 {
		errs = append(errs, fmt.Errorf("event stream: max bytes must be at least 1 (got %d)", c.MaxBytes))
	}
	if c.QueueLen < 1 {
		errs = append(errs, fmt.Errorf("event stream: queue length must be at least 1 (got %d)", c.QueueLen))
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("event stream: linger must not be negative (got %s)", c.Linger))
	}
	return errors.Join(errs...)
}

// published is an entry waiting for the broker's goroutine.
type published struct {
	index  uint64
	derive DeriveFunc
}

// Broker fans events out to subscribers. Publish and Active are called
// from the FSM goroutine only (one publisher); everything else from any
// goroutine.
type Broker struct {
	cfg    Config
	logger *slog.Logger
	queue  chan published
	// scratch is where a batch is encoded, spans where its events lie in
	// it, and slab the unused end of the buffer finished lines are copied
	// into (the broker's goroutine only: Broker.keep).
	scratch []byte
	spans   []span
	slab    []byte
	// slabMem is the memory of slab (the broker holds a reference to it
	// while it fills it); lines keeps the memory of lines nothing reads
	// any more, to copy later lines into (lineMem).
	slabMem *lineMem
	lines   linePool

	// active is true while events are recorded: someone subscribes, or
	// the last one left less than Linger ago. The FSM reads it on every
	// entry, so it is the whole cost of the stream when nobody listens.
	active atomic.Bool
	// skipped is the index of the last entry the FSM did not publish
	// because the broker was inactive.
	skipped atomic.Uint64
	// overflow is the index of the last entry dropped because the queue
	// was full (0: none since the broker's goroutine last looked).
	overflow atomic.Uint64
	// full counts the subscriptions that want full payloads: events get
	// their full encoding only while there is one.
	full atomic.Int64

	mu   sync.Mutex
	ring ring // guarded by mu
	// floor is the highest index whose events are gone (evicted from the
	// ring, skipped, or lost); a subscription may resume from any index
	// at or above it. Guarded by mu.
	floor uint64
	// notify is closed and replaced when a batch is appended. Guarded by
	// mu.
	notify chan struct{}
	subs   map[*Subscription]struct{} // guarded by mu
	linger *time.Timer                // guarded by mu
	closed bool                       // guarded by mu
	// started is set when the goroutine runs (the first Subscribe):
	// nothing is published before, so a broker nobody subscribed to
	// holds no goroutine. Guarded by mu.
	started bool

	stop chan struct{}
	done chan struct{}
}

// New makes a broker. Its goroutine starts with the first subscription
// and runs until Close.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		cfg:    cfg,
		logger: cfg.Logger,
		queue:  make(chan published, cfg.QueueLen),
		ring:   newRing(cfg.MaxBatches),
		notify: make(chan struct{}),
		subs:   map[*Subscription]struct{}{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	// Memory of lines no longer read, kept to be reused: a quarter of
	// what the ring may hold.
	b.lines.maxBytes = cfg.MaxBytes / 4
	return b, nil
}

// Want reports whether the FSM should publish the entry at index, and
// records it as skipped when not. It is the whole cost of the stream on
// the FSM while nobody subscribes: an atomic load, store and load.
//
// The order matters: Want stores the skipped index and then loads
// active; Subscribe stores active and then loads the skipped index. With
// Go's sequentially consistent atomics at least one sees the other's
// store, so either the entry is published or the subscriber knows it was
// skipped; never neither.
func (b *Broker) Want(index uint64) bool {
	if b.active.Load() {
		return true
	}
	b.skipped.Store(index)
	return b.active.Load()
}

// Publish hands the entry at index to the broker's goroutine; it never
// blocks. When the queue is full the entry is lost: the broker resets
// its subscribers (CodeReset) once it catches up.
func (b *Broker) Publish(index uint64, derive DeriveFunc) {
	select {
	case b.queue <- published{index: index, derive: derive}:
	default:
		b.overflow.Store(index)
	}
}

// run derives and encodes the published entries, in order, and appends
// them to the ring.
func (b *Broker) run() {
	defer close(b.done)
	for {
		select {
		case <-b.stop:
			return
		case p := <-b.queue:
			if lost := b.overflow.Swap(0); lost != 0 {
				b.reset(lost, fmt.Sprintf("events interrupted at index %d: the server could not derive events as fast as entries were committed", lost))
			}
			b.append(p.index, p.derive())
		}
	}
}

// span is where event i of a batch lies in the broker's scratch buffer.
type span struct{ i, start, end int }

// slabBytes is the size of the buffers the encodings of small entries
// share; a line of more than an eighth of it gets its own.
const slabBytes = 256 << 10

// maxScratch is the largest scratch buffer kept between entries; a larger
// one (an entry of more than ~50,000 events) is let go. A c1m-like run's
// plan entries (several plans of 1,000 placements each) take a few MiB:
// with a limit of 4 MiB the buffer was let go and grown again, by
// doubling, for most of them.
const maxScratch = 16 << 20

// append encodes events and adds them to the ring as one batch.
//
// The events are encoded into the broker's scratch buffer laid out as
// the stream's line, {"index":N,"groups":[{"topic":T,"type":Y,
// "namespace":NS,"events":[e1,e2,...]},...]}, a group for each run of
// events of one topic, type and namespace, so a subscriber that takes
// every event of the entry writes that line as it is; the line is then
// copied to memory of exactly its size (keep), of which the events'
// encodings ({"key":K,"payload":P}) are slices. Encoding in place into a
// buffer sized ahead reserved an eighth more than an entry's events took,
// and grew (leaving the first buffer to the events encoded before) when
// an entry's events were larger than the last ones'.
func (b *Broker) append(index uint64, events []*Event) {
	kept := events[:0]
	spans := b.spans[:0]
	buf := b.scratch[:0]
	buf = append(buf, `{"index":`...)
	buf = strconv.AppendUint(buf, index, 10)
	buf = append(buf, `,"groups":[`...)
	head := len(buf)
	var prev *Event // the last event kept
	for _, e := range events {
		e.Index = index
		n := len(buf)
		switch {
		case prev == nil:
			buf = AppendGroupHead(buf, e)
		case !SameGroup(prev, e):
			buf = AppendGroupHead(append(buf, "]},"...), e)
		default:
			buf = append(buf, ',')
		}
		out, err := e.appendJSON(buf, e.Payload)
		if err != nil {
			b.logger.Error("event not encoded", "error", err)
			buf = buf[:n]
			continue
		}
		spans = append(spans, span{i: len(kept), start: len(buf), end: len(out)})
		buf = out
		kept = append(kept, e)
		prev = e
	}
	size := len(buf) - head
	var line []byte
	var mem *lineMem
	if len(kept) > 0 {
		buf = append(buf, "]}]}\n"...)
		line, mem = b.keep(buf)
		for _, sp := range spans {
			kept[sp.i].encoded = line[sp.start:sp.end:sp.end]
		}
		if mem != b.slabMem {
			// A line of its own: the ring counts the memory it holds.
			size += cap(mem.buf) - len(line)
		}
	}
	if b.full.Load() > 0 {
		buf, spans = buf[:0], spans[:0]
		for i, e := range kept {
			if e.Full == nil {
				continue
			}
			out, err := e.appendJSON(buf, e.Full)
			if err != nil {
				continue // EncodedFor sends the summary
			}
			spans = append(spans, span{i: i, start: len(buf), end: len(out)})
			buf = out
		}
		if len(spans) > 0 {
			// Not reused: only while a subscriber asks for it.
			full := append([]byte(nil), buf...)
			for _, sp := range spans {
				kept[sp.i].encodedFull = full[sp.start:sp.end:sp.end]
			}
			size += len(buf)
		}
	}
	if cap(buf) <= maxScratch {
		b.scratch = buf[:0]
	} else {
		b.scratch = nil
	}
	b.spans = spans[:0]
	batch := &Batch{Index: index, Events: kept, line: line, mem: mem, size: size}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || index <= b.floor {
		mem.release()
		return // recorded as lost already (a reset overtook it)
	}
	for evicted := range b.ring.push(batch, b.cfg.MaxBytes) {
		b.evicted(evicted)
	}
	close(b.notify)
	b.notify = make(chan struct{})
}

// keep copies p to memory the ring may hold, and returns it with that
// memory, referenced once (by the batch the line is for): a buffer of
// its own for a large line, otherwise the next bytes of a slab shared
// with the lines of other entries, so small entries do not cost an
// allocation each. Both come from memory the ring's lines left once
// nothing read them any more when there is some (lineMem), so the ring
// takes at most a quarter more than it counts.
func (b *Broker) keep(p []byte) ([]byte, *lineMem) {
	if len(p) > slabBytes/8 {
		m := b.lines.get(len(p))
		m.buf = append(m.buf, p...)
		return m.buf[:len(p):len(p)], m
	}
	if len(p) > cap(b.slab)-len(b.slab) {
		b.slabMem.release() // the broker's reference
		b.slabMem = b.lines.get(slabBytes)
		b.slab = b.slabMem.buf
	}
	start := len(b.slab)
	b.slab = append(b.slab, p...)
	b.slabMem.hold()
	return b.slab[start:len(b.slab):len(b.slab)], b.slabMem
}

// evicted drops the subscribers that had not read a batch leaving the
// ring. Called with mu held.
func (b *Broker) evicted(old *Batch) {
	if old.Index > b.floor {
		b.floor = old.Index
	}
	for s := range b.subs {
		if s.cursor <= old.seq {
			b.endLocked(s, &Error{Code: CodeSlow, Floor: b.floor, Msg: fmt.Sprintf(
				"subscriber dropped: it fell behind by more than the %d entries (or %d bytes) of events the server keeps, at index %d; resume from a newer index",
				b.cfg.MaxBatches, b.cfg.MaxBytes, s.lastIndex)})
		}
	}
}

// Reset ends every subscription with CodeReset and forgets the ring: the
// events up to index can no longer be followed (a snapshot restore
// replaced the state at index). Any goroutine may call it.
func (b *Broker) Reset(index uint64, reason string) {
	b.reset(index, reason)
}

func (b *Broker) reset(index uint64, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if index > b.floor {
		b.floor = index
	}
	b.ring.clear()
	for s := range b.subs {
		b.endLocked(s, &Error{Code: CodeReset, Msg: reason, Floor: b.floor})
	}
}

// endLocked ends s with err and removes it. Called with mu held.
func (b *Broker) endLocked(s *Subscription, err *Error) {
	if s.err != nil {
		return
	}
	s.err = err
	close(s.done)
	delete(b.subs, s)
	if s.full {
		b.full.Add(-1)
	}
	b.left()
}

// left deactivates the broker once the last subscriber is gone and the
// linger passed. Called with mu held.
func (b *Broker) left() {
	if len(b.subs) > 0 || b.closed {
		return
	}
	if b.cfg.Linger == 0 {
		b.active.Store(false)
		return
	}
	if b.linger != nil {
		b.linger.Stop()
	}
	b.linger = time.AfterFunc(b.cfg.Linger, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.subs) == 0 {
			b.active.Store(false)
		}
	})
}

// Close ends every subscription (ErrClosed) and stops the broker's
// goroutine. Entries still queued are dropped.
func (b *Broker) Close() {
	b.mu.Lock()
	if b.closed {
		started := b.started
		b.mu.Unlock()
		if started {
			<-b.done
		}
		return
	}
	for s := range b.subs {
		b.endLocked(s, ErrClosed)
	}
	b.closed = true
	b.active.Store(false)
	if b.linger != nil {
		b.linger.Stop()
	}
	started := b.started
	b.mu.Unlock()
	close(b.stop)
	if started {
		<-b.done
	}
}

// Stats is what the broker holds now.
type Stats struct {
	Subscribers int
	Batches     int
	Bytes       int
	Floor       uint64
	Active      bool
}

// Stats returns the broker's figures.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{Subscribers: len(b.subs), Batches: b.ring.len(), Bytes: b.ring.bytes, Floor: b.floor, Active: b.active.Load()}
}
