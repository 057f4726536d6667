package scheduler

import (
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// Stop descriptions of rolling updates and drains.
const (
	DescCanaryFailed = "canary of a failed deployment"
)

// drainPoll bounds the wait of a drain held back by replacements that are
// not running yet: nothing else wakes the job when they start.
const drainPoll = time.Second

// DeploymentReader is implemented by State views that keep deployments
// (the server's state store and its overlay). Without it a job with an
// update block replaces its copies at once, as before deployments.
type DeploymentReader interface {
	// LatestDeployment returns the job's newest deployment, or nil.
	LatestDeployment(jobID string) *structs.Deployment
}

// ReconcileJob reconciles a job on a view: Reconcile, or for a job that
// rolls (update block) or moves in waves off draining nodes (migrate or
// update block), ReconcileRolling with the job's deployment when the view
// keeps deployments. Jobs with neither block take Reconcile at the cost of
// two nil checks.
func ReconcileJob(state State, job *structs.Job, allocs []*structs.Allocation, now time.Time) *Reconciliation {
	if job == nil || (job.Update == nil && job.Migrate == nil) || job.Stop || job.IsParent() || job.Type != structs.JobTypeService {
		return Reconcile(job, allocs, state.NodeByID, now)
	}
	var dep *structs.Deployment
	dr, tracked := state.(DeploymentReader)
	if tracked {
		dep = dr.LatestDeployment(job.ID)
	}
	return ReconcileRolling(job, allocs, dep, tracked, state.NodeByID, now)
}

// slot is what one index of a rolling job holds.
type slot struct {
	idx    int
	allocs []*structs.Allocation // newest first
	fresh  *structs.Allocation   // live copy of the current version on a good node
	old    *structs.Allocation   // live copy of an older version on a good node
	// draining is a live copy on a draining node, waiting for its turn.
	draining *structs.Allocation
	replaced *structs.Allocation // stopped now for a reason that needs a successor
	// freshEver: a copy of the current version was placed here while an
	// older one runs (a canary, live or not).
	freshEver bool
}

// ReconcileRolling is Reconcile for a service job with an update or
// migrate block. It differs in three ways:
//
//   - An older version's copies are replaced (stop + place, as Reconcile
//     does) only while the job's deployment of the current version is
//     running, at most MaxParallel new copies not yet healthy (as the
//     deployment recorded them) at a time, in index order. During the
//     canary phase, Canary new copies are placed beside old ones instead
//     and nothing is stopped; after promotion an old copy beside a healthy
//     canary is stopped. A canary beside an old copy of a failed
//     deployment is stopped, the old copy kept. tracked false (a view that
//     keeps no deployments) replaces every old copy at once.
//   - Copies on a draining node move at most DrainLimit at a time: a copy
//     is stopped and replaced only while fewer current-version copies than
//     that are not yet healthy (structs.AllocHealth); past the node's drain
//     deadline the rest are stopped at once.
//   - Everything else (scale down, lost copies, failed copies and their
//     reschedule policy, duplicates) is Reconcile's rule.
func ReconcileRolling(job *structs.Job, allocs []*structs.Allocation, dep *structs.Deployment, tracked bool,
	nodeByID func(string) *structs.Node, now time.Time) *Reconciliation {
	r := &Reconciliation{}
	stop := func(a *structs.Allocation, desc string) {
		r.Stops = append(r.Stops, structs.AllocStop{
			AllocID: a.ID, NodeID: a.NodeID, Desired: structs.AllocDesiredStop, Description: desc,
		})
	}
	byIndex := scaleDown(allocs, job.Count, stop)
	drainMax, minHealthy, healthyDeadline, waves := job.DrainLimit()

	slots := make([]slot, job.Count)
	for idx := range slots {
		s := &slots[idx]
		s.idx = idx
		s.allocs = byIndex[idx]
		slices.SortFunc(s.allocs, newerFirst)
		oldLive := false
		for _, a := range s.allocs {
			if !a.Terminal() && a.JobVersion < job.Version {
				oldLive = true
			}
		}
		for _, a := range s.allocs {
			if a.JobVersion == job.Version && oldLive {
				s.freshEver = true
			}
			if a.Terminal() {
				continue
			}
			switch n := nodeByID(a.NodeID); {
			case n == nil || n.Status != structs.NodeStatusReady:
				stop(a, DescNodeDown)
				s.replaced = pick(s.replaced, a)
				continue
			case n.Drain && (!waves || (n.DrainDeadline > 0 && now.UnixNano() >= n.DrainDeadline)):
				stop(a, DescNodeDrained)
				s.replaced = pick(s.replaced, a)
				continue
			case n.Drain:
				if s.draining == nil && s.fresh == nil && s.old == nil {
					s.draining = a
				} else {
					stop(a, DescNodeDrained) // another copy serves the index
				}
				continue
			}
			switch {
			case a.JobVersion < job.Version && s.old == nil:
				s.old = a
			case a.JobVersion >= job.Version && s.fresh == nil:
				s.fresh = a
			default:
				stop(a, DescDuplicate)
			}
		}
	}

	cur := dep
	if cur != nil && cur.JobVersion != job.Version {
		cur = nil
	}
	// canaryPhase: the deployment waits for promotion (paused too); only a
	// running one places canaries.
	canaryPhase := cur != nil && cur.Active() && cur.InCanaryPhase()
	failed := cur != nil && (cur.Status == structs.DeploymentFailed || cur.Status == structs.DeploymentCancelled)

	// Copies of the current version not yet healthy, for the update's
	// budget (as the deployment recorded them) and the drain's (by the
	// health rule, with when the next one becomes healthy).
	needReport := job.HasChecks()
	notHealthy, moving := 0, 0
	var nextHealthy time.Time
	for i := range slots {
		f := slots[i].fresh
		if f == nil {
			continue
		}
		if cur != nil && !cur.IsHealthy(f.ID) && !cur.IsUnhealthy(f.ID) {
			notHealthy++
		}
		if waves {
			st, at, _ := structs.CopyHealth(f, minHealthy, healthyDeadline, needReport, now)
			if st == structs.HealthPending {
				moving++
				if !at.IsZero() && (nextHealthy.IsZero() || at.Before(nextHealthy)) {
					nextHealthy = at
				}
			}
		}
	}
	updateBudget := 0
	switch {
	case !job.Rolls() || !tracked:
		updateBudget = job.Count // at once, as Reconcile
	case cur != nil && cur.Status == structs.DeploymentRunning && !canaryPhase:
		updateBudget = job.Update.MaxParallel - notHealthy
	}
	canaries := 0
	if canaryPhase && cur.Status == structs.DeploymentRunning {
		placed := 0
		for i := range slots {
			if slots[i].freshEver {
				placed++
			}
		}
		canaries = cur.DesiredCanaries - placed
	}
	drainBudget := drainMax - moving
	drainWaiting := false

	// First what does not wait: canaries and old copies beside a new one,
	// and indexes with no live copy (placed at once, as Reconcile does).
	for i := range slots {
		s := &slots[i]
		switch {
		case s.fresh != nil && s.old != nil:
			// A canary beside an old copy (or a replacement whose old copy
			// is still to stop).
			switch {
			case failed:
				stop(s.fresh, DescCanaryFailed)
			case canaryPhase:
			case !job.Rolls() || !tracked || cur == nil || cur.IsHealthy(s.fresh.ID):
				stop(s.old, DescJobUpdated)
			}
			if s.draining != nil {
				stop(s.draining, DescNodeDrained)
			}
		case s.fresh != nil, s.old != nil:
			if s.draining != nil {
				stop(s.draining, DescNodeDrained)
			}
		case s.draining != nil:
		case s.replaced == nil && len(s.allocs) > 0 && s.allocs[0].JobVersion < job.Version &&
			s.allocs[0].ClientStatus == structs.AllocClientFailed:
			// An older version's copy failed: its reschedule delay is not
			// the new version's to wait for.
			r.Place = append(r.Place, PlaceRequest{Index: s.idx, Previous: s.allocs[0].ID, Reason: "replacement"})
		default:
			r.placeMissing(job, s.idx, s.allocs, s.replaced, now)
		}
	}
	// New copies placed above are not healthy yet: they use the budgets.
	updateBudget -= len(r.Place)
	drainBudget -= len(r.Place)
	for i := range slots {
		s := &slots[i]
		switch {
		case s.fresh == nil && s.old != nil:
			switch {
			case canaries > 0 && !s.freshEver:
				canaries--
				r.Place = append(r.Place, PlaceRequest{Index: s.idx, Reason: "canary"})
			case updateBudget > 0 && !canaryPhase:
				updateBudget--
				stop(s.old, DescJobUpdated)
				r.Place = append(r.Place, PlaceRequest{
					Index: s.idx, Previous: s.old.ID, RescheduleCount: s.old.RescheduleCount, Reason: "replacement",
				})
			}
		case s.fresh == nil && s.draining != nil:
			a := s.draining
			switch {
			case a.JobVersion < job.Version && updateBudget > 0 && !canaryPhase:
				updateBudget-- // an old copy on a draining node: the update replaces it
			case drainBudget > 0:
				drainBudget--
			default:
				drainWaiting = true
				if n := nodeByID(a.NodeID); n != nil && n.DrainDeadline > 0 {
					r.wakeAt(time.Unix(0, n.DrainDeadline))
				}
				continue
			}
			stop(a, DescNodeDrained)
			r.Place = append(r.Place, PlaceRequest{
				Index: s.idx, Previous: a.ID, RescheduleCount: a.RescheduleCount, Reason: "replacement",
			})
		}
	}
	if drainWaiting {
		if !nextHealthy.IsZero() {
			r.wakeAt(nextHealthy)
		}
		r.wakeAt(now.Add(drainPoll))
	}
	return r
}

// wakeAt moves RetryAt to t if that is earlier.
func (r *Reconciliation) wakeAt(t time.Time) {
	if r.RetryAt.IsZero() || t.Before(r.RetryAt) {
		r.RetryAt = t
	}
}
