package bench

import (
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestSplitStages(t *testing.T) {
	ms := func(n int64) int64 { return 1_000_000_000 + n*int64(time.Millisecond) }
	alloc := func(submit, create, modify int64) *structs.Allocation {
		return &structs.Allocation{Job: &structs.Job{SubmitTime: submit}, CreateTime: create, ModifyTime: modify}
	}
	for _, tc := range []struct {
		name      string
		submitted int64
		a         *structs.Allocation
		frame     int64
		at        int64
		ok        bool
		want      [numStages]time.Duration
	}{
		{"every stamp", ms(0), alloc(ms(1), ms(3), ms(4)), ms(10), ms(11), true,
			[numStages]time.Duration{time.Millisecond, 2 * time.Millisecond, time.Millisecond, 6 * time.Millisecond, time.Millisecond}},
		{"no frame time (older server)", ms(0), alloc(ms(1), ms(3), ms(4)), 0, ms(11), false, [numStages]time.Duration{}},
		{"no job", ms(0), &structs.Allocation{CreateTime: ms(3), ModifyTime: ms(4)}, ms(10), ms(11), false, [numStages]time.Duration{}},
		{"not submitted yet", 0, alloc(ms(1), ms(3), ms(4)), ms(10), ms(11), false, [numStages]time.Duration{}},
		{"no create time", ms(0), alloc(ms(1), 0, ms(4)), ms(10), ms(11), false, [numStages]time.Duration{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := splitStages(tc.submitted, tc.a, tc.frame, time.Unix(0, tc.at))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if s.stages != tc.want {
				t.Fatalf("stages %v, want %v", s.stages, tc.want)
			}
			if s.total != time.Duration(tc.at-tc.submitted) {
				t.Fatalf("total %v, want %v", s.total, time.Duration(tc.at-tc.submitted))
			}
		})
	}
}

// TestStageFigures: percentiles per stage, and the slowest 1% of copies
// (end to end) show which stage their time went to.
func TestStageFigures(t *testing.T) {
	if stageFigures(nil) != nil {
		t.Fatal("figures without samples")
	}
	var samples []stageSample
	for i := range 200 {
		var s stageSample
		for st := range numStages {
			s.stages[st] = time.Millisecond
		}
		if i >= 197 { // the copies at and above p99 wait 100 ms to commit
			s.stages[stageCommit] = 100 * time.Millisecond
		}
		for _, d := range s.stages {
			s.total += d
		}
		samples = append(samples, s)
	}
	figs := stageFigures(samples)
	if len(figs) != numStages {
		t.Fatalf("%d figures, want %d", len(figs), numStages)
	}
	for st, f := range figs {
		if f.Stage != stageNames[st] || f.P50 != 1 {
			t.Errorf("stage %d: %+v, want %q with p50 1 ms", st, f, stageNames[st])
		}
		want := 1.0
		if st == stageCommit {
			want = 100
		}
		if f.TailMeanMs != want {
			t.Errorf("stage %q: slowest 1%% mean %.2f ms, want %.2f", f.Stage, f.TailMeanMs, want)
		}
	}
}
