package sharedstate

import (
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is the shared schedtest harness running a shared-state
// Scheduler.
type harness struct {
	*schedtest.Harness
	s *Scheduler
}

// newHarness builds a scheduler with seed 1 and the default pools over a
// fresh harness; mod, when set, adjusts the settings and the env first.
func newHarness(t *testing.T, mod func(*scheduler.Config, *Config, *scheduler.Env)) *harness {
	t.Helper()
	h := &harness{Harness: schedtest.NewHarness(t)}
	core, cfg, env := scheduler.DefaultConfig(), DefaultConfig(), h.Env()
	core.Seed = 1
	if mod != nil {
		mod(&core, &cfg, &env)
	}
	s, err := New(core, cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

// workers sets the default pool's worker count.
func workers(n int) func(*scheduler.Config, *Config, *scheduler.Env) {
	return func(_ *scheduler.Config, c *Config, _ *scheduler.Env) { c.Workers = n }
}

func (h *harness) start() { h.Run(h.s) }

// idle waits until no job is queued or held, polling with a generous
// deadline.
func (h *harness) idle() {
	h.T.Helper()
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
	h.T.Fatal("scheduler not idle within 60s")
}
