// Package sharedstate is gantry's shared-state scheduling architecture
// (Omega; Nomad works this way): several schedulers, each a pool of worker
// goroutines, decide in parallel without locks, each worker on its own
// snapshot of the whole cluster state through the core's evaluation loop
// (scheduler.Evaluator), and submit plans as optimistic transactions to
// the leader's plan applier. The applier checks every node of a plan
// against current state and commits what still fits; a worker whose plan
// conflicted recomputes the job on a newer snapshot.
//
// Work for one job is never processed by two workers at once: a job is
// queued in at most one pool, and a job enqueued while a worker holds it is
// queued again when that worker is done.
package sharedstate

import (
	"context"
	"errors"
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
const Architecture = "shared-state"

// Defaults.
const (
	// DefaultWorkers is the worker count of the default pool.
	DefaultWorkers = 4
	// DefaultMaxInflightPlans bounds, per pool, the plans a pipelined
	// planner has checked whose commit the workers have not seen yet.
	DefaultMaxInflightPlans = 64
	// BatchSampleSize is the batch scheduler's sample: two choices, as
	// Nomad uses for batch work (cheap decisions, good enough packing).
	BatchSampleSize = 2
)

// PoolConfig describes one scheduler: a pool of workers with its own
// placement settings, serving some job types.
type PoolConfig struct {
	// Name identifies the scheduler in status and metrics.
	Name string
	// JobTypes this scheduler serves; empty = every type no other pool
	// claims (at most one pool may leave it empty).
	JobTypes []structs.JobType
	// Workers is the number of parallel workers (>= 1).
	Workers int
	// SampleSize is the pool's placement sample; 0 = the core's
	// (scheduler.Config.SampleSize).
	SampleSize int
}

// Config holds what the shared-state architecture itself owns: its pools
// of workers and their concurrency. The evaluation loop's settings are the
// core's (scheduler.Config). Start from DefaultConfig.
type Config struct {
	// Workers is the worker count of the one scheduler serving every job
	// type, or of the service scheduler when BatchWorkers > 0 (>= 1;
	// `gantry server --schedulers`).
	Workers int
	// BatchWorkers, when > 0, splits scheduling in two as Omega does: a
	// service scheduler with Workers workers and a batch scheduler with
	// this many and BatchSampleSize (`--batch-schedulers`).
	BatchWorkers int
	// Pools, when not nil, are the schedulers instead of those Workers
	// and BatchWorkers describe (any set: names, job types, workers,
	// samples).
	Pools []PoolConfig
	// MaxInflightPlans bounds, per pool, the plans whose commit its
	// workers do not wait for, with a pipelined planner (>= 1).
	MaxInflightPlans int
}

// DefaultConfig returns one scheduler of DefaultWorkers workers serving
// every job type.
func DefaultConfig() Config {
	return Config{Workers: DefaultWorkers, MaxInflightPlans: DefaultMaxInflightPlans}
}

// ServiceBatchPools returns the Omega-style specialised pair: a service
// scheduler (service jobs, the default sample) and a batch
// scheduler (batch jobs, BatchSampleSize: quicker, rougher decisions).
func ServiceBatchPools(serviceWorkers, batchWorkers int) []PoolConfig {
	return []PoolConfig{
		{Name: "service", Workers: serviceWorkers},
		{Name: "batch", JobTypes: []structs.JobType{structs.JobTypeBatch}, Workers: batchWorkers, SampleSize: BatchSampleSize},
	}
}

// pools returns the schedulers c describes.
func (c Config) pools() []PoolConfig {
	switch {
	case c.Pools != nil:
		return c.Pools
	case c.BatchWorkers > 0:
		return ServiceBatchPools(c.Workers, c.BatchWorkers)
	default:
		return []PoolConfig{{Name: "general", Workers: c.Workers}}
	}
}

// Validate reports every field that breaks a rule, and every pool set
// that leaves a job type unserved or serves one twice; it changes
// nothing.
func (c Config) Validate() error {
	var errs []error
	if c.Pools == nil {
		if c.Workers < 1 {
			errs = append(errs, scheduler.FieldErrorf("workers", "must be >= 1 (got %d)", c.Workers))
		}
		if c.BatchWorkers < 0 {
			errs = append(errs, scheduler.FieldErrorf("batch_workers", "must be >= 0 (got %d)", c.BatchWorkers))
		}
	} else if _, _, err := route(c.Pools); err != nil {
		errs = append(errs, err)
	}
	if c.MaxInflightPlans < 1 {
		errs = append(errs, scheduler.FieldErrorf("max_inflight_plans", "must be >= 1 (got %d)", c.MaxInflightPlans))
	}
	return errors.Join(errs...)
}

// route checks a set of pools and returns which pool serves each job type
// and which serves the rest (and jobs whose type is unknown).
func route(pools []PoolConfig) (map[structs.JobType]int, int, error) {
	var errs []error
	byType := map[structs.JobType]int{}
	fallback := -1
	seen := map[string]bool{}
	for i, pc := range pools {
		field := fmt.Sprintf("pools[%d]", i)
		switch {
		case pc.Name == "":
			errs = append(errs, scheduler.FieldErrorf(field+".name", "is required"))
		case seen[pc.Name]:
			errs = append(errs, scheduler.FieldErrorf(field+".name", "duplicate name %q", pc.Name))
		}
		seen[pc.Name] = true
		if pc.Workers < 1 {
			errs = append(errs, scheduler.FieldErrorf(field+".workers", "pool %q: must be >= 1 (got %d)", pc.Name, pc.Workers))
		}
		if pc.SampleSize < 0 {
			errs = append(errs, scheduler.FieldErrorf(field+".sample_size", "pool %q: must be >= 0 (got %d)", pc.Name, pc.SampleSize))
		}
		if len(pc.JobTypes) == 0 {
			if fallback >= 0 {
				errs = append(errs, scheduler.FieldErrorf(field+".job_types", "pool %q: only one pool may serve every other job type (%q already does)", pc.Name, pools[fallback].Name))
			}
			fallback = i
		}
		for _, t := range pc.JobTypes {
			if prev, ok := byType[t]; ok {
				errs = append(errs, scheduler.FieldErrorf(field+".job_types", "pool %q: job type %q is already served by %q", pc.Name, t, pools[prev].Name))
			}
			byType[t] = i
		}
	}
	if len(pools) == 0 {
		errs = append(errs, scheduler.FieldErrorf("pools", "at least one pool is required"))
	}
	if fallback < 0 && len(errs) == 0 {
		for _, t := range []structs.JobType{structs.JobTypeService, structs.JobTypeBatch} {
			if _, ok := byType[t]; !ok {
				errs = append(errs, scheduler.FieldErrorf("pools", "job type %q is served by no pool", t))
			}
		}
		fallback = 0 // jobs whose type is unknown (purged) still need stopping
	}
	return byType, fallback, errors.Join(errs...)
}

// Scheduler runs the pools. Enqueue and Status may be called from any
// goroutine; Run starts the workers and blocks until ctx is done; it must
// not be called twice at once.
type Scheduler struct {
	env      scheduler.Env
	m        *metrics
	pools    []*pool
	byType   map[structs.JobType]int // job type -> pool index
	fallback int                     // pool of unclaimed types and unknown jobs
	seed     uint64

	// retries re-enqueues jobs later.
	retries *jobqueue.Retries

	mu       sync.Mutex // guards everything below and each pool's queue and counters
	seq      uint64
	inflight map[string]bool // jobs a worker holds
	again    map[string]int  // jobs enqueued while held: priority
	started  time.Time
	lat      schedstat.Window
}

// pool is one scheduler: its evaluator, queue and counters (guarded by
// Scheduler.mu). It is its evaluator's scheduler.Host.
type pool struct {
	s     *Scheduler
	cfg   PoolConfig
	eval  *scheduler.Evaluator
	queue *jobqueue.Queue
	wake  chan struct{} // buffered(Workers): the queue may have work

	busy                                        []time.Duration // per worker
	evaluations, placements, preemptions        uint64
	plansSubmitted, conflicts, commits, retries uint64
}

// New validates the settings and builds a scheduler over env; call Run to
// start it.
func New(core scheduler.Config, cfg Config, env scheduler.Env) (*Scheduler, error) {
	if err := errors.Join(core.Validate(), cfg.Validate()); err != nil {
		return nil, fmt.Errorf("%w: %w", scheduler.ErrInvalidConfig, err)
	}
	env, err := env.Complete()
	if err != nil {
		return nil, err
	}
	env.Logger = env.Logger.With("component", "scheduler", "architecture", Architecture)
	pcs := cfg.pools()
	byType, fallback, _ := route(pcs) // valid: checked above
	s := &Scheduler{
		env:      env,
		byType:   byType,
		fallback: fallback,
		inflight: map[string]bool{},
		again:    map[string]int{},
		started:  env.Now(),
	}
	s.retries = env.Retries(s.Enqueue)
	names := make([]string, len(pcs))
	for i, pc := range pcs {
		if pc.SampleSize == 0 {
			pc.SampleSize = core.SampleSize
		}
		p := &pool{
			s:     s,
			cfg:   pc,
			queue: jobqueue.New(&s.seq),
			wake:  make(chan struct{}, pc.Workers),
			busy:  make([]time.Duration, pc.Workers),
		}
		penv := env
		penv.Logger = env.Logger.With("scheduler", pc.Name)
		if p.eval, err = scheduler.NewEvaluator(core, penv, p, cfg.MaxInflightPlans); err != nil {
			return nil, err
		}
		s.pools = append(s.pools, p)
		names[i] = pc.Name
	}
	s.seed = uint64(core.Seed)
	if s.seed == 0 {
		s.seed = uint64(time.Now().UnixNano())
	}
	s.m = newMetrics(env.Registerer, names)
	return s, nil
}

// poolFor returns the pool serving a job type.
func (s *Scheduler) poolFor(t structs.JobType) int {
	if i, ok := s.byType[t]; ok {
		return i
	}
	return s.fallback
}

// Enqueue asks for the job to be reconciled. A job is queued in at most one
// pool (a queued job only takes the new priority); a job a worker holds is
// queued again when the worker is done, so no two workers ever process the
// same job at once.
func (s *Scheduler) Enqueue(jobID string, priority int) {
	target := s.fallback
	if len(s.pools) > 1 {
		if st, err := s.env.Snapshot(); err == nil && st != nil {
			if j := st.JobByID(jobID); j != nil {
				target = s.poolFor(j.Type)
			}
		}
	}
	s.mu.Lock()
	p := s.enqueueLocked(jobID, priority, target)
	s.mu.Unlock()
	if p != nil {
		p.signal()
	}
}

// enqueueLocked queues a job and returns the pool to wake (nil if none).
func (s *Scheduler) enqueueLocked(jobID string, priority, target int) *pool {
	if s.inflight[jobID] {
		s.again[jobID] = priority
		return nil
	}
	for i, p := range s.pools {
		if p.queue.Has(jobID) {
			p.queue.Add(jobID, priority)
			s.setDepthLocked(i)
			return p
		}
	}
	p := s.pools[target]
	p.queue.Add(jobID, priority)
	s.setDepthLocked(target)
	return p
}

func (p *pool) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) setDepthLocked(i int) {
	if s.m != nil {
		s.m.queueDepth.WithLabelValues(s.pools[i].cfg.Name).Set(float64(s.pools[i].queue.Len()))
	}
}

// Run starts every pool's workers and blocks until ctx is done and they
// have returned. The server runs it only while it is the Raft leader.
// Pending delayed re-enqueues are cancelled when it returns: a new leader
// reconciles every job anyway.
func (s *Scheduler) Run(ctx context.Context) {
	s.mu.Lock()
	s.started = s.env.Now()
	for _, p := range s.pools {
		clear(p.busy)
	}
	s.mu.Unlock()
	defer s.retries.Stop()
	defer func() { // before the timers stop: a failed commit sets one
		for _, p := range s.pools {
			p.eval.Wait()
		}
	}()
	// Each run draws from fresh streams: a new leader with the same seed
	// must not repeat the allocation IDs an earlier run drew. The start
	// time comes from the injected clock, so tests stay deterministic.
	runSeed := s.seed ^ uint64(s.env.Now().UnixNano())
	var wg sync.WaitGroup
	n := uint64(0)
	for pi, p := range s.pools {
		for wi := range p.cfg.Workers {
			n++
			seed := runSeed + n*0x9e3779b97f4a7c15
			w := &worker{
				s: s, pool: pi, id: wi,
				opts: scheduler.Options{
					SampleSize: p.cfg.SampleSize,
					Rand:       rand.New(rand.NewPCG(seed, seed^0xd1b54a32d192ed03)),
					Now:        s.env.Now,
					Cache:      scheduler.NewFeasibilityCache(0),
				},
			}
			wg.Go(func() { w.run(ctx) })
		}
	}
	wg.Wait()
}

// take pops the next job of pool pi that no worker holds and marks it held.
func (s *Scheduler) take(pi int) (*jobqueue.Item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pools[pi]
	defer s.setDepthLocked(pi)
	for {
		it, ok := p.queue.Pop()
		if !ok {
			return nil, false
		}
		if s.inflight[it.JobID] {
			// Cannot happen through Enqueue; kept as a guard for the
			// one-worker-per-job rule.
			s.again[it.JobID] = it.Priority
			continue
		}
		s.inflight[it.JobID] = true
		if p.queue.Len() > 0 {
			p.signal() // more work: wake a sibling
		}
		return it, true
	}
}

// release ends a worker's hold on a job and queues it again if it was
// enqueued meanwhile, in the pool serving its current type (job as last
// seen; nil: the pool that held it).
func (s *Scheduler) release(jobID string, job *structs.Job, pi int) {
	s.mu.Lock()
	delete(s.inflight, jobID)
	prio, again := s.again[jobID]
	delete(s.again, jobID)
	var p *pool
	if again {
		target := pi
		if job != nil {
			target = s.poolFor(job.Type)
		}
		p = s.enqueueLocked(jobID, prio, target)
	}
	s.mu.Unlock()
	if p != nil {
		p.signal()
	}
}

// Status returns the figures shown by `gantry scheduler status`.
func (s *Scheduler) Status() structs.SchedulerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := structs.SchedulerStatus{Architecture: Architecture}
	wall := s.env.Now().Sub(s.started)
	var busy time.Duration
	workers, commits := 0, uint64(0)
	for _, p := range s.pools {
		ps := structs.SchedulerPoolStatus{
			Name: p.cfg.Name, Workers: p.cfg.Workers, QueueDepth: p.queue.Len(),
			Evaluations: p.evaluations, Placements: p.placements,
			PlansSubmitted: p.plansSubmitted, Conflicts: p.conflicts, Retries: p.retries,
			WorkerBusy: make([]float64, len(p.busy)),
		}
		for _, t := range p.cfg.JobTypes {
			ps.JobTypes = append(ps.JobTypes, string(t))
		}
		if len(ps.JobTypes) == 0 {
			ps.JobTypes = []string{"*"}
		}
		var pb time.Duration
		for i, b := range p.busy {
			pb += b
			if wall > 0 {
				ps.WorkerBusy[i] = min(float64(b)/float64(wall), 1)
			}
		}
		if wall > 0 && len(p.busy) > 0 {
			ps.BusyFraction = min(float64(pb)/float64(wall)/float64(len(p.busy)), 1)
		}
		busy += pb
		workers += len(p.busy)
		commits += p.commits
		st.Schedulers = append(st.Schedulers, ps)
		st.QueueDepth += ps.QueueDepth
		st.Evaluations += p.evaluations
		st.Placements += p.placements
		st.Preemptions += p.preemptions
		st.PlansSubmitted += p.plansSubmitted
		st.Conflicts += p.conflicts
		st.Retries += p.retries
	}
	if wall > 0 {
		if workers > 0 {
			st.BusyFraction = min(float64(busy)/float64(wall)/float64(workers), 1)
		}
		st.DecisionsPerSec = float64(st.Evaluations) / wall.Seconds()
	}
	if commits > 0 {
		st.ConflictFraction = float64(st.Conflicts) / float64(commits)
	}
	ps := s.lat.Percentiles(50, 99)
	st.LatencyP50Ms, st.LatencyP99Ms = ps[0], ps[1]
	return st
}
