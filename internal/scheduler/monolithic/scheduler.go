// Package monolithic is gantry's monolithic scheduling architecture: one
// loop on the Raft leader with the global view of all pending work, a
// priority queue of jobs, and the shared placement core.
package monolithic

import (
	"context"
	"log/slog"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes a Scheduler. The zero value is usable.
type Config struct {
	SampleSize     int                   // feasible nodes ranked per placement; 0 = default
	Registerer     prometheus.Registerer // nil = no metrics registered
	Logger         *slog.Logger          // nil = discard
	Now            func() time.Time      // nil = time.Now (injected in tests)
	Seed           int64                 // seed of the placement randomness; 0 = time-based
	MaxPlanRetries int                   // retries of a job whose plan was partly rejected; 0 = default (3)
}

// Scheduler is the single scheduling loop.
type Scheduler struct {
	cfg      Config
	snapshot func() (scheduler.State, error)
	planner  scheduler.Planner
}

// New builds a scheduler; call Run to start it.
func New(cfg Config, snapshot func() (scheduler.State, error), planner scheduler.Planner) *Scheduler {
	return &Scheduler{cfg: cfg, snapshot: snapshot, planner: planner}
}

// Enqueue asks for the job to be reconciled.
func (s *Scheduler) Enqueue(jobID string, priority int) {}

// Run is the single scheduling loop; it blocks until ctx is done.
func (s *Scheduler) Run(ctx context.Context) { <-ctx.Done() }

// Status returns the figures shown by `gantry scheduler status`.
func (s *Scheduler) Status() api.SchedulerStatus {
	return api.SchedulerStatus{Architecture: "monolithic"}
}
