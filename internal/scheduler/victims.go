package scheduler

import (
	"slices"

	"github.com/gantry-project/gantry/internal/structs"
)

// RequeueVictims hands the jobs of the allocations that the committed part
// of a plan evicted to enqueue (each job once, at its current priority),
// and returns how many allocations were evicted. Victims on nodes the
// applier rejected were not evicted.
func RequeueVictims(st State, res *Result, pr *structs.PlanResult, enqueue func(jobID string, priority int)) int {
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
		enqueue(v.JobID, prio)
	}
	return n
}
