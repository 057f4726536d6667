// Package sharedstate is gantry's shared-state scheduling architecture
// (Omega; Nomad works this way): several schedulers, each a pool of worker
// goroutines, decide in parallel without locks, each worker on its own
// snapshot of the whole cluster state through the shared placement core
// (scheduler.ComputePlan), and submit plans as optimistic transactions to
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
const Architecture = "shared-state"

// Defaults.
const (
	// DefaultWorkers is the worker count of the default pool.
	DefaultWorkers = 4
	// DefaultMaxPlanRetries is how often a conflicting plan is recomputed
	// in a row before the job goes back to the queue after conflictBackoff.
	DefaultMaxPlanRetries = 5
	// BatchSampleSize is the batch scheduler's sample: two choices, as
	// Nomad uses for batch work (cheap decisions, good enough packing).
	BatchSampleSize = 2
)

const (
	// errorBackoff is the wait before a job whose snapshot or plan
	// submission failed is tried again.
	errorBackoff = time.Second
	// conflictBackoff is the wait before a job that kept conflicting is
	// tried again, so a hot spot cannot spin a worker.
	conflictBackoff = 50 * time.Millisecond
)

// ErrInvalidConfig wraps every configuration error from New.
var ErrInvalidConfig = errors.New("invalid shared-state scheduler config")

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
	// SampleSize is the pool's placement sample; 0 = Config.SampleSize.
	SampleSize int
}

// Config tunes a Scheduler.
type Config struct {
	// Pools are the schedulers; nil = one pool "general" serving every job
	// type with Workers workers.
	Pools []PoolConfig
	// Workers of the default pool when Pools is nil; 0 = DefaultWorkers.
	Workers        int
	SampleSize     int                   // default placement sample; 0 = core default
	Registerer     prometheus.Registerer // nil = no metrics registered
	Logger         *slog.Logger          // nil = discard
	Now            func() time.Time      // nil = time.Now (injected in tests)
	Seed           int64                 // seed of the placement randomness; 0 = time-based
	MaxPlanRetries int                   // 0 = DefaultMaxPlanRetries
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

// stopper is what a timer gives back; time.Timer satisfies it.
type stopper = jobqueue.Stopper

// Scheduler runs the pools. Enqueue and Status may be called from any
// goroutine; Run starts the workers and blocks until ctx is done; it must
// not be called twice at once.
type Scheduler struct {
	cfg      Config
	snapshot func() (scheduler.State, error)
	planner  scheduler.Planner
	log      *slog.Logger
	now      func() time.Time
	m        *metrics
	pools    []*pool
	byType   map[structs.JobType]int // job type -> pool index
	fallback int                     // pool of unclaimed types and unknown jobs
	seed     uint64

	// retries re-enqueues jobs later; tests replace its AfterFunc to fire
	// the timers by hand.
	retries *jobqueue.Retries
	// processed, when set, is called after each job is processed (tests).
	processed func(jobID string)
	// beforeSubmit, when set, is called by a worker between computing a
	// plan and submitting it (tests use it to line workers up).
	beforeSubmit func(jobID string)

	mu       sync.Mutex // guards everything below and each pool's queue and counters
	seq      uint64
	inflight map[string]bool // jobs a worker holds
	again    map[string]int  // jobs enqueued while held: priority
	started  time.Time
	lat      schedstat.Window
}

// pool is one scheduler's queue and counters (guarded by Scheduler.mu).
type pool struct {
	cfg   PoolConfig
	queue *jobqueue.Queue
	wake  chan struct{} // buffered(Workers): the queue may have work

	busy                                        []time.Duration // per worker
	evaluations, placements, preemptions        uint64
	plansSubmitted, conflicts, commits, retries uint64
}

// New validates cfg and builds a scheduler over a snapshot source and a
// planner; call Run to start it.
func New(cfg Config, snapshot func() (scheduler.State, error), planner scheduler.Planner) (*Scheduler, error) {
	if snapshot == nil || planner == nil {
		return nil, fmt.Errorf("%w: snapshot source and planner are required", ErrInvalidConfig)
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("%w: workers must be >= 0 (got %d)", ErrInvalidConfig, cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Pools == nil {
		cfg.Pools = []PoolConfig{{Name: "general", Workers: cfg.Workers}}
	}
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
	s := &Scheduler{
		cfg:      cfg,
		snapshot: snapshot,
		planner:  planner,
		log:      cfg.Logger.With("component", "scheduler", "architecture", Architecture),
		now:      cfg.Now,
		byType:   map[structs.JobType]int{},
		fallback: -1,
		inflight: map[string]bool{},
		again:    map[string]int{},
		started:  cfg.Now(),
	}
	s.retries = jobqueue.NewRetries(cfg.Now, s.Enqueue)
	if err := s.buildPools(); err != nil {
		return nil, err
	}
	s.seed = uint64(cfg.Seed)
	if s.seed == 0 {
		s.seed = uint64(time.Now().UnixNano())
	}
	names := make([]string, len(s.pools))
	for i, p := range s.pools {
		names[i] = p.cfg.Name
	}
	s.m = newMetrics(cfg.Registerer, names)
	return s, nil
}

// buildPools validates the pools and the job-type routing.
func (s *Scheduler) buildPools() error {
	var errs []error
	seen := map[string]bool{}
	for i, pc := range s.cfg.Pools {
		switch {
		case pc.Name == "":
			errs = append(errs, fmt.Errorf("pools[%d]: name is required", i))
		case seen[pc.Name]:
			errs = append(errs, fmt.Errorf("pools[%d]: duplicate name %q", i, pc.Name))
		}
		seen[pc.Name] = true
		if pc.Workers < 1 {
			errs = append(errs, fmt.Errorf("pool %q: workers must be >= 1 (got %d)", pc.Name, pc.Workers))
		}
		if pc.SampleSize < 0 {
			errs = append(errs, fmt.Errorf("pool %q: sample size must be >= 0 (got %d)", pc.Name, pc.SampleSize))
		}
		if pc.SampleSize == 0 {
			pc.SampleSize = s.cfg.SampleSize
		}
		if len(pc.JobTypes) == 0 {
			if s.fallback >= 0 {
				errs = append(errs, fmt.Errorf("pool %q: only one pool may serve every other job type (%q already does)", pc.Name, s.cfg.Pools[s.fallback].Name))
			}
			s.fallback = i
		}
		for _, t := range pc.JobTypes {
			if prev, ok := s.byType[t]; ok {
				errs = append(errs, fmt.Errorf("pool %q: job type %q is already served by %q", pc.Name, t, s.cfg.Pools[prev].Name))
			}
			s.byType[t] = i
		}
		s.pools = append(s.pools, &pool{
			cfg:   pc,
			queue: jobqueue.New(&s.seq),
			wake:  make(chan struct{}, max(pc.Workers, 1)),
			busy:  make([]time.Duration, max(pc.Workers, 0)),
		})
	}
	if len(s.cfg.Pools) == 0 {
		errs = append(errs, errors.New("at least one pool is required"))
	}
	if s.fallback < 0 && len(errs) == 0 {
		for _, t := range []structs.JobType{structs.JobTypeService, structs.JobTypeBatch} {
			if _, ok := s.byType[t]; !ok {
				errs = append(errs, fmt.Errorf("job type %q is served by no pool", t))
			}
		}
		s.fallback = 0 // jobs whose type is unknown (purged) still need stopping
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// route returns the pool serving a job type.
func (s *Scheduler) route(t structs.JobType) int {
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
		if st, err := s.snapshot(); err == nil && st != nil {
			if j := st.JobByID(jobID); j != nil {
				target = s.route(j.Type)
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
	s.started = s.now()
	for _, p := range s.pools {
		clear(p.busy)
	}
	s.mu.Unlock()
	defer s.retries.Stop()
	// Each run draws from fresh streams: a new leader with the same seed
	// must not repeat the allocation IDs an earlier run drew. The start
	// time comes from the injected clock, so tests stay deterministic.
	runSeed := s.seed ^ uint64(s.now().UnixNano())
	var wg sync.WaitGroup
	n := uint64(0)
	for pi, p := range s.pools {
		for wi := range p.cfg.Workers {
			n++
			seed := runSeed + n*0x9e3779b97f4a7c15
			w := &worker{
				s: s, pool: pi, id: wi,
				rng:   rand.New(rand.NewPCG(seed, seed^0xd1b54a32d192ed03)),
				cache: scheduler.NewFeasibilityCache(0),
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
// enqueued meanwhile, in the pool serving its current type.
func (s *Scheduler) release(jobID string, jobType structs.JobType, known bool, pi int) {
	s.mu.Lock()
	delete(s.inflight, jobID)
	prio, again := s.again[jobID]
	delete(s.again, jobID)
	var p *pool
	if again {
		target := pi
		if known {
			target = s.route(jobType)
		}
		p = s.enqueueLocked(jobID, prio, target)
	}
	s.mu.Unlock()
	if p != nil {
		p.signal()
	}
}

// Status returns the figures shown by `gantry scheduler status`.
func (s *Scheduler) Status() api.SchedulerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := api.SchedulerStatus{Architecture: Architecture}
	wall := s.now().Sub(s.started)
	var busy time.Duration
	workers, commits := 0, uint64(0)
	for _, p := range s.pools {
		ps := api.SchedulerPoolStatus{
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
