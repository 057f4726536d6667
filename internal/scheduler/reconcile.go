package scheduler

import (
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// Stop descriptions users see on stopped allocations.
const (
	DescJobStopped  = "job stopped"
	DescJobUpdated  = "job updated"
	DescScaledDown  = "scaled down"
	DescDuplicate   = "duplicate copy"
	DescNodeDrained = "node drained"
	DescNodeDown    = "node down"
)

// Reconciliation is what one job needs: allocations to stop, copies to
// place, and when to look again if a replacement is waiting for its delay.
type Reconciliation struct {
	Stops []structs.AllocStop
	Place []PlaceRequest
	// Delayed lists the failed copies whose replacement waits for the
	// reschedule policy's delay, by index.
	Delayed []DelayedReschedule
	// RetryAt is the earliest time a failed copy may be replaced (the
	// earliest of Delayed); zero when nothing waits. The caller wakes the
	// job then (the architectures' delayed retries): nothing polls.
	RetryAt time.Time
}

// DelayedReschedule is a failed copy waiting to be replaced.
type DelayedReschedule struct {
	Index int
	// Previous is the failed allocation the replacement will replace.
	Previous string
	// Attempt is the reschedule the replacement will be: its
	// RescheduleCount (1 for the first of a chain).
	Attempt int
	// Delay is the wait the policy's delay function gives this attempt,
	// counted from the failure (the failed copy's last change); At is when
	// it ends.
	Delay time.Duration
	At    time.Time
}

// rescheduleAttempt returns the reschedule a failed copy's replacement is
// (its RescheduleCount) and the wait before it, from the policy's delay
// function. A copy that ran (from placement to failure) for longer than
// MaxDelay failed after a good run, not in a crash loop: the backoff
// starts over at Delay, and for an unlimited policy so does the count (a
// limited one keeps counting towards its Attempts).
func rescheduleAttempt(pol structs.ReschedulePolicy, failed *structs.Allocation) (int, time.Duration) {
	attempt := failed.RescheduleCount + 1
	if pol.MaxDelay > 0 && failed.ModifyTime-failed.CreateTime > int64(pol.MaxDelay) {
		if pol.Unlimited {
			attempt = 1
		}
		return attempt, pol.NextDelay(1)
	}
	return attempt, pol.NextDelay(attempt)
}

// Reconcile compares a job with its allocations and decides what to stop and
// what to place. It is pure: nodeByID looks nodes up in the same view, now is
// the injected clock. A nil job means the job was purged.
//
// Rules: a purged or stopped job stops every live allocation. Otherwise each
// index 0..Count-1 needs one live allocation of the current version. Copies
// at index >= Count are scaled down, duplicates stopped, old versions and
// copies on draining or down nodes stopped and replaced. An index with no
// live copy is placed again unless its batch copy completed, or its latest
// copy failed and the reschedule policy forbids (or delays) a replacement:
// the delay grows with the chain's reschedule count as the policy's delay
// function says (rescheduleAttempt), so a crash loop backs off up to
// MaxDelay instead of placing a copy every few seconds.
func Reconcile(job *structs.Job, allocs []*structs.Allocation, nodeByID func(string) *structs.Node, now time.Time) *Reconciliation {
	r := &Reconciliation{}
	stop := func(a *structs.Allocation, desc string) {
		r.Stops = append(r.Stops, structs.AllocStop{
			AllocID: a.ID, NodeID: a.NodeID, Desired: structs.AllocDesiredStop, Description: desc,
		})
	}
	if job == nil || job.Stop || job.IsParent() { // a periodic or parameterized template runs nothing itself
		for _, a := range allocs {
			if !a.Terminal() {
				stop(a, DescJobStopped)
			}
		}
		return r
	}

	// Scale down first, in index order so plans are deterministic.
	byIndex := scaleDown(allocs, job.Count, stop)
	for idx := 0; idx < job.Count; idx++ {
		r.reconcileIndex(job, idx, byIndex[idx], nodeByID, now, stop)
	}
	return r
}

// scaleDown groups allocs by index and stops the live ones at indexes
// outside [0, count), in index order so plans are deterministic.
func scaleDown(allocs []*structs.Allocation, count int, stop func(*structs.Allocation, string)) map[int][]*structs.Allocation {
	byIndex := map[int][]*structs.Allocation{}
	for _, a := range allocs {
		byIndex[a.Index] = append(byIndex[a.Index], a)
	}
	for _, idx := range slices.Sorted(mapKeys(byIndex)) {
		if idx >= 0 && idx < count {
			continue
		}
		for _, a := range byIndex[idx] {
			if !a.Terminal() {
				stop(a, DescScaledDown)
			}
		}
	}
	return byIndex
}

func mapKeys[V any](m map[int]V) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// nodeProblem says why a live allocation must leave its node, or "".
func nodeProblem(a *structs.Allocation, nodeByID func(string) *structs.Node) string {
	n := nodeByID(a.NodeID)
	switch {
	case n == nil || n.Status != structs.NodeStatusReady:
		return DescNodeDown
	case n.Drain:
		return DescNodeDrained
	}
	return ""
}

func (r *Reconciliation) reconcileIndex(job *structs.Job, idx int, allocs []*structs.Allocation,
	nodeByID func(string) *structs.Node, now time.Time, stop func(*structs.Allocation, string)) {
	// Newest first: the head of the replacement chain decides.
	slices.SortFunc(allocs, newerFirst)

	var keep *structs.Allocation
	var replaced *structs.Allocation // the live copy stopped for a reason that needs a successor
	for _, a := range allocs {
		if a.Terminal() {
			continue
		}
		switch {
		case a.JobVersion < job.Version:
			stop(a, DescJobUpdated)
			replaced = pick(replaced, a)
		case nodeProblem(a, nodeByID) != "":
			stop(a, nodeProblem(a, nodeByID))
			replaced = pick(replaced, a)
		case keep == nil:
			keep = a
		default:
			stop(a, DescDuplicate)
		}
	}
	if keep != nil {
		return
	}
	r.placeMissing(job, idx, allocs, replaced, now)
}

// placeMissing decides the placement of an index with no live copy:
// replaced is the live copy just stopped for a reason that needs a
// successor, if any; allocs are the index's allocations, newest first.
func (r *Reconciliation) placeMissing(job *structs.Job, idx int, allocs []*structs.Allocation, replaced *structs.Allocation, now time.Time) {
	if replaced != nil {
		r.Place = append(r.Place, PlaceRequest{
			Index: idx, Previous: replaced.ID, RescheduleCount: replaced.RescheduleCount, Reason: "replacement",
		})
		return
	}
	if len(allocs) == 0 {
		r.Place = append(r.Place, PlaceRequest{Index: idx, Reason: "new"})
		return
	}
	if job.Type == structs.JobTypeBatch {
		for _, a := range allocs {
			if a.ClientStatus == structs.AllocClientComplete {
				return // a batch copy that completed is done for good
			}
		}
	}
	last := allocs[0]
	req := PlaceRequest{Index: idx, Previous: last.ID, RescheduleCount: last.RescheduleCount}
	if last.ClientStatus == structs.AllocClientFailed && last.DesiredStatus == structs.AllocDesiredRun {
		// Failed on its own (not stopped by us): the reschedule policy rules.
		pol := job.Reschedule
		if !pol.Unlimited && last.RescheduleCount >= pol.Attempts {
			return
		}
		attempt, delay := rescheduleAttempt(pol, last)
		due := time.Unix(0, last.ModifyTime).Add(delay)
		if now.Before(due) {
			r.Delayed = append(r.Delayed, DelayedReschedule{Index: idx, Previous: last.ID, Attempt: attempt, Delay: delay, At: due})
			if r.RetryAt.IsZero() || due.Before(r.RetryAt) {
				r.RetryAt = due
			}
			return
		}
		req.RescheduleCount = attempt
		req.Reason = "rescheduled"
	} else {
		// Lost, stopped, evicted, or a completed service copy: replace.
		req.Reason = "replacement"
	}
	r.Place = append(r.Place, req)
}

// newerFirst orders allocations newest first by creation index, then time.
func newerFirst(a, b *structs.Allocation) int {
	switch {
	case a.CreateIndex != b.CreateIndex:
		if a.CreateIndex > b.CreateIndex {
			return -1
		}
		return 1
	case a.CreateTime != b.CreateTime:
		if a.CreateTime > b.CreateTime {
			return -1
		}
		return 1
	}
	return cmpString(a.ID, b.ID)
}

func pick(cur, a *structs.Allocation) *structs.Allocation {
	if cur == nil {
		return a
	}
	return cur
}
