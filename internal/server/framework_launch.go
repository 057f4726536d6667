package server

import (
	"context"
	"fmt"
	"slices"

	"github.com/gantry-project/gantry/internal/scheduler/twolevel"
	"github.com/gantry-project/gantry/internal/structs"
)

// taskLauncher writes external frameworks' tasks for the two-level
// architecture (twolevel.TaskLauncher): a task is a job of one copy,
// registered through the job writer like any job, and placed by a plan
// through the plan applier like any placement, so an accepted offer can
// never over-commit a node.
type taskLauncher struct{ s *Server }

var _ twolevel.TaskLauncher = taskLauncher{}

// Launch registers the task's job and, once the registration is queued
// (the applier's view holds it), submits the plan placing it and waits
// for its commit. A task that was not placed has its job purged again, so
// the framework may launch it anew under the same ID.
func (l taskLauncher) Launch(ctx context.Context, job *structs.Job, alloc *structs.Allocation) (*structs.PlanResult, error) {
	s := l.s
	job.Canonicalize()
	if err := job.Validate(s.cfg.Drivers); err != nil {
		return nil, err
	}
	var res *structs.PlanResult
	var planErr error
	w, ok := s.jobs.write(job.ID, func(cur *structs.Job) (structs.JobWrite, *structs.Job, bool) {
		if cur != nil {
			return structs.JobWrite{}, nil, false
		}
		job.Version, job.Status, job.Stop = 1, structs.JobStatusPending, false
		job.SubmitTime = s.now().UnixNano()
		return structs.JobWrite{Register: &structs.JobRegisterRequest{Job: job}}, job, true
	}, func() {
		res, planErr = s.SubmitPlan(ctx, &structs.Plan{JobID: job.ID, Priority: job.Priority, Placements: []*structs.Allocation{alloc}})
	})
	if !ok {
		return nil, fmt.Errorf("task job %s already exists", job.ID)
	}
	if w.err != nil {
		return nil, w.err
	}
	if planErr != nil || res == nil || !slices.Contains(res.Placed, alloc.ID) {
		l.purge(job.ID)
		if planErr != nil {
			return nil, planErr
		}
	}
	return res, nil
}

// purge removes a task job that placed nothing.
func (l taskLauncher) purge(jobID string) {
	s := l.s
	wr, ok := s.jobs.write(jobID, func(cur *structs.Job) (structs.JobWrite, *structs.Job, bool) {
		if cur == nil {
			return structs.JobWrite{}, nil, false
		}
		return structs.JobWrite{Deregister: &structs.JobDeregisterRequest{JobID: jobID, Purge: true, Time: s.now().UnixNano()}}, nil, true
	}, nil)
	if ok && wr.err != nil {
		s.logger.Warn("removing the job of a task that was not placed", "job", jobID, "error", wr.err)
	}
}

// Stop stops a task's job (KILL, framework removed); the architecture
// then stops its allocation.
func (l taskLauncher) Stop(ctx context.Context, jobID string) error {
	s := l.s
	var prio int
	wr, ok := s.jobs.write(jobID, func(cur *structs.Job) (structs.JobWrite, *structs.Job, bool) {
		if cur == nil || cur.Stop {
			return structs.JobWrite{}, nil, false
		}
		prio = cur.Priority
		after := cur.Copy()
		after.Stop, after.Status = true, structs.JobStatusDead
		return structs.JobWrite{Deregister: &structs.JobDeregisterRequest{JobID: jobID, Time: s.now().UnixNano()}}, after, true
	}, nil)
	if !ok {
		return nil // gone or stopped already
	}
	if wr.err != nil {
		return wr.err
	}
	s.sched.Enqueue(jobID, prio)
	return nil
}

// allocsReported tells the scheduler of agents' reports once applied
// (the two-level architecture follows its frameworks' tasks and the room
// that ended allocations free).
func (s *Server) allocsReported(reqs []structs.AllocClientUpdateRequest) {
	if r, ok := s.sched.(interface {
		AllocsReported([]structs.AllocClientUpdateRequest)
	}); ok {
		r.AllocsReported(reqs)
	}
}

// checkJobForScheduler refuses a job the scheduler cannot schedule (the
// two-level architecture: a framework that is not built in).
func (s *Server) checkJobForScheduler(job *structs.Job) error {
	if err := s.checkJobKindForScheduler(job); err != nil { // periodic.go
		return err
	}
	if c, ok := s.sched.(interface{ CheckJob(*structs.Job) error }); ok {
		return c.CheckJob(job)
	}
	return nil
}

// whyPending asks the scheduler why a job waits (two-level: for offers).
func (s *Server) whyPending(jobID string) string {
	if w, ok := s.sched.(interface{ WhyPending(string) string }); ok {
		return w.WhyPending(jobID)
	}
	return ""
}
