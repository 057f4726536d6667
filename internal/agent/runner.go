package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// Task event types reported in TaskState.Events.
const (
	EventReceived      = "Received"
	EventStarted       = "Started"
	EventReattached    = "Reattached"
	EventTerminated    = "Terminated"
	EventRestarting    = "Restarting"
	EventKilled        = "Killed"
	EventDriverFailure = "Driver Failure"
	EventNotRestarting = "Not Restarting"
	EventLost          = "Lost"
	EventSetupFailure  = "Setup Failure" // a prestart task failed
)

// runner drives one allocation's task through its life on this node:
// start, restarts in place under the job's restart policy, stop on the
// server's request, and a report of every transition.
//
// One goroutine (run) owns the task; other goroutines only read the record
// (under mu) or ask it to stop (kill) or to let go (detach).
type runner struct {
	a        *Agent
	id       string
	allocDir string

	killCh     chan struct{}
	killOnce   sync.Once
	detachCh   chan struct{}
	detachOnce sync.Once
	done       chan struct{}

	// restartCh asks the run goroutine to restart the task in place
	// (`alloc restart`); cur is the running task, for exec and signals
	// (alloc_ops.go).
	restartCh chan chan error
	cur       driver.Task // guarded by mu

	// sides are the extra tasks' goroutines (tasks.go); sideWG waits
	// for them before done is closed.
	sides  sides
	sideWG sync.WaitGroup

	// upMu orders updates end to end (record, disk, report), as the
	// extra tasks' goroutines update the record too.
	upMu sync.Mutex
	mu   sync.Mutex
	rec  *allocRecord // guarded by mu; the run goroutine writes it
	// counted says the running-tasks gauge includes this task.
	counted bool
}

func newRunner(a *Agent, rec *allocRecord) *runner {
	return &runner{
		a:        a,
		id:       rec.Alloc.ID,
		allocDir: filepath.Join(a.cfg.DataDir, allocsDir, rec.Alloc.ID),
		killCh:   make(chan struct{}),
		detachCh: make(chan struct{}),
		done:     make(chan struct{}),
		rec:      rec.copy(),

		restartCh: make(chan chan error),
	}
}

// kill asks the runner to stop its task for good (the server stopped or
// evicted the allocation, or no longer lists it).
func (r *runner) kill() { r.killOnce.Do(func() { close(r.killCh) }) }

// detach lets the task run on without this agent (agent shutdown).
func (r *runner) detach() { r.detachOnce.Do(func() { close(r.detachCh) }) }

func (r *runner) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// snapshot returns a copy of the record.
func (r *runner) snapshot() *allocRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.copy()
}

// setAlloc records the server's latest version of the allocation (its
// desired status changes; the job does not).
func (r *runner) setAlloc(a *structs.Allocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.Job == nil {
		a = a.Copy()
		a.Job = r.rec.Alloc.Job
	}
	r.rec.Alloc = groupAlloc(a)
}

// update changes the record under the lock, saves it and reports it.
func (r *runner) update(f func(rec *allocRecord)) {
	r.upMu.Lock()
	defer r.upMu.Unlock()
	r.mu.Lock()
	f(r.rec)
	rec := r.rec.copy()
	r.mu.Unlock()
	if err := r.a.store.put(rec); err != nil {
		r.a.log.Error("alloc state not saved; a restart may not re-attach", "alloc", r.id, "err", err)
	}
	r.a.updates.push(rec.report())
}

func (r *runner) event(rec *allocRecord, typ, msg string) {
	r.taskEvent(&rec.TaskState, typ, msg)
}

func (r *runner) taskEvent(ts *structs.TaskState, typ, msg string) {
	ev := structs.TaskEvent{Time: r.a.cfg.Now().UnixNano(), Type: typ, Message: msg}
	ts.Events = append(ts.Events, ev)
	if n := len(ts.Events) - structs.MaxTaskEvents; n > 0 {
		ts.Events = append([]structs.TaskEvent(nil), ts.Events[n:]...)
	}
}

func (r *runner) setCounted(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on != r.counted {
		r.counted = on
		if on {
			r.a.metrics.running.Inc()
		} else {
			r.a.metrics.running.Dec()
		}
	}
}

// taskConfig is the main task's config; the error says why its volumes
// cannot be mounted on this node (the config is complete otherwise).
func (r *runner) taskConfig(alloc *structs.Allocation) (*driver.TaskConfig, error) {
	j := alloc.Job
	// The copy's resources are its tasks' sum; the main task gets what
	// the extra ones do not (all of it for a one-task job).
	res := alloc.Resources
	for i := range j.Tasks {
		res = res.Sub(j.Tasks[i].Resources)
	}
	cfg := &driver.TaskConfig{
		AllocID: alloc.ID, JobID: alloc.JobID, AllocIndex: alloc.Index, JobType: j.Type,
		Config: j.Config, Env: jobEnv(j), Resources: res, Logs: j.Logs, AllocDir: r.allocDir,
	}
	r.a.addPorts(cfg, alloc)
	cfg.Env = r.a.addDNSEnv(cfg.Env)
	err := r.a.addMounts(cfg, j.Driver, j.VolumeMounts, j)
	return cfg, err
}

// run is the runner's goroutine.
func (r *runner) run() {
	defer close(r.done)
	defer r.sideWG.Wait()
	rec := r.snapshot()
	if rec.Phase == phaseDone {
		return
	}
	alloc := rec.Alloc
	if alloc.Job == nil {
		r.finish(structs.AllocClientFailed, "allocation has no job to run", EventDriverFailure, nil)
		return
	}
	drv, ok := r.a.drivers[alloc.Job.Driver]
	if !ok {
		r.finish(structs.AllocClientFailed, fmt.Sprintf("driver %q is not available on this node", alloc.Job.Driver), EventDriverFailure, nil)
		return
	}
	var task driver.Task
	r.recoverTasks(rec) // tasks.go
	reattached := false
	switch rec.Phase {
	case phaseStarting, phaseRunning:
		if rec.Handle == nil {
			r.finish(structs.AllocClientFailed, "task lost: the agent stopped while starting it, so it may or may not have run; it is not started again", EventLost, nil)
			return
		}
		cfg, _ := r.taskConfig(alloc) // it runs: its mounts were made
		t, err := drv.Recover(rec.Handle, cfg)
		if err != nil {
			r.finish(structs.AllocClientFailed, fmt.Sprintf("task lost: re-attaching after an agent restart: %v", err), EventLost, nil)
			return
		}
		task = t
		reattached = true
		r.setCounted(true)
		r.update(func(rec *allocRecord) {
			r.event(rec, EventReattached, fmt.Sprintf("agent restarted; re-attached to the running task (pid %d)", rec.Handle.PID))
		})
	case phaseReceived:
		if err := os.MkdirAll(r.allocDir, 0o755); err != nil {
			r.finish(structs.AllocClientFailed, fmt.Sprintf("creating alloc dir: %v", err), EventDriverFailure, nil)
			return
		}
		if err := writePayload(r.allocDir, alloc.Job); err != nil { // dispatch.go
			r.finish(structs.AllocClientFailed, fmt.Sprintf("writing the dispatch payload: %v", err), EventDriverFailure, nil)
			return
		}
		r.update(func(rec *allocRecord) {
			rec.ClientStatus = structs.AllocClientPending
			rec.TaskState.State = structs.TaskStatePending
			r.event(rec, EventReceived, "task received by the node")
		})
	}

	for {
		var res driver.ExitResult
		startFailed := false
		if task == nil {
			select {
			case <-r.killCh:
				r.finishKilled(nil, driver.ExitResult{})
				return
			case <-r.detachCh:
				return
			default:
			}
			var t driver.Task
			err := r.startSidecars(alloc.Job)
			if err == nil {
				err = r.runPrestart(alloc.Job)
			}
			switch {
			case errors.Is(err, errKilled):
				r.finishKilled(nil, driver.ExitResult{})
				return
			case errors.Is(err, errDetached):
				return
			case err != nil:
				r.update(func(rec *allocRecord) {
					rec.Phase = phaseRestartWait
					rec.TaskState.StartedAt, rec.TaskState.PID, rec.TaskState.ExitCode = 0, 0, 0
					rec.TaskState.FinishedAt = r.a.cfg.Now().UnixNano()
					r.event(rec, EventSetupFailure, err.Error())
				})
			default:
				t, err = r.start(drv)
			}
			if err != nil {
				res = driver.ExitResult{ExitCode: -1, Err: err}
				startFailed = true
			} else {
				r.startPoststart(alloc.Job)
			}
			task = t
		}
		if task != nil {
			r.setCurrent(task)
			hr := r.startHealth(task, reattached) // health.go
			reattached = false
			restarted := false
			select {
			case <-task.Exited():
				res = task.Result()
			case <-r.killCh:
				r.setCurrent(nil)
				hr.stop(true)
				r.finishKilled(task, driver.ExitResult{})
				return
			case <-r.detachCh:
				r.setCurrent(nil)
				hr.stop(false) // the task runs on: its health stays as saved
				task.Detach()
				r.setCounted(false)
				return
			case reply := <-r.restartCh:
				hr.stop(true)
				reply <- r.restartInPlace(task)
				restarted = true
			case why := <-hr.restartC():
				res = r.restartUnhealthy(task, why)
			}
			hr.stop(true)
			r.setCurrent(nil)
			r.setCounted(false)
			task = nil
			if restarted {
				continue // asked for: not an exit the restart policy counts
			}
		}
		restart, wait := r.restartOrFinish(res, startFailed)
		if !restart {
			return
		}
		// Wait out the restart delay unless stopped meanwhile.
		delay := time.NewTimer(wait)
		select {
		case <-delay.C:
		case <-r.killCh:
			delay.Stop()
			r.finishKilled(nil, driver.ExitResult{})
			return
		case <-r.detachCh:
			delay.Stop()
			return
		}
	}
}

// start launches the task. The phase is saved as "starting" first, so an
// agent that dies mid-start never starts the task a second time.
func (r *runner) start(drv driver.Driver) (driver.Task, error) {
	r.update(func(rec *allocRecord) { rec.Phase = phaseStarting })
	cfg, err := r.taskConfig(r.snapshot().Alloc)
	var task driver.Task
	if err == nil {
		task, err = drv.Start(cfg)
	}
	if err != nil {
		r.update(func(rec *allocRecord) {
			rec.Phase = phaseRestartWait
			// This attempt has no start time, PID or exit code: views then
			// show the start error (in the events and the description), not
			// an "exit code 0" no process ever returned.
			rec.TaskState.StartedAt, rec.TaskState.PID, rec.TaskState.ExitCode = 0, 0, 0
			rec.TaskState.FinishedAt = r.a.cfg.Now().UnixNano()
			r.event(rec, EventDriverFailure, err.Error())
		})
		return nil, err
	}
	r.a.metrics.starts.Inc()
	r.setCounted(true)
	h := task.Handle()
	r.update(func(rec *allocRecord) {
		rec.Phase = phaseRunning
		rec.Handle = h
		rec.ClientStatus = structs.AllocClientRunning
		rec.ClientDescription = ""
		rec.TaskState.State = structs.TaskStateRunning
		rec.TaskState.StartedAt = h.StartedAt
		rec.TaskState.FinishedAt = 0
		rec.TaskState.PID = h.PID
		msg := "task started"
		if h.PID > 0 {
			msg = fmt.Sprintf("task started (pid %d)", h.PID)
		}
		r.event(rec, EventStarted, msg)
	})
	return task, nil
}

// restartOrFinish applies the restart policy to an exit: batch tasks that
// exit 0 are complete; other exits restart while the policy allows
// (Attempts within Interval), then the allocation fails. It reports
// whether a restart follows, and the wait before it.
func (r *runner) restartOrFinish(res driver.ExitResult, startFailed bool) (bool, time.Duration) {
	rec := r.snapshot()
	job := rec.Alloc.Job
	if res.Err != nil && !startFailed {
		// Lost while running (its supervisor vanished): the outcome is
		// unknown, so the scheduler, not a restart here, decides.
		r.finish(structs.AllocClientFailed, res.Err.Error(), EventLost, &res)
		return false, 0
	}
	var exit *driver.ExitResult
	if !startFailed {
		exit = &res
	}
	if job.Type == structs.JobTypeBatch && res.Successful() {
		r.finish(structs.AllocClientComplete, "", "", exit)
		return false, 0
	}
	now := r.a.cfg.Now()
	p := job.Restart
	d := decideRestart(p, rec.RestartTimes, now)
	if !d.restart {
		why := fmt.Sprintf("restart policy exhausted (%d restarts within %s allowed); last: %s", p.Attempts, p.Interval, res)
		if p.Attempts == 0 {
			why = fmt.Sprintf("restart policy allows no restarts; %s", res)
		}
		r.finish(structs.AllocClientFailed, why, EventNotRestarting, exit)
		return false, 0
	}
	r.a.metrics.restarts.Inc()
	r.update(func(rec *allocRecord) {
		if !startFailed {
			r.terminated(rec, res)
		}
		rec.Phase = phaseRestartWait
		d.keep = append(d.keep, now.UnixNano())
		rec.RestartTimes = d.keep
		rec.TaskState.Restarts++
		rec.TaskState.State = structs.TaskStatePending
		rec.ClientStatus = structs.AllocClientPending
		r.event(rec, EventRestarting, fmt.Sprintf("restart %d of %d within %s, in %s (%s)",
			d.attempt, p.Attempts, p.Interval, d.wait, res))
	})
	return true, d.wait
}

// restartDecision is what the restart policy says of one more exit.
type restartDecision struct {
	restart bool
	// attempt is the restart this is within the interval (1 is the
	// first); wait the delay before it, from the policy's delay function.
	attempt int
	wait    time.Duration
	// keep are the earlier restart times still within the interval.
	keep []int64
}

// decideRestart applies a restart policy at now, given the times of the
// earlier restarts (unix nanoseconds): a restart is allowed while fewer
// than Attempts happened within Interval (0: ever), and its wait grows
// with their number as the delay function says, so a task that keeps
// crashing backs off instead of restarting every Delay.
func decideRestart(p structs.RestartPolicy, times []int64, now time.Time) restartDecision {
	var keep []int64
	for _, t := range times {
		if p.Interval <= 0 || now.Sub(time.Unix(0, t)) < p.Interval.D() {
			keep = append(keep, t)
		}
	}
	if len(keep) >= p.Attempts {
		return restartDecision{keep: keep}
	}
	attempt := len(keep) + 1
	return restartDecision{restart: true, attempt: attempt, wait: p.NextDelay(attempt), keep: keep}
}

// terminated records a task's exit in rec. It is applied in the same
// update as the decision that follows, so a crash cannot separate the two
// (a finished batch task must never look restartable).
func (r *runner) terminated(rec *allocRecord, res driver.ExitResult) {
	rec.Handle = nil
	rec.TaskState.ExitCode = res.ExitCode
	if !res.FinishedAt.IsZero() {
		rec.TaskState.FinishedAt = res.FinishedAt.UnixNano()
	}
	r.event(rec, EventTerminated, res.String())
}

// finish ends the allocation for good; res is the task's exit, if it just
// exited.
func (r *runner) finish(status, desc, evType string, res *driver.ExitResult) {
	if status == structs.AllocClientFailed {
		r.a.metrics.failures.Inc()
	}
	r.endTasks(r.snapshot().Alloc.Job)
	r.update(func(rec *allocRecord) {
		rec.Phase = phaseDone
		rec.Handle = nil
		rec.ClientStatus = status
		rec.ClientDescription = desc
		rec.TaskState.State = structs.TaskStateDead
		rec.TaskState.Failed = status == structs.AllocClientFailed
		if res != nil {
			r.terminated(rec, *res)
		}
		if rec.TaskState.FinishedAt == 0 {
			rec.TaskState.FinishedAt = r.a.cfg.Now().UnixNano()
		}
		if evType != "" {
			msg := desc
			if msg == "" {
				msg = "task is done"
			}
			r.event(rec, evType, msg)
		}
	})
	r.a.log.Info("allocation finished", "alloc", r.id, "status", status, "description", desc)
}

// finishKilled stops the task (if one runs) because the server asked:
// the allocation is complete, with a Killed event.
func (r *runner) finishKilled(task driver.Task, res driver.ExitResult) {
	msg := "task stopped by the server"
	if d := r.snapshot().Alloc.DesiredDescription; d != "" {
		msg += ": " + d
	}
	if task != nil {
		if err := task.Stop(r.a.cfg.KillTimeout); err != nil {
			r.a.log.Error("stopping task", "alloc", r.id, "err", err)
			msg += fmt.Sprintf(" (stop error: %v)", err)
		}
		res = task.Result()
		r.setCounted(false)
	} else {
		msg += " before it started"
	}
	r.endTasks(r.snapshot().Alloc.Job)
	r.update(func(rec *allocRecord) {
		rec.Phase = phaseDone
		rec.Handle = nil
		rec.ClientStatus = structs.AllocClientComplete
		rec.ClientDescription = msg
		rec.TaskState.State = structs.TaskStateDead
		rec.TaskState.Failed = false
		if task != nil {
			rec.TaskState.ExitCode = res.ExitCode
			rec.TaskState.FinishedAt = res.FinishedAt.UnixNano()
		} else if rec.TaskState.FinishedAt == 0 {
			rec.TaskState.FinishedAt = r.a.cfg.Now().UnixNano()
		}
		r.event(rec, EventKilled, msg)
	})
}
