package state

import "github.com/gantry-project/gantry/internal/structs"

// JobStatus derives a job's status from its allocations at read time, so
// the stored job never needs rewriting when an allocation changes:
// dead if stopped, or a batch job whose every copy completed; running if
// any allocation runs; pending otherwise.
func JobStatus(job *structs.Job, allocs []*structs.Allocation) structs.JobStatus {
	if job.Stop {
		return structs.JobStatusDead
	}
	if job.IsParent() {
		return structs.JobStatusRunning // a template: its children run (Nomad says running too)
	}
	if job.Type == structs.JobTypeBatch && batchComplete(job, allocs) {
		return structs.JobStatusDead
	}
	if job.Type == structs.JobTypeSysBatch && sysbatchComplete(job, allocs) {
		return structs.JobStatusDead
	}
	for _, a := range allocs {
		if a.ClientStatus == structs.AllocClientRunning {
			return structs.JobStatusRunning
		}
	}
	return structs.JobStatusPending
}

func batchComplete(job *structs.Job, allocs []*structs.Allocation) bool {
	if job.HasGroups() {
		// Every group complete: each counts its own indexes.
		for _, name := range job.GroupNames() {
			if !batchComplete(job.GroupView(name), allocsOfGroup(allocs, name)) {
				return false
			}
		}
		return true
	}
	if job.Count == 0 {
		return true
	}
	done := make(map[int]bool, job.Count)
	for _, a := range allocs {
		if a.ClientStatus == structs.AllocClientComplete && a.Index < job.Count {
			done[a.Index] = true
		}
	}
	return len(done) == job.Count
}

// JobSummary counts a job's wanted allocations (desired status run, plus
// completed batch copies) by client status.
func JobSummary(allocs []*structs.Allocation) map[string]int {
	out := map[string]int{}
	for _, a := range allocs {
		if a.DesiredStatus == structs.AllocDesiredRun {
			out[a.ClientStatus]++
		}
	}
	return out
}

// JobWithStatus returns a copy of the job with its derived status set.
func (s *Snapshot) JobWithStatus(job *structs.Job) *structs.Job {
	c := *job // shallow: only Status changes; shared maps are not modified
	c.Status = JobStatus(job, s.AllocsByJob(job.ID))
	return &c
}

// sysbatchComplete: a sysbatch job is done once it ran somewhere and no
// copy is wanted and unfinished (every node's copy completed or ended).
// A node joining later reopens it.
func sysbatchComplete(job *structs.Job, allocs []*structs.Allocation) bool {
	completed := false
	for _, a := range allocs {
		if !a.Terminal() {
			return false
		}
		if a.JobVersion == job.Version && a.ClientStatus == structs.AllocClientComplete {
			completed = true
		}
	}
	return completed
}

// neededPerNode is NeededAllocs for system and sysbatch jobs: on each node,
// the newest allocation when it is terminal (it heads the node's chain,
// as an index's head for other jobs: scheduler.ReconcilePerNode reads its
// failure and reschedule count), and a sysbatch job's completed copies of
// the current version (without them the node would run it again).
func neededPerNode(job *structs.Job, allocs []*structs.Allocation) map[string]bool {
	needed := map[string]bool{}
	head := map[string]*structs.Allocation{}
	for _, a := range allocs {
		if job.Type == structs.JobTypeSysBatch && a.JobVersion == job.Version && a.ClientStatus == structs.AllocClientComplete {
			needed[a.ID] = true
		}
		if h := head[a.NodeID]; h == nil || newerFirst(a, h) < 0 {
			head[a.NodeID] = a
		}
	}
	for _, a := range head {
		if a.Terminal() {
			needed[a.ID] = true
		}
	}
	if len(needed) == 0 {
		return nil
	}
	return needed
}

// allocsOfGroup returns the allocations of one task group.
func allocsOfGroup(allocs []*structs.Allocation, group string) []*structs.Allocation {
	var out []*structs.Allocation
	for _, a := range allocs {
		if a.Group == group {
			out = append(out, a)
		}
	}
	return out
}
