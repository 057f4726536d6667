package twolevel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// External frameworks' tasks. Each task is a job of one copy (see
// structs.FrameworkTask) placed by a plan through the plan applier. The
// architecture remembers the tasks that are not over (and those whose
// last update is not acknowledged), so memory follows live tasks; a
// finished task is answered from state when reconciled.

// task is one task of an external framework. Guarded by Scheduler.mu.
type task struct {
	fw      *extFramework
	id      string
	jobID   string
	allocID string
	nodeID  string
	state   structs.FrameworkTaskState
	// unacked is the last UPDATE sent and not acknowledged; it is sent
	// again when the framework subscribes again.
	unacked *structs.TaskStatus
}

// taskQueue is the task jobs to look at, each once, in order.
type taskQueue struct {
	ids  []string
	in   map[string]bool
	wake chan struct{}
}

func (q *taskQueue) add(id string) {
	if q.in == nil {
		q.in = map[string]bool{}
	}
	if !q.in[id] {
		q.in[id] = true
		q.ids = append(q.ids, id)
	}
	q.signal()
}

func (q *taskQueue) len() int { return len(q.ids) }

func (q *taskQueue) take() []string {
	ids := q.ids
	q.ids = nil
	clear(q.in)
	return ids
}

func (q *taskQueue) signal() {
	if q.wake == nil {
		return
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) isTaskJob(jobID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.taskJob[jobID] != nil
}

func (s *Scheduler) taskByAllocLocked(allocID string) *task { return s.taskAlloc[allocID] }

func (s *Scheduler) rememberTaskLocked(t *task) {
	t.fw.tasks[t.id] = t
	if s.taskJob == nil {
		s.taskJob, s.taskAlloc = map[string]*task{}, map[string]*task{}
	}
	s.taskJob[t.jobID] = t
	if t.allocID != "" {
		s.taskAlloc[t.allocID] = t
	}
}

func (s *Scheduler) forgetTaskLocked(t *task) {
	if t.fw.tasks[t.id] == t {
		delete(t.fw.tasks, t.id)
	}
	if s.taskJob[t.jobID] == t {
		delete(s.taskJob, t.jobID)
	}
	if s.taskAlloc[t.allocID] == t {
		delete(s.taskAlloc, t.allocID)
	}
}

// liveTasks counts a framework's tasks that are not over.
func (f *extFramework) liveTasks() int {
	n := 0
	for _, t := range f.tasks {
		if !t.state.Terminal() {
			n++
		}
	}
	return n
}

// Accept carries out an ACCEPT: every offer must be the framework's and
// outstanding, else nothing is launched (TASK_DROPPED) and the offers
// return to the pool. Each task must name an offered node and the tasks
// of a node must fit its offer, else that task is refused (TASK_ERROR).
// The offers are closed (what the tasks leave returns to the pool, with
// the call's filter); the tasks' jobs and plans go to the launcher, so
// the plan applier checks every placement. It returns each task's status
// (also sent as UPDATE events when not TASK_STAGING).
func (s *Scheduler) Accept(ctx context.Context, streamID string, c *structs.FrameworkCall) ([]structs.TaskStatus, error) {
	acc := c.Accept
	var infos []structs.TaskInfo
	for _, op := range acc.Operations {
		if op.Launch != nil {
			infos = append(infos, op.Launch.TaskInfos...)
		}
	}
	s.mu.Lock()
	f, err := s.currentLocked(c.FrameworkID, streamID)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	launcher := s.launcher
	if launcher == nil {
		s.mu.Unlock()
		return nil, errors.New("this server cannot launch tasks (no launcher)")
	}
	now := s.now()
	statuses := make([]structs.TaskStatus, len(infos))
	for i, ti := range infos {
		statuses[i] = structs.TaskStatus{TaskID: ti.TaskID, AgentID: ti.AgentID, Timestamp: structs.Seconds(now)}
	}
	// Every offer must be outstanding: otherwise nothing is launched.
	offerOf := map[string]string{} // node -> offer
	offerRes := map[string]structs.Resources{}
	var bad error
	for _, id := range acc.OfferIDs {
		r, node, err := s.alloc.OfferOf(f.id, id)
		if err != nil {
			bad = err
			break
		}
		offerOf[node], offerRes[node] = id, r
	}
	if bad != nil || len(acc.OfferIDs) == 0 {
		if bad == nil {
			bad = errors.New("no offers named")
		}
		_ = s.alloc.Decline(f.id, acc.OfferIDs, 0, now)
		for i := range statuses {
			statuses[i].State, statuses[i].Reason, statuses[i].Message = structs.TaskDropped, "offer not outstanding", bad.Error()
			s.sendUpdateLocked(f, nil, &statuses[i])
		}
		s.flushLocked()
		s.mu.Unlock()
		s.poke()
		return statuses, nil
	}
	view, _ := s.env.Snapshot()
	// Which tasks may launch: on an offered node, ID unused, fitting.
	ok := make([]bool, len(infos))
	sum := map[string]structs.Resources{}
	live := f.liveTasks()
	for i, ti := range infos {
		jobID := structs.TaskJobID(f.name, ti.TaskID)
		switch {
		case offerOf[ti.AgentID] == "":
			statuses[i].State, statuses[i].Message = structs.TaskError, fmt.Sprintf("agent %s is not the node of an accepted offer", ti.AgentID)
		case f.tasks[ti.TaskID] != nil || view != nil && view.JobByID(jobID) != nil:
			statuses[i].State, statuses[i].Message = structs.TaskError, fmt.Sprintf("task ID %s is already used by this framework (job %s)", ti.TaskID, jobID)
		case live >= s.cfg.MaxTasks:
			statuses[i].State, statuses[i].Message = structs.TaskError, fmt.Sprintf("the framework has %d live tasks, the most allowed", live)
		default:
			ok[i] = true
			live++
			sum[ti.AgentID] = sum[ti.AgentID].Add(ti.Resources)
		}
	}
	for node, need := range sum {
		if fits, dim := offerRes[node].Fits(need); !fits {
			for i, ti := range infos {
				if ok[i] && ti.AgentID == node {
					ok[i] = false
					statuses[i].State, statuses[i].Message = structs.TaskError,
						fmt.Sprintf("tasks on %s need %s, the offer holds %s (%s)", node, need, offerRes[node], dim)
				}
			}
			delete(sum, node)
		}
	}
	for node, need := range sum {
		if err := s.alloc.Use(f.id, offerOf[node], need); err != nil {
			// Checked just above under the same lock: cannot happen.
			s.mu.Unlock()
			return nil, fmt.Errorf("using offer %s: %w", offerOf[node], err)
		}
	}
	refuse := time.Duration(acc.Filters.Refuse() * float64(time.Second))
	_ = s.alloc.Accept(f.id, acc.OfferIDs, refuse, now)
	type launch struct {
		i     int
		t     *task
		job   *structs.Job
		alloc *structs.Allocation
	}
	var launches []launch
	for i, ti := range infos {
		if !ok[i] {
			s.sendUpdateLocked(f, nil, &statuses[i])
			continue
		}
		t := &task{fw: f, id: ti.TaskID, jobID: structs.TaskJobID(f.name, ti.TaskID), nodeID: ti.AgentID,
			allocID: scheduler.NewID(s.rng), state: structs.TaskStaging}
		s.rememberTaskLocked(t)
		f.launched++
		job, alloc := taskJob(f, ti, t, now)
		launches = append(launches, launch{i: i, t: t, job: job, alloc: alloc})
	}
	s.flushLocked()
	s.mu.Unlock()

	// The launches wait for Raft: outside the lock, several at once (job
	// writes and plans are group-committed).
	results := make([]*structs.PlanResult, len(launches))
	errs := make([]error, len(launches))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for k, l := range launches {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[k], errs[k] = launcher.Launch(ctx, l.job, l.alloc)
		})
	}
	wg.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	placed := map[string]structs.Resources{}
	for k, l := range launches {
		st := &statuses[l.i]
		st.AllocID = l.alloc.ID
		switch {
		case errs[k] != nil:
			var ve *structs.ValidationError
			st.State, st.Message = structs.TaskDropped, errs[k].Error()
			if errors.As(errs[k], &ve) {
				st.State = structs.TaskError
			}
		case results[k] == nil || !slices.Contains(results[k].Placed, l.alloc.ID):
			st.State, st.Message = structs.TaskDropped, "the plan applier refused the placement: the node no longer has the room"
		default:
			st.State = structs.TaskStaging
			placed[l.t.nodeID] = placed[l.t.nodeID].Add(l.job.TotalResources())
		}
		l.t.state = st.State
		if st.State != structs.TaskStaging {
			s.forgetTaskLocked(l.t)
			s.sendUpdateLocked(f, nil, st)
		}
	}
	if s.alloc != nil && s.fws[f.id] == f {
		for node, need := range sum {
			s.alloc.Settle(f.id, node, need)
			s.alloc.AddUsage(node, f.id, f.role, placed[node])
		}
		s.flushLocked()
	}
	s.poke()
	return statuses, nil
}

// taskJob builds the job holding a task and the allocation placing it.
func taskJob(f *extFramework, ti structs.TaskInfo, t *task, now time.Time) (*structs.Job, *structs.Allocation) {
	restart := structs.RestartPolicy{Attempts: 0, Interval: structs.Duration(time.Minute), Delay: structs.Duration(time.Second)}
	if ti.Restart != nil {
		restart = *ti.Restart
	}
	job := &structs.Job{
		ID: t.jobID, Name: t.jobID, Type: structs.JobTypeBatch, Priority: structs.DefaultPrio, Count: 1,
		Resources: ti.Resources, Driver: ti.Driver, Config: ti.Config, Env: ti.Env,
		Restart: restart,
		// The framework decides what replaces a task, never the server.
		Reschedule: structs.ReschedulePolicy{Attempts: 0, Delay: structs.Duration(time.Second)},
		Framework:  f.name,
		FrameworkTask: &structs.FrameworkTask{
			FrameworkID: f.id, FrameworkName: f.name, Role: f.role, TaskID: ti.TaskID,
			FailoverTimeout: structs.Duration(f.failoverTimeout),
		},
	}
	alloc := &structs.Allocation{
		ID: t.allocID, JobID: t.jobID, Name: structs.AllocName(t.jobID, 0), NodeID: ti.AgentID,
		Resources: ti.Resources, Priority: job.Priority,
		DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending,
		CreateTime: now.UnixNano(), ModifyTime: now.UnixNano(),
	}
	return job, alloc
}

// kill stops a task (KILL): its job is stopped, then its allocation.
func (s *Scheduler) kill(ctx context.Context, streamID string, c *structs.FrameworkCall) error {
	s.mu.Lock()
	f, err := s.currentLocked(c.FrameworkID, streamID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	jobID := structs.TaskJobID(f.name, c.Kill.TaskID)
	known := f.tasks[c.Kill.TaskID] != nil
	if !known {
		if view, err := s.env.Snapshot(); err == nil && view != nil {
			if j := view.JobByID(jobID); j != nil && j.FrameworkTask != nil && j.FrameworkTask.FrameworkID == f.id {
				known = !j.Stop
			}
		}
	}
	if !known {
		st := structs.TaskStatus{TaskID: c.Kill.TaskID, State: structs.TaskUnknown, Reason: "kill",
			Message: "no such task of this framework", Timestamp: structs.Seconds(s.now())}
		s.sendUpdateLocked(f, nil, &st)
		s.mu.Unlock()
		return nil
	}
	launcher := s.launcher
	s.mu.Unlock()
	if launcher == nil {
		return errors.New("this server cannot stop tasks (no launcher)")
	}
	return launcher.Stop(ctx, jobID)
}

// acknowledgeLocked drops an acknowledged update, and the task with it if
// it is over.
func (s *Scheduler) acknowledgeLocked(f *extFramework, a *structs.CallAcknowledge) {
	t := f.tasks[a.TaskID]
	if t == nil || t.unacked == nil || t.unacked.UUID != a.UUID {
		return
	}
	t.unacked = nil
	if t.state.Terminal() {
		s.forgetTaskLocked(t)
	}
}

// reconcileLocked answers RECONCILE with each task's state (no UUID: no
// acknowledgement expected).
func (s *Scheduler) reconcileLocked(f *extFramework, r *structs.CallReconcile) {
	view, err := s.env.Snapshot()
	if err != nil || view == nil {
		return
	}
	var ids []string
	if r == nil || len(r.Tasks) == 0 {
		ids = slices.Sorted(mapKeys(f.tasks))
	} else {
		for _, t := range r.Tasks {
			ids = append(ids, t.TaskID)
		}
	}
	now := s.now()
	for _, id := range ids {
		st := s.statusFromState(view, f, id, now)
		st.Reason = "reconciliation"
		s.sendLocked(f, structs.FrameworkEvent{Type: structs.EventTypeUpdate, Update: &structs.EventUpdate{Status: st}})
	}
}

// statusFromState reads a task's status from a view.
func (s *Scheduler) statusFromState(view scheduler.State, f *extFramework, taskID string, now time.Time) structs.TaskStatus {
	jobID := structs.TaskJobID(f.name, taskID)
	st := structs.TaskStatus{TaskID: taskID, Timestamp: structs.Seconds(now)}
	job := view.JobByID(jobID)
	if job == nil || job.FrameworkTask == nil || job.FrameworkTask.FrameworkID != f.id {
		st.State, st.Message = structs.TaskUnknown, "no such task of this framework"
		if t := f.tasks[taskID]; t != nil {
			st.State = t.state // launching: not in state yet
		}
		return st
	}
	allocs := view.AllocsByJob(jobID)
	if len(allocs) == 0 && !job.Stop && f.tasks[taskID] == nil {
		// Registered but never placed, and not being launched now: the
		// leader that launched it was lost between the job and its plan.
		// Nothing ran; the job is stopped so the answer stays the same.
		st.State, st.Message = structs.TaskDropped, "its launch did not complete (the leader changed); launch it again under a new ID"
		s.killJobsLocked([]string{jobID})
		return st
	}
	return taskStatus(job, allocs, now)
}

// taskStatus maps a task job and its allocations to the task's status.
func taskStatus(job *structs.Job, allocs []*structs.Allocation, now time.Time) structs.TaskStatus {
	st := structs.TaskStatus{TaskID: job.FrameworkTask.TaskID, Timestamp: structs.Seconds(now)}
	var a *structs.Allocation
	for _, x := range allocs {
		if a == nil || x.CreateTime > a.CreateTime {
			a = x
		}
	}
	if a == nil {
		if job.Stop {
			st.State, st.Message = structs.TaskKilled, "killed before it was placed"
		} else {
			st.State = structs.TaskStaging
		}
		return st
	}
	st.AgentID, st.AllocID, st.ExitCode = a.NodeID, a.ID, a.TaskState.ExitCode
	st.Message = a.ClientDescription
	if a.DesiredStatus != structs.AllocDesiredRun {
		st.Reason = a.DesiredDescription
		switch {
		case a.ClientStatus == structs.AllocClientLost:
			st.State = structs.TaskLost
		case a.ClientTerminal() || a.ClientStatus == structs.AllocClientPending:
			st.State = structs.TaskKilled
		default:
			st.State = structs.TaskKilling
		}
		return st
	}
	switch a.ClientStatus {
	case structs.AllocClientRunning:
		st.State = structs.TaskRunning
	case structs.AllocClientComplete:
		st.State = structs.TaskFinished
	case structs.AllocClientFailed:
		st.State = structs.TaskFailed
	case structs.AllocClientLost:
		st.State, st.Reason = structs.TaskLost, "node down"
	default:
		st.State = structs.TaskStaging
	}
	return st
}

// sendUpdateLocked sends a task's new status as an UPDATE to acknowledge
// (t nil: a status of no remembered task, still acknowledgeable).
func (s *Scheduler) sendUpdateLocked(f *extFramework, t *task, st *structs.TaskStatus) {
	st.UUID = scheduler.NewID(s.rng)
	if t != nil {
		c := *st
		t.unacked = &c
	}
	s.sendLocked(f, structs.FrameworkEvent{Type: structs.EventTypeUpdate, Update: &structs.EventUpdate{Status: *st}})
}

// taskLoop looks at the task jobs enqueued: it stops the allocation of a
// task whose job was stopped (KILL, framework removed) or whose node
// drained or went down (a stop-only reconciliation: the server never
// places a framework's task itself), then sends the task's new status.
func (s *Scheduler) taskLoop(ctx context.Context) {
	s.mu.Lock()
	wake := make(chan struct{}, 1)
	s.tasksQ.wake = wake
	pending := s.tasksQ.len() > 0
	s.mu.Unlock()
	if pending {
		s.tasksQ.signal()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		s.mu.Lock()
		ids := s.tasksQ.take()
		s.mu.Unlock()
		for _, id := range ids {
			if ctx.Err() != nil {
				return
			}
			s.lookAtTask(ctx, id)
		}
	}
}

func (s *Scheduler) lookAtTask(ctx context.Context, jobID string) {
	view, err := s.env.Snapshot()
	if err != nil || view == nil {
		return
	}
	job := view.JobByID(jobID)
	if job != nil && job.FrameworkTask != nil {
		rec := scheduler.Reconcile(job, view.AllocsByJob(jobID), view.NodeByID, s.now())
		if len(rec.Stops) > 0 {
			plan := &structs.Plan{JobID: jobID, Priority: job.Priority, SnapshotIndex: view.Index(), Stops: rec.Stops}
			if _, err := s.env.Planner.SubmitPlan(ctx, plan); err != nil && ctx.Err() == nil {
				s.log.Error("stopping a framework's task", "job", jobID, "error", err)
			}
			if v, err := s.env.Snapshot(); err == nil && v != nil {
				view, job = v, v.JobByID(jobID)
			}
			s.mu.Lock()
			for _, st := range rec.Stops {
				s.markDirtyLocked(st.NodeID)
			}
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.taskJob[jobID]
	if t == nil || s.fws[t.fw.id] != t.fw {
		return
	}
	var st structs.TaskStatus
	if job == nil || job.FrameworkTask == nil {
		st = structs.TaskStatus{TaskID: t.id, State: structs.TaskKilled, Message: "the task's job was removed", Timestamp: structs.Seconds(s.now())}
	} else {
		st = taskStatus(job, view.AllocsByJob(jobID), s.now())
	}
	if st.State == t.state {
		return
	}
	t.state = st.State
	if st.AllocID != "" && st.AllocID != t.allocID {
		delete(s.taskAlloc, t.allocID)
		t.allocID = st.AllocID
		s.taskAlloc[t.allocID] = t
	}
	s.sendUpdateLocked(t.fw, t, &st)
	if st.State.Terminal() && t.fw.sub == nil && t.unacked == nil {
		s.forgetTaskLocked(t)
	}
}

// nodeLostLocked tells the frameworks with tasks on a node that it is
// gone (FAILURE); the tasks' own updates (TASK_LOST) follow.
func (s *Scheduler) nodeLostLocked(nodeID string) {
	for _, id := range slices.Sorted(mapKeys(s.fws)) {
		f := s.fws[id]
		for _, t := range f.tasks {
			if t.nodeID == nodeID {
				s.sendLocked(f, structs.FrameworkEvent{Type: structs.EventTypeFailure, Failure: &structs.EventFailure{AgentID: nodeID}})
				s.tasksQ.add(t.jobID)
				break
			}
		}
	}
}

// loadFrameworksLocked learns the external frameworks with live tasks
// from state (a run starts): they are disconnected until they subscribe
// again, and their failover timers start now.
func (s *Scheduler) loadFrameworksLocked(view scheduler.State) {
	for _, nodeID := range s.sync.ids {
		for _, a := range view.AllocsByNode(nodeID) {
			j := a.Job
			if j == nil {
				j = view.JobByID(a.JobID)
			}
			if a.Terminal() || j == nil || j.FrameworkTask == nil {
				continue
			}
			ft := j.FrameworkTask
			f := s.fws[ft.FrameworkID]
			if f == nil {
				role := ft.Role
				if role == "" {
					role = structs.DefaultRole
				}
				f = &extFramework{id: ft.FrameworkID, name: ft.FrameworkName, role: role,
					failoverTimeout: ft.FailoverTimeout.D(), disconnected: s.now(), tasks: map[string]*task{}}
				s.fws[f.id] = f
				s.byName[f.name] = f
			}
			t := &task{fw: f, id: ft.TaskID, jobID: j.ID, allocID: a.ID, nodeID: a.NodeID}
			t.state = taskStatus(j, []*structs.Allocation{a}, s.now()).State
			s.rememberTaskLocked(t)
		}
	}
	for _, f := range s.fws {
		s.armFailoverLocked(f)
	}
}
