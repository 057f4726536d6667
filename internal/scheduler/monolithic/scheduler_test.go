package monolithic

import (
	"context"
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

var epoch = time.Unix(1_800_000_000, 0)

// harness runs a Scheduler over a schedtest cluster and reports each
// processed job on a channel.
type harness struct {
	t         *testing.T
	st        *schedtest.State
	planner   *schedtest.Planner
	s         *Scheduler
	clock     *schedtest.Clock
	processed chan string
	timersMu  sync.Mutex
	timers    []*schedtest.FakeTimer
	cancel    context.CancelFunc
	done      chan struct{}
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, st: schedtest.NewState(), clock: schedtest.NewClock(epoch), processed: make(chan string, 1000)}
	h.st.Now = h.clock.Now
	h.planner = schedtest.NewPlanner(h.st)
	cfg.Now = h.clock.Now
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	h.s = New(cfg, h.st.SnapshotFunc(), h.planner)
	h.s.processed = func(id string) { h.processed <- id }
	h.s.retries.AfterFunc = func(d time.Duration, f func()) stopper {
		h.timersMu.Lock()
		defer h.timersMu.Unlock()
		ft := &schedtest.FakeTimer{D: d, F: f}
		h.timers = append(h.timers, ft)
		return ft
	}
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); h.s.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// next waits for the next processed job.
func (h *harness) next() string {
	h.t.Helper()
	select {
	case id := <-h.processed:
		return id
	case <-time.After(10 * time.Second):
		h.t.Fatal("no job processed within 10s")
		return ""
	}
}

func (h *harness) addJob(id string, count, priority int, cpu int64) *structs.Job {
	j := schedtest.Job(id, count, cpu, 128)
	j.Priority = priority
	h.st.UpsertJob(j)
	return j
}

func TestQueueOrder(t *testing.T) {
	h := newHarness(t, Config{})
	h.st.UpsertNode(schedtest.Node("n1", 100000, 100000))
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
		got = append(got, h.next())
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
	h := newHarness(t, Config{})
	h.st.UpsertNode(schedtest.Node("n1", 10000, 10000))
	h.addJob("web", 2, 50, 100)
	var once sync.Once
	h.planner.OnApply = func(p *structs.Plan, _ *structs.PlanResult) {
		once.Do(func() { h.s.Enqueue("web", 50) })
	}
	h.s.Enqueue("web", 50)
	h.start()
	if a, b := h.next(), h.next(); a != "web" || b != "web" {
		t.Fatalf("processed %s, %s", a, b)
	}
	if n := len(h.planner.Plans()); n != 1 {
		t.Fatalf("%d plans, want 1 (the second pass has nothing to do)", n)
	}
	if live := h.st.LiveAllocs("web"); len(live) != 2 {
		t.Fatalf("%d live allocations, want 2", len(live))
	}
}

// TestPreemptionRequeuesVictim: a high-priority job evicts a low-priority
// allocation, and the low-priority job is scheduled again (and, finding no
// room, records why).
func TestPreemptionRequeuesVictim(t *testing.T) {
	h := newHarness(t, Config{})
	h.st.UpsertNode(schedtest.Node("n1", 1000, 1024))
	h.addJob("batchy", 1, 10, 1000)
	h.s.Enqueue("batchy", 10)
	h.start()
	if id := h.next(); id != "batchy" {
		t.Fatalf("processed %s", id)
	}
	h.addJob("urgent", 1, 90, 600)
	h.s.Enqueue("urgent", 90)
	if a, b := h.next(), h.next(); a != "urgent" || b != "batchy" {
		t.Fatalf("processed %s then %s, want urgent then batchy", a, b)
	}
	if live := h.st.LiveAllocs("urgent"); len(live) != 1 {
		t.Fatalf("urgent not running: %v", live)
	}
	if live := h.st.LiveAllocs("batchy"); len(live) != 0 {
		t.Fatalf("batchy still live: %v", live)
	}
	f := h.st.Failure("batchy")
	if f == nil || !strings.Contains(f.Message, "cpu") {
		t.Fatalf("batchy failure %+v", f)
	}
	if err := h.st.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if st := h.s.Status(); st.Preemptions != 1 || st.Placements != 2 {
		t.Fatalf("status %+v", st)
	}
}

// TestRetryOnRejectedNodes: a plan the applier partly rejects is computed
// again on a fresh snapshot, up to MaxPlanRetries times.
func TestRetryOnRejectedNodes(t *testing.T) {
	tests := []struct {
		name       string
		rejections int // how many submissions are rejected
		maxRetries int
		wantPlans  int
		wantPlaced int
	}{
		{"one conflict then success", 1, 0, 2, 1},
		{"gives up after retries", 100, 2, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{MaxPlanRetries: tt.maxRetries})
			h.st.UpsertNode(schedtest.Node("n1", 1000, 1024))
			h.addJob("web", 1, 50, 100)
			var mu sync.Mutex
			left := tt.rejections
			h.planner.Reject = func(string) bool {
				mu.Lock()
				defer mu.Unlock()
				left--
				return left >= 0
			}
			h.s.Enqueue("web", 50)
			h.start()
			h.next()
			if n := len(h.planner.Plans()); n != tt.wantPlans {
				t.Fatalf("%d plans, want %d", n, tt.wantPlans)
			}
			if n := len(h.st.LiveAllocs("web")); n != tt.wantPlaced {
				t.Fatalf("%d placed, want %d", n, tt.wantPlaced)
			}
		})
	}
}

// TestRescheduleDelay: a failed copy is replaced only once its reschedule
// delay has passed; the scheduler sets a timer for that time itself.
func TestRescheduleDelay(t *testing.T) {
	h := newHarness(t, Config{})
	h.st.UpsertNode(schedtest.Node("n1", 1000, 1024))
	j := h.addJob("web", 1, 50, 100)
	j.Reschedule = structs.ReschedulePolicy{Attempts: 1, Delay: structs.Duration(30 * time.Second)}
	h.st.UpsertJob(j)
	h.s.Enqueue("web", 50)
	h.start()
	h.next()
	first := h.st.LiveAllocs("web")[0]
	if err := h.st.SetClientStatus(first.ID, structs.AllocClientFailed); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(10 * time.Second)
	h.s.Enqueue("web", 50)
	h.next()
	if n := len(h.st.LiveAllocs("web")); n != 0 {
		t.Fatalf("replaced before the delay: %d live", n)
	}
	h.timersMu.Lock()
	if len(h.timers) != 1 || h.timers[0].D != 20*time.Second {
		h.timersMu.Unlock()
		t.Fatalf("timers %+v, want one of 20s", h.timers)
	}
	fire := h.timers[0].F
	h.timersMu.Unlock()

	h.clock.Advance(20 * time.Second)
	fire()
	h.next()
	live := h.st.LiveAllocs("web")
	if len(live) != 1 || live[0].PreviousAllocation != first.ID || live[0].RescheduleCount != 1 {
		t.Fatalf("replacement %+v", live)
	}
	// The one attempt is used: a second failure is not replaced.
	if err := h.st.SetClientStatus(live[0].ID, structs.AllocClientFailed); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	h.s.Enqueue("web", 50)
	h.next()
	if n := len(h.st.LiveAllocs("web")); n != 0 {
		t.Fatalf("replaced beyond attempts: %d live", n)
	}
}

func TestMetricsAndStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, Config{Registerer: reg})
	// A second scheduler on the same registry (leadership regained) must
	// not fail to register.
	_ = New(Config{Registerer: reg}, h.st.SnapshotFunc(), h.planner)
	for i := range 3 {
		h.st.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 1000, 1024))
	}
	for i := range 4 {
		id := fmt.Sprintf("j%d", i)
		h.addJob(id, 2, 50, 300)
		h.s.Enqueue(id, 50)
	}
	// Each snapshot takes 2ms of (fake) time, so latency and busyness are
	// known exactly.
	snap := h.s.snapshot
	h.s.snapshot = func() (scheduler.State, error) {
		h.clock.Advance(2 * time.Millisecond)
		return snap()
	}
	h.start()
	for range 4 {
		h.next()
	}
	st := h.s.Status()
	if st.Evaluations != 4 || st.Placements != 8 || st.LatencyP50Ms != 2 || st.LatencyP99Ms != 2 || st.BusyFraction != 1 {
		t.Fatalf("status %+v", st)
	}
	h.clock.Advance(8 * time.Millisecond)
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

// TestSnapshotErrorRetriesLater: a failing snapshot does not stop the loop;
// the job is retried after a backoff.
func TestSnapshotErrorRetriesLater(t *testing.T) {
	h := newHarness(t, Config{})
	h.st.UpsertNode(schedtest.Node("n1", 1000, 1024))
	h.addJob("web", 1, 50, 100)
	snap := h.s.snapshot
	fail := true
	h.s.snapshot = func() (scheduler.State, error) {
		if fail {
			return nil, fmt.Errorf("store closed")
		}
		return snap()
	}
	h.s.Enqueue("web", 50)
	h.start()
	h.next()
	h.timersMu.Lock()
	if len(h.timers) != 1 || h.timers[0].D != errorBackoff {
		h.timersMu.Unlock()
		t.Fatalf("timers %+v", h.timers)
	}
	fire := h.timers[0].F
	h.timersMu.Unlock()
	fail = false // the loop is idle: no race with the snapshot function
	fire()
	h.next()
	if n := len(h.st.LiveAllocs("web")); n != 1 {
		t.Fatalf("%d live, want 1", n)
	}
}

// TestRunStopsTimers: pending timers are stopped when Run returns.
func TestRunStopsTimers(t *testing.T) {
	h := newHarness(t, Config{})
	h.s.retries.After("x", 1, epoch.Add(time.Hour))
	h.start()
	h.stop()
	h.timersMu.Lock()
	defer h.timersMu.Unlock()
	if len(h.timers) != 1 || !h.timers[0].Stopped {
		t.Fatalf("timer not stopped: %+v", h.timers)
	}
}
