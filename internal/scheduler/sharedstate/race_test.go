package sharedstate

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestParallelSchedulersRace: 8 workers race on a small cluster. The first
// 8 plans are held until all 8 are computed, and binpack draws them all to
// the same almost-full node, so conflicts are certain; the rest run free.
// Afterwards: no node over-committed, every copy placed exactly once, gang
// jobs whole or absent, and conflicts counted and retried.
func TestParallelSchedulersRace(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) { raceOnce(t, seed) })
	}
}

func raceOnce(t *testing.T, seed int64) {
	// Every worker samples all 12 nodes, so all 8 first plans pick n00 and
	// exactly 7 conflict, whatever each worker's random draw.
	h := newHarness(t, func(core *scheduler.Config, c *Config, _ *scheduler.Env) {
		c.Workers, core.Seed, core.SampleSize = 8, seed, 16
	})
	const nodes = 12
	for i := range nodes {
		h.State.UpsertNode(schedtest.Node(fmt.Sprintf("n%02d", i), 4000, 8192))
	}
	// n00 is nearly full: the best binpack target for every first plan.
	filler := schedtest.Job("filler", 1, 3000, 64)
	h.State.UpsertAllocs(schedtest.Alloc(filler, 0, "n00"))

	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	type spec struct {
		id    string
		count int
		gang  bool
	}
	var jobs []spec
	// The first 8: one copy of 1000m each; only one fits on n00.
	for i := range 8 {
		jobs = append(jobs, spec{id: fmt.Sprintf("first%d", i), count: 1})
	}
	// Then a mix: incremental jobs and gangs, some gangs too big to fit.
	for i := range 40 {
		s := spec{id: fmt.Sprintf("job%02d", i), count: 1 + rng.IntN(6)}
		if i%5 == 0 {
			s.gang = true
		}
		jobs = append(jobs, s)
	}
	jobs = append(jobs, spec{id: "huge-gang", count: 60, gang: true}) // 60 cpus > 48 in the cluster
	for _, s := range jobs {
		j := h.AddJob(s.id, structs.JobTypeBatch, s.count, 50, 1000)
		j.Gang = s.gang
		h.State.UpsertJob(j)
	}

	// Hold the first 8 submissions until 8 plans are computed.
	var mu sync.Mutex
	held := 0
	gate := make(chan struct{})
	h.Planner.BeforeApply = func(*structs.Plan) {
		mu.Lock()
		held++
		n := held
		mu.Unlock()
		switch {
		case n < 8:
			<-gate
		case n == 8:
			close(gate)
		}
	}
	for _, s := range jobs[:8] {
		h.s.Enqueue(s.id, 50)
	}
	h.start()
	for _, s := range jobs[8:] {
		h.s.Enqueue(s.id, 50)
	}
	h.idle()
	// Re-enqueue everything once more: a converged cluster must stay put.
	for _, s := range jobs {
		h.s.Enqueue(s.id, 50)
	}
	h.idle()
	// Jobs given up after retries sit on backoff timers; fire them until
	// none is left (bounded).
	for round := 0; round < 20; round++ {
		ts := h.TakeTimers()
		if len(ts) == 0 {
			break
		}
		for _, ft := range ts {
			if !ft.Stopped {
				ft.F()
			}
		}
		h.idle()
	}

	if err := h.State.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	free := int64(nodes*4000 - 3000)
	for _, s := range jobs {
		for _, a := range h.State.LiveAllocs(s.id) {
			free -= a.Resources.CPU
		}
	}
	for _, s := range jobs {
		live := h.State.LiveAllocs(s.id)
		seen := map[int]bool{}
		for _, a := range live {
			if seen[a.Index] {
				t.Fatalf("job %s: copy %d placed twice", s.id, a.Index)
			}
			seen[a.Index] = true
		}
		switch {
		case s.gang && len(live) != 0 && len(live) != s.count:
			t.Fatalf("gang %s: %d of %d copies live", s.id, len(live), s.count)
		case s.id == "huge-gang" && len(live) != 0:
			t.Fatalf("huge gang placed %d copies", len(live))
		}
		if len(live) < s.count && h.State.Failure(s.id) == nil && s.id != "huge-gang" && free >= 1000 {
			// A copy may be unplaced only for lack of room, and then it
			// says so.
			t.Errorf("job %s: %d of %d placed, no failure recorded", s.id, len(live), s.count)
		}
	}
	if f := h.State.Failure("huge-gang"); f == nil || f.Unplaced != 60 {
		t.Fatalf("huge gang failure %+v", f)
	}
	st := h.s.Status()
	if st.Conflicts < 7 || st.Retries < 1 {
		t.Fatalf("conflicts %d, retries %d: want at least 7 and 1 (8 plans on one node)", st.Conflicts, st.Retries)
	}
	commits := 0
	for _, r := range h.Planner.Results() {
		if len(r.RejectedNodes) == 0 {
			commits++
		}
	}
	if want := float64(st.Conflicts) / float64(commits); st.ConflictFraction != want {
		t.Fatalf("conflict fraction %v, want %v", st.ConflictFraction, want)
	}
	if int(st.PlansSubmitted) != len(h.Planner.Plans()) {
		t.Fatalf("plans submitted %d, planner saw %d", st.PlansSubmitted, len(h.Planner.Plans()))
	}
	t.Logf("plans %d, conflicts %d, retries %d, placements %d, conflict fraction %.3f",
		st.PlansSubmitted, st.Conflicts, st.Retries, st.Placements, st.ConflictFraction)
}
