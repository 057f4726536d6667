package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// commitGate holds new Raft proposals, in order, on a leader that is the
// only voter while its log write is in progress, until the leader has
// handed that write's commit to the FSM; then a feeder hands them to
// Raft. Proposers never wait at the gate (raftPropose returns at once).
//
// Why: hashicorp/raft's leader loop selects among its ready channels at
// random. A one-voter leader's entries are committed once stored, so when
// a log write returns, the commit notification is ready, and so are the
// proposals made during the write (under load there always are some).
// Half the time the loop writes the next batch first (one more fsync)
// before it applies the committed one, and again after that: a geometric
// chain of extra disk writes in a commit (~1 on average, ~6 at the 99th
// percentile; docs/bench.md, latency). Proposals made during a write
// could not join it anyway; holding them until the commit has been
// handed over keeps the commit first, and they go together into the next
// write.
//
// Order: a proposal is handed to Raft directly only while the gate is
// open, nothing is held and no feeder runs; else it is held behind the
// others. So a proposal made after another returned (from one goroutine,
// or ordered by a lock, as the job writer's flush before plans) enters
// the log after it.
//
// The gate opens when the FSM is handed an entry of the write
// (fsmApplied), when Raft's applied index reaches the write (checked on a
// short timer, for writes without FSM commands), after gateMaxHold past
// the write's return, and at once when the write fails. With more than
// one voter the commit waits for the followers, and holding proposals
// would only serialize replication, so the gate stays open.
type commitGate struct {
	raft   atomic.Pointer[raft.Raft] // set once Raft runs
	writes atomic.Uint64             // log writes started (gantry_raft_log_writes_waited)

	mu          sync.Mutex
	closed      bool
	first, last uint64      // the write being committed
	storedAt    time.Time   // when the write returned (zero: in progress)
	timer       *time.Timer // the applied-index check
	held        []*proposal // in proposal order
	feeding     bool        // a feeder hands held proposals to Raft
}

// proposal is one entry for raft.Apply; ready is closed once f is set.
type proposal struct {
	buf     []byte
	timeout time.Duration
	f       raft.ApplyFuture
	ready   chan struct{}
}

// gateCheck is the first delay after a write returns before the applied
// index is checked (it doubles up to gateMaxHold).
const gateCheck = 50 * time.Microsecond

// gateMaxHold bounds how long proposals are held after a write returned.
const gateMaxHold = 2 * time.Millisecond

// propose hands the entry to Raft now, or holds it (in order) while the
// gate is closed. The caller waits on p.ready before reading p.f.
func (g *commitGate) propose(r *raft.Raft, buf []byte, timeout time.Duration) *proposal {
	p := &proposal{buf: buf, timeout: timeout, ready: make(chan struct{})}
	g.mu.Lock()
	if g.closed || g.feeding || len(g.held) > 0 {
		g.held = append(g.held, p)
		g.mu.Unlock()
		return p
	}
	g.mu.Unlock()
	p.f = r.Apply(buf, timeout)
	close(p.ready)
	return p
}

// feed hands the held proposals to Raft, in order, until none are held or
// the gate closed again.
func (g *commitGate) feed() {
	for {
		g.mu.Lock()
		if g.closed || len(g.held) == 0 {
			g.feeding = false
			g.mu.Unlock()
			return
		}
		batch := g.held
		g.held = nil
		g.mu.Unlock()
		r := g.raft.Load()
		for _, p := range batch {
			p.f = r.Apply(p.buf, p.timeout)
			close(p.ready)
		}
	}
}

// enabled reports whether this server is the leader and the only voter.
func (g *commitGate) enabled() bool {
	r := g.raft.Load()
	if r == nil || r.State() != raft.Leader {
		return false
	}
	voters := 0
	for _, srv := range r.GetConfiguration().Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
	}
	return voters == 1
}

// hold closes the gate for a write of entries first..last (the leader's
// log write, before it starts).
func (g *commitGate) hold(first, last uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.first, g.last, g.storedAt = first, last, time.Time{}
}

// stored is called when the write returned: the gate opens on failure,
// else once the commit is handed over (or gateMaxHold passed).
func (g *commitGate) stored(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		return
	}
	if err != nil {
		g.openLocked()
		return
	}
	g.storedAt = time.Now()
	g.armLocked(gateCheck)
}

func (g *commitGate) armLocked(d time.Duration) {
	if g.timer != nil {
		g.timer.Stop()
	}
	g.timer = time.AfterFunc(d, func() { g.check(d) })
}

// check opens the gate if Raft's applied index reached the write or the
// hold is over; else it checks again after twice the delay.
func (g *commitGate) check(d time.Duration) {
	r := g.raft.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed || g.storedAt.IsZero() {
		return // opened, or a new write started (it arms its own check)
	}
	if (r != nil && r.AppliedIndex() >= g.last) || time.Since(g.storedAt) >= gateMaxHold {
		g.openLocked()
		return
	}
	g.armLocked(min(2*d, gateMaxHold))
}

// fsmApplied is called as the FSM is handed an entry: one of the write's
// means its commit was taken.
func (g *commitGate) fsmApplied(index uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed && index >= g.first {
		g.openLocked()
	}
}

func (g *commitGate) openLocked() {
	g.closed = false
	if g.timer != nil {
		g.timer.Stop()
	}
	if len(g.held) > 0 && !g.feeding {
		g.feeding = true
		go g.feed()
	}
}

// gatedLogStore is the log store with the gate around the leader's
// writes; it also counts writes.
type gatedLogStore struct {
	raft.LogStore
	gate *commitGate
}

func (s gatedLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s gatedLogStore) StoreLogs(logs []*raft.Log) error {
	s.gate.writes.Add(1)
	if len(logs) == 0 || !s.gate.enabled() {
		return s.LogStore.StoreLogs(logs)
	}
	s.gate.hold(logs[0].Index, logs[len(logs)-1].Index)
	err := s.LogStore.StoreLogs(logs)
	s.gate.stored(err)
	return err
}

// gatedFSM tells the gate which entries the FSM is handed.
type gatedFSM struct {
	raft.FSM
	gate *commitGate
}

func (f gatedFSM) Apply(l *raft.Log) any {
	f.gate.fsmApplied(l.Index)
	return f.FSM.Apply(l)
}
