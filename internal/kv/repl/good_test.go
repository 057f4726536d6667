package repl

import (
	"io"
	"log"
	"testing"
)

// TestGoodReplicas: a replica is good while it is online and its last ACK
// is at most the good lag (min-replicas-max-lag) old.
func TestGoodReplicas(t *testing.T) {
	type rep struct {
		online bool
		ackAge int64 // seconds since its last ACK
	}
	tests := []struct {
		name string
		lag  int64
		reps []rep
		want int
	}{
		{"none", 10, nil, 0},
		{"fresh", 10, []rep{{true, 0}, {true, 3}}, 2},
		{"at the lag", 10, []rep{{true, 10}}, 1},
		{"past the lag", 10, []rep{{true, 11}, {true, 2}}, 1},
		{"not online yet", 10, []rep{{false, 0}, {true, 0}}, 1},
		{"lag 0: this second only", 0, []rep{{true, 0}, {true, 1}}, 1},
	}
	const now = 1_000_000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Config{Logger: log.New(io.Discard, "", 0), Now: func() int64 { return now }})
			defer r.Close()
			r.mu.Lock()
			for _, x := range tc.reps {
				l := &replLink{}
				l.online.Store(x.online)
				l.ackTime.Store(now - x.ackAge)
				r.links[l] = struct{}{}
			}
			r.mu.Unlock()
			r.SetGoodLag(tc.lag)
			if got := r.GoodReplicas(); got != tc.want {
				t.Errorf("GoodReplicas() = %d, want %d", got, tc.want)
			}
		})
	}
}
