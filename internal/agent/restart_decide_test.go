package agent

import (
	"slices"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestDecideRestart: the restart policy as a pure function of the earlier
// restarts and the clock.
func TestDecideRestart(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ago := func(d ...time.Duration) []int64 {
		var out []int64
		for _, x := range d {
			out = append(out, now.Add(-x).UnixNano())
		}
		return out
	}
	exp := structs.RestartPolicy{Attempts: 5, Interval: structs.Duration(time.Hour), Delay: structs.Duration(15 * time.Second),
		DelayFunction: structs.DelayExponential, MaxDelay: structs.Duration(time.Minute)}
	tests := []struct {
		name    string
		p       structs.RestartPolicy
		times   []int64
		restart bool
		attempt int
		wait    time.Duration
		kept    int
	}{
		{"first", exp, nil, true, 1, 15 * time.Second, 0},
		{"third", exp, ago(time.Minute, 2*time.Minute), true, 3, time.Minute, 2},
		{"capped", exp, ago(1, 2, 3), true, 4, time.Minute, 3},
		{"old restarts leave the window", exp, ago(2*time.Hour, 3*time.Hour, time.Minute), true, 2, 30 * time.Second, 1},
		{"exhausted", exp, ago(1, 2, 3, 4, 5), false, 0, 0, 5},
		{"constant", structs.RestartPolicy{Attempts: 2, Interval: structs.Duration(time.Hour), Delay: structs.Duration(time.Second)},
			ago(time.Minute), true, 2, time.Second, 1},
		{"no interval counts every restart", structs.RestartPolicy{Attempts: 2, Delay: structs.Duration(time.Second)},
			ago(1000*time.Hour, 2000*time.Hour), false, 0, 0, 2},
		{"no attempts", structs.RestartPolicy{Delay: structs.Duration(time.Second)}, nil, false, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decideRestart(tc.p, slices.Clone(tc.times), now)
			if d.restart != tc.restart || d.attempt != tc.attempt || d.wait != tc.wait || len(d.keep) != tc.kept {
				t.Fatalf("got restart %v attempt %d wait %v keeping %d; want %v %d %v %d",
					d.restart, d.attempt, d.wait, len(d.keep), tc.restart, tc.attempt, tc.wait, tc.kept)
			}
		})
	}
}
