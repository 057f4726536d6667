package command

import (
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// TestPass: a command's pass counts the clients its change woke, and the
// clients those woke in turn, until each has tried (Settle); a client
// woken again while in a pass is counted once, and in one pass only.
func TestPass(t *testing.T) {
	ks := keyspace.New()
	var tr Tracker
	lock := func(key []byte) func() {
		i := keyspace.ShardOf(key)
		ks.LockShard(i)
		return func() { ks.UnlockShard(i) }
	}
	a, b := []byte("a"), []byte("b")
	w1, w2 := NewWaiter(), NewWaiter()
	u := lock(a)
	tr.BlockLocked(a, w1)
	u()
	u = lock(b)
	tr.BlockLocked(b, w2)
	u()

	var p, other Pass
	if !p.Wait(time.Hour) || p.Pending() {
		t.Fatal("an empty pass waits")
	}
	u = lock(a)
	tr.TouchForLocked(a, &p)
	tr.TouchForLocked(a, &p)     // a second change: one signal, counted once
	tr.TouchForLocked(a, &other) // in p already
	u()
	if len(w1.C) != 1 || w1.Pass() != &p || !p.Pending() || other.Pending() {
		t.Fatalf("wake: signal %d, pass %p (p %p), p pending %v, other pending %v", len(w1.C), w1.Pass(), &p, p.Pending(), other.Pending())
	}
	<-w1.C
	// w1's try changes b: w2 joins the pass w1 was woken in
	u = lock(b)
	tr.TouchForLocked(b, w1.Pass())
	u()
	w1.Settle()
	if !p.Pending() {
		t.Fatal("the pass ended before the client woken by the first had tried")
	}
	if p.Wait(time.Millisecond) {
		t.Fatal("Wait reported the pass served with a client still to try")
	}
	done := make(chan bool)
	go func() { done <- p.Wait(time.Hour) }()
	<-w2.C
	w2.Settle()
	if !<-done {
		t.Fatal("Wait gave up")
	}
	w2.Settle() // a second settle is nothing
	if p.Pending() || w1.Pass() != nil || w2.Pass() != nil {
		t.Fatal("state left after the pass")
	}
	// a touch without a pass wakes without counting
	u = lock(a)
	tr.TouchLocked(a)
	u()
	if len(w1.C) != 1 || w1.Pass() != nil {
		t.Fatal("a touch without a pass")
	}
}
