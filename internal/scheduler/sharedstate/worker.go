package sharedstate

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// staleSnapshotTries bounds the wait for a snapshot at least as new as a
// conflict's refresh index (1ms apart). The server's applier returns only
// after the entry applied locally, so the first try normally succeeds; if
// not, the plan is computed on what there is and the applier checks it
// anyway.
const staleSnapshotTries = 100

// worker is one goroutine of a pool. Its random source and feasibility
// cache are its own: workers share nothing but the queue and the planner.
type worker struct {
	s     *Scheduler
	pool  int
	id    int
	rng   *rand.Rand
	cache *scheduler.FeasibilityCache
}

func (w *worker) run(ctx context.Context) {
	p := w.s.pools[w.pool]
	for {
		if ctx.Err() != nil {
			return
		}
		it, ok := w.s.take(w.pool)
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			continue
		}
		w.process(ctx, it.JobID, it.Priority)
	}
}

// outcome counts what one job's processing did.
type outcome struct {
	placed, preempted                      int
	submitted, conflicts, commits, retries int
}

// process schedules one job optimistically: snapshot, reconcile and place,
// submit; on a conflict (nodes rejected), again on a snapshot at least as
// new as the refresh index, up to MaxPlanRetries times, then the job goes
// back to the queue after a short backoff.
func (w *worker) process(ctx context.Context, jobID string, priority int) {
	s := w.s
	pc := s.pools[w.pool].cfg
	start := s.now()
	var o outcome
	var jobType structs.JobType
	known := false
	var minIndex uint64
	opts := scheduler.Options{SampleSize: pc.SampleSize, Rand: w.rng, Now: s.now, Cache: w.cache}
	for attempt := 0; ; attempt++ {
		st, err := w.snapshot(ctx, minIndex)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("snapshot failed; retrying job later", "job", jobID, "scheduler", pc.Name, "error", err)
				s.retries.After(jobID, priority, s.now().Add(errorBackoff))
			}
			break
		}
		res, err := scheduler.ComputePlan(opts, st, jobID)
		if err != nil {
			// Bad data in state: retrying would fail the same way until
			// the job changes, which enqueues it again.
			s.log.Error("cannot schedule job", "job", jobID, "scheduler", pc.Name, "error", err)
			break
		}
		if j := st.JobByID(jobID); j != nil {
			priority, jobType, known = j.Priority, j.Type, true
		}
		if !res.RetryAt.IsZero() {
			s.retries.After(jobID, priority, res.RetryAt)
		}
		if res.Plan.IsNoOp() {
			break
		}
		if s.beforeSubmit != nil {
			s.beforeSubmit(jobID)
		}
		pr, err := s.planner.SubmitPlan(ctx, res.Plan)
		if err == nil && pr == nil {
			err = errors.New("planner returned no result")
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("plan submission failed; retrying job later", "job", jobID, "scheduler", pc.Name, "error", err)
				s.retries.After(jobID, priority, s.now().Add(errorBackoff))
			}
			break
		}
		o.submitted++
		o.placed += len(pr.Placed)
		o.preempted += scheduler.RequeueVictims(st, res, pr, s.Enqueue)
		if len(pr.RejectedNodes) == 0 {
			o.commits++
			break
		}
		o.conflicts++
		if attempt >= s.cfg.MaxPlanRetries {
			s.log.Warn("plan still conflicting after retries; queueing the job again",
				"job", jobID, "scheduler", pc.Name, "retries", attempt, "rejected_nodes", len(pr.RejectedNodes))
			s.retries.After(jobID, priority, s.now().Add(conflictBackoff))
			break
		}
		o.retries++
		minIndex = pr.RefreshIndex
		s.log.Debug("plan conflicted; retrying on a newer snapshot", "job", jobID, "scheduler", pc.Name,
			"rejected_nodes", len(pr.RejectedNodes), "refresh_index", pr.RefreshIndex)
	}
	s.record(w, s.now().Sub(start), o)
	s.release(jobID, jobType, known, w.pool)
	if s.processed != nil {
		s.processed(jobID)
	}
}

// snapshot returns a state view at least as new as minIndex, waiting a
// bounded time for it.
func (w *worker) snapshot(ctx context.Context, minIndex uint64) (scheduler.State, error) {
	for try := 0; ; try++ {
		st, err := w.s.snapshot()
		if err == nil && st == nil {
			err = errors.New("snapshot function returned no state")
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

// record adds one job's processing to the pool's counters and metrics.
func (s *Scheduler) record(w *worker, d time.Duration, o outcome) {
	p := s.pools[w.pool]
	s.mu.Lock()
	p.busy[w.id] += d
	p.evaluations++
	p.placements += uint64(o.placed)
	p.preemptions += uint64(o.preempted)
	p.plansSubmitted += uint64(o.submitted)
	p.conflicts += uint64(o.conflicts)
	p.commits += uint64(o.commits)
	p.retries += uint64(o.retries)
	s.lat.Add(d)
	s.mu.Unlock()
	if m := s.m; m != nil {
		l := p.cfg.Name
		m.evaluations.WithLabelValues(l).Inc()
		m.placements.WithLabelValues(l).Add(float64(o.placed))
		m.preemptions.WithLabelValues(l).Add(float64(o.preempted))
		m.plans.WithLabelValues(l).Add(float64(o.submitted))
		m.conflicts.WithLabelValues(l).Add(float64(o.conflicts))
		m.retries.WithLabelValues(l).Add(float64(o.retries))
		m.busy.WithLabelValues(l).Add(d.Seconds())
		m.latency.WithLabelValues(l).Observe(d.Seconds())
	}
}
