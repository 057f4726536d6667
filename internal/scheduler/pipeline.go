package scheduler

import (
	"context"

	"github.com/gantry-project/gantry/internal/structs"
)

// PipelinedPlanner is a Planner that checks a plan at once and commits it
// later, so a scheduler can decide its next job while the plan travels
// through Raft (Nomad's plan applier does the same: plan N+1 is checked
// while plan N is being committed).
//
// Once SubmitPlanPipelined returns, the accepted part of the plan is
// visible in every later view of the scheduler's snapshot function,
// committed or not. If the commit fails, Wait reports the error and the
// accepted part vanishes from later views, together with every plan
// checked against it.
type PipelinedPlanner interface {
	Planner
	// SubmitPlanPipelined checks plan and returns what was accepted
	// (Placed, RejectedNodes, RefreshIndex; Index is 0) and a wait that
	// returns the full result once the accepted part is committed and
	// applied locally.
	SubmitPlanPipelined(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, func() (*structs.PlanResult, error), error)
}
