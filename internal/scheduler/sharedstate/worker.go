package sharedstate

import (
	"context"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
)

// worker is one goroutine of a pool. Its random source and feasibility
// cache are its own: workers share nothing but the queue, the evaluator
// and the planner.
type worker struct {
	s    *Scheduler
	pool int
	id   int
	opts scheduler.Options
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

// process evaluates one job optimistically (the evaluator recomputes it
// on a newer snapshot while its plan conflicts), counts it, and lets go of
// it.
func (w *worker) process(ctx context.Context, jobID string, priority int) {
	s := w.s
	p := s.pools[w.pool]
	start := s.env.Now()
	ev := p.eval.Evaluate(ctx, w.opts, jobID, priority)
	s.record(w, s.env.Now().Sub(start), ev)
	s.release(jobID, ev.Job, w.pool)
	if s.env.Evaluated != nil {
		s.env.Evaluated(ev)
	}
}

// record adds one job's evaluation to the pool's counters and metrics.
// Placements are counted as they commit (pool.Committed).
func (s *Scheduler) record(w *worker, d time.Duration, ev scheduler.Evaluation) {
	p := s.pools[w.pool]
	commits := ev.Plans - ev.Conflicts
	s.mu.Lock()
	p.busy[w.id] += d
	p.evaluations++
	p.preemptions += uint64(ev.Preempted)
	p.plansSubmitted += uint64(ev.Plans)
	p.conflicts += uint64(ev.Conflicts)
	p.commits += uint64(commits)
	p.retries += uint64(ev.Retries)
	s.lat.Add(d)
	s.mu.Unlock()
	if m := s.m; m != nil {
		l := p.cfg.Name
		m.evaluations.WithLabelValues(l).Inc()
		m.preemptions.WithLabelValues(l).Add(float64(ev.Preempted))
		m.plans.WithLabelValues(l).Add(float64(ev.Plans))
		m.conflicts.WithLabelValues(l).Add(float64(ev.Conflicts))
		m.retries.WithLabelValues(l).Add(float64(ev.Retries))
		m.busy.WithLabelValues(l).Add(d.Seconds())
		m.latency.WithLabelValues(l).Observe(d.Seconds())
	}
}

// Enqueue, EnqueueAt and Committed make a pool its evaluator's
// scheduler.Host.

func (p *pool) Enqueue(jobID string, priority int) { p.s.Enqueue(jobID, priority) }

func (p *pool) EnqueueAt(jobID string, priority int, at time.Time) {
	p.s.retries.After(jobID, priority, at)
}

func (p *pool) Committed(_ string, placed int) {
	p.s.mu.Lock()
	p.placements += uint64(placed)
	p.s.mu.Unlock()
	if m := p.s.m; m != nil {
		m.placements.WithLabelValues(p.cfg.Name).Add(float64(placed))
	}
}
