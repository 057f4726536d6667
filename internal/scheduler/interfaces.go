// Package scheduler is gantry's placement core: given a read-only view of
// cluster state and a job, it decides which allocations to add, stop or
// preempt, and hands the decision to a Planner as a Plan.
//
// It does not know who owns state or concurrency: the monolithic loop, the
// shared-state workers, the two-level offer frameworks, peers and the
// simulator all call the same code through these two interfaces.
package scheduler

import (
	"context"

	"github.com/gantry-project/gantry/internal/structs"
)

// State is a read-only, consistent view of cluster state at one index
// (a go-memdb snapshot on the server; maps in tests and the simulator).
// Returned objects must not be modified.
type State interface {
	// Index is the Raft index the view reflects.
	Index() uint64
	// Nodes returns every node, in any order.
	Nodes() []*structs.Node
	// NodeByID returns a node or nil.
	NodeByID(id string) *structs.Node
	// JobByID returns a job or nil.
	JobByID(id string) *structs.Job
	// AllocsByNode returns every allocation on a node, terminal ones too.
	AllocsByNode(nodeID string) []*structs.Allocation
	// AllocsByJob returns every allocation of a job, terminal ones too.
	AllocsByJob(jobID string) []*structs.Allocation
	// PlacementFailure returns the job's stored placement failure, or nil.
	// ComputePlan reads it to clear a failure exactly when one is stored
	// and to skip rewriting one that has not changed; a view that keeps
	// none returns nil, and its plans then never clear one.
	PlacementFailure(jobID string) *structs.PlacementFailure
}

// NodeUsageReader is implemented by State views that keep each node's usage
// (the server's state store and its overlay of uncommitted plans). With it
// the Placer reads a node's usage in O(1) instead of summing the node's
// allocations; it must equal the sum of Resources over the node's
// allocations that are not Terminal.
type NodeUsageReader interface {
	NodeUsage(nodeID string) structs.Resources
}

// QuotaReader is implemented by State views that know namespaces'
// quotas (the server's state store and its overlay of uncommitted plans).
// The Placer refuses a copy that would take its job's namespace over its
// quota, and says so in the placement failure; a view without it has no
// quotas. NamespaceUsage must equal the sum of Resources over the
// namespace's allocations that are not Terminal (structs.JobNamespace of
// their JobID), read in O(1).
type QuotaReader interface {
	// NamespaceQuota returns the namespace's quota, or nil for none.
	NamespaceQuota(ns string) *structs.Quota
	NamespaceUsage(ns string) structs.Resources
}

// Planner commits plans. The server's plan applier checks each node of the
// plan against current state and commits what still fits.
type Planner interface {
	SubmitPlan(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, error)
}
