package peerexec

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

// DriverRunner runs a peer's tasks through the agents' drivers (exec,
// mock): one goroutine per task starts it, waits for it, restarts it in
// place as its job's restart policy allows, and reports every change.
// Tasks do not outlive the peer: when the peer stops or dies they end
// (exec tasks through the shim's lifeline), and owners place them again.
type DriverRunner struct {
	drivers map[string]driver.Driver
	dir     string // <data-dir>/allocs
	update  func(allocID, clientStatus string, ts structs.TaskState)

	mu     sync.Mutex
	tasks  map[string]*runTask // guarded by mu
	closed bool                // guarded by mu
	wg     sync.WaitGroup
	grace  time.Duration
}

type runTask struct {
	stop chan struct{}
	once sync.Once
}

// NewDriverRunner runs tasks with drivers, keeping their logs under dir;
// update receives every state change (from the task goroutines).
func NewDriverRunner(drivers []driver.Driver, dir string, update func(allocID, clientStatus string, ts structs.TaskState)) *DriverRunner {
	m := map[string]driver.Driver{}
	for _, d := range drivers {
		m[d.Name()] = d
	}
	return &DriverRunner{drivers: m, dir: dir, update: update, tasks: map[string]*runTask{}, grace: 5 * time.Second}
}

// Drivers returns the node attributes advertising the drivers.
func (r *DriverRunner) Drivers() map[string]string {
	out := map[string]string{}
	for name := range r.drivers {
		out[structs.DriverAttrPrefix+name] = "true"
	}
	return out
}

// AllocDir is where an allocation's logs are.
func (r *DriverRunner) AllocDir(allocID string) string { return filepath.Join(r.dir, allocID) }

// Start implements Runner.
func (r *DriverRunner) Start(a *structs.Allocation) error {
	d := r.drivers[a.Job.Driver]
	if d == nil {
		return fmt.Errorf("driver %q not available on this peer", a.Job.Driver)
	}
	if !validAllocID(a.ID) {
		return fmt.Errorf("allocation ID %q: not a plain name", a.ID)
	}
	if len(a.Job.Tasks) > 0 || len(a.Job.Volumes) > 0 {
		// Peers run one task per copy; refusing beats running the main
		// task without its hooks or data.
		return errors.New("task groups (tasks) and volumes are run by gantry agents, not by peers")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("peer is shutting down")
	}
	if _, ok := r.tasks[a.ID]; ok {
		return nil
	}
	t := &runTask{stop: make(chan struct{})}
	r.tasks[a.ID] = t
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.run(d, a, t)
		r.mu.Lock()
		delete(r.tasks, a.ID)
		r.mu.Unlock()
	}()
	return nil
}

// validAllocID keeps allocation IDs usable as directory names.
func validAllocID(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// Stop implements Runner.
func (r *DriverRunner) Stop(allocID string) {
	r.mu.Lock()
	t := r.tasks[allocID]
	r.mu.Unlock()
	if t != nil {
		t.once.Do(func() { close(t.stop) })
	}
}

// Close stops every task and waits for their goroutines.
func (r *DriverRunner) Close() {
	r.mu.Lock()
	r.closed = true
	for _, t := range r.tasks {
		t.once.Do(func() { close(t.stop) })
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *DriverRunner) run(d driver.Driver, a *structs.Allocation, t *runTask) {
	ts := structs.TaskState{State: structs.TaskStatePending}
	event := func(typ, msg string) {
		ts.Events = append(ts.Events, structs.TaskEvent{Time: time.Now().UnixNano(), Type: typ, Message: msg})
		if len(ts.Events) > structs.MaxTaskEvents {
			ts.Events = ts.Events[len(ts.Events)-structs.MaxTaskEvents:]
		}
	}
	event("Received", "admitted by this peer")
	dir := r.AllocDir(a.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		ts.State, ts.Failed = structs.TaskStateDead, true
		event("Setup Failure", err.Error())
		r.update(a.ID, structs.AllocClientFailed, ts)
		return
	}
	job := a.Job
	pol := job.Restart
	var restarts []time.Time // within the policy's interval
	for {
		task, err := d.Start(&driver.TaskConfig{AllocID: a.ID, JobID: a.JobID, AllocIndex: a.Index, JobType: job.Type,
			Config: job.Config, Env: job.Env, Resources: a.Resources, Logs: job.Logs, AllocDir: dir})
		var res driver.ExitResult
		if err != nil {
			event("Driver Failure", err.Error())
			res = driver.ExitResult{ExitCode: -1, Err: err}
		} else {
			ts.State, ts.StartedAt, ts.PID = structs.TaskStateRunning, time.Now().UnixNano(), task.Handle().PID
			event("Started", "")
			r.update(a.ID, structs.AllocClientRunning, ts)
			select {
			case <-task.Exited():
			case <-t.stop:
				_ = task.Stop(r.grace)
				<-task.Exited()
				ts.State, ts.FinishedAt = structs.TaskStateDead, time.Now().UnixNano()
				event("Killed", "stopped by its owner")
				r.update(a.ID, structs.AllocClientComplete, ts)
				return
			}
			res = task.Result()
		}
		ts.ExitCode, ts.FinishedAt = res.ExitCode, time.Now().UnixNano()
		event("Terminated", res.String())
		done := res.Successful() && job.Type == structs.JobTypeBatch
		if done {
			ts.State = structs.TaskStateDead
			r.update(a.ID, structs.AllocClientComplete, ts)
			return
		}
		// restart in place while the policy allows
		now := time.Now()
		kept := restarts[:0]
		for _, at := range restarts {
			if now.Sub(at) < pol.Interval.D() {
				kept = append(kept, at)
			}
		}
		restarts = kept
		if len(restarts) >= pol.Attempts {
			ts.State, ts.Failed = structs.TaskStateDead, !res.Successful() || job.Type == structs.JobTypeService
			status := structs.AllocClientFailed
			if res.Successful() && job.Type != structs.JobTypeService {
				status = structs.AllocClientComplete
			}
			event("Not Restarting", "restart attempts exhausted")
			r.update(a.ID, status, ts)
			return
		}
		restarts = append(restarts, now)
		ts.Restarts++
		delay := pol.NextDelay(len(restarts))
		event("Restarting", fmt.Sprintf("in %s", delay))
		ts.State = structs.TaskStatePending
		r.update(a.ID, structs.AllocClientPending, ts)
		select {
		case <-time.After(delay):
		case <-t.stop:
			ts.State = structs.TaskStateDead
			event("Killed", "stopped by its owner")
			r.update(a.ID, structs.AllocClientComplete, ts)
			return
		}
	}
}
