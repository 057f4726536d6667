// Package monolithic is gantry's monolithic scheduling architecture: one
// loop on the Raft leader with the global view of all pending work, a
// priority queue of jobs, and the core's evaluation loop
// (scheduler.Evaluator) deciding each job.
package monolithic

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/jobqueue"
	"github.com/gantry-project/gantry/internal/scheduler/schedstat"
	"github.com/gantry-project/gantry/internal/structs"
)

// Architecture is the name shown by `gantry scheduler status` and taken by
// `gantry server --scheduler`.
const Architecture = "monolithic"

// DefaultMaxInflightPlans bounds the plans a pipelined planner has checked
// whose commit the loop has not seen yet.
const DefaultMaxInflightPlans = 64

// Config holds what the monolithic architecture itself owns: its
// concurrency. The evaluation loop's settings are the core's
// (scheduler.Config). Start from DefaultConfig.
type Config struct {
	// MaxInflightPlans bounds the plans whose commit the loop does not
	// wait for, with a pipelined planner (>= 1).
	MaxInflightPlans int
}

// DefaultConfig returns the monolithic loop's standard settings.
func DefaultConfig() Config { return Config{MaxInflightPlans: DefaultMaxInflightPlans} }

// Validate reports every field that breaks a rule; it changes nothing.
func (c Config) Validate() error {
	if c.MaxInflightPlans < 1 {
		return scheduler.FieldErrorf("max_inflight_plans", "must be >= 1 (got %d)", c.MaxInflightPlans)
	}
	return nil
}

// Scheduler is the single scheduling loop. Enqueue and Status may be called
// from any goroutine; Run runs the loop on the caller's goroutine and must
// not be called twice at once.
type Scheduler struct {
	env  scheduler.Env
	eval *scheduler.Evaluator
	opts scheduler.Options // the loop's random source and cache: its goroutine's alone
	m    *metrics
	// retries re-enqueues jobs later.
	retries *jobqueue.Retries

	wake chan struct{} // buffered(1): the queue may have work

	mu          sync.Mutex // guards everything below
	queue       *jobqueue.Queue
	started     time.Time
	busy        time.Duration
	placements  uint64
	preemptions uint64
	evaluations uint64
	lat         schedstat.Window
}

// New validates the settings and builds a scheduler over env; call Run to
// start it.
func New(core scheduler.Config, cfg Config, env scheduler.Env) (*Scheduler, error) {
	if err := core.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", scheduler.ErrInvalidConfig, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", scheduler.ErrInvalidConfig, err)
	}
	env, err := env.Complete()
	if err != nil {
		return nil, err
	}
	env.Logger = env.Logger.With("component", "scheduler", "architecture", Architecture)
	seed := uint64(core.Seed)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s := &Scheduler{
		env: env,
		opts: scheduler.Options{
			SampleSize: core.SampleSize,
			Rand:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
			Now:        env.Now,
			Cache:      scheduler.NewFeasibilityCache(0),
		},
		m:       newMetrics(env.Registerer),
		wake:    make(chan struct{}, 1),
		queue:   jobqueue.New(nil),
		started: env.Now(),
	}
	s.retries = env.Retries(s.Enqueue)
	if s.eval, err = scheduler.NewEvaluator(core, env, (*host)(s), cfg.MaxInflightPlans); err != nil {
		return nil, err
	}
	return s, nil
}

// Enqueue asks for the job to be reconciled. Idempotent while the job is
// queued (a new priority replaces the old one); a job enqueued while being
// processed is processed again afterwards. The queue is ordered by priority
// (higher first), then by first enqueue order.
func (s *Scheduler) Enqueue(jobID string, priority int) {
	s.mu.Lock()
	s.queue.Add(jobID, priority)
	s.setDepthLocked()
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) setDepthLocked() {
	if s.m != nil {
		s.m.queueDepth.Set(float64(s.queue.Len()))
	}
}

// Run is the single scheduling loop; it blocks until ctx is done. The
// server runs it only while it is the Raft leader, so no two leaders
// schedule at once. Pending delayed re-enqueues are cancelled when it
// returns: a new leader reconciles every job anyway.
func (s *Scheduler) Run(ctx context.Context) {
	s.mu.Lock()
	s.started = s.env.Now()
	s.busy = 0
	s.mu.Unlock()
	defer s.retries.Stop()
	defer s.eval.Wait() // before the timers stop: a failed commit sets one
	for {
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		it, ok := s.queue.Pop()
		s.setDepthLocked()
		s.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		s.process(ctx, it.JobID, it.Priority)
	}
}

// process evaluates one job and counts it.
func (s *Scheduler) process(ctx context.Context, jobID string, priority int) {
	start := s.env.Now()
	ev := s.eval.Evaluate(ctx, s.opts, jobID, priority)
	d := s.env.Now().Sub(start)
	s.mu.Lock()
	s.evaluations++
	s.preemptions += uint64(ev.Preempted)
	s.busy += d
	s.lat.Add(d)
	s.mu.Unlock()
	if s.m != nil {
		s.m.evaluations.Inc()
		s.m.preemptions.Add(float64(ev.Preempted))
		s.m.latency.Observe(d.Seconds())
	}
	if s.env.Evaluated != nil {
		s.env.Evaluated(ev)
	}
}

// host is the Scheduler as the evaluator's scheduler.Host.
type host Scheduler

func (h *host) Enqueue(jobID string, priority int) { (*Scheduler)(h).Enqueue(jobID, priority) }

func (h *host) EnqueueAt(jobID string, priority int, at time.Time) {
	h.retries.After(jobID, priority, at)
}

func (h *host) Committed(_ string, placed int) {
	h.mu.Lock()
	h.placements += uint64(placed)
	h.mu.Unlock()
	if h.m != nil {
		h.m.placements.Add(float64(placed))
	}
}

// Status returns the figures shown by `gantry scheduler status`.
func (s *Scheduler) Status() structs.SchedulerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := structs.SchedulerStatus{
		Architecture: Architecture,
		QueueDepth:   s.queue.Len(),
		Placements:   s.placements,
		Evaluations:  s.evaluations,
		Preemptions:  s.preemptions,
	}
	if wall := s.env.Now().Sub(s.started); wall > 0 {
		st.BusyFraction = min(float64(s.busy)/float64(wall), 1)
		st.DecisionsPerSec = float64(s.evaluations) / wall.Seconds()
	}
	p := s.lat.Percentiles(50, 99)
	st.LatencyP50Ms, st.LatencyP99Ms = p[0], p[1]
	return st
}
