package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// Host is the architecture an Evaluator works for: the queue jobs go back
// to, and the counters of committed work. Its methods are called from the
// evaluating goroutine and, with a pipelined planner, from the goroutines
// that wait for commits; they must not block for long.
type Host interface {
	// Enqueue asks for the job to be evaluated again soon (the jobs whose
	// allocations an accepted plan evicts).
	Enqueue(jobID string, priority int)
	// EnqueueAt asks for the job to be evaluated again at a time (a
	// reschedule delay ends, a backoff after a failure or conflicts).
	EnqueueAt(jobID string, priority int, at time.Time)
	// Committed reports a plan of the job committed with placed new
	// allocations.
	Committed(jobID string, placed int)
}

// Outcome says how an evaluation ended. Every outcome but OutcomeDone is a
// give-up, and the Evaluation's Err gives the reason.
type Outcome uint8

const (
	// OutcomeDone: the last plan was accepted whole, or there was nothing
	// to do. Copies that fit nowhere are not a give-up: the plan records
	// why (structs.PlacementFailure) and a change to the cluster or the
	// job enqueues the job again.
	OutcomeDone Outcome = iota
	// OutcomeConflicted: plans still conflicted after MaxPlanRetries
	// recomputations; the job is evaluated again after ConflictBackoff.
	OutcomeConflicted
	// OutcomeSnapshotFailed: no view of state; again after ErrorBackoff.
	OutcomeSnapshotFailed
	// OutcomeSubmitFailed: the planner failed; again after ErrorBackoff.
	OutcomeSubmitFailed
	// OutcomeInvalidJob: the job as stored cannot be scheduled (bad
	// resources). Retrying would fail the same way, so it is not
	// enqueued again: a change to the job does that.
	OutcomeInvalidJob
	// OutcomeCanceled: the context ended (leadership lost); a new
	// leader evaluates every job anyway.
	OutcomeCanceled
)

var outcomeNames = [...]string{"done", "conflicted", "snapshot failed", "submit failed", "invalid job", "canceled"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", o)
}

// Evaluation is what one job's evaluation did.
type Evaluation struct {
	JobID string
	// Job is the job as the last view showed it; nil when it is gone (or
	// no view was read).
	Job *structs.Job
	// Priority is the job's priority: the one enqueued, then the job's
	// own once read.
	Priority int
	Outcome  Outcome
	// Err is the reason for a give-up; nil when Outcome is OutcomeDone.
	Err error
	// Plans counts the plans submitted, Conflicts those rejected in part
	// or whole, Retries the recomputations after a conflict.
	Plans, Conflicts, Retries int
	// Preempted counts the allocations the accepted plans evict.
	Preempted int
	// Unplaced counts the copies the last plan could not place.
	Unplaced int
	// Index is the index of the view the last plan was computed on (0
	// when no view was read): whatever frees room after it was not seen
	// by this evaluation.
	Index uint64
}

// staleSnapshotTries bounds the wait for a view at least as new as a
// conflict's refresh index (polled every millisecond). The server's
// applier answers once the entry applied locally, and its pipelined check
// asks for no newer index, so the first try normally succeeds; if not, the
// plan is computed on what there is and the planner checks it anyway.
const staleSnapshotTries = 100

// Evaluator is the evaluation loop every architecture runs: for one job,
// take a view at least as new as needed, compute the plan (ComputePlan),
// submit it, recompute on a newer view while it conflicts, and give up
// after a bound with the reason recorded. Architectures own only queueing
// and concurrency: which job is evaluated next, and on how many
// goroutines.
//
// With a PipelinedPlanner the evaluation does not wait for the commit: it
// ends once the plan is checked, and a goroutine per plan (at most
// maxInflight at once; Evaluate waits for a slot) waits for the commit,
// reports it to the Host, or enqueues the job again after ErrorBackoff if
// it failed. Wait waits for those goroutines.
//
// Evaluate may be called from several goroutines at once, each with its
// own Options (random source and cache are not safe to share).
type Evaluator struct {
	snapshot   func() (State, error)
	planner    Planner
	pipelined  PipelinedPlanner // planner, when it pipelines
	host       Host
	log        *slog.Logger
	now        func() time.Time
	maxRetries int

	inflight chan struct{} // a slot per pipelined plan not yet committed
	watchers sync.WaitGroup
}

// NewEvaluator returns the loop over env for host, with cfg's retry bound
// and at most maxInflight pipelined plans awaiting commit.
func NewEvaluator(cfg Config, env Env, host Host, maxInflight int) (*Evaluator, error) {
	env, err := env.Complete()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if host == nil || maxInflight < 1 {
		return nil, fmt.Errorf("%w: an evaluator needs a host and maxInflight >= 1 (got %d)", ErrInvalidConfig, maxInflight)
	}
	pp, _ := env.Planner.(PipelinedPlanner)
	return &Evaluator{
		snapshot: env.Snapshot, planner: env.Planner, pipelined: pp, host: host,
		log: env.Logger, now: env.Now, maxRetries: cfg.MaxPlanRetries,
		inflight: make(chan struct{}, maxInflight),
	}, nil
}

// Evaluate evaluates one job; priority is the one it was enqueued with.
func (e *Evaluator) Evaluate(ctx context.Context, opts Options, jobID string, priority int) Evaluation {
	ev := Evaluation{JobID: jobID, Priority: priority}
	var minIndex uint64
	for attempt := 0; ; attempt++ {
		st, err := e.snapshotAtLeast(ctx, minIndex)
		if err != nil {
			return e.giveUp(ctx, ev, OutcomeSnapshotFailed, fmt.Errorf("snapshot: %w", err))
		}
		ev.Index = st.Index()
		res, err := ComputePlan(opts, st, jobID)
		if err != nil {
			return e.giveUp(ctx, ev, OutcomeInvalidJob, err)
		}
		if j := st.JobByID(jobID); j != nil {
			ev.Job, ev.Priority = j, j.Priority
		}
		if !res.RetryAt.IsZero() {
			e.host.EnqueueAt(jobID, ev.Priority, res.RetryAt)
		}
		ev.Unplaced = res.Unplaced
		if res.Plan.IsNoOp() {
			return ev
		}
		pr, err := e.submit(ctx, jobID, ev.Priority, res.Plan)
		if err != nil {
			return e.giveUp(ctx, ev, OutcomeSubmitFailed, fmt.Errorf("submit plan: %w", err))
		}
		ev.Plans++
		ev.Preempted += requeueVictims(st, res, pr, e.host)
		if res.Plan.Failure != nil {
			e.log.Info("copies not placed", "job", jobID, "unplaced", res.Unplaced, "reason", res.Plan.Failure.Message)
		}
		if len(pr.RejectedNodes) == 0 {
			return ev
		}
		ev.Conflicts++
		if attempt >= e.maxRetries {
			return e.giveUp(ctx, ev, OutcomeConflicted, fmt.Errorf("plan still rejected on %d nodes after %d retries", len(pr.RejectedNodes), attempt))
		}
		ev.Retries++
		minIndex = pr.RefreshIndex
		e.log.Debug("plan conflicted; recomputing on a newer view", "job", jobID,
			"rejected_nodes", len(pr.RejectedNodes), "refresh_index", pr.RefreshIndex)
	}
}

// giveUp ends an evaluation with outcome o (OutcomeCanceled instead if ctx
// ended), logs the reason and enqueues the job again when the outcome
// calls for it.
func (e *Evaluator) giveUp(ctx context.Context, ev Evaluation, o Outcome, err error) Evaluation {
	if ctx.Err() != nil {
		ev.Outcome, ev.Err = OutcomeCanceled, ctx.Err()
		return ev
	}
	ev.Outcome, ev.Err = o, err
	switch o {
	case OutcomeConflicted:
		e.log.Warn("giving up on the job for now: its plans keep conflicting", "job", ev.JobID, "error", err, "retry_in", ConflictBackoff)
		e.host.EnqueueAt(ev.JobID, ev.Priority, e.now().Add(ConflictBackoff))
	case OutcomeInvalidJob:
		e.log.Error("cannot schedule job until it changes", "job", ev.JobID, "error", err)
	default:
		e.log.Error("evaluation failed; retrying the job later", "job", ev.JobID, "outcome", o.String(), "error", err, "retry_in", ErrorBackoff)
		e.host.EnqueueAt(ev.JobID, ev.Priority, e.now().Add(ErrorBackoff))
	}
	return ev
}

// snapshotAtLeast returns a view at least as new as minIndex, waiting a
// bounded time for it.
func (e *Evaluator) snapshotAtLeast(ctx context.Context, minIndex uint64) (State, error) {
	for try := 0; ; try++ {
		st, err := e.snapshot()
		if err == nil && st == nil {
			err = errors.New("snapshot source returned no state")
		}
		if err != nil || st.Index() >= minIndex || try >= staleSnapshotTries {
			return st, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// submit hands a plan to the planner and returns the check's answer. A
// plain planner commits before it answers; the commit is reported here. A
// pipelined one answers once the plan is checked, and a watcher reports
// the commit.
func (e *Evaluator) submit(ctx context.Context, jobID string, priority int, plan *structs.Plan) (*structs.PlanResult, error) {
	if e.pipelined == nil {
		pr, err := e.planner.SubmitPlan(ctx, plan)
		if err == nil && pr == nil {
			err = errors.New("planner returned no result")
		}
		if err != nil {
			return nil, err
		}
		e.host.Committed(jobID, len(pr.Placed))
		return pr, nil
	}
	select {
	case e.inflight <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	pr, wait, err := e.pipelined.SubmitPlanPipelined(ctx, plan)
	if err == nil && (pr == nil || wait == nil) {
		err = errors.New("planner returned no result or no wait")
	}
	if err != nil {
		<-e.inflight
		return nil, err
	}
	e.watchers.Add(1)
	go e.watch(ctx, jobID, priority, wait)
	return pr, nil
}

// watch waits for a pipelined plan's commit and reports it, or enqueues
// the job again if it failed (unless ctx ended: a new leader evaluates
// every job anyway).
func (e *Evaluator) watch(ctx context.Context, jobID string, priority int, wait func() (*structs.PlanResult, error)) {
	defer e.watchers.Done()
	defer func() { <-e.inflight }()
	res, err := wait()
	if err == nil && res == nil {
		err = errors.New("planner returned no commit result")
	}
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("plan commit failed; retrying the job later", "job", jobID, "error", err, "retry_in", ErrorBackoff)
			e.host.EnqueueAt(jobID, priority, e.now().Add(ErrorBackoff))
		}
		return
	}
	e.host.Committed(jobID, len(res.Placed))
}

// Wait returns once every pipelined plan submitted so far has been
// answered. Call it after the goroutines calling Evaluate have returned.
func (e *Evaluator) Wait() { e.watchers.Wait() }
