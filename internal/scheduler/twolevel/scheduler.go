// Package twolevel is gantry's two-level scheduling architecture (Mesos):
// the leader runs an allocator that divides free resources among
// frameworks by weighted Dominant Resource Fairness and sends them
// resource offers; frameworks accept offers by launching tasks on them, or
// decline them. Two frameworks are built in and run inside the leader on
// the placement core: "service" and "batch" (each job names its
// framework, by default the one of its type). External frameworks
// subscribe over the HTTP API (internal/server, api/framework) and launch
// tasks of their own.
//
// Every launch, built-in or external, becomes a structs.Plan submitted to
// the server's plan applier, the same one every architecture uses, so an
// accepted offer can never over-commit a node. The allocator
// (allocator.go) is a pure state machine; this file and its neighbours are
// the shell that feeds it the cluster's state and delivers its offers.
//
// Locks: Scheduler.mu guards the allocator, the external frameworks and
// their tasks. It may be held while taking a snapshot (Env.Snapshot) and
// while handing offers to a built-in framework (builtin.mu) or queueing
// events for a subscriber (non-blocking); never while submitting a plan
// or writing a job. The server calls into the Scheduler without holding
// any lock a snapshot needs.
package twolevel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/jobqueue"
	"github.com/gantry-project/gantry/internal/structs"
)

// ErrNotRunning is returned by the framework API while this server does
// not run the architecture (not the leader, or not yet ready).
var ErrNotRunning = errors.New("the two-level scheduler is not running on this server (not the leader, or just elected)")

// TaskLauncher writes the jobs that hold external frameworks' tasks. The
// server implements it over its job writer and plan applier; tests over
// schedtest.
type TaskLauncher interface {
	// Launch registers job (one copy, FrameworkTask set) and submits a
	// plan placing alloc, waiting for its commit. The result's Placed
	// lists alloc's ID if it was placed.
	Launch(ctx context.Context, job *structs.Job, alloc *structs.Allocation) (*structs.PlanResult, error)
	// Stop stops a task's job; the architecture then stops its
	// allocation (Enqueue is called for the job).
	Stop(ctx context.Context, jobID string) error
}

// Scheduler is the two-level architecture. Enqueue, Status and the
// framework API may be called from any goroutine; Run blocks while the
// server leads.
type Scheduler struct {
	core     scheduler.Config
	cfg      Config
	env      scheduler.Env
	log      *slog.Logger
	m        *metrics
	launcher TaskLauncher
	builtins []*builtin // service, batch

	wake chan struct{} // buffered(1): a round is wanted

	mu      sync.Mutex // guards everything below
	alloc   *Allocator
	rng     *rand.Rand // IDs: frameworks, allocations, streams, updates
	running bool
	runCtx  context.Context
	sync    syncState
	fws     map[string]*extFramework // external, by ID
	byName  map[string]*extFramework
	removed recentSet // IDs of frameworks torn down
	tasksQ  taskQueue
	// taskJob and taskAlloc find a remembered task by its job and its
	// allocation.
	taskJob, taskAlloc map[string]*task
	timer              jobqueue.Stopper // the next deadline's
	timerAt            time.Time
	started            time.Time
	rounds             roundStats
	bg                 sync.WaitGroup // goroutines started by calls (kills, launches)
}

// New validates the settings and builds the architecture over env; call
// Run to start it.
func New(core scheduler.Config, cfg Config, env scheduler.Env) (*Scheduler, error) {
	if err := errors.Join(core.Validate(), cfg.Validate()); err != nil {
		return nil, fmt.Errorf("%w: %w", scheduler.ErrInvalidConfig, err)
	}
	env, err := env.Complete()
	if err != nil {
		return nil, err
	}
	env.Logger = env.Logger.With("component", "scheduler", "architecture", Architecture)
	s := &Scheduler{
		core: core, cfg: cfg, env: env, log: env.Logger,
		wake:    make(chan struct{}, 1),
		fws:     map[string]*extFramework{},
		byName:  map[string]*extFramework{},
		removed: newRecentSet(1024),
		started: env.Now(),
	}
	s.m = newMetrics(env.Registerer)
	for _, bc := range []struct {
		name string
		cfg  BuiltinConfig
	}{{structs.FrameworkService, cfg.Service}, {structs.FrameworkBatch, cfg.Batch}} {
		b, err := newBuiltin(s, bc.name, bc.cfg)
		if err != nil {
			return nil, err
		}
		s.builtins = append(s.builtins, b)
	}
	return s, nil
}

// SetLauncher installs what writes external frameworks' task jobs. The
// server calls it once, before Run; without it the framework API refuses
// launches.
func (s *Scheduler) SetLauncher(l TaskLauncher) {
	s.mu.Lock()
	s.launcher = l
	s.mu.Unlock()
}

// HeartbeatInterval is how often subscribers get a HEARTBEAT.
func (s *Scheduler) HeartbeatInterval() time.Duration { return s.cfg.HeartbeatInterval }

func (s *Scheduler) builtin(name string) *builtin {
	for _, b := range s.builtins {
		if b.name == name {
			return b
		}
	}
	return nil
}

// IsBuiltin reports whether name is a built-in framework's.
func IsBuiltin(name string) bool {
	return name == structs.FrameworkService || name == structs.FrameworkBatch
}

// CheckJob refuses a job the two-level architecture cannot schedule: one
// naming a framework that is not built in (external frameworks launch
// their own tasks; they take no jobs).
func (s *Scheduler) CheckJob(job *structs.Job) error {
	if job.FrameworkTask == nil && job.Framework != "" && !IsBuiltin(job.Framework) {
		return &structs.ValidationError{Errors: []structs.FieldError{{Field: "framework",
			Rule: fmt.Sprintf("must be a built-in framework, %q or %q (got %q): external frameworks launch their own tasks", structs.FrameworkService, structs.FrameworkBatch, job.Framework)}}}
	}
	return nil
}

// Enqueue asks for a job to be looked at: a user job goes to the queue of
// the built-in framework that schedules it; a job holding an external
// framework's task to the task loop (its status, and a stop if it was
// killed or its node drained).
func (s *Scheduler) Enqueue(jobID string, priority int) {
	var job *structs.Job
	if st, err := s.env.Snapshot(); err == nil && st != nil {
		job = st.JobByID(jobID)
	}
	if job != nil && job.FrameworkTask != nil || job == nil && s.isTaskJob(jobID) {
		s.mu.Lock()
		s.tasksQ.add(jobID)
		s.mu.Unlock()
		s.poke()
		return
	}
	b := s.builtin(structs.FrameworkFor(job))
	if b == nil {
		// A framework that is not built in (only jobs from before the
		// cluster ran two-level can name one): the built-in of its type.
		b = s.builtin(structs.FrameworkService)
		if job != nil && job.Type == structs.JobTypeBatch {
			b = s.builtin(structs.FrameworkBatch)
		}
	}
	b.enqueue(jobID, priority, job == nil || job.Stop)
}

// poke asks for an allocation round.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs the architecture while the server leads: the allocator's
// rounds, the built-in frameworks and the task loop. It rebuilds
// everything from state when it starts (a new leader knows nothing the
// old one did not write) and forgets it when ctx ends: subscribed
// frameworks are disconnected and subscribe again to the next leader.
func (s *Scheduler) Run(ctx context.Context) {
	if err := s.start(ctx); err != nil {
		s.log.Error("two-level scheduler did not start", "error", err)
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.allocLoop(ctx) })
	wg.Go(func() { s.taskLoop(ctx) })
	for _, b := range s.builtins {
		wg.Go(func() { b.run(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	s.stop()
	s.bg.Wait()
	for _, b := range s.builtins {
		b.eval.Wait()
		b.retries.Stop()
	}
}

// start rebuilds the allocator and the frameworks from state.
func (s *Scheduler) start(ctx context.Context) error {
	view, err := s.env.Snapshot()
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Each run draws from fresh streams: a new leader with the same seed
	// must not repeat the IDs an earlier run drew.
	seed := uint64(s.core.Seed) ^ uint64(s.env.Now().UnixNano())
	if s.core.Seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if s.alloc, err = NewAllocator(s.cfg.Allocator, rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))); err != nil {
		return err
	}
	s.running, s.runCtx = true, ctx
	s.started = s.env.Now()
	s.rounds = roundStats{}
	s.sync = syncState{}
	if s.m != nil {
		s.m.lastSent, s.m.lastDeclined, s.m.lastRescinded, s.m.lastExpired = 0, 0, 0, 0
	}
	for _, b := range s.builtins {
		b.reset(s.rng.Uint64())
		s.alloc.AddFramework(b.name, b.name, b.role)
		if err := s.alloc.Suppress(b.name); err != nil {
			return err
		}
		b.signal() // jobs queued before the run ask for offers
	}
	s.syncAllLocked(view)
	s.loadFrameworksLocked(view)
	s.flushLocked()
	s.poke()
	return nil
}

// stop disconnects every subscriber and drops the run's state.
func (s *Scheduler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	for _, f := range s.fws {
		if f.sub != nil {
			f.sub.end("leadership lost: subscribe again (any server forwards to the new leader)")
			f.sub = nil
		}
		if f.failover != nil {
			f.failover.Stop()
			f.failover = nil
		}
	}
	clear(s.fws)
	clear(s.byName)
	clear(s.taskJob)
	clear(s.taskAlloc)
	s.tasksQ = taskQueue{}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.alloc = nil
}

// now reads the clock.
func (s *Scheduler) now() time.Time { return s.env.Now() }

// sleep waits d on the env's timers, or until ctx ends.
func (s *Scheduler) sleep(ctx context.Context, d time.Duration) bool {
	ch := make(chan struct{})
	t := s.env.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}

// recentSet remembers the last n keys added.
type recentSet struct {
	max  int
	keys map[string]bool
	fifo []string
}

func newRecentSet(n int) recentSet { return recentSet{max: n, keys: map[string]bool{}} }

func (r *recentSet) add(k string) {
	if r.keys[k] {
		return
	}
	r.keys[k] = true
	r.fifo = append(r.fifo, k)
	if len(r.fifo) > r.max {
		delete(r.keys, r.fifo[0])
		r.fifo = r.fifo[1:]
	}
}

func (r *recentSet) has(k string) bool { return r.keys[k] }
