package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// commitGate holds new Raft proposals on a leader that is the only voter
// while its log write is in progress, until the leader has handed that
// write's commit to the FSM.
//
// Why: hashicorp/raft's leader loop selects among its ready channels at
// random. A one-voter leader's entries are committed once stored, so when
// a log write returns, the commit notification is ready, and so are the
// proposals made during the write (under load there always are some).
// Half the time the loop writes the next batch first (one more fsync)
// before it applies the committed one, and again after that: a geometric
// chain of extra disk writes in every commit (~1 on average, ~6 at the
// 99th percentile), which was most of the latency workload's tail
// (docs/bench.md). Proposals made during a write could not join it
// anyway; holding them until the commit has been handed over keeps the
// commit first, and they go together into the next write.
//
// The gate opens when the FSM is handed an entry of the write (fsmApplied),
// when Raft's applied index reaches the write (checked on a short timer,
// for writes without FSM commands), or after gateMaxHold, and at once when
// the write fails. With more than one voter the commit waits for the
// followers, and holding proposals would only serialize replication, so
// the gate stays open.
type commitGate struct {
	raft   atomic.Pointer[raft.Raft] // set once Raft runs
	writes atomic.Uint64             // log writes started (for gantry_raft_log_writes_waited)

	mu          sync.Mutex
	closed      bool
	first, last uint64        // the write being committed
	opened      chan struct{} // closed when the gate opens
	storedAt    time.Time     // when the write returned (zero: in progress)
	timer       *time.Timer
}

// gateCheck is the first delay after a write returns before the applied
// index is checked (it doubles up to gateMaxHold).
const gateCheck = 50 * time.Microsecond

// gateMaxHold bounds how long proposals are held after a write returned.
const gateMaxHold = 2 * time.Millisecond

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
	if !g.closed {
		g.closed = true
		g.opened = make(chan struct{})
	}
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
	if g.timer == nil {
		g.timer = time.AfterFunc(d, func() { g.check(d) })
		return
	}
	g.timer.Stop()
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
	close(g.opened)
	if g.timer != nil {
		g.timer.Stop()
	}
}

// wait returns once the gate is open, or after timeout (0: no bound), or
// when stop is closed.
func (g *commitGate) wait(timeout time.Duration, stop <-chan struct{}) {
	g.mu.Lock()
	if !g.closed {
		g.mu.Unlock()
		return
	}
	ch := g.opened
	g.mu.Unlock()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-ch:
	case <-expired:
	case <-stop:
	}
}

// gatedLogStore is the leader's log store with the gate around its writes.
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
