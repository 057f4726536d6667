package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// Garbage collection of terminal allocations and finished jobs, a leader
// duty (Nomad's core GC).
//
// Every Config.GCInterval, and on POST /v1/system/gc, the leader reads one
// snapshot, chooses what to delete with the clock read once before
// (chooseGarbage: a pure function of the snapshot, the time and the
// settings), and proposes the choice as GCRequest entries of at most
// Config.GCBatchSize IDs each, in order, each applied before the next is
// proposed. The FSM checks each ID again against the state the entry meets
// (state.GarbageCollect), so what changed after the choice is kept. The
// scan reads a snapshot on the leader's own goroutine and the deletions are
// ordinary entries: nothing is added to the placement path.

// ErrGCUnavailable means a server of the cluster runs a build that cannot
// apply garbage collection entries (a rolling upgrade is under way).
var ErrGCUnavailable = errors.New("garbage collection is unavailable")

// gcPolicy is what chooseGarbage needs of the config.
type gcPolicy struct {
	allocAge, jobAge time.Duration
	keepPerJob       int
	// force ignores the ages (POST /v1/system/gc, as Nomad's `system
	// gc`): everything collectable goes, except what the scheduler still
	// reads.
	force bool
}

func (c Config) gcPolicy(force bool) gcPolicy {
	return gcPolicy{allocAge: c.GCAllocThreshold, jobAge: c.GCJobThreshold, keepPerJob: c.GCMaxTerminalAllocsPerJob, force: force}
}

// gcItem is one thing to delete: an allocation (allocID set) of a job at
// its ModifyIndex (0: its record is gone), or the job itself with whatever
// allocations it has left.
type gcItem struct {
	allocID string
	job     structs.GCJob
}

// gcView is what chooseGarbage reads of a snapshot.
type gcView interface {
	Jobs() []*structs.Job
	JobByID(id string) *structs.Job
	AllocsByJob(jobID string) []*structs.Allocation
	EachAllocJob(fn func(jobID string) bool)
}

var _ gcView = (*state.Snapshot)(nil)

// chooseGarbage returns what to delete at now, in the order to delete it
// (by job ID; a job's allocations before the job):
//
//   - a finished job (state.Finished) whose allocations are all
//     collectable, once it has been finished for the job age (counted from
//     its stop, its submission or its newest allocation change, whichever
//     is latest), with all its allocations: those the scheduler does not
//     read first, then the job, whose entry deletes the rest with it (at
//     most one per index, so the entry's work stays bounded by the job's
//     count);
//   - otherwise, of each job's collectable allocations that the scheduler
//     does not need (state.NeededAllocs), those older than the alloc age
//     (since their last change) and all but the newest keepPerJob;
//   - collectable allocations whose job record is gone, by the same rules.
func chooseGarbage(v gcView, now time.Time, p gcPolicy) []gcItem {
	var out []gcItem
	older := func(t int64, age time.Duration) bool {
		return p.force || now.Sub(time.Unix(0, t)) >= age
	}
	jobs := v.Jobs()
	lastLaunch := latestPeriodicChildren(jobs) // periodic.go
	for _, j := range jobs {
		allocs := v.AllocsByJob(j.ID)
		ref := structs.GCJob{ID: j.ID, ModifyIndex: j.ModifyIndex}
		if !lastLaunch[j.ID] && state.Finished(j, allocs) && !slices.ContainsFunc(allocs, notCollectable) && older(finishedAt(j, allocs), p.jobAge) {
			// The allocations the scheduler reads of a finished batch
			// job (its completed copies) go in the job's own entry,
			// with it: deleted before it, the job would look unrun
			// and be placed again. The others go first, in batches.
			needed := state.NeededAllocs(j, allocs)
			for _, a := range allocs {
				if !needed[a.ID] {
					out = append(out, gcItem{allocID: a.ID, job: ref})
				}
			}
			out = append(out, gcItem{job: ref})
			continue
		}
		out = chooseAllocs(out, ref, allocs, j, older, p)
	}
	var orphans []string
	v.EachAllocJob(func(id string) bool {
		if v.JobByID(id) == nil {
			orphans = append(orphans, id)
		}
		return true
	})
	slices.Sort(orphans)
	for _, id := range orphans {
		out = chooseAllocs(out, structs.GCJob{ID: id}, v.AllocsByJob(id), nil, older, p)
	}
	return out
}

func notCollectable(a *structs.Allocation) bool { return !state.Collectable(a) }

// chooseAllocs appends the allocations to delete of one job (ref; job is
// nil when its record is gone).
func chooseAllocs(out []gcItem, ref structs.GCJob, allocs []*structs.Allocation, job *structs.Job,
	older func(int64, time.Duration) bool, p gcPolicy) []gcItem {
	var cands []*structs.Allocation
	for _, a := range allocs {
		if state.Collectable(a) {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		return out // the usual case: a job whose copies all run
	}
	if needed := state.NeededAllocs(job, allocs); len(needed) > 0 {
		cands = slices.DeleteFunc(cands, func(a *structs.Allocation) bool { return needed[a.ID] })
	}
	state.SortNewestFirst(cands)
	start := len(out)
	for i, a := range cands {
		if i >= p.keepPerJob || older(a.ModifyTime, p.allocAge) {
			out = append(out, gcItem{allocID: a.ID, job: ref})
		}
	}
	// In ID order, as everything else: the choice reads the same however
	// the candidates were ranked.
	slices.SortFunc(out[start:], func(a, b gcItem) int { return strings.Compare(a.allocID, b.allocID) })
	return out
}

// finishedAt is when a finished job last changed: its stop, its
// submission, or its newest allocation change, whichever is latest.
func finishedAt(j *structs.Job, allocs []*structs.Allocation) int64 {
	t := max(j.StopTime, j.SubmitTime)
	for _, a := range allocs {
		t = max(t, a.ModifyTime)
	}
	return t
}

// gcEntries splits the choice into requests of at most size items each,
// in order; consecutive allocations of one job share a GCAllocs.
func gcEntries(items []gcItem, size int, now int64) []*structs.GCRequest {
	var out []*structs.GCRequest
	for len(items) > 0 {
		n := min(size, len(items))
		req := &structs.GCRequest{Time: now}
		for _, it := range items[:n] {
			switch last := len(req.Allocs) - 1; {
			case it.allocID == "":
				req.Jobs = append(req.Jobs, it.job)
			case last >= 0 && req.Allocs[last].JobID == it.job.ID:
				req.Allocs[last].IDs = append(req.Allocs[last].IDs, it.allocID)
			default:
				req.Allocs = append(req.Allocs, structs.GCAllocs{JobID: it.job.ID, ModifyIndex: it.job.ModifyIndex, IDs: []string{it.allocID}})
			}
		}
		out = append(out, req)
		items = items[n:]
	}
	return out
}

// collectGarbage runs one collection on the leader and reports what was
// deleted. Runs are serialized: a forced run waits for a periodic one.
func (s *Server) collectGarbage(ctx context.Context, force bool) (*api.GCResponse, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	if !s.format.gc.Load() {
		// The cached choice may predate this leadership: look again.
		s.refreshEntryFormat()
	}
	if !s.format.gc.Load() {
		behind := "the entry format is not known yet"
		if st := s.format.status.Load(); st != nil && len(st.behind) > 0 {
			behind = "waiting for " + strings.Join(st.behind, ", ")
		}
		return nil, fmt.Errorf("%w until every server applies its Raft entries (protocol %d; %s): upgrade them (docs/operations.md, Upgrading servers)",
			ErrGCUnavailable, structs.RaftProtocolGC, behind)
	}
	now := s.now()
	items := chooseGarbage(s.state.Snapshot(), now, s.cfg.gcPolicy(force))
	out := &api.GCResponse{}
	for _, req := range gcEntries(items, s.cfg.GCBatchSize, now.UnixNano()) {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		index, resp, err := s.raftApply(structs.GCRequestType, req)
		if err != nil {
			return out, fmt.Errorf("garbage collection after %d entries: %w", out.Entries, err)
		}
		out.Entries++
		out.Index = index
		if r, ok := resp.(*state.GCResult); ok {
			out.Allocations += r.Allocs
			out.Jobs += r.Jobs
		}
	}
	s.metrics.gcAllocs.Add(float64(out.Allocations))
	s.metrics.gcJobs.Add(float64(out.Jobs))
	if out.Entries > 0 {
		s.logger.Info("garbage collected", "allocations", out.Allocations, "jobs", out.Jobs, "entries", out.Entries, "forced", force)
	}
	return out, nil
}

// gcLoop collects garbage every GCInterval while this server leads.
func (s *Server) gcLoop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.GCInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := s.collectGarbage(ctx, false); err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrGCUnavailable) {
				s.logger.Debug("garbage collection skipped", "error", err)
			} else {
				s.logger.Warn("garbage collection failed; trying again at the next interval", "error", err)
			}
		}
	}
}

// systemGC is POST /v1/system/gc: one collection now, ignoring the age
// thresholds.
func (s *Server) systemGC(w http.ResponseWriter, r *http.Request) (any, error) {
	out, err := s.collectGarbage(r.Context(), true)
	if errors.Is(err, ErrGCUnavailable) {
		return nil, &httpError{code: http.StatusConflict, msg: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
