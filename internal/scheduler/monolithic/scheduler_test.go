package monolithic

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is the shared schedtest harness running a monolithic Scheduler.
type harness struct {
	*schedtest.Harness
	s *Scheduler
}

// newHarness builds a scheduler with seed 1 over a fresh harness; mod,
// when set, adjusts the core settings and the env first.
func newHarness(t *testing.T, mod func(*scheduler.Config, *scheduler.Env)) *harness {
	t.Helper()
	h := &harness{Harness: schedtest.NewHarness(t)}
	core, env := scheduler.DefaultConfig(), h.Env()
	core.Seed = 1
	if mod != nil {
		mod(&core, &env)
	}
	s, err := New(core, DefaultConfig(), env)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

func (h *harness) start() { h.Run(h.s) }

func (h *harness) addJob(id string, count, priority int, cpu int64) *structs.Job {
	return h.AddJob(id, structs.JobTypeService, count, priority, cpu)
}

func TestQueueOrder(t *testing.T) {
	h := newHarness(t, nil)
	h.State.UpsertNode(schedtest.Node("n1", 100000, 100000))
	jobs := []struct {
		id   string
		prio int
	}{{"low-1", 10}, {"mid-1", 50}, {"low-2", 10}, {"high", 90}, {"mid-2", 50}}
	for _, j := range jobs {
		h.addJob(j.id, 1, j.prio, 100)
		h.s.Enqueue(j.id, j.prio)
	}
	// Enqueueing a queued job again does not move it or add it twice.
	h.s.Enqueue("low-1", 10)
	if d := h.s.Status().QueueDepth; d != 5 {
		t.Fatalf("queue depth %d, want 5", d)
	}
	h.start()
	var got []string
	for range jobs {
		got = append(got, h.Next())
	}
	want := []string{"high", "mid-1", "mid-2", "low-1", "low-2"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	st := h.s.Status()
	if st.Evaluations != 5 || st.Placements != 5 || st.QueueDepth != 0 || st.Architecture != "monolithic" {
		t.Fatalf("status %+v", st)
	}
}

// TestEnqueueWhileProcessing: a job enqueued while it is being processed is
// processed again afterwards.
func TestEnqueueWhileProcessing(t *testing.T) {
	h := newHarness(t, nil)
	h.State.UpsertNode(schedtest.Node("n1", 10000, 10000))
	h.addJob("web", 2, 50, 100)
	var once sync.Once
	h.Planner.OnApply = func(p *structs.Plan, _ *structs.PlanResult) {
		once.Do(func() { h.s.Enqueue("web", 50) })
	}
	h.s.Enqueue("web", 50)
	h.start()
	if a, b := h.Next(), h.Next(); a != "web" || b != "web" {
		t.Fatalf("processed %s, %s", a, b)
	}
	if n := len(h.Planner.Plans()); n != 1 {
		t.Fatalf("%d plans, want 1 (the second pass has nothing to do)", n)
	}
	if live := h.State.LiveAllocs("web"); len(live) != 2 {
		t.Fatalf("%d live allocations, want 2", len(live))
	}
}

// TestPreemptionRequeuesVictim: a high-priority job evicts a low-priority
// allocation, and the low-priority job is scheduled again (and, finding no
// room, records why).
func TestPreemptionRequeuesVictim(t *testing.T) {
	h := newHarness(t, nil)
	h.State.UpsertNode(schedtest.Node("n1", 1000, 1024))
	h.addJob("batchy", 1, 10, 1000)
	h.s.Enqueue("batchy", 10)
	h.start()
	if id := h.Next(); id != "batchy" {
		t.Fatalf("processed %s", id)
	}
	h.addJob("urgent", 1, 90, 600)
	h.s.Enqueue("urgent", 90)
	if a, b := h.Next(), h.Next(); a != "urgent" || b != "batchy" {
		t.Fatalf("processed %s then %s, want urgent then batchy", a, b)
	}
	if live := h.State.LiveAllocs("urgent"); len(live) != 1 {
		t.Fatalf("urgent not running: %v", live)
	}
	if live := h.State.LiveAllocs("batchy"); len(live) != 0 {
		t.Fatalf("batchy still live: %v", live)
	}
	f := h.State.Failure("batchy")
	if f == nil || !strings.Contains(f.Message, "cpu") {
		t.Fatalf("batchy failure %+v", f)
	}
	if err := h.State.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if st := h.s.Status(); st.Preemptions != 1 || st.Placements != 2 {
		t.Fatalf("status %+v", st)
	}
}

// TestRescheduleDelay: a failed copy is replaced only once its reschedule
// delay has passed; the scheduler sets a timer for that time itself.
func TestRescheduleDelay(t *testing.T) {
	h := newHarness(t, nil)
	h.State.UpsertNode(schedtest.Node("n1", 1000, 1024))
	j := h.addJob("web", 1, 50, 100)
	j.Reschedule = structs.ReschedulePolicy{Attempts: 1, Delay: structs.Duration(30 * time.Second)}
	h.State.UpsertJob(j)
	h.s.Enqueue("web", 50)
	h.start()
	h.Next()
	first := h.State.LiveAllocs("web")[0]
	if err := h.State.SetClientStatus(first.ID, structs.AllocClientFailed); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(10 * time.Second)
	h.s.Enqueue("web", 50)
	h.Next()
	if n := len(h.State.LiveAllocs("web")); n != 0 {
		t.Fatalf("replaced before the delay: %d live", n)
	}
	timers := h.Timers()
	if len(timers) != 1 || timers[0].D != 20*time.Second {
		t.Fatalf("timers %+v, want one of 20s", timers)
	}
	fire := timers[0].F

	h.Clock.Advance(20 * time.Second)
	fire()
	h.Next()
	live := h.State.LiveAllocs("web")
	if len(live) != 1 || live[0].PreviousAllocation != first.ID || live[0].RescheduleCount != 1 {
		t.Fatalf("replacement %+v", live)
	}
	// The one attempt is used: a second failure is not replaced.
	if err := h.State.SetClientStatus(live[0].ID, structs.AllocClientFailed); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(time.Minute)
	h.s.Enqueue("web", 50)
	h.Next()
	if n := len(h.State.LiveAllocs("web")); n != 0 {
		t.Fatalf("replaced beyond attempts: %d live", n)
	}
}

func TestMetricsAndStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Each snapshot takes 2ms of (fake) time, so latency and busyness are
	// known exactly.
	h := newHarness(t, func(_ *scheduler.Config, env *scheduler.Env) { env.Registerer = reg })
	h.Snapshot = func() (scheduler.State, error) {
		h.Clock.Advance(2 * time.Millisecond)
		return h.State.Snapshot(), nil
	}
	// A second scheduler on the same registry (leadership regained) must
	// not fail to register.
	if _, err := New(scheduler.DefaultConfig(), DefaultConfig(), scheduler.Env{Snapshot: h.State.SnapshotFunc(), Planner: h.Planner, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		h.State.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 1000, 1024))
	}
	for i := range 4 {
		id := fmt.Sprintf("j%d", i)
		h.addJob(id, 2, 50, 300)
		h.s.Enqueue(id, 50)
	}
	h.start()
	for range 4 {
		h.Next()
	}
	st := h.s.Status()
	if st.Evaluations != 4 || st.Placements != 8 || st.LatencyP50Ms != 2 || st.LatencyP99Ms != 2 || st.BusyFraction != 1 {
		t.Fatalf("status %+v", st)
	}
	h.Clock.Advance(8 * time.Millisecond)
	if bf := h.s.Status().BusyFraction; bf != 0.5 {
		t.Fatalf("busy fraction %v, want 0.5", bf)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			got[mf.GetName()] = m.Counter.GetValue()
		case m.Gauge != nil:
			got[mf.GetName()] = m.Gauge.GetValue()
		case m.Histogram != nil:
			got[mf.GetName()] = float64(m.Histogram.GetSampleCount())
		}
	}
	want := map[string]float64{
		"gantry_scheduler_placements_total":  8,
		"gantry_scheduler_preemptions_total": 0,
		"gantry_scheduler_evaluations_total": 4,
		"gantry_scheduler_queue_depth":       0,
		"gantry_scheduler_latency_seconds":   4,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// TestRunStopsTimers: pending timers are stopped when Run returns.
func TestRunStopsTimers(t *testing.T) {
	h := newHarness(t, nil)
	h.s.retries.After("x", 1, schedtest.Epoch.Add(time.Hour))
	h.start()
	h.Stop()
	if timers := h.Timers(); len(timers) != 1 || !timers[0].Stopped {
		t.Fatalf("timer not stopped: %+v", timers)
	}
}
