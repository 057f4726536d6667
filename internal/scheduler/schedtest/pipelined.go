package schedtest

import (
	"context"
	"sync"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// PipelinedPlanner is a scheduler.PipelinedPlanner over a Planner, as the
// server's applier is one: a plan is checked and applied at once (so the
// next snapshot sees it, as the server's overlay does), and its commit is
// reported only when the test answers it with Commit.
type PipelinedPlanner struct {
	*Planner

	mu    sync.Mutex
	gates map[string]chan error // by job: outcomes of its commits
}

var _ scheduler.PipelinedPlanner = (*PipelinedPlanner)(nil)

// NewPipelinedPlanner returns a pipelined planner over p.
func NewPipelinedPlanner(p *Planner) *PipelinedPlanner {
	return &PipelinedPlanner{Planner: p, gates: map[string]chan error{}}
}

func (g *PipelinedPlanner) gate(jobID string) chan error {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.gates[jobID]
	if !ok {
		c = make(chan error)
		g.gates[jobID] = c
	}
	return c
}

// SubmitPlanPipelined applies the plan and returns a wait that blocks
// until the test calls Commit for the plan's job.
func (g *PipelinedPlanner) SubmitPlanPipelined(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, func() (*structs.PlanResult, error), error) {
	res, err := g.SubmitPlan(ctx, plan)
	if err != nil {
		return nil, nil, err
	}
	gate := g.gate(plan.JobID)
	early := *res
	early.Index = 0 // not committed yet
	return &early, func() (*structs.PlanResult, error) {
		if err := <-gate; err != nil {
			return nil, err
		}
		return res, nil
	}, nil
}

// Commit answers the next commit of one of the job's plans: nil commits
// it, an error fails it. It blocks until the scheduler waits for it.
func (g *PipelinedPlanner) Commit(jobID string, err error) { g.gate(jobID) <- err }
