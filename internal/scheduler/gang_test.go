package scheduler_test

import (
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
)

// TestGangPlacement: a gang job's plan is all-or-nothing; a gang that does
// not fit entirely places nothing, preempts nobody, and counts every copy
// of the pass as unplaced. An incremental job of the same shape places
// what fits.
func TestGangPlacement(t *testing.T) {
	tests := []struct {
		name         string
		gang         bool
		count        int
		wantPlaced   int
		wantUnplaced int
		wantMessage  string
	}{
		{"gang that fits", true, 4, 4, 0, ""},
		{"gang too big", true, 5, 0, 5, "gang of 5 not placed: "},
		{"incremental too big", false, 5, 4, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := schedtest.NewState()
			st.UpsertNode(schedtest.Node("n1", 1000, 4096))
			st.UpsertNode(schedtest.Node("n2", 1000, 4096))
			// A low-priority job a non-gang placement could preempt.
			low := schedtest.Job("low", 1, 100, 64)
			low.Priority = 10
			st.UpsertJob(low)
			st.UpsertAllocs(schedtest.Alloc(low, 0, "n1"))
			j := schedtest.Job("g", tt.count, 450, 64)
			j.Priority = 90
			j.Gang = tt.gang
			st.UpsertJob(j)
			res, err := scheduler.ComputePlan(scheduler.Options{Rand: rng(1), Now: fixedNow}, st.Snapshot(), "g")
			if err != nil {
				t.Fatal(err)
			}
			if res.Plan.AllOrNothing != tt.gang {
				t.Fatalf("AllOrNothing %v, want %v", res.Plan.AllOrNothing, tt.gang)
			}
			if len(res.Plan.Placements) != tt.wantPlaced || res.Placed != tt.wantPlaced || res.Unplaced != tt.wantUnplaced {
				t.Fatalf("placements %d, placed %d, unplaced %d; want %d, %d, %d",
					len(res.Plan.Placements), res.Placed, res.Unplaced, tt.wantPlaced, tt.wantPlaced, tt.wantUnplaced)
			}
			if tt.gang && tt.wantPlaced == 0 && (len(res.Plan.Preemptions) != 0 || len(res.Victims) != 0) {
				t.Fatalf("unplaced gang preempts %v", res.Plan.Preemptions)
			}
			if tt.wantMessage != "" {
				if f := res.Plan.Failure; f == nil || !strings.HasPrefix(f.Message, tt.wantMessage) || f.Unplaced != tt.wantUnplaced {
					t.Fatalf("failure %+v, want message starting %q", f, tt.wantMessage)
				}
			}
		})
	}
}
