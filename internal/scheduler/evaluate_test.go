package scheduler_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// recordingHost is a scheduler.Host that records every call, as a third
// architecture (or the simulator) would receive them.
type recordingHost struct {
	mu    sync.Mutex
	calls []string
}

func (h *recordingHost) add(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, fmt.Sprintf(format, args...))
}

func (h *recordingHost) Enqueue(jobID string, priority int) { h.add("enqueue %s %d", jobID, priority) }
func (h *recordingHost) EnqueueAt(jobID string, priority int, at time.Time) {
	h.add("enqueue %s %d in %s", jobID, priority, at.Sub(epoch))
}
func (h *recordingHost) Committed(jobID string, placed int) { h.add("committed %s %d", jobID, placed) }

func (h *recordingHost) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// TestEvaluatorReportsToHost: without any architecture around it, the
// evaluation loop tells its host what it committed, which evicted jobs to
// evaluate again and when to look at a job whose reschedule delay runs.
func TestEvaluatorReportsToHost(t *testing.T) {
	tests := []struct {
		name  string
		setup func(st *schedtest.State)
		job   string
		want  []string
		check func(t *testing.T, ev scheduler.Evaluation)
	}{
		{
			name:  "placed",
			setup: func(st *schedtest.State) { st.UpsertJob(schedtest.Job("web", 2, 100, 64)) },
			job:   "web",
			want:  []string{"committed web 2"},
			check: func(t *testing.T, ev scheduler.Evaluation) {
				if ev.Outcome != scheduler.OutcomeDone || ev.Plans != 1 || ev.Job == nil || ev.Err != nil {
					t.Fatalf("evaluation %+v", ev)
				}
			},
		},
		{
			name: "preemption requeues the victim's job",
			setup: func(st *schedtest.State) {
				low := schedtest.Job("low", 1, 1000, 64)
				low.Priority = 10
				st.UpsertJob(low)
				st.UpsertAllocs(schedtest.Alloc(low, 0, "n1"))
				high := schedtest.Job("high", 1, 600, 64)
				high.Priority = 90
				st.UpsertJob(high)
			},
			job:  "high",
			want: []string{"committed high 1", "enqueue low 10"},
			check: func(t *testing.T, ev scheduler.Evaluation) {
				if ev.Preempted != 1 || ev.Priority != 90 {
					t.Fatalf("evaluation %+v: want one preemption at priority 90", ev)
				}
			},
		},
		{
			name: "reschedule delay",
			setup: func(st *schedtest.State) {
				j := schedtest.Job("web", 1, 100, 64)
				j.Reschedule = structs.ReschedulePolicy{Attempts: 1, Delay: structs.Duration(30 * time.Second)}
				st.UpsertJob(j)
				a := schedtest.Alloc(j, 0, "n1")
				a.ClientStatus, a.ModifyTime = structs.AllocClientFailed, epoch.UnixNano()
				st.UpsertAllocs(a)
			},
			job:  "web",
			want: []string{"enqueue web 50 in 30s"},
			check: func(t *testing.T, ev scheduler.Evaluation) {
				if ev.Plans != 0 || ev.Outcome != scheduler.OutcomeDone {
					t.Fatalf("evaluation %+v: want nothing submitted before the delay", ev)
				}
			},
		},
		{
			name:  "job gone",
			setup: func(*schedtest.State) {},
			job:   "nope",
			want:  nil,
			check: func(t *testing.T, ev scheduler.Evaluation) {
				if ev.Job != nil || ev.Priority != 50 || ev.Outcome != scheduler.OutcomeDone {
					t.Fatalf("evaluation %+v", ev)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := schedtest.NewState()
			st.UpsertNode(schedtest.Node("n1", 1000, 1024))
			tt.setup(st)
			host := &recordingHost{}
			env := scheduler.Env{Snapshot: st.SnapshotFunc(), Planner: schedtest.NewPlanner(st), Now: fixedNow}
			e, err := scheduler.NewEvaluator(scheduler.DefaultConfig(), env, host, 1)
			if err != nil {
				t.Fatal(err)
			}
			ev := e.Evaluate(t.Context(), scheduler.Options{Rand: rng(1), Now: fixedNow}, tt.job, 50)
			e.Wait()
			if got := host.got(); !slices.Equal(got, tt.want) {
				t.Fatalf("host calls %q, want %q", got, tt.want)
			}
			tt.check(t, ev)
			if err := st.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestEvaluatorShared: goroutines with their own Options share one
// evaluator; every job is placed once and nothing over-commits (run with
// -race).
func TestEvaluatorShared(t *testing.T) {
	st := schedtest.NewState()
	for i := range 4 {
		st.UpsertNode(schedtest.Node(fmt.Sprintf("n%d", i), 2000, 4096))
	}
	for i := range 16 {
		st.UpsertJob(schedtest.Job(fmt.Sprintf("j%02d", i), 3, 150, 64))
	}
	host := &recordingHost{}
	env := scheduler.Env{Snapshot: st.SnapshotFunc(), Planner: schedtest.NewPlanner(st), Now: fixedNow}
	e, err := scheduler.NewEvaluator(scheduler.DefaultConfig(), env, host, 4)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		opts := scheduler.Options{Rand: rng(uint64(w + 1)), Now: fixedNow, Cache: scheduler.NewFeasibilityCache(0)}
		wg.Go(func() {
			for i := w; i < 16; i += 4 {
				if ev := e.Evaluate(t.Context(), opts, fmt.Sprintf("j%02d", i), 50); ev.Outcome != scheduler.OutcomeDone {
					t.Errorf("job %s: %+v", ev.JobID, ev)
				}
			}
		})
	}
	wg.Wait()
	e.Wait()
	for i := range 16 {
		if n := len(st.LiveAllocs(fmt.Sprintf("j%02d", i))); n != 3 {
			t.Errorf("job j%02d: %d live, want 3", i, n)
		}
	}
	if err := st.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestNewEvaluatorRefusesIncompleteParts(t *testing.T) {
	st := schedtest.NewState()
	full := scheduler.Env{Snapshot: st.SnapshotFunc(), Planner: schedtest.NewPlanner(st)}
	host := &recordingHost{}
	bad := scheduler.DefaultConfig()
	bad.SampleSize = 0
	tests := []struct {
		name     string
		cfg      scheduler.Config
		env      scheduler.Env
		host     scheduler.Host
		inflight int
		want     error
	}{
		{"no snapshot source", scheduler.DefaultConfig(), scheduler.Env{Planner: full.Planner}, host, 1, scheduler.ErrIncompleteEnv},
		{"no planner", scheduler.DefaultConfig(), scheduler.Env{Snapshot: full.Snapshot}, host, 1, scheduler.ErrIncompleteEnv},
		{"no host", scheduler.DefaultConfig(), full, nil, 1, scheduler.ErrInvalidConfig},
		{"no plans in flight", scheduler.DefaultConfig(), full, host, 0, scheduler.ErrInvalidConfig},
		{"bad config", bad, full, host, 1, scheduler.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := scheduler.NewEvaluator(tt.cfg, tt.env, tt.host, tt.inflight); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}
