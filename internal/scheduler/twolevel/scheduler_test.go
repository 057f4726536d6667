package twolevel

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTwoLevel builds the architecture over h (rounds at once: no batching
// timer to fire by hand), after mod.
func newTwoLevel(t *testing.T, h *schedtest.Harness, mod func(*Config)) *Scheduler {
	t.Helper()
	core := scheduler.DefaultConfig()
	core.Seed = 1
	cfg := DefaultConfig()
	cfg.AllocationInterval = 0
	// Idle frameworks return their offers at once (the harness's timers
	// fire only by hand; TestLinger fires one).
	cfg.Service.Linger, cfg.Batch.Linger = 0, 0
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(core, cfg, h.Env())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// invariants checks the allocator's books and that no node is
// over-committed.
func invariants(t *testing.T, s *Scheduler, h *schedtest.Harness) {
	t.Helper()
	s.mu.Lock()
	var err error
	if s.alloc != nil {
		err = s.alloc.checkInvariants()
	}
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("allocator: %v", err)
	}
	if err := h.State.CheckInvariants(); err != nil {
		t.Fatalf("state: %v", err)
	}
}

func batchJob(h *schedtest.Harness, id string, count int, cpu int64) *structs.Job {
	return h.AddJob(id, structs.JobTypeBatch, count, 50, cpu)
}

// TestBuiltinsPlaceOnOffers: the built-in frameworks place service and
// batch jobs on the offers they receive, through the core's placement,
// then return their offers and suppress.
func TestBuiltinsPlaceOnOffers(t *testing.T) {
	h := schedtest.NewHarness(t)
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		h.State.UpsertNode(schedtest.Node(id, 1000, 1024))
	}
	h.AddJob("web", structs.JobTypeService, 3, 50, 300)
	batchJob(h, "etl", 2, 500)
	var plans []*structs.Plan
	h.Planner.OnApply = func(p *structs.Plan, _ *structs.PlanResult) { plans = append(plans, p) }
	s := newTwoLevel(t, h, nil)
	h.Run(s)
	s.Enqueue("web", 50)
	s.Enqueue("etl", 50)
	h.WaitUntil("every copy placed", func() bool {
		return len(h.State.LiveAllocs("web")) == 3 && len(h.State.LiveAllocs("etl")) == 2
	})
	h.WaitUntil("offers returned", func() bool { return s.Status().OffersOutstanding == 0 })
	invariants(t, s, h)
	st := s.Status()
	if st.Architecture != Architecture || st.Placements != 5 || st.OffersSent == 0 {
		t.Fatalf("status %+v", st)
	}
	for _, f := range st.Frameworks {
		if !f.BuiltIn || f.OffersSent == 0 || f.Accepted == 0 || !f.Suppressed {
			t.Errorf("framework %+v: want offers sent and accepted, suppressed once idle", f)
		}
	}
	for _, p := range plans {
		if len(p.Preemptions) > 0 {
			t.Errorf("plan for %s preempts: two-level frameworks decide only over their offers", p.JobID)
		}
	}
}

// TestJobWaitsForOffers: copies that fit no offer wait; `job status`
// explains it; a new node's offer places them.
func TestJobWaitsForOffers(t *testing.T) {
	h := schedtest.NewHarness(t)
	h.State.UpsertNode(schedtest.Node("n1", 1000, 1024))
	batchJob(h, "big", 2, 600)
	s := newTwoLevel(t, h, nil)
	h.Run(s)
	s.Enqueue("big", 50)
	h.WaitUntil("one copy placed, one waiting", func() bool {
		st := s.Status()
		return len(h.State.LiveAllocs("big")) == 1 && st.JobsWaiting == 1 && st.OffersOutstanding == 0
	})
	// The rest of n1 was declined with a filter: batch holds nothing.
	why := s.WhyPending("big")
	if want := "waiting for offers: framework batch holds 0 of 0 offers; dominant share 0.60; on the offered nodes: 1 node excluded by cpu"; why != want {
		t.Fatalf("WhyPending = %q, want %q", why, want)
	}
	// Nothing changes: the declined room (filtered) is not offered again,
	// so the waiting job does not spin (it did: the framework revived
	// itself for its waiting jobs and cleared its own filters).
	sent := s.Status().OffersSent
	for range 20 {
		s.poke()
		time.Sleep(5 * time.Millisecond)
	}
	if now := s.Status().OffersSent; now != sent {
		t.Fatalf("%d more offers sent while nothing changed", now-sent)
	}
	h.WaitUntil("the failure stored", func() bool { return h.State.Failure("big") != nil })
	if f := h.State.Failure("big"); f.Message != "waiting for offers from framework batch" || f.Unplaced != 1 {
		t.Fatalf("stored failure %+v", f)
	}
	h.State.UpsertNode(schedtest.Node("n2", 1000, 1024))
	s.Enqueue("big", 50) // as the server does for blocked jobs when a node registers
	h.WaitUntil("both copies placed", func() bool { return len(h.State.LiveAllocs("big")) == 2 })
	h.WaitUntil("the failure cleared", func() bool { return h.State.Failure("big") == nil })
	if why := s.WhyPending("big"); why != "" {
		t.Fatalf("WhyPending after placement = %q", why)
	}
	invariants(t, s, h)
}

// TestOfferHoarding: a framework that takes long to decide holds its
// offers meanwhile, and the other framework waits for them (Omega's
// criticism of two-level scheduling).
func TestOfferHoarding(t *testing.T) {
	h := schedtest.NewHarness(t)
	h.State.UpsertNode(schedtest.Node("n1", 2000, 2048))
	h.AddJob("web", structs.JobTypeService, 1, 50, 500)
	batchJob(h, "etl", 1, 500)
	s := newTwoLevel(t, h, func(c *Config) { c.Service.DecisionDelay = 10 * time.Second })
	h.Run(s)
	s.Enqueue("web", 50)
	h.WaitUntil("service holds the node's offer", func() bool {
		for _, f := range s.Frameworks() {
			if f.Name == structs.FrameworkService && f.OffersHeld == 1 {
				return true
			}
		}
		return false
	})
	s.Enqueue("etl", 50)
	h.WaitUntil("batch waits", func() bool { return strings.Contains(s.WhyPending("etl"), "framework batch holds 0 of 1 offers") })
	if n := len(h.State.LiveAllocs("etl")); n != 0 {
		t.Fatalf("batch placed %d copies while service held the only offer", n)
	}
	// The service framework's decision ends: it places, returns the
	// rest, and batch gets it.
	fireTimer(t, h, 10*time.Second)
	h.WaitUntil("both placed", func() bool {
		return len(h.State.LiveAllocs("web")) == 1 && len(h.State.LiveAllocs("etl")) == 1
	})
	invariants(t, s, h)
}

// fireTimer fires the first pending timer of duration d.
func fireTimer(t *testing.T, h *schedtest.Harness, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, ft := range h.Timers() {
			if ft.D == d && !ft.Stopped {
				ft.Stopped = true
				ft.F()
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no timer of %s", d)
}

// TestRunStopsCleanly: Run returns when its context ends, with nothing
// left running (goleak checks at exit), and a new run starts afresh.
func TestRunStopsCleanly(t *testing.T) {
	h := schedtest.NewHarness(t)
	h.State.UpsertNode(schedtest.Node("n1", 1000, 1024))
	batchJob(h, "a", 1, 100)
	s := newTwoLevel(t, h, nil)
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		s.Enqueue("a", 50)
		h.WaitUntil("placed", func() bool { return len(h.State.LiveAllocs("a")) == 1 })
		cancel()
		<-done
	}
}

// TestLinger: an idle framework keeps its offers for Linger, so a job
// arriving meanwhile is placed on them without a new round of offers;
// then it returns them and suppresses offers.
func TestLinger(t *testing.T) {
	h := schedtest.NewHarness(t)
	h.State.UpsertNode(schedtest.Node("n1", 2000, 2048))
	batchJob(h, "a", 1, 100)
	batchJob(h, "b", 1, 100)
	s := newTwoLevel(t, h, func(c *Config) { c.Batch.Linger = time.Minute })
	h.Run(s)
	s.Enqueue("a", 50)
	h.WaitUntil("a placed", func() bool { return len(h.State.LiveAllocs("a")) == 1 })
	sent := s.Status().OffersSent
	if held := frameworkNamed(s, structs.FrameworkBatch).OffersHeld; held != 1 {
		t.Fatalf("batch holds %d offers while it lingers, want 1", held)
	}
	s.Enqueue("b", 50)
	h.WaitUntil("b placed", func() bool { return len(h.State.LiveAllocs("b")) == 1 })
	if now := s.Status().OffersSent; now != sent {
		t.Fatalf("%d offers sent for b, want none: it used the offer held", now-sent)
	}
	fireTimer(t, h, time.Minute)
	h.WaitUntil("the offer returned", func() bool {
		f := frameworkNamed(s, structs.FrameworkBatch)
		return f.OffersHeld == 0 && f.Suppressed
	})
	invariants(t, s, h)
}
