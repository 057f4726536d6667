package script

import (
	"testing"
	"time"
)

// TestRunStatsObserve: one stalled run does not make a short script look
// long; a script that got slower is seen as such within a few runs.
func TestRunStatsObserve(t *testing.T) {
	var r RunStats
	for range 20 {
		r.Observe(5 * time.Microsecond)
	}
	r.Observe(20 * time.Millisecond) // lost its CPU
	if n := time.Duration(r.Nanos.Load()); n > 20*time.Microsecond {
		t.Fatalf("after one stall the average is %v", n)
	}
	runs := 0
	for ; time.Duration(r.Nanos.Load()) < time.Millisecond; runs++ {
		r.Observe(10 * time.Millisecond)
	}
	if runs > 20 {
		t.Fatalf("%d runs of 10ms to see an average over 1ms", runs)
	}
}
