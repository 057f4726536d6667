package twolevel

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

var _ scheduler.Architecture = (*Scheduler)(nil)

// maxDetailTasks bounds the tasks one FrameworkDetail lists.
const maxDetailTasks = 1000

// Status returns the figures shown by `gantry scheduler status`.
func (s *Scheduler) Status() structs.SchedulerStatus {
	st := structs.SchedulerStatus{Architecture: Architecture}
	now := s.now()
	var busy time.Duration
	var lat []float64
	for _, b := range s.builtins {
		b.mu.Lock()
		st.QueueDepth += b.queue.Len()
		st.Evaluations += b.evaluations
		st.Placements += b.placements
		st.JobsWaiting += len(b.waiting)
		st.PlansSubmitted += b.plans
		st.Conflicts += b.conflicts
		st.Retries += b.planRetries
		busy += b.busy
		lat = append(lat, b.lat.Percentiles(50, 99)...)
		b.mu.Unlock()
	}
	s.mu.Lock()
	wall := now.Sub(s.started)
	if wall > 0 {
		st.BusyFraction = min(float64(busy)/float64(wall)/float64(len(s.builtins)), 1)
		st.DecisionsPerSec = float64(st.Evaluations) / wall.Seconds()
	}
	if commits := st.PlansSubmitted - st.Conflicts; commits > 0 {
		st.ConflictFraction = float64(st.Conflicts) / float64(commits)
	}
	// The slower framework's percentiles: the figures of one window.
	for i := 0; i+1 < len(lat); i += 2 {
		st.LatencyP50Ms = max(st.LatencyP50Ms, lat[i])
		st.LatencyP99Ms = max(st.LatencyP99Ms, lat[i+1])
	}
	if s.alloc != nil {
		f := s.alloc.Figures()
		st.OffersOutstanding = f.OffersOutstanding
		st.OfferHoldP50Ms, st.OfferHoldP99Ms = f.HoldP50Ms, f.HoldP99Ms
		st.OffersSent, st.Declines, st.Rescinds, st.OffersExpired = f.OffersSent, f.Declined, f.Rescinded, f.Expired
		st.AllocationRounds = s.rounds.n
		st.AllocationRoundP99Ms = s.rounds.lat.Percentiles(99)[0]
	}
	st.Frameworks = s.frameworksLocked(now)
	s.mu.Unlock()
	return st
}

// Frameworks returns every registered framework's status, built-in first.
func (s *Scheduler) Frameworks() []structs.FrameworkStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frameworksLocked(s.now())
}

func (s *Scheduler) frameworksLocked(now time.Time) []structs.FrameworkStatus {
	var out []structs.FrameworkStatus
	for _, b := range s.builtins {
		out = append(out, s.builtinStatusLocked(b))
	}
	for _, id := range slices.Sorted(mapKeys(s.fws)) {
		out = append(out, s.extStatusLocked(s.fws[id], now))
	}
	return out
}

// fill copies the allocator's figures of a framework into st.
func (s *Scheduler) fillLocked(st *structs.FrameworkStatus) {
	if s.alloc == nil {
		return
	}
	ff, ok := s.alloc.Framework(st.ID)
	if !ok {
		return
	}
	st.Weight, st.DominantShare = ff.Weight, ff.DominantShare
	st.Allocated, st.Offered, st.OffersHeld = ff.Allocated, ff.Offered, ff.Offers
	st.OffersSent, st.Accepted, st.Declined = ff.OffersSent, ff.Accepted, ff.Declined
	st.Rescinded, st.Expired, st.Suppressed = ff.Rescinded, ff.Expired, ff.Suppressed
	if s.m != nil {
		s.m.dominantShare.WithLabelValues(st.Name).Set(ff.DominantShare)
	}
}

func (s *Scheduler) builtinStatusLocked(b *builtin) structs.FrameworkStatus {
	st := structs.FrameworkStatus{ID: b.name, Name: b.name, Role: b.role, BuiltIn: true, Connected: true,
		DecisionDelayMs: float64(b.cfg.DecisionDelay) / float64(time.Millisecond)}
	b.mu.Lock()
	st.JobsWaiting = len(b.waiting)
	st.Launched = b.placements
	b.mu.Unlock()
	s.fillLocked(&st)
	return st
}

func (s *Scheduler) extStatusLocked(f *extFramework, now time.Time) structs.FrameworkStatus {
	st := structs.FrameworkStatus{ID: f.id, Name: f.name, Role: f.role, Connected: f.sub != nil,
		FailoverTimeoutSec: f.failoverTimeout.Seconds(), Tasks: f.liveTasks(), Launched: f.launched}
	if f.sub == nil && !f.disconnected.IsZero() {
		st.DisconnectedSec = now.Sub(f.disconnected).Seconds()
	}
	s.fillLocked(&st)
	return st
}

// FrameworkDetail returns a framework (by ID or name) and its tasks.
func (s *Scheduler) FrameworkDetail(ref string) (*structs.FrameworkDetail, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, b := range s.builtins {
		if b.name == ref {
			return &structs.FrameworkDetail{Framework: s.builtinStatusLocked(b), Tasks: []structs.TaskStatus{}}, nil
		}
	}
	f := s.fws[ref]
	if f == nil {
		f = s.byName[ref]
	}
	if f == nil {
		if s.removed.has(ref) {
			return nil, fmt.Errorf("%w: %s", ErrFrameworkRemoved, ref)
		}
		if !s.running {
			return nil, ErrNotRunning
		}
		return nil, fmt.Errorf("%w: %s", ErrFrameworkUnknown, ref)
	}
	d := &structs.FrameworkDetail{Framework: s.extStatusLocked(f, now), Tasks: []structs.TaskStatus{}}
	view, _ := s.env.Snapshot()
	for _, id := range slices.Sorted(mapKeys(f.tasks)) {
		if len(d.Tasks) >= maxDetailTasks {
			d.TasksOmitted++
			continue
		}
		t := f.tasks[id]
		st := structs.TaskStatus{TaskID: t.id, State: t.state, AgentID: t.nodeID, AllocID: t.allocID}
		if view != nil {
			if j := view.JobByID(t.jobID); j != nil && j.FrameworkTask != nil {
				st = taskStatus(j, view.AllocsByJob(t.jobID), now)
			}
		}
		d.Tasks = append(d.Tasks, st)
	}
	return d, nil
}

// WhyPending explains, for `gantry job status`, why a job of a built-in
// framework has copies waiting: "waiting for offers: framework batch holds
// 0 of 3 offers; dominant share 0.62", with what its last offers lacked.
// It returns "" for a job that waits for nothing.
func (s *Scheduler) WhyPending(jobID string) string {
	for _, b := range s.builtins {
		detail, ok := b.waitingReason(jobID)
		if !ok {
			continue
		}
		b.mu.Lock()
		held := len(b.offers)
		b.mu.Unlock()
		s.mu.Lock()
		total, share := 0, 0.0
		if s.alloc != nil {
			total = s.alloc.Figures().OffersOutstanding
			if ff, ok := s.alloc.Framework(b.name); ok {
				share = ff.DominantShare
			}
		}
		s.mu.Unlock()
		var sb strings.Builder
		fmt.Fprintf(&sb, "waiting for offers: framework %s holds %d of %d offers; dominant share %.2f", b.name, held, total, share)
		sb.WriteString(detail)
		return sb.String()
	}
	return ""
}
