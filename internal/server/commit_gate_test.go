package server

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// gateOpen reports whether wait returns without blocking.
func gateOpen(g *commitGate) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.closed
}

// TestCommitGate: a write closes the gate; it opens when the FSM is
// handed one of the write's entries (not an older one), when the write
// fails, or, with nothing handed over, after the hold bound once the
// write returned.
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
// is never seen (no raft here) still opens the gate after the hold bound,
// and wait returns then; a second write closes it again.
func TestCommitGateOpensAfterTheWrite(t *testing.T) {
	g := &commitGate{}
	g.hold(1, 1)
	done := make(chan struct{})
	go func() {
		g.wait(0, nil)
		close(done)
	}()
	g.stored(nil)
	<-done
	if !gateOpen(g) {
		t.Fatal("wait returned with the gate closed")
	}
	g.hold(2, 3)
	if gateOpen(g) {
		t.Fatal("a second write left the gate open")
	}
	g.stored(nil)
	g.wait(0, nil)
}

// TestCommitGateWaitBounds: a closed gate's wait returns on its timeout or
// when stop closes.
func TestCommitGateWaitBounds(t *testing.T) {
	g := &commitGate{}
	g.hold(1, 1)
	g.wait(time.Millisecond, nil)
	stop := make(chan struct{})
	close(stop)
	g.wait(0, stop)
	if gateOpen(g) {
		t.Fatal("the gate opened without its write returning")
	}
	g.stored(errors.New("disk"))
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
