package server

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/internal/structs"
)

// gateOpen reports whether the gate lets proposals through.
func gateOpen(g *commitGate) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.closed
}

// TestCommitGate: a write closes the gate; it opens when the FSM is
// handed one of the write's entries (not an older one), or when the write
// fails.
func TestCommitGate(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(g *commitGate)
		open bool
	}{
		{"closed while writing", func(*commitGate) {}, false},
		{"an older entry applied", func(g *commitGate) { g.fsmApplied(9) }, false},
		{"the write's first entry handed to the FSM", func(g *commitGate) { g.fsmApplied(10) }, true},
		{"a later entry handed to the FSM", func(g *commitGate) { g.fsmApplied(12) }, true},
		{"the write failed", func(g *commitGate) { g.stored(errors.New("disk")) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &commitGate{}
			if !gateOpen(g) {
				t.Fatal("a new gate is closed")
			}
			g.hold(10, 12)
			tc.do(g)
			if got := gateOpen(g); got != tc.open {
				t.Fatalf("open = %v, want %v", got, tc.open)
			}
		})
	}
}

// TestCommitGateOpensAfterTheWrite: a write that returned and whose commit
// is never seen (no Raft here) still opens the gate, on its timer, after
// the hold bound.
func TestCommitGateOpensAfterTheWrite(t *testing.T) {
	g := &commitGate{}
	g.hold(1, 1)
	g.stored(nil)
	for !gateOpen(g) {
		time.Sleep(100 * time.Microsecond)
	}
}

// TestCommitGateKeepsOrder: proposals held while the gate is closed wait,
// enter the log in proposal order when it opens, and a proposal made while
// others are held queues behind them.
func TestCommitGateKeepsOrder(t *testing.T) {
	s, _ := startServer(t, testConfig(t))
	propose := func(name string) func() (uint64, any, error) {
		return s.raftPropose(structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{
			Node: &structs.Node{ID: name, Name: name, Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000}}}, 0)
	}
	s.gate.hold(1<<62, 1<<62) // as if the leader were writing
	var waits []func() (uint64, any, error)
	for _, n := range []string{"a", "b", "c"} {
		waits = append(waits, propose(n))
	}
	s.gate.mu.Lock()
	held := len(s.gate.held)
	s.gate.mu.Unlock()
	if held != 3 {
		t.Fatalf("%d proposals held, want 3", held)
	}
	s.gate.stored(errors.New("as if the write failed")) // opens
	waits = append(waits, propose("d"))
	var last uint64
	for i, w := range waits {
		idx, _, err := w()
		if err != nil {
			t.Fatal(err)
		}
		if idx <= last {
			t.Fatalf("proposal %d at index %d, after %d: out of order", i, idx, last)
		}
		last = idx
	}
}

// TestGatedLogStoreOnlyOnALeader: without a running Raft (a follower, a
// server starting) writes pass through and the gate stays open.
func TestGatedLogStoreOnlyOnALeader(t *testing.T) {
	g := &commitGate{}
	s := gatedLogStore{LogStore: raft.NewInmemStore(), gate: g}
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte{1}}}); err != nil {
		t.Fatal(err)
	}
	if !gateOpen(g) || g.writes.Load() != 1 {
		t.Fatalf("open %v, writes %d; want open after 1 write", gateOpen(g), g.writes.Load())
	}
}
