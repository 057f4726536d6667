package state

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/gantry-project/gantry/internal/structs"
)

// Garbage collection: deleting terminal allocations and finished jobs.
//
// The leader chooses what to delete (internal/server/gc.go) and proposes it
// as structs.GCRequest entries; GarbageCollect applies one. The rules of
// what may go are here: an allocation is Collectable once it holds no
// resources and its task no longer runs, unless the scheduler still reads
// it (NeededAllocs, which the leader applies); a job once it is Finished
// and every allocation it has is collectable. Both properties only move one
// way (a terminal allocation stays terminal, an allocation that is not the
// newest at its index never becomes it), except through a change to the
// job, which moves its ModifyIndex: so the apply rechecks the job's index
// and each allocation's own state, never the whole job. Deleting
// an allocation is alloctable.go's remove (ID tree, node and job groups
// and node usage in one step) plus a bump of its node's alloc index row,
// so agents learn of it and drop their copy and its directory. None of it
// runs on the placement path.

// Collectable reports whether an allocation may be deleted: it is Terminal
// (uses no resources) and its task does not run. A stopped allocation
// whose agent has not killed the task yet is kept until the agent reports
// it done.
func Collectable(a *structs.Allocation) bool {
	return a.Terminal() && a.ClientStatus != structs.AllocClientRunning
}

// Finished reports whether a job is done for good: stopped, or a batch job
// whose every copy completed.
func Finished(job *structs.Job, allocs []*structs.Allocation) bool {
	return JobStatus(job, allocs) == structs.JobStatusDead
}

// NeededAllocs returns the IDs of a job's terminal allocations that the
// scheduler still reads, which garbage collection must keep while the job
// is not stopped (nil for a stopped or purged job: nothing is needed):
//
//   - the newest allocation at each index below Count, when it is
//     terminal: it heads the index's replacement chain, and its reschedule
//     count and the time it failed decide whether and when a replacement is
//     placed (scheduler.Reconcile). Without it the index would look never
//     placed, and be placed again at once with a fresh count;
//   - a batch job's completed allocations below Count: they mark the index
//     done for good (and the job dead), so they are kept until the whole
//     job is collected.
func NeededAllocs(job *structs.Job, allocs []*structs.Allocation) map[string]bool {
	if job == nil || job.Stop {
		return nil
	}
	if job.Type.PerNode() {
		return neededPerNode(job, allocs) // jobstatus.go
	}
	if job.HasGroups() {
		// Each group's indexes on their own (allocations of a removed
		// group are needed by no one).
		var needed map[string]bool
		for _, name := range job.GroupNames() {
			for id := range NeededAllocs(job.GroupView(name), allocsOfGroup(allocs, name)) {
				if needed == nil {
					needed = map[string]bool{}
				}
				needed[id] = true
			}
		}
		return needed
	}
	var needed map[string]bool
	keep := func(id string) {
		if needed == nil {
			needed = map[string]bool{}
		}
		needed[id] = true
	}
	head := map[int]*structs.Allocation{}
	for _, a := range allocs {
		if a.Index < 0 || a.Index >= job.Count {
			continue
		}
		if job.Type == structs.JobTypeBatch && a.ClientStatus == structs.AllocClientComplete {
			keep(a.ID)
		}
		if h := head[a.Index]; h == nil || newerFirst(a, h) < 0 {
			head[a.Index] = a
		}
	}
	for _, a := range head {
		if a.Terminal() {
			keep(a.ID)
		}
	}
	return needed
}

// newerFirst orders allocations newest first as the scheduler's
// reconciler does (creation index, then time, then ID), so both agree on
// the head of a chain.
func newerFirst(a, b *structs.Allocation) int {
	if c := cmp.Compare(b.CreateIndex, a.CreateIndex); c != 0 {
		return c
	}
	if c := cmp.Compare(b.CreateTime, a.CreateTime); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// SortNewestFirst sorts allocations as the reconciler ranks them.
func SortNewestFirst(allocs []*structs.Allocation) { slices.SortFunc(allocs, newerFirst) }

// GCResult counts what one GarbageCollect deleted.
type GCResult struct {
	Allocs, Jobs int
}

// GarbageCollect applies a garbage collection entry: it deletes the listed
// allocations of each job still at the listed ModifyIndex (still gone,
// for 0) that are still Collectable, then the listed jobs that are still
// at their ModifyIndex, Finished, and whose allocations are all
// collectable, with those allocations and the job's placement failure.
// Anything else listed is left as it is (it changed after the leader chose
// it); unknown IDs are skipped (the entry may be replayed). It reads no
// clock, and its work is the deletions plus one lookup per job: whether an
// allocation is needed (NeededAllocs) depends only on its job and on
// allocations newer than it, so the job's index guards the leader's choice
// and the job's other allocations are not read again.
func (s *Store) GarbageCollect(index uint64, req *structs.GCRequest) (GCResult, error) {
	var res GCResult
	if req == nil {
		return res, fmt.Errorf("garbage collection at %d: empty request", index)
	}
	err := s.write(func(txn *writeTxn) error {
		res = GCResult{}
		nodes := nodeBumper{}
		for _, g := range req.Allocs {
			job, err := jobTxn(txn, g.JobID)
			if err != nil {
				return err
			}
			if (job == nil && g.ModifyIndex != 0) || (job != nil && job.ModifyIndex != g.ModifyIndex) {
				continue
			}
			for _, id := range g.IDs {
				a := txn.allocs.get(id)
				if a == nil || a.JobID != g.JobID || !Collectable(a) {
					continue
				}
				txn.allocs.remove(id)
				nodes.add(a.NodeID)
				res.Allocs++
			}
		}
		failures := false
		for _, gj := range req.Jobs {
			job, err := jobTxn(txn, gj.ID)
			if err != nil {
				return err
			}
			if job == nil || job.ModifyIndex != gj.ModifyIndex {
				continue
			}
			allocs := txn.allocs.view().jobGroup(gj.ID).list()
			if !Finished(job, allocs) || slices.ContainsFunc(allocs, func(a *structs.Allocation) bool { return !Collectable(a) }) {
				continue
			}
			if _, err := txn.DeleteAll(TableJobs, "id", gj.ID); err != nil {
				return fmt.Errorf("job %s: %w", gj.ID, err)
			}
			if err := deleteJobVersions(txn, gj.ID); err != nil {
				return err
			}
			if err := deleteDeploymentsTxn(txn, index, gj.ID); err != nil {
				return err
			}
			for _, a := range allocs {
				txn.allocs.remove(a.ID)
				nodes.add(a.NodeID)
			}
			n, err := txn.DeleteAll(TablePlacementFailures, "id", gj.ID)
			if err != nil {
				return fmt.Errorf("placement failure of job %s: %w", gj.ID, err)
			}
			failures = failures || n > 0
			res.Allocs += len(allocs)
			res.Jobs++
		}
		if err := nodes.write(txn.allocs, index); err != nil {
			return err
		}
		var tables []string
		if res.Allocs > 0 {
			tables = append(tables, TableAllocs)
		}
		if res.Jobs > 0 {
			tables = append(tables, TableJobs)
		}
		if failures {
			tables = append(tables, TablePlacementFailures)
		}
		return bumpIndex(txn, index, tables...)
	})
	return res, err
}

// jobTxn returns the job with the ID in the transaction, or nil.
func jobTxn(txn *writeTxn, id string) (*structs.Job, error) {
	raw, err := txn.First(TableJobs, "id", id)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Job), nil
}

// EachAllocJob calls fn with the ID of every job that has allocations
// (its record may be gone: allocations left by older builds), in no
// particular order, until fn returns false.
func (s *Snapshot) EachAllocJob(fn func(jobID string) bool) {
	s.allocs.byJob.Ascend(func(it groupItem) bool { return fn(it.key) })
}
