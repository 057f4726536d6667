package sharedstate

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
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
	t.Helper()
	h := &harness{t: t, st: schedtest.NewState(), clock: schedtest.NewClock(epoch), processed: make(chan string, 10000)}
	h.st.Now = h.clock.Now
	h.planner = schedtest.NewPlanner(h.st)
	cfg.Now = h.clock.Now
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	s, err := New(cfg, h.st.SnapshotFunc(), h.planner)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
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
	case <-time.After(30 * time.Second):
		h.t.Fatal("no job processed within 30s")
		return ""
	}
}

// idle waits until no job is queued or held, polling with a generous
// deadline.
func (h *harness) idle() {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		h.s.mu.Lock()
		busy := len(h.s.inflight) > 0 || len(h.s.again) > 0
		for _, p := range h.s.pools {
			busy = busy || p.queue.Len() > 0
		}
		h.s.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatal("scheduler not idle within 60s")
}

func (h *harness) addJob(id string, typ structs.JobType, count, priority int, cpu int64) *structs.Job {
	j := schedtest.Job(id, count, cpu, 64)
	j.Type = typ
	j.Priority = priority
	h.st.UpsertJob(j)
	return j
}
