package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// newDeployment returns the deployment a registration starts, or nil: a
// job that rolls (update block with max_parallel > 0) gets one for every
// new version, and when it runs again after a stop. It is written in the
// same Raft entry as the job, so no scheduler sees the new version
// without it. Canaries are asked for only when old copies run (a first
// version, or one after a stop, has nothing to compare with).
func newDeployment(job, existing *structs.Job) *structs.Deployment {
	if !job.Rolls() || job.IsParent() {
		return nil
	}
	if existing != nil && !existing.Stop && existing.Version == job.Version {
		return nil
	}
	d := &structs.Deployment{
		ID:         structs.NewUUID(),
		JobID:      job.ID,
		Namespace:  job.Namespace,
		JobVersion: job.Version,
		Strategy:   *job.Update,
		Status:     structs.DeploymentRunning,
		CreateTime: job.SubmitTime,
		ModifyTime: job.SubmitTime,
	}
	d.StatusDescription = "deployment is running"
	if existing != nil && !existing.Stop && job.Update.Canary > 0 {
		d.DesiredCanaries = job.Update.Canary
		d.StatusDescription = "deployment is running; canaries wait for promotion"
	}
	if pd := job.Update.ProgressDeadline; pd > 0 {
		d.RequireProgressBy = job.SubmitTime + int64(pd)
	}
	return d
}

// deployWatchMaxWait bounds the watcher's sleep when nothing is due (a
// clock step is noticed within it).
const deployWatchMaxWait = time.Minute

// deploymentDecision is what the watcher does about one deployment.
type deploymentDecision struct {
	// Update is the deployment as it should be stored; nil: unchanged.
	Update *structs.Deployment
	// Revert: the deployment failed with auto_revert; register the last
	// stable version again.
	Revert bool
	// Next is when to look again without a change (zero: only on one).
	Next time.Time
}

// decideDeployment is the watcher's rule, pure over its inputs for tests on
// a virtual clock. It judges every copy of the deployment's version placed
// since the deployment started with structs.AllocHealth (a copy the server
// stopped is not judged), records healthy and unhealthy ones, fails the
// deployment on an unhealthy copy or a passed progress deadline, records
// canaries and promotes them when auto_promote holds, and ends the
// deployment successful once every index holds a healthy copy of its
// version and no older copy runs.
func decideDeployment(dep *structs.Deployment, job *structs.Job, allocs []*structs.Allocation, now time.Time) deploymentDecision {
	var out deploymentDecision
	if dep == nil || !dep.Active() {
		return out
	}
	c := dep.Copy()
	changed := false
	setStatus := func(status, desc string) {
		if c.Status != status || c.StatusDescription != desc {
			c.Status, c.StatusDescription, changed = status, desc, true
		}
	}
	if job == nil || job.Stop || job.Version != dep.JobVersion {
		// The state ends these as the job changes; a deployment stored
		// by hand (a restore) is ended here.
		setStatus(structs.DeploymentCancelled, "job changed or stopped")
		c.ModifyTime = now.UnixNano()
		out.Update = c
		return out
	}
	st := dep.Strategy
	oldAt := map[int]bool{}
	for _, a := range allocs {
		if !a.Terminal() && a.JobVersion < dep.JobVersion {
			oldAt[a.Index] = true
		}
	}
	needReport := job.HasChecks()
	var unhealthy []string
	healthyByIndex := map[int]bool{}
	progress := false
	for _, a := range allocs {
		if a.JobVersion != dep.JobVersion || a.CreateIndex <= dep.CreateIndex {
			continue
		}
		if c.InCanaryPhase() && oldAt[a.Index] && !slices.Contains(c.Canaries, a.ID) {
			c.Canaries = append(c.Canaries, a.ID)
			changed = true
		}
		switch {
		case c.IsHealthy(a.ID):
			if !a.Terminal() {
				healthyByIndex[a.Index] = true
			}
			continue
		case c.IsUnhealthy(a.ID):
			continue
		case a.DesiredStatus != structs.AllocDesiredRun:
			continue // stopped by the server (scaled down, drained, a failed canary)
		}
		state, at, why := structs.CopyHealth(a, st.MinHealthyTime.D(), st.HealthyDeadline.D(), needReport, now)
		switch state {
		case structs.HealthHealthy:
			c.Healthy = insertSorted(c.Healthy, a.ID)
			healthyByIndex[a.Index] = true
			changed, progress = true, true
		case structs.HealthUnhealthy:
			c.Unhealthy = insertSorted(c.Unhealthy, a.ID)
			unhealthy = append(unhealthy, fmt.Sprintf("copy %s (%s) unhealthy: %s", shortID(a.ID), a.Name, why))
			changed = true
		default:
			out.Next = earliest(out.Next, at)
		}
	}
	if progress && st.ProgressDeadline > 0 && c.Status == structs.DeploymentRunning {
		c.RequireProgressBy = now.Add(st.ProgressDeadline.D()).UnixNano()
	}
	healthyCanaries := 0
	for _, id := range c.Canaries {
		if c.IsHealthy(id) {
			healthyCanaries++
		}
	}
	// A deployment waiting for a person to promote its canaries is not
	// failed for lack of progress (promotion moves the deadline).
	awaitingPromotion := c.InCanaryPhase() && healthyCanaries >= c.DesiredCanaries && !st.AutoPromote
	switch {
	case len(unhealthy) > 0:
		setStatus(structs.DeploymentFailed, "failed: "+strings.Join(unhealthy, "; "))
		out.Revert = st.AutoRevert
	case c.Status == structs.DeploymentRunning && !awaitingPromotion && c.RequireProgressBy > 0 && now.UnixNano() >= c.RequireProgressBy:
		setStatus(structs.DeploymentFailed, fmt.Sprintf("failed: no copy became healthy within progress_deadline %s", st.ProgressDeadline))
		out.Revert = st.AutoRevert
	case c.Status == structs.DeploymentPaused:
	case c.InCanaryPhase():
		if c.RequireProgressBy > 0 && !awaitingPromotion {
			out.Next = earliest(out.Next, time.Unix(0, c.RequireProgressBy))
		}
		switch {
		case healthyCanaries < c.DesiredCanaries:
		case st.AutoPromote:
			c.Promoted = true
			changed = true
			if st.ProgressDeadline > 0 {
				c.RequireProgressBy = now.Add(st.ProgressDeadline.D()).UnixNano()
			}
			setStatus(structs.DeploymentRunning, "canaries healthy and promoted (auto_promote); rolling the rest")
		default:
			setStatus(structs.DeploymentRunning, "canaries healthy: promote with `gantry deployment promote "+shortID(c.ID)+"`")
		}
	default:
		if c.RequireProgressBy > 0 {
			out.Next = earliest(out.Next, time.Unix(0, c.RequireProgressBy))
		}
		done := len(oldAt) == 0
		for idx := 0; done && idx < job.Count; idx++ {
			done = healthyByIndex[idx]
		}
		if done {
			setStatus(structs.DeploymentSuccessful, "deployment completed: every copy healthy")
		}
	}
	if changed {
		c.ModifyTime = now.UnixNano()
		out.Update = c
	}
	return out
}

func insertSorted(ids []string, id string) []string {
	i, found := slices.BinarySearch(ids, id)
	if found {
		return ids
	}
	return slices.Insert(ids, i, id)
}

func earliest(cur, t time.Time) time.Time {
	if t.IsZero() {
		return cur
	}
	if cur.IsZero() || t.Before(cur) {
		return t
	}
	return cur
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// deploymentWatcher is the leader duty that follows deployments. It keeps
// nothing of its own: everything it decides is in the deployments, so a
// new leader continues where the old one stopped.
type deploymentWatcher struct {
	// mu makes each change of a deployment (the watcher's, and the API's
	// pause, resume, promote and fail) a read, decide and apply in one
	// step, so neither overwrites the other's.
	mu sync.Mutex
}

// deploymentPass decides every active deployment at now, applies the
// changes through Raft and asks the scheduler to look at their jobs. It
// returns when to look again (zero: only on a change) and the watch set
// that fires on a change of what it read.
func (s *Server) deploymentPass(now time.Time) (time.Time, memdb.WatchSet, error) {
	s.deployWatch.mu.Lock()
	defer s.deployWatch.mu.Unlock()
	ws := memdb.NewWatchSet()
	snap := s.state.Snapshot()
	var updates []*structs.Deployment
	var reverts []*structs.Deployment
	var next time.Time
	for _, dep := range snap.Deployments(ws) {
		if !dep.Active() {
			continue
		}
		job := snap.JobByIDWatch(ws, dep.JobID)
		allocs := snap.AllocsByJobWatch(ws, dep.JobID)
		d := decideDeployment(dep, job, allocs, now)
		next = earliest(next, d.Next)
		if d.Update != nil {
			if d.Revert {
				if to := revertTarget(snap, dep, job); to != nil {
					d.Update.RevertedTo = to.Version
					d.Update.StatusDescription += fmt.Sprintf("; rolling back to version %d (auto_revert)", to.Version)
					reverts = append(reverts, d.Update)
				} else {
					d.Update.StatusDescription += "; no stable version to roll back to"
				}
			}
			updates = append(updates, d.Update)
		}
	}
	if len(updates) == 0 {
		return next, ws, nil
	}
	if _, _, err := s.raftApply(structs.DeploymentUpsertRequestType, &structs.DeploymentUpsertRequest{Deployments: updates, Time: now.UnixNano()}); err != nil {
		return time.Time{}, nil, err
	}
	for _, d := range updates {
		s.enqueueJob(d.JobID)
	}
	for _, d := range reverts {
		s.autoRevert(d)
	}
	return now, nil, nil // look again at once: the state changed
}

// revertTarget is the version auto_revert registers: the newest stable
// version before the failed one whose spec differs from the failed one's
// (reverting to an identical spec would fail the same way, forever).
func revertTarget(snap *state.Snapshot, dep *structs.Deployment, job *structs.Job) *structs.Job {
	if job == nil {
		return nil
	}
	for _, v := range snap.JobVersions(nil, dep.JobID) {
		if v.Version < dep.JobVersion && v.Stable && structs.SpecChanged(v, job) {
			return v
		}
	}
	return nil
}

// autoRevert registers the version a failed deployment rolls back to.
func (s *Server) autoRevert(dep *structs.Deployment) {
	snap := s.state.Snapshot()
	v := snap.JobVersion(dep.JobID, dep.RevertedTo)
	if v == nil {
		s.logger.Error("auto_revert: version no longer kept", "job", dep.JobID, "version", dep.RevertedTo)
		return
	}
	job := v.Copy()
	job.Stable = false
	if _, err := s.registerJob(job); err != nil {
		s.logger.Error("auto_revert: registering the stable version", "job", dep.JobID, "version", dep.RevertedTo, "error", err)
		return
	}
	s.logger.Info("deployment failed; job rolled back", "job", dep.JobID, "deployment", dep.ID, "version", dep.RevertedTo)
}

// deploymentLoop runs deploymentPass while this server leads.
func (s *Server) deploymentLoop(ctx context.Context) {
	for {
		now := s.now()
		next, ws, err := s.deploymentPass(now)
		if err != nil {
			s.logger.Warn("deployment watcher: applying changes; retrying", "error", err)
			next = now.Add(time.Second)
		}
		if !next.IsZero() && !next.After(now) && err == nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		wait := deployWatchMaxWait
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(now), time.Millisecond))
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		if ws != nil {
			_ = ws.WatchCtx(wctx)
		} else {
			<-wctx.Done()
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}
