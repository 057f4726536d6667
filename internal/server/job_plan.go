package server

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// checkModifyIndex enforces a conditional registration (`job run
// --check-index`): the job's modify index must be *index, and 0 means the
// job must not exist. A write to the job still in flight has no index yet:
// it conflicts with every check.
func checkModifyIndex(id string, existing *structs.Job, index *uint64) error {
	if index == nil {
		return nil
	}
	switch {
	case existing == nil && *index == 0:
		return nil
	case existing == nil:
		return &httpError{code: http.StatusConflict, msg: fmt.Sprintf("job %q: check index %d: the job does not exist (plan again)", id, *index)}
	case *index == 0:
		return &httpError{code: http.StatusConflict, msg: fmt.Sprintf("job %q: check index 0: the job exists (modify index %d; plan again)", id, existing.ModifyIndex)}
	case existing.ModifyIndex != *index:
		return &httpError{code: http.StatusConflict, msg: fmt.Sprintf("job %q: check index %d: the job was modified since (modify index %d; plan again)", id, *index, existing.ModifyIndex)}
	}
	return nil
}

// jobPlan answers POST /v1/job/{id}/plan: the job as registering it would
// leave it (canonicalized, validated, versioned) is put in a view of the
// leader's current state (with the plans in flight) in place of the stored
// one, and the placement core computes the plan it would submit. Nothing
// is proposed or submitted; the answer is what the scheduler would do now.
func (s *Server) jobPlan(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.JobPlanRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.Job == nil {
		return nil, &httpError{code: http.StatusBadRequest, msg: "invalid job: job is required",
			fields: []structs.FieldError{{Field: "job", Rule: "is required"}}}
	}
	id, err := jobKey(r)
	if err != nil {
		return nil, err
	}
	job := req.Job.Copy()
	if job.Namespace == "" {
		job.Namespace = structs.JobNamespace(id)
	}
	job.ID, job.FrameworkTask = "", nil
	if s.state.Snapshot().Namespace(nil, job.Namespace) == nil {
		return nil, badRequest("invalid job: namespace %q does not exist; create it first (gantry namespace apply %s)", job.Namespace, job.Namespace)
	}
	job.Canonicalize()
	if job.ID != id {
		return nil, badRequest("job %q: the path names job %q", job.ID, id)
	}
	if err := job.Validate(s.cfg.Drivers); err != nil {
		return nil, err
	}
	if err := s.checkJobForScheduler(job); err != nil {
		return nil, err
	}
	view := s.plans.snapshot()
	existing := view.JobByID(id)
	if existing != nil && existing.FrameworkTask != nil {
		return nil, s.checkUserJobWrite(id)
	}
	out := &api.JobPlanResponse{JobID: id}
	if existing != nil {
		out.JobModifyIndex = existing.ModifyIndex
	}
	// Version and status as registerJob would set them.
	switch {
	case existing == nil:
		job.Version, out.Update = 1, api.PlanUpdateCreate
	case structs.SpecChanged(existing, job):
		job.Version, out.Update = existing.Version+1, api.PlanUpdateDestructive
	default:
		job.Version = existing.Version
		out.Update = api.PlanUpdateInPlace
	}
	job.Status = structs.JobStatusPending
	if existing != nil {
		job.CreateIndex, job.ModifyIndex, job.SubmitTime = existing.CreateIndex, existing.ModifyIndex, existing.SubmitTime
	}
	out.Version = job.Version
	out.Diff = jobDiff(existing, job)
	if out.Update == api.PlanUpdateInPlace && len(out.Diff) == 0 && !existing.Stop {
		out.Update = api.PlanUpdateNone
	}
	if job.Periodic != nil {
		if next, err := job.Periodic.Next(s.now()); err == nil && !next.IsZero() {
			out.NextLaunch = next.UnixNano()
		}
	}

	seed := uint64(s.cfg.Scheduler.Seed)
	if seed == 0 {
		seed = rand.Uint64()
	}
	opts := scheduler.Options{Rand: rand.New(rand.NewPCG(seed, view.Index())), Now: s.now}
	res, err := scheduler.ComputePlan(opts, withJob(view, job, existing), id)
	if err != nil {
		return nil, badRequest("planning job %q: %v", id, err)
	}
	summarizePlan(out, res, view.AllocsByJob(id))
	if res.Unplaced > 0 {
		out.Failure = res.Plan.Failure
		if out.Failure == nil {
			out.Failure = view.PlacementFailure(id) // unchanged: the stored one
		}
	}
	return out, nil
}

// summarizePlan counts what a computed plan does to the job's copies.
func summarizePlan(out *api.JobPlanResponse, res *scheduler.Result, allocs []*structs.Allocation) {
	plan := res.Plan
	stopped := map[string]bool{}
	for _, st := range plan.Stops {
		stopped[st.AllocID] = true
	}
	replaced := map[string]bool{}
	for _, a := range plan.Placements {
		p := api.PlannedPlacement{Name: a.Name, Node: a.NodeID, NodeName: a.NodeName}
		if a.PreviousAllocation != "" && stopped[a.PreviousAllocation] {
			replaced[a.PreviousAllocation] = true
			p.Replaces = a.PreviousAllocation
			out.Replace++
		} else {
			out.Place++
		}
		out.Placements = append(out.Placements, p)
	}
	for _, st := range plan.Stops {
		if replaced[st.AllocID] {
			continue
		}
		if out.Stop == nil {
			out.Stop = map[string]int{}
		}
		out.Stop[st.Description]++
	}
	for _, a := range allocs {
		if a.Terminal() || stopped[a.ID] {
			continue
		}
		if out.Update == api.PlanUpdateInPlace {
			out.InPlace++
		} else {
			out.Ignore++
		}
	}
	out.Unplaced = res.Unplaced
	out.Preemptions = len(plan.Preemptions)
}

// dryRunView is a scheduler view with one job replaced by the planned one.
// It keeps the base view's usage and quota readers (scheduler.State's
// optional interfaces), so the plan is computed as a real pass would be.
type dryRunView struct {
	scheduler.State
	job *structs.Job
	// dep is the deployment the registration would start (nil: none).
	dep *structs.Deployment
}

// LatestDeployment is the deployment the registration would start, else
// the stored one: a rolling job's dry run shows its first wave
// (scheduler.DeploymentReader).
func (v dryRunView) LatestDeployment(id string) *structs.Deployment {
	if id == v.job.ID && v.dep != nil {
		return v.dep
	}
	if dr, ok := v.State.(scheduler.DeploymentReader); ok {
		return dr.LatestDeployment(id)
	}
	return nil
}

func (v dryRunView) JobByID(id string) *structs.Job {
	if id == v.job.ID {
		return v.job
	}
	return v.State.JobByID(id)
}

type dryRunRows struct {
	dryRunView
	scheduler.NodeUsageReader
	scheduler.QuotaReader
}

// withJob returns base with job in place of the stored one.
func withJob(base scheduler.State, job, existing *structs.Job) scheduler.State {
	v := dryRunView{State: base, job: job, dep: newDeployment(job, existing)}
	u, okU := base.(scheduler.NodeUsageReader)
	q, okQ := base.(scheduler.QuotaReader)
	if okU && okQ {
		return dryRunRows{dryRunView: v, NodeUsageReader: u, QuotaReader: q}
	}
	return v
}

// diffIgnored are the server-managed fields a diff leaves out.
var diffIgnored = map[string]bool{
	"id": true, "status": true, "version": true, "submit_time": true, "create_index": true,
	"modify_index": true, "stop": true, "stop_time": true, "framework_task": true, "stable": true,
}

// JobDiff lists the fields that differ between two versions of a job (old
// nil: every field of updated), as dotted paths with JSON values, sorted.
func jobDiff(old, updated *structs.Job) []api.JobFieldDiff {
	flat := func(j *structs.Job) map[string]string {
		out := map[string]string{}
		if j == nil {
			return out
		}
		b, _ := json.Marshal(j)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		for k, v := range m {
			if !diffIgnored[k] {
				flatten(out, k, v)
			}
		}
		return out
	}
	a, b := flat(old), flat(updated)
	var out []api.JobFieldDiff
	for k, v := range b {
		if a[k] != v {
			out = append(out, api.JobFieldDiff{Field: k, Old: a[k], New: v})
		}
	}
	for k, v := range a {
		if _, ok := b[k]; !ok {
			out = append(out, api.JobFieldDiff{Field: k, Old: v})
		}
	}
	slices.SortFunc(out, func(x, y api.JobFieldDiff) int { return strings.Compare(x.Field, y.Field) })
	return out
}

// flatten writes v under prefix: mappings by key, everything else (lists
// too) as one JSON value.
func flatten(out map[string]string, prefix string, v any) {
	if m, ok := v.(map[string]any); ok && len(m) > 0 {
		for k, sub := range m {
			flatten(out, prefix+"."+k, sub)
		}
		return
	}
	if v == nil || reflect.ValueOf(v).IsZero() {
		return // absent and zero read the same
	}
	b, _ := json.Marshal(v)
	out[prefix] = string(b)
}
