// Package monolithic is gantry's monolithic scheduling architecture: one
// loop on the Raft leader with the global view of all pending work, a
// priority queue of jobs, and the shared placement core
// (scheduler.ComputePlan) deciding each job.
package monolithic

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/jobqueue"
	"github.com/gantry-project/gantry/internal/scheduler/schedstat"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/prometheus/client_golang/prometheus"
)

// Architecture is the name shown by `gantry scheduler status`.
const Architecture = "monolithic"

// DefaultMaxPlanRetries is how often a partly rejected plan is recomputed on
// a fresh snapshot before the job is left to the next enqueue.
const DefaultMaxPlanRetries = 3

// maxInflightPlans bounds the plans checked by a pipelined planner whose
// commit this scheduler has not seen yet.
const maxInflightPlans = 64

// errorBackoff is the wait before a job whose snapshot or plan submission
// failed is tried again.
const errorBackoff = time.Second

// Config tunes a Scheduler. The zero value is usable.
type Config struct {
	SampleSize     int                   // feasible nodes ranked per placement; 0 = default
	Registerer     prometheus.Registerer // nil = no metrics registered
	Logger         *slog.Logger          // nil = discard
	Now            func() time.Time      // nil = time.Now (injected in tests)
	Seed           int64                 // seed of the placement randomness; 0 = time-based
	MaxPlanRetries int                   // retries of a job whose plan was partly rejected; 0 = default (3)
}

// stopper is what a timer gives back; time.Timer satisfies it.
type stopper = jobqueue.Stopper

// Scheduler is the single scheduling loop. Enqueue and Status may be called
// from any goroutine; Run runs the loop on the caller's goroutine and must
// not be called twice at once.
type Scheduler struct {
	cfg      Config
	snapshot func() (scheduler.State, error)
	planner  scheduler.Planner
	log      *slog.Logger
	now      func() time.Time
	rng      *rand.Rand                  // used only by the loop goroutine
	cache    *scheduler.FeasibilityCache // used only by the loop goroutine
	m        *metrics
	// retries re-enqueues jobs later; tests replace its AfterFunc to fire
	// the timers by hand.
	retries *jobqueue.Retries
	// processed, when set, is called after each job is processed (tests).
	processed func(jobID string)

	wake chan struct{} // buffered(1): the queue may have work

	// With a scheduler.PipelinedPlanner the loop does not wait for a
	// plan's commit: a watcher goroutine per plan does, holding a slot
	// of inflight.
	pipelined scheduler.PipelinedPlanner
	inflight  chan struct{}
	watchers  sync.WaitGroup

	mu          sync.Mutex // guards everything below
	queue       *jobqueue.Queue
	started     time.Time
	busy        time.Duration
	placements  uint64
	preemptions uint64
	evaluations uint64
	lat         schedstat.Window
}

// New builds a scheduler over a snapshot source and a planner; call Run to
// start it.
func New(cfg Config, snapshot func() (scheduler.State, error), planner scheduler.Planner) *Scheduler {
	if cfg.SampleSize <= 0 {
		cfg.SampleSize = scheduler.DefaultSampleSize
	}
	if cfg.MaxPlanRetries <= 0 {
		cfg.MaxPlanRetries = DefaultMaxPlanRetries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	seed := uint64(cfg.Seed)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	pp, _ := planner.(scheduler.PipelinedPlanner)
	s := &Scheduler{
		pipelined: pp,
		inflight:  make(chan struct{}, maxInflightPlans),
		cfg:       cfg,
		snapshot:  snapshot,
		planner:   planner,
		log:       cfg.Logger.With("component", "scheduler", "architecture", Architecture),
		now:       cfg.Now,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		cache:     scheduler.NewFeasibilityCache(0),
		m:         newMetrics(cfg.Registerer),
		wake:      make(chan struct{}, 1),
		queue:     jobqueue.New(nil),
		started:   cfg.Now(),
	}
	s.retries = jobqueue.NewRetries(cfg.Now, s.Enqueue)
	return s
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
	s.started = s.now()
	s.busy = 0
	s.mu.Unlock()
	defer s.retries.Stop()
	defer s.watchers.Wait() // before the timers stop: watchers may set one
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

// process schedules one job: snapshot, reconcile and place, submit; on a
// partly rejected plan, again on a fresh snapshot.
func (s *Scheduler) process(ctx context.Context, jobID string, priority int) {
	start := s.now()
	var placed, preempted int
	opts := scheduler.Options{SampleSize: s.cfg.SampleSize, Rand: s.rng, Now: s.now, Cache: s.cache}
	for attempt := 0; ; attempt++ {
		st, err := s.snapshot()
		if err == nil && st == nil {
			err = errors.New("snapshot function returned no state")
		}
		if err != nil {
			s.log.Error("snapshot failed; retrying job later", "job", jobID, "error", err)
			s.retries.After(jobID, priority, s.now().Add(errorBackoff))
			break
		}
		res, err := scheduler.ComputePlan(opts, st, jobID)
		if err != nil {
			// Bad data in state: retrying would fail the same way until
			// the job changes, which enqueues it again.
			s.log.Error("cannot schedule job", "job", jobID, "error", err)
			break
		}
		if j := st.JobByID(jobID); j != nil {
			priority = j.Priority
		}
		if !res.RetryAt.IsZero() {
			s.retries.After(jobID, priority, res.RetryAt)
		}
		if res.Plan.IsNoOp() {
			break
		}
		pr, err := s.submit(ctx, jobID, priority, res.Plan)
		if err == nil && pr == nil {
			err = errors.New("planner returned no result")
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("plan submission failed; retrying job later", "job", jobID, "error", err)
				s.retries.After(jobID, priority, s.now().Add(errorBackoff))
			}
			break
		}
		if s.pipelined == nil {
			placed += len(pr.Placed)
		}
		preempted += scheduler.RequeueVictims(st, res, pr, s.Enqueue)
		if res.Plan.Failure != nil {
			s.log.Info("copies not placed", "job", jobID, "unplaced", res.Unplaced, "reason", res.Plan.Failure.Message)
		}
		if len(pr.RejectedNodes) == 0 {
			break
		}
		if attempt >= s.cfg.MaxPlanRetries {
			s.log.Warn("plan still rejected after retries; waiting for the next enqueue",
				"job", jobID, "retries", attempt, "rejected_nodes", len(pr.RejectedNodes))
			break
		}
		s.log.Debug("plan partly rejected; retrying on a fresh snapshot",
			"job", jobID, "rejected_nodes", len(pr.RejectedNodes), "refresh_index", pr.RefreshIndex)
	}
	d := s.now().Sub(start)
	s.mu.Lock()
	s.evaluations++
	s.placements += uint64(placed)
	s.preemptions += uint64(preempted)
	s.busy += d
	s.lat.Add(d)
	s.mu.Unlock()
	if s.m != nil {
		s.m.evaluations.Inc()
		s.m.placements.Add(float64(placed))
		s.m.preemptions.Add(float64(preempted))
		s.m.latency.Observe(d.Seconds())
	}
	if s.processed != nil {
		s.processed(jobID)
	}
}

// submit hands a plan to the planner. A pipelined planner answers once
// the plan is checked; a watcher then waits for the commit, counts the
// placements, and retries the job if the commit fails. Otherwise it waits
// for the commit here.
func (s *Scheduler) submit(ctx context.Context, jobID string, priority int, plan *structs.Plan) (*structs.PlanResult, error) {
	if s.pipelined == nil {
		return s.planner.SubmitPlan(ctx, plan)
	}
	select {
	case s.inflight <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	pr, wait, err := s.pipelined.SubmitPlanPipelined(ctx, plan)
	if err != nil || wait == nil {
		<-s.inflight
		if err == nil {
			err = errors.New("planner returned no wait")
		}
		return nil, err
	}
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		defer func() { <-s.inflight }()
		res, err := wait()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("plan commit failed; retrying job later", "job", jobID, "error", err)
				s.retries.After(jobID, priority, s.now().Add(errorBackoff))
			}
			return
		}
		s.mu.Lock()
		s.placements += uint64(len(res.Placed))
		s.mu.Unlock()
		if s.m != nil {
			s.m.placements.Add(float64(len(res.Placed)))
		}
	}()
	return pr, nil
}

// Status returns the figures shown by `gantry scheduler status`.
func (s *Scheduler) Status() api.SchedulerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := api.SchedulerStatus{
		Architecture: Architecture,
		QueueDepth:   s.queue.Len(),
		Placements:   s.placements,
		Evaluations:  s.evaluations,
		Preemptions:  s.preemptions,
	}
	if wall := s.now().Sub(s.started); wall > 0 {
		st.BusyFraction = min(float64(s.busy)/float64(wall), 1)
		st.DecisionsPerSec = float64(s.evaluations) / wall.Seconds()
	}
	p := s.lat.Percentiles(50, 99)
	st.LatencyP50Ms, st.LatencyP99Ms = p[0], p[1]
	return st
}
