package scheduler

import (
	"slices"

	"github.com/gantry-project/gantry/internal/structs"
)

// requeueVictims hands the jobs of the allocations that the accepted part
// of a plan evicts to host (each job once, at its current priority), and
// returns how many allocations are evicted. Victims on nodes the planner
// rejected are not evicted.
func requeueVictims(st State, res *Result, pr *structs.PlanResult, host Host) int {
	if len(res.Victims) == 0 {
		return 0
	}
	n := 0
	seen := map[string]bool{}
	for _, v := range res.Victims {
		if slices.Contains(pr.RejectedNodes, v.NodeID) {
			continue
		}
		n++
		if seen[v.JobID] {
			continue
		}
		seen[v.JobID] = true
		prio := v.Priority
		if j := st.JobByID(v.JobID); j != nil {
			prio = j.Priority
		}
		host.Enqueue(v.JobID, prio)
	}
	return n
}
