package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

func (s *Server) jobRegister(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.JobRegisterRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.Job == nil {
		return nil, &httpError{code: http.StatusBadRequest, msg: "invalid job: job is required",
			fields: []structs.FieldError{{Field: "job", Rule: "is required"}}}
	}
	ns, err := requestNamespace(r)
	if err != nil {
		return nil, err
	}
	job := req.Job.Copy()
	switch {
	case ns == structs.AllNamespaces:
		return nil, badRequest("namespace: a job is registered in one namespace, not %q", ns)
	case job.Namespace == "":
		job.Namespace = ns
	case job.Namespace != ns:
		// The access check was for the request's namespace.
		return nil, &httpError{code: http.StatusBadRequest,
			msg:    fmt.Sprintf("invalid job: namespace: the job names namespace %q but the request is for %q (?namespace=, default %q)", job.Namespace, ns, structs.DefaultNamespace),
			fields: []structs.FieldError{{Field: "namespace", Rule: fmt.Sprintf("must be the request's namespace %q (got %q)", ns, job.Namespace)}}}
	}
	if s.state.Snapshot().Namespace(nil, ns) == nil {
		return nil, &httpError{code: http.StatusBadRequest,
			msg:    fmt.Sprintf("invalid job: namespace %q does not exist; create it first (gantry namespace apply %s)", ns, ns),
			fields: []structs.FieldError{{Field: "namespace", Rule: fmt.Sprintf("namespace %q does not exist", ns)}}}
	}
	job.FrameworkTask = nil // server-managed: only frameworks' launches set it
	if err := s.checkUserJobWrite(structs.JobKey(job.Namespace, job.Name)); err != nil {
		return nil, err
	}
	if err := s.checkJobForScheduler(job); err != nil {
		return nil, err
	}
	var cond *uint64
	if req.EnforceIndex {
		cond = &req.JobModifyIndex // job_plan.go
	}
	res, err := s.registerJobIf(job, cond)
	if err == nil && job.Periodic != nil {
		s.periodic.poke() // periodic.go
	}
	return res, err
}

// jobKey returns the key of the job a request names: the path's name in
// the request's namespace.
func jobKey(r *http.Request) (string, error) {
	ns, err := requestNamespace(r)
	if err != nil {
		return "", err
	}
	if ns == structs.AllNamespaces {
		return "", badRequest("namespace: name one namespace to address a job, not %q", ns)
	}
	name := r.PathValue("id")
	if strings.ContainsRune(name, '/') {
		// A name never holds '/': "team-a/web" in the default namespace
		// would otherwise name web in team-a.
		return "", badRequest("job name %q: names hold no '/'; give the namespace with ?namespace=", name)
	}
	return structs.JobKey(ns, name), nil
}

// checkUserJobWrite refuses a user's write to a job holding an external
// framework's task: the framework owns it (its API kills it).
func (s *Server) checkUserJobWrite(ids ...string) error {
	snap := s.state.Snapshot()
	for _, id := range ids {
		if j := snap.JobByID(id); j != nil && j.FrameworkTask != nil {
			return &httpError{code: http.StatusConflict, msg: fmt.Sprintf("job %q holds task %s of framework %s (%s): the framework manages it",
				id, j.FrameworkTask.TaskID, j.FrameworkTask.FrameworkName, j.FrameworkTask.FrameworkID)}
		}
	}
	return nil
}

// registerJob canonicalizes, validates, versions and proposes a job, then
// enqueues it. Nothing is proposed unless the whole job is valid. The
// version is computed against the state plus the job writes queued before
// this one (job_batch.go), and concurrent writes share Raft entries.
func (s *Server) registerJob(job *structs.Job) (*api.JobRegisterResponse, error) {
	return s.registerJobIf(job, nil)
}

// registerJobIf is registerJob, refused with a conflict unless the job's
// modify index is *index (0: it must not exist), when index is set.
func (s *Server) registerJobIf(job *structs.Job, index *uint64) (*api.JobRegisterResponse, error) {
	job.Canonicalize()
	if err := job.Validate(s.cfg.Drivers); err != nil {
		return nil, err
	}
	var conflict error
	w, _ := s.jobs.write(job.ID, func(existing *structs.Job) (structs.JobWrite, *structs.Job, bool) {
		if conflict = checkModifyIndex(job.ID, existing, index); conflict != nil {
			return structs.JobWrite{}, nil, false
		}
		job.Status = structs.JobStatusPending
		job.Stable = false // server-managed: a deployment of the version sets it
		switch {
		case existing == nil:
			job.Version = 1
		case structs.SpecChanged(existing, job):
			job.Version = existing.Version + 1
		default:
			job.Version = existing.Version
			job.Stable = existing.Stable
			if !existing.Stop {
				job.Status = existing.Status
			}
		}
		job.Stop, job.StopTime = false, 0
		job.SubmitTime = s.now().UnixNano()
		job.CreateIndex, job.ModifyIndex = 0, 0
		return structs.JobWrite{Register: &structs.JobRegisterRequest{Job: job, Deployment: newDeployment(job, existing)}}, job, true
	}, func() {
		// Scheduled as soon as the registration is queued: the plan is
		// proposed after it, so it applies after it (the schedulers'
		// view holds the job meanwhile, job_batch.go, plan_pipeline.go).
		s.sched.Enqueue(job.ID, job.Priority)
	})
	if conflict != nil {
		return nil, conflict
	}
	if w.err != nil {
		return nil, w.err
	}
	// Once more when committed, for a scheduler whose view lacks writes
	// in flight (a pass with nothing left to do is cheap).
	s.sched.Enqueue(job.ID, job.Priority)
	return &api.JobRegisterResponse{JobID: job.ID, Version: job.Version, Index: w.index}, nil
}

func (s *Server) jobScale(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.JobScaleRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	job := s.state.Snapshot().JobByID(id)
	if job == nil {
		return nil, s.verifiedNotFound("job %q not found", id)
	}
	if err := s.checkUserJobWrite(id); err != nil {
		return nil, err
	}
	c := job.Copy()
	if err := scaleGroup(c, req.Group, req.Count); err != nil {
		return nil, err
	}
	return s.registerJob(c)
}

func (s *Server) jobStop(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	purge := false
	switch v := r.URL.Query().Get("purge"); v {
	case "", "false":
	case "true":
		purge = true
	default:
		return nil, badRequest("purge: must be \"true\" or \"false\" (got %q)", v)
	}
	var job *structs.Job
	wr, ok := s.jobs.write(id, func(cur *structs.Job) (structs.JobWrite, *structs.Job, bool) {
		if cur == nil {
			return structs.JobWrite{}, nil, false
		}
		job = cur
		now := s.now().UnixNano()
		var after *structs.Job
		if !purge {
			after = cur.Copy()
			after.Stop = true
			after.StopTime = now
			after.Status = structs.JobStatusDead
		}
		return structs.JobWrite{Deregister: &structs.JobDeregisterRequest{
			JobID: id, Purge: purge, Time: now,
		}}, after, true
	}, func() {
		// The scheduler sees a purged job gone and a stopped one stopped.
		s.sched.Enqueue(job.ID, job.Priority)
	})
	if !ok {
		return nil, s.verifiedNotFound("job %q not found", id)
	}
	if wr.err != nil {
		return nil, wr.err
	}
	s.sched.Enqueue(job.ID, job.Priority)
	// Its allocations stopped: jobs waiting on the namespace's quota may
	// fit now.
	s.enqueueQuotaBlocked(structs.JobNamespace(id))
	return &api.JobRegisterResponse{JobID: id, Version: job.Version, Index: wr.index}, nil
}

func (s *Server) jobList(w http.ResponseWriter, r *http.Request) (any, error) {
	ns, err := requestNamespace(r)
	if err != nil {
		return nil, err
	}
	a := s.aclOf(r)
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		out := []*api.JobListStub{}
		snap.AllocsWatch(ws) // job status and summary follow the allocations
		var jobs []*structs.Job
		if ns == structs.AllNamespaces {
			jobs = snap.JobsWatch(ws)
		} else {
			jobs = snap.JobsInNamespace(ws, ns)
		}
		for _, j := range jobs {
			if ns == structs.AllNamespaces && !a.AllowNamespace(j.Namespace, acl.CapRead) {
				continue
			}
			allocs := snap.AllocsByJob(j.ID)
			out = append(out, &api.JobListStub{
				ID: j.ID, Name: j.Name, Namespace: j.Namespace, Type: j.Type, Priority: j.Priority, Count: j.Count,
				Status: string(state.JobStatus(j, allocs)), Stop: j.Stop, Version: j.Version,
				Summary: state.JobSummary(allocs), SubmitTime: j.SubmitTime, ModifyIndex: j.ModifyIndex,
			})
		}
		return snap.TableIndex(state.TableJobs, state.TableAllocs), out, nil
	})
}

func (s *Server) jobGet(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		j := snap.JobByIDWatch(ws, id)
		if j == nil {
			return 0, nil, notFound("job %q not found", id)
		}
		snap.AllocsByJobWatch(ws, id)
		return snap.TableIndex(state.TableJobs, state.TableAllocs), snap.JobWithStatus(j), nil
	})
}

func (s *Server) jobStatus(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		j := snap.JobByIDWatch(ws, id)
		if j == nil {
			return 0, nil, notFound("job %q not found", id)
		}
		allocs := snap.AllocsByJobWatch(ws, id)
		out := &api.JobStatusResponse{
			Job:              snap.JobWithStatus(j),
			Allocations:      stubs(allocs),
			Summary:          state.JobSummary(allocs),
			Groups:           groupSummaries(j, allocs),
			PlacementFailure: snap.PlacementFailureWatch(ws, id),
			Reschedules:      pendingReschedules(j, allocs, snap, s.now()),
			WaitingForOffers: s.whyPending(id),
		}
		return snap.TableIndex(state.TableJobs, state.TableAllocs, state.TablePlacementFailures), out, nil
	})
}

func (s *Server) jobAllocs(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		if snap.JobByIDWatch(ws, id) == nil {
			return 0, nil, notFound("job %q not found", id)
		}
		return snap.TableIndex(state.TableJobs, state.TableAllocs), stubs(snap.AllocsByJobWatch(ws, id)), nil
	})
}

// pendingReschedules asks the reconciler which failed copies of a job wait
// for their reschedule delay at now: the answer is what the scheduler
// does, not a second reading of the policy.
func pendingReschedules(j *structs.Job, allocs []*structs.Allocation, snap *state.Snapshot, now time.Time) []*api.PendingReschedule {
	var out []*api.PendingReschedule
	add := func(group string, delayed []scheduler.DelayedReschedule) {
		for _, d := range delayed {
			out = append(out, &api.PendingReschedule{Index: d.Index, Group: group, Name: structs.AllocGroupName(j.ID, group, d.Index),
				PreviousAllocation: d.Previous, Attempt: d.Attempt, Delay: api.Duration(d.Delay), Time: d.At.UnixNano()})
		}
	}
	switch {
	case j.Type.PerNode():
		add("", scheduler.ReconcilePerNode(j, allocs, snap.Nodes(), now).Delayed)
	case j.HasGroups() && !j.Stop:
		for _, g := range scheduler.ReconcileGroups(j, allocs, snap.NodeByID, now) {
			add(g.Group, g.Delayed)
		}
	default:
		add("", scheduler.Reconcile(j, allocs, snap.NodeByID, now).Delayed)
	}
	return out
}

// stubs strips the embedded jobs from allocations for listings.
func stubs(allocs []*structs.Allocation) []*structs.Allocation {
	out := make([]*structs.Allocation, len(allocs))
	for i, a := range allocs {
		out[i] = a.Stub()
	}
	return out
}

// verifiedNotFound answers a write that found nothing to change. The answer
// came from local state without a Raft round, so it is given only after the
// leader confirms it still leads: a deposed leader must not report a job
// missing that its successor already has.
func (s *Server) verifiedNotFound(format string, args ...any) error {
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return raftErr("verifying leadership", err)
	}
	return notFound(format, args...)
}

// scaleGroup sets the count of a job's group: the named one, or the only
// one when group is "" (a one-group job, with or without groups:). A job
// with groups keeps Count the sum of its groups' (Canonicalize).
func scaleGroup(j *structs.Job, group string, count int) error {
	if count < 0 || count > structs.MaxCount {
		return badRequest("count: must be between 0 and %d (got %d)", structs.MaxCount, count)
	}
	if !j.HasGroups() {
		if group != "" && group != j.Name {
			return notFound("job %q has no group %q (its one group is named after the job)", j.ID, group)
		}
		j.Count = count
		return nil
	}
	if group == "" {
		if len(j.Groups) > 1 {
			return badRequest("job %q has %d groups (%s): name the group to scale", j.ID, len(j.Groups), strings.Join(j.GroupNames(), ", "))
		}
		group = j.Groups[0].Name
	}
	g := j.LookupGroup(group)
	if g == nil {
		return notFound("job %q has no group %q (its groups: %s)", j.ID, group, strings.Join(j.GroupNames(), ", "))
	}
	g.Count = count
	j.Count = 0
	for i := range j.Groups {
		j.Count += j.Groups[i].Count
	}
	return nil
}

// groupSummaries is the per-group summary of a job with groups (nil for
// one without).
func groupSummaries(j *structs.Job, allocs []*structs.Allocation) []api.GroupSummary {
	if !j.HasGroups() {
		return nil
	}
	out := make([]api.GroupSummary, len(j.Groups))
	idx := make(map[string]int, len(j.Groups))
	for i, g := range j.Groups {
		out[i] = api.GroupSummary{Name: g.Name, Count: g.Count, Summary: map[string]int{}}
		idx[g.Name] = i
	}
	for _, a := range allocs {
		if i, ok := idx[a.Group]; ok && a.DesiredStatus == structs.AllocDesiredRun {
			out[i].Summary[a.ClientStatus]++
		}
	}
	return out
}
