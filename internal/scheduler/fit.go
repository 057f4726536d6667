package scheduler

import (
	"errors"
	"fmt"

	"github.com/gantry-project/gantry/internal/structs"
)

// Sentinel errors of CheckNodeFit, for appliers that branch on the cause.
var (
	ErrNodeMissing  = errors.New("node not found")
	ErrNodeNotReady = errors.New("node not ready")
	ErrNodeFull     = errors.New("node out of capacity")
)

// LiveUsage sums the resources held by live allocations (desired run and not
// finished on the client), skipping those whose IDs are in removed.
func LiveUsage(allocs []*structs.Allocation, removed map[string]bool) structs.Resources {
	var used structs.Resources
	for _, a := range allocs {
		if a.Terminal() || removed[a.ID] {
			continue
		}
		used = used.Add(a.Resources)
	}
	return used
}

// CheckNodeFit is the plan applier's check of one node's part of a plan:
// the node exists and is ready (when adding), and its live allocations,
// minus those the plan stops or evicts (removed), plus the new placements,
// fit its capacity. It is the guard against over-commit; the server's
// applier and the schedtest harness both use it so they agree exactly.
func CheckNodeFit(node *structs.Node, existing []*structs.Allocation, removed map[string]bool, placements []*structs.Allocation) error {
	if len(placements) == 0 {
		return nil // stops and evictions only free room
	}
	if node == nil {
		return ErrNodeMissing
	}
	if r := nodeStatusReason(node); r != "" {
		return fmt.Errorf("node %s: %w (%s)", node.ID, ErrNodeNotReady, r)
	}
	used := LiveUsage(existing, removed)
	for _, p := range placements {
		used = used.Add(p.Resources)
	}
	if ok, dim := node.Capacity.Fits(used); !ok {
		return fmt.Errorf("node %s: %w: %s needs %s of %s", node.ID, ErrNodeFull, dim, used, node.Capacity)
	}
	return checkPorts(node, existing, removed, placements)
}
