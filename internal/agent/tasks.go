package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// Extra tasks of an allocation (task groups). The runner's goroutine owns
// the main task as before; each extra task runs in a sideTask goroutine of
// its own, started by the runner at its lifecycle point:
//
//   - prestart sidecars, then prestart hooks, before each start of the main
//     task until the hooks have all succeeded once (a failed hook fails that
//     start, which the restart policy then retries);
//   - poststart tasks once the main task has started the first time;
//   - poststop hooks once the main task has ended for good, after the
//     others are stopped; the allocation's final status is reported after
//     them.
//
// Sidecars (and tasks without a lifecycle) are restarted under the job's
// restart policy when they exit; a sidecar whose restarts are exhausted
// stays dead (failed) while the main task goes on, as in Nomad.

// tasksDir holds the extra tasks' directories inside an allocation's.
const tasksDir = "tasks"

// TaskDir is the directory of one task of an allocation: the allocation's
// own for the main task (task "", as before task groups), tasks/<name>
// for an extra one. Its logs and driver files live there.
func TaskDir(allocDir, task string) string {
	if task == "" {
		return allocDir
	}
	return filepath.Join(allocDir, tasksDir, task)
}

// sideTask runs one extra task.
type sideTask struct {
	r    *runner
	spec structs.Task
	drv  driver.Driver

	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	// restartCh asks for a restart in place (`alloc restart --task`).
	restartCh chan chan error

	mu  sync.Mutex
	cur driver.Task // the running task, for exec and signals
	// ok says a hook exited successfully (set before done is closed).
	ok bool
}

func (r *runner) newSideTask(t structs.Task) (*sideTask, error) {
	drv, ok := r.a.drivers[t.Driver]
	if !ok {
		return nil, fmt.Errorf("task %s: driver %q is not available on this node", t.Name, t.Driver)
	}
	return &sideTask{r: r, spec: t, drv: drv, stopCh: make(chan struct{}), done: make(chan struct{}),
		restartCh: make(chan chan error)}, nil
}

// restart asks the task's goroutine for a restart in place and waits for
// the stop.
func (s *sideTask) restart(ctx context.Context) error {
	return askRestart(ctx, s.restartCh, s.done)
}

func (s *sideTask) finished() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *sideTask) stop() { s.stopOnce.Do(func() { close(s.stopCh) }) }

func (s *sideTask) current() driver.Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *sideTask) setCurrent(t driver.Task) {
	s.mu.Lock()
	s.cur = t
	s.mu.Unlock()
}

// config is the extra task's driver config: its own directory, the copy's
// ports and the volumes it mounts.
func (s *sideTask) config(alloc *structs.Allocation) (*driver.TaskConfig, error) {
	j := alloc.Job
	env := jobEnv(&structs.Job{Meta: j.Meta, ParentID: j.ParentID, Payload: j.Payload, Env: s.spec.Env})
	cfg := &driver.TaskConfig{
		AllocID: alloc.ID, JobID: alloc.JobID, AllocIndex: alloc.Index, JobType: j.Type,
		Config: s.spec.Config, Env: env, Resources: s.spec.Resources, Logs: j.Logs,
		AllocDir: TaskDir(s.r.allocDir, s.spec.Name), TaskName: s.spec.Name,
	}
	s.r.a.addPorts(cfg, alloc)
	if s.spec.Driver == "docker" {
		// Ports are published by the main task's container; a second
		// container cannot bind the same host ports. Docker extra tasks
		// reach them through the host (GANTRY_ADDR_*).
		cfg.Ports = nil
	}
	err := s.r.a.addMounts(cfg, s.spec.Driver, s.spec.VolumeMounts, j)
	return cfg, err
}

// update changes the task's record under the runner's lock and reports
// the allocation.
func (s *sideTask) update(f func(t *taskRecord, ts *structs.TaskState)) {
	s.r.update(func(rec *allocRecord) {
		t := rec.task(s.spec.Name)
		f(t, &t.State)
	})
}

// run is the side task's goroutine; task is a task re-attached after an
// agent restart, or nil to start one.
func (s *sideTask) run(task driver.Task) {
	defer close(s.done)
	name := s.spec.Name
	for {
		var res driver.ExitResult
		startFailed := false
		if task == nil {
			select {
			case <-s.stopCh:
				s.update(func(t *taskRecord, ts *structs.TaskState) {
					ts.State = structs.TaskStateDead
					s.r.taskEvent(ts, EventKilled, "task stopped before it started")
				})
				return
			case <-s.r.detachCh:
				return
			default:
			}
			t, err := s.start()
			if err != nil {
				res, startFailed = driver.ExitResult{ExitCode: -1, Err: err, FinishedAt: s.r.a.cfg.Now()}, true
			}
			task = t
		}
		if task != nil {
			s.setCurrent(task)
			select {
			case <-task.Exited():
				res = task.Result()
			case <-s.stopCh:
				s.setCurrent(nil)
				if err := task.Stop(s.r.a.cfg.KillTimeout); err != nil {
					s.r.a.log.Error("stopping task", "alloc", s.r.id, "task", name, "err", err)
				}
				res = task.Result()
				s.update(func(t *taskRecord, ts *structs.TaskState) {
					t.Handle = nil
					ts.State, ts.ExitCode = structs.TaskStateDead, res.ExitCode
					ts.FinishedAt = res.FinishedAt.UnixNano()
					s.r.taskEvent(ts, EventKilled, "task stopped with its allocation")
				})
				return
			case <-s.r.detachCh:
				s.setCurrent(nil)
				task.Detach()
				return
			case reply := <-s.restartCh:
				// Asked for: stopped and started again at once, not
				// counted by the restart policy (as the main task's).
				s.setCurrent(nil)
				err := task.Stop(s.r.a.cfg.KillTimeout)
				res := task.Result()
				s.update(func(t *taskRecord, ts *structs.TaskState) {
					t.Handle = nil
					ts.State, ts.ExitCode = structs.TaskStatePending, res.ExitCode
					s.r.taskEvent(ts, EventRestartSignaled, "restart asked for by a user; "+res.String())
				})
				reply <- err
				task = nil
				continue
			}
			s.setCurrent(nil)
			task = nil
		}
		if s.spec.IsHook() {
			s.ok = res.Successful()
			s.update(func(t *taskRecord, ts *structs.TaskState) {
				s.terminated(t, ts, res, startFailed)
				ts.State, ts.Failed = structs.TaskStateDead, !s.ok
			})
			return
		}
		// A sidecar: restarted under the job's restart policy.
		p := s.r.snapshot().Alloc.Job.Restart
		now := s.r.a.cfg.Now()
		var times []int64
		if t := s.r.snapshot().Tasks[name]; t != nil {
			times = t.RestartTimes
		}
		d := decideRestart(p, times, now)
		if !d.restart {
			s.update(func(t *taskRecord, ts *structs.TaskState) {
				s.terminated(t, ts, res, startFailed)
				ts.State, ts.Failed = structs.TaskStateDead, true
				s.r.taskEvent(ts, EventNotRestarting, fmt.Sprintf("restart policy exhausted; last: %s", res))
			})
			return
		}
		s.update(func(t *taskRecord, ts *structs.TaskState) {
			s.terminated(t, ts, res, startFailed)
			t.RestartTimes = append(slices.Clone(d.keep), now.UnixNano())
			ts.Restarts++
			ts.State = structs.TaskStatePending
			s.r.taskEvent(ts, EventRestarting, fmt.Sprintf("restart %d of %d within %s, in %s (%s)", d.attempt, p.Attempts, p.Interval, d.wait, res))
		})
		delay := time.NewTimer(d.wait)
		select {
		case <-delay.C:
		case <-s.stopCh:
			delay.Stop()
			s.update(func(t *taskRecord, ts *structs.TaskState) {
				ts.State = structs.TaskStateDead
				s.r.taskEvent(ts, EventKilled, "task stopped with its allocation")
			})
			return
		case <-s.r.detachCh:
			delay.Stop()
			return
		}
	}
}

func (s *sideTask) terminated(t *taskRecord, ts *structs.TaskState, res driver.ExitResult, startFailed bool) {
	t.Handle = nil
	if !res.FinishedAt.IsZero() {
		ts.FinishedAt = res.FinishedAt.UnixNano()
	}
	if startFailed {
		ts.ExitCode = 0
		s.r.taskEvent(ts, EventDriverFailure, res.Err.Error())
		return
	}
	ts.ExitCode = res.ExitCode
	s.r.taskEvent(ts, EventTerminated, res.String())
}

func (s *sideTask) start() (driver.Task, error) {
	alloc := s.r.snapshot().Alloc
	cfg, err := s.config(alloc)
	if err == nil {
		err = os.MkdirAll(cfg.AllocDir, 0o755)
	}
	var task driver.Task
	if err == nil {
		task, err = s.drv.Start(cfg)
	}
	if err != nil {
		return nil, err
	}
	h := task.Handle()
	s.update(func(t *taskRecord, ts *structs.TaskState) {
		t.Handle = h
		ts.State, ts.StartedAt, ts.FinishedAt, ts.PID, ts.Failed = structs.TaskStateRunning, h.StartedAt, 0, h.PID, false
		msg := "task started"
		if h.PID > 0 {
			msg = fmt.Sprintf("task started (pid %d)", h.PID)
		}
		s.r.taskEvent(ts, EventStarted, msg)
	})
	return task, nil
}

// sides is the runner's set of extra tasks that have a goroutine.
type sides struct {
	mu sync.Mutex
	m  map[string]*sideTask
}

func (r *runner) side(name string) *sideTask {
	r.sides.mu.Lock()
	defer r.sides.mu.Unlock()
	return r.sides.m[name]
}

// launch starts the goroutine of an extra task (task: re-attached, or nil).
func (r *runner) launch(s *sideTask, task driver.Task) {
	r.sides.mu.Lock()
	if r.sides.m == nil {
		r.sides.m = map[string]*sideTask{}
	}
	r.sides.m[s.spec.Name] = s
	r.sides.mu.Unlock()
	r.sideWG.Add(1)
	go func() { defer r.sideWG.Done(); s.run(task) }()
}

// tasksOf returns the job's extra tasks for which pick is true.
func tasksOf(j *structs.Job, pick func(t *structs.Task) bool) []structs.Task {
	var out []structs.Task
	for i := range j.Tasks {
		if pick(&j.Tasks[i]) {
			out = append(out, j.Tasks[i])
		}
	}
	return out
}

// startSidecars starts the tasks that run beside the main one from
// before it (prestart sidecars, and tasks without a lifecycle) and are not
// running yet.
func (r *runner) startSidecars(j *structs.Job) error {
	for _, t := range tasksOf(j, func(t *structs.Task) bool {
		return t.Lifecycle == nil || (t.Hook() == structs.HookPrestart && t.Lifecycle.Sidecar)
	}) {
		if s := r.side(t.Name); s != nil {
			continue // running, or dead for good (restarts exhausted)
		}
		if tr := r.snapshot().Tasks[t.Name]; tr != nil && tr.State.State == structs.TaskStateDead {
			continue // dead for good before an agent restart
		}
		s, err := r.newSideTask(t)
		if err != nil {
			return err
		}
		r.launch(s, nil)
	}
	return nil
}

// runPrestart runs the prestart hooks that have not yet succeeded, all at
// once, and waits for them. The error names the hooks that failed; it
// fails this start of the main task.
func (r *runner) runPrestart(j *structs.Job) error {
	var run []*sideTask
	rec := r.snapshot()
	for _, t := range tasksOf(j, func(t *structs.Task) bool { return t.IsHook() && t.Hook() == structs.HookPrestart }) {
		if tr := rec.Tasks[t.Name]; tr != nil && tr.State.State == structs.TaskStateDead && !tr.State.Failed {
			continue // succeeded once: not run again
		}
		if s := r.side(t.Name); s != nil && !s.finished() {
			run = append(run, s) // re-attached after an agent restart
			continue
		}
		s, err := r.newSideTask(t)
		if err != nil {
			return err
		}
		r.launch(s, nil)
		run = append(run, s)
	}
	var failed []string
	for _, s := range run {
		select {
		case <-s.done:
		case <-r.killCh:
			s.stop()
			<-s.done
			return errKilled
		case <-r.detachCh:
			<-s.done
			return errDetached
		}
		if !s.ok {
			failed = append(failed, s.spec.Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: prestart task %s failed", driver.ErrStartFailed, strings.Join(failed, ", "))
	}
	return nil
}

var (
	errKilled   = errors.New("stopped by the server")
	errDetached = errors.New("agent shutting down")
)

// startPoststart starts the poststart tasks that never ran.
func (r *runner) startPoststart(j *structs.Job) {
	rec := r.snapshot()
	for _, t := range tasksOf(j, func(t *structs.Task) bool { return t.Hook() == structs.HookPoststart }) {
		if r.side(t.Name) != nil {
			continue
		}
		if tr := rec.Tasks[t.Name]; tr != nil && tr.State.State != structs.TaskStatePending {
			continue // ran already (before an agent restart)
		}
		s, err := r.newSideTask(t)
		if err != nil {
			r.taskFailed(t.Name, err)
			continue
		}
		r.launch(s, nil)
	}
}

// taskFailed records an extra task that could not be run at all.
func (r *runner) taskFailed(name string, err error) {
	r.update(func(rec *allocRecord) {
		ts := &rec.task(name).State
		ts.State, ts.Failed = structs.TaskStateDead, true
		r.taskEvent(ts, EventDriverFailure, err.Error())
	})
}

// endTasks stops every extra task still running and then runs the
// poststop hooks to completion; it returns once all have ended. It is
// called when the main task has ended for good.
func (r *runner) endTasks(j *structs.Job) {
	r.sides.mu.Lock()
	all := make([]*sideTask, 0, len(r.sides.m))
	for _, s := range r.sides.m {
		all = append(all, s)
	}
	r.sides.mu.Unlock()
	for _, s := range all {
		s.stop()
	}
	for _, s := range all {
		<-s.done
	}
	if j == nil {
		return
	}
	var post []*sideTask
	for _, t := range tasksOf(j, func(t *structs.Task) bool { return t.Hook() == structs.HookPoststop }) {
		s, err := r.newSideTask(t)
		if err != nil {
			r.taskFailed(t.Name, err)
			continue
		}
		r.launch(s, nil)
		post = append(post, s)
	}
	for _, s := range post {
		select {
		case <-s.done:
		case <-r.detachCh:
			<-s.done
		}
	}
}

// recoverTasks re-attaches to the extra tasks that ran when the agent
// stopped; the others start at their lifecycle point as usual.
func (r *runner) recoverTasks(rec *allocRecord) {
	j := rec.Alloc.Job
	for _, t := range j.Tasks {
		tr := rec.Tasks[t.Name]
		if tr == nil || tr.Handle == nil {
			continue
		}
		s, err := r.newSideTask(t)
		if err == nil {
			var cfg *driver.TaskConfig
			cfg, _ = s.config(rec.Alloc)
			var task driver.Task
			if task, err = s.drv.Recover(tr.Handle, cfg); err == nil {
				r.launch(s, task)
				r.update(func(rec *allocRecord) {
					r.taskEvent(&rec.task(t.Name).State, EventReattached, "agent restarted; re-attached to the running task")
				})
				continue
			}
		}
		r.update(func(rec *allocRecord) {
			tr := rec.task(t.Name)
			tr.Handle = nil
			tr.State.State, tr.State.Failed = structs.TaskStateDead, true
			r.taskEvent(&tr.State, EventLost, fmt.Sprintf("task lost: re-attaching after an agent restart: %v", err))
		})
	}
}
