package bench

import (
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// The stages of submit-to-placed, from the time stamps a delivered
// allocation carries (all taken on the server's clock, which the bench
// shares on one machine): the job's SubmitTime (the server took the
// registration), the allocation's CreateTime (the scheduler placed it),
// its ModifyTime (the plan applier checked the plan) and the watch
// frame's send time.
const (
	stageSubmit   = iota // bench submits -> server takes the job write
	stageSchedule        // job write -> scheduler places the copy (job commit queue, Raft proposal, scheduler queue and compute)
	stageCheck           // scheduler places -> plan checked (plan submission)
	stageCommit          // plan checked -> frame sent (plan entry through Raft, fsync, FSM, watch wake-up)
	stageDeliver         // frame sent -> node has it (network, decoding, the bench's own processing)
	numStages
)

var stageNames = [numStages]string{
	stageSubmit:   "submit -> job write taken",
	stageSchedule: "job write -> placed by scheduler",
	stageCheck:    "placed -> plan checked",
	stageCommit:   "plan checked -> frame sent",
	stageDeliver:  "frame sent -> node",
}

// stageSample is one copy's submit-to-placed time and its stages.
type stageSample struct {
	total  time.Duration
	stages [numStages]time.Duration
}

// splitStages returns the stages of one delivery, or ok=false when a time
// stamp is missing (an older server, or a copy without its job).
func splitStages(submitted int64, a *structs.Allocation, frameAt int64, at time.Time) (s stageSample, ok bool) {
	if a == nil || a.Job == nil || submitted == 0 || frameAt == 0 ||
		a.Job.SubmitTime == 0 || a.CreateTime == 0 || a.ModifyTime == 0 {
		return s, false
	}
	marks := [numStages + 1]int64{submitted, a.Job.SubmitTime, a.CreateTime, a.ModifyTime, frameAt, at.UnixNano()}
	for i := range numStages {
		s.stages[i] = time.Duration(marks[i+1] - marks[i])
	}
	s.total = time.Duration(marks[numStages] - marks[0])
	return s, true
}

// StageFigure is one stage of submit-to-placed over every copy, and its
// mean over the slowest 1% of copies (end to end: those at or above the
// p99 of submit-to-placed): where the tail's time goes.
type StageFigure struct {
	Stage      string  `json:"stage"`
	P50        float64 `json:"p50_ms"`
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
	TailMeanMs float64 `json:"tail_mean_ms"`
}

// stageFigures summarizes the samples (nil when there are none).
func stageFigures(samples []stageSample) []StageFigure {
	if len(samples) == 0 {
		return nil
	}
	s := slices.Clone(samples)
	slices.SortFunc(s, func(a, b stageSample) int { return int(a.total - b.total) })
	tail := s[int(0.99*float64(len(s)-1)):]
	out := make([]StageFigure, numStages)
	per := make([]time.Duration, len(s))
	for st := range numStages {
		for i, x := range s {
			per[i] = x.stages[st]
		}
		p := percentiles(per)
		var sum time.Duration
		for _, x := range tail {
			sum += x.stages[st]
		}
		out[st] = StageFigure{Stage: stageNames[st], P50: p.P50, P90: p.P90, P99: p.P99,
			TailMeanMs: float64((sum / time.Duration(len(tail))).Microseconds()) / 1000}
	}
	return out
}
