package scheduler

import (
	"context"

	"github.com/gantry-project/gantry/internal/structs"
)

// Architecture is what the server needs from a scheduling architecture
// (monolithic, shared-state ...): work to do, a loop to run while leading,
// and the figures `gantry scheduler status` shows. Enqueue and Status may be
// called from any goroutine; Run blocks until ctx is done.
//
// An architecture owns queueing and concurrency only: each job it takes
// off its queue goes through an Evaluator, the one evaluation loop.
type Architecture interface {
	Enqueue(jobID string, priority int)
	Run(ctx context.Context)
	Status() structs.SchedulerStatus
}
