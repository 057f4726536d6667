package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// periodicMaxWait bounds the launcher's sleep, so a periodic job
// registered meanwhile (which also wakes it) or a clock step is noticed.
const periodicMaxWait = time.Minute

// maxCronSteps bounds the walk from a job's last launch to now: a job
// idle for long (every minute, for months) launches once, at the latest
// time reached.
const maxCronSteps = 10000

// periodicLauncher is the leader duty that launches periodic jobs' children.
// It keeps no state of its own in Raft: a child's name holds its launch
// time (NAME.periodic-<unix>), so a new leader reads the last launch of
// every periodic job from the jobs, and a launch repeated by two leaders
// registers the same child twice, which changes nothing.
type periodicLauncher struct {
	wake chan struct{}
	mu   sync.Mutex
	// skipped is the latest launch time skipped per job because of
	// prohibit_overlap (in memory: after a leader change one skipped
	// launch may still run late, once).
	skipped map[string]time.Time
}

func newPeriodicLauncher() *periodicLauncher {
	return &periodicLauncher{wake: make(chan struct{}, 1), skipped: map[string]time.Time{}}
}

// poke wakes the launcher (a periodic job was registered).
func (p *periodicLauncher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// periodicDecision is what a periodic job needs at now.
type periodicDecision struct {
	// Launch, when not zero, is the launch time of the child to register.
	Launch time.Time
	// Skip, when not zero, is a launch skipped: a child still runs and
	// the job prohibits overlap.
	Skip time.Time
	// Next is when to look again (zero: never, the expression never fires).
	Next time.Time
}

// decidePeriodic is the launcher's rule, pure for tests on a virtual
// clock. Launches count from the latest of the job's submission, its last
// child's launch time and its last skipped launch; the latest cron time
// after that and at or before now is launched, once (missed earlier ones
// are not caught up, as Nomad). With prohibit_overlap, a launch while a
// child is not dead is skipped.
func decidePeriodic(parent *structs.Job, lastLaunch, skipped time.Time, childRunning bool, now time.Time) periodicDecision {
	base := time.Unix(0, parent.SubmitTime)
	if lastLaunch.After(base) {
		base = lastLaunch
	}
	if skipped.After(base) {
		base = skipped
	}
	var d periodicDecision
	next, err := parent.Periodic.Next(base)
	if err != nil || next.IsZero() {
		return d
	}
	if next.After(now) {
		d.Next = next
		return d
	}
	due := next
	for range maxCronSteps {
		n, _ := parent.Periodic.Next(due)
		if n.IsZero() || n.After(now) {
			break
		}
		due = n
	}
	if parent.Periodic.ProhibitOverlap && childRunning {
		d.Skip = due
	} else {
		d.Launch = due
	}
	d.Next, _ = parent.Periodic.Next(due)
	return d
}

// periodicChildren returns, per periodic parent, its latest launch time and
// whether any child is not dead.
func periodicChildren(snap *state.Snapshot) (last map[string]time.Time, running map[string]bool) {
	last, running = map[string]time.Time{}, map[string]bool{}
	for _, j := range snap.Jobs() {
		if j.ParentID == "" {
			continue
		}
		parentName := structs.JobName(j.ParentID)
		t, ok := structs.PeriodicLaunchTime(parentName, j.Name)
		if !ok {
			continue
		}
		if t.After(last[j.ParentID]) {
			last[j.ParentID] = t
		}
		if state.JobStatus(j, snap.AllocsByJob(j.ID)) != structs.JobStatusDead {
			running[j.ParentID] = true
		}
	}
	return last, running
}

// periodicPass launches what is due at now and returns when to look again
// (zero: nothing scheduled).
func (s *Server) periodicPass(now time.Time) time.Time {
	snap := s.state.Snapshot()
	last, running := periodicChildren(snap)
	var wake time.Time
	for _, j := range snap.Jobs() {
		if j.Periodic == nil || j.Stop {
			continue
		}
		s.periodic.mu.Lock()
		skipped := s.periodic.skipped[j.ID]
		s.periodic.mu.Unlock()
		d := decidePeriodic(j, last[j.ID], skipped, running[j.ID], now)
		switch {
		case !d.Launch.IsZero():
			child := j.Child(structs.PeriodicChildName(j.Name, d.Launch), nil, nil)
			if _, err := s.registerJob(child); err != nil {
				s.logger.Error("launching a periodic job", "job", j.ID, "launch", d.Launch, "error", err)
				// Try again soon rather than at the next cron time.
				d.Next = now.Add(time.Second)
			} else {
				s.logger.Info("periodic job launched", "job", j.ID, "child", child.ID)
			}
		case !d.Skip.IsZero():
			s.logger.Info("periodic launch skipped: a child still runs (prohibit_overlap)", "job", j.ID, "launch", d.Skip)
			s.periodic.mu.Lock()
			s.periodic.skipped[j.ID] = d.Skip
			s.periodic.mu.Unlock()
		}
		if !d.Next.IsZero() && (wake.IsZero() || d.Next.Before(wake)) {
			wake = d.Next
		}
	}
	return wake
}

// periodicLoop runs periodicPass while this server leads.
func (s *Server) periodicLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.periodic.wake:
		}
		wait := periodicMaxWait
		if next := s.periodicPass(s.now()); !next.IsZero() {
			wait = min(wait, max(next.Sub(s.now()), 0))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// jobDispatch answers POST /v1/job/{id}/dispatch: a child of the
// parameterized job, NAME.dispatch-<16 hex digits>, with the payload and
// the metadata (checked against the job's parameterized block) is
// registered and scheduled like any job.
func (s *Server) jobDispatch(w http.ResponseWriter, r *http.Request) (any, error) {
	var req structs.DispatchRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	parent := s.state.Snapshot().JobByID(id)
	if parent == nil {
		return nil, s.verifiedNotFound("job %q not found", id)
	}
	if parent.Stop {
		return nil, badRequest("job %q is stopped: run it again to dispatch it", id)
	}
	if err := parent.CheckDispatch(req.Payload, req.Meta); err != nil {
		return nil, &httpError{code: http.StatusBadRequest, msg: err.Error()}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	child := parent.Child(structs.DispatchChildName(parent.Name, hex.EncodeToString(b[:])), req.Payload, req.Meta)
	if err := s.checkJobForScheduler(child); err != nil {
		return nil, err
	}
	none := uint64(0) // a fresh name: never overwrite a job
	res, err := s.registerJobIf(child, &none)
	if err != nil {
		return nil, err
	}
	return &api.DispatchResponse{JobID: res.JobID, Index: res.Index}, nil
}

// enqueuePerNodeJobs enqueues every system and sysbatch job that is not
// stopped: a node joined, came back or changed, and may be one they run on.
func (s *Server) enqueuePerNodeJobs(snap *state.Snapshot) {
	for _, j := range snap.Jobs() {
		if j.Type.PerNode() && !j.Stop && !j.IsParent() {
			s.sched.Enqueue(j.ID, j.Priority)
		}
	}
}

// checkJobKindForScheduler refuses system and sysbatch jobs under the
// two-level architecture: its built-in frameworks decide on views
// restricted to their offers, where a node not offered would look gone
// and its copy be stopped. (Periodic and parameterized templates are
// fine: their children are ordinary jobs.)
func (s *Server) checkJobKindForScheduler(job *structs.Job) error {
	if job.Type.PerNode() && s.cfg.Scheduler.Architecture == architecture.TwoLevel {
		return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(
			"invalid job: type: %s jobs are not supported by the two-level scheduler (run the server with --scheduler monolithic or shared-state)", job.Type),
			fields: []structs.FieldError{{Field: "type", Rule: "not supported by the two-level scheduler"}}}
	}
	return nil
}

// latestPeriodicChildren returns the latest child of every periodic job
// that is not stopped: garbage collection keeps it, since the launcher
// reads the job's last launch from it (without it, the launch would look
// never done and run again).
func latestPeriodicChildren(jobs []*structs.Job) map[string]bool {
	parents := map[string]*structs.Job{}
	for _, j := range jobs {
		if j.Periodic != nil && !j.Stop {
			parents[j.ID] = j
		}
	}
	latest := map[string]*structs.Job{} // parent ID -> child
	at := map[string]time.Time{}
	for _, j := range jobs {
		p := parents[j.ParentID]
		if p == nil {
			continue
		}
		t, ok := structs.PeriodicLaunchTime(p.Name, j.Name)
		if ok && (latest[p.ID] == nil || t.After(at[p.ID])) {
			latest[p.ID], at[p.ID] = j, t
		}
	}
	out := make(map[string]bool, len(latest))
	for _, c := range latest {
		out[c.ID] = true
	}
	return out
}
