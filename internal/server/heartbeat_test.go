package server

import (
	"testing"
	"time"
)

func TestHeartbeatTimers(t *testing.T) {
	expired := make(chan string, 10)
	h := newHeartbeats(func(id string) { expired <- id })

	// Not leader yet: resets arm nothing.
	h.reset("early", time.Millisecond)
	if h.count() != 0 {
		t.Fatal("timer armed while inactive")
	}

	h.start([]string{"a", "b"}, time.Hour)
	h.reset("c", time.Millisecond)
	if got := <-expired; got != "c" {
		t.Fatalf("expired %s, want c", got)
	}
	// Renewing keeps a node alive: its old timer is replaced.
	h.reset("a", time.Hour)
	// start does not shorten a fresher timer.
	h.start([]string{"a"}, time.Millisecond)
	if h.count() != 2 {
		t.Fatalf("%d timers, want 2 (a, b)", h.count())
	}
	h.remove("b")
	h.stop()
	if h.count() != 0 {
		t.Fatal("timers left after stop")
	}
	// After stop, nothing fires and resets are ignored.
	h.reset("d", time.Millisecond)
	select {
	case id := <-expired:
		t.Fatalf("%s expired after stop", id)
	default:
	}
	if h.count() != 0 {
		t.Fatal("timer armed after stop")
	}
}
