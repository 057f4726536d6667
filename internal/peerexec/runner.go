package peerexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// DriverRunner runs a peer's tasks through the agents' drivers (exec,
// mock): one goroutine per task starts it, waits for it, restarts it in
// place as its job's restart policy allows, and reports every change.
// Each running task's allocation and driver handle are kept in the
// peer's record log, <dir>/peer-tasks.log (recordlog.go), so that a peer
// restarted on the same data directory after a crash re-attaches to its
// tasks (Recover) as an agent does, instead of having them placed again.
// A peer that stops cleanly stops its tasks (an end record for each).
type DriverRunner struct {
	drivers map[string]driver.Driver
	dir     string // <data-dir>/allocs
	update  func(allocID, clientStatus string, ts structs.TaskState)
	log     *recordLog

	mu     sync.Mutex
	tasks  map[string]*runTask // guarded by mu
	closed bool                // guarded by mu
	wg     sync.WaitGroup
	grace  time.Duration
}

type runTask struct {
	stop   chan struct{}
	once   sync.Once
	detach chan struct{} // closed by Detach: leave the task running
}

// taskRecordFile is a running task's record in its allocation directory,
// as peers kept them before the record log: Recover still adopts them.
const taskRecordFile = "peer-task.json"

// maxTaskRecord bounds a record read back (a job document is at most a
// few MiB).
const maxTaskRecord = 8 << 20

// taskRecord is what a restarted peer needs to re-attach to a task.
type taskRecord struct {
	Alloc  *structs.Allocation `json:"alloc"`
	Handle *driver.Handle      `json:"handle"`
}

// NewDriverRunner runs tasks with drivers, keeping their logs and
// records under dir; update receives every state change (from the task
// goroutines).
func NewDriverRunner(drivers []driver.Driver, dir string, update func(allocID, clientStatus string, ts structs.TaskState)) *DriverRunner {
	m := map[string]driver.Driver{}
	for _, d := range drivers {
		m[d.Name()] = d
	}
	return &DriverRunner{drivers: m, dir: dir, update: update, tasks: map[string]*runTask{}, grace: 5 * time.Second,
		log: newRecordLog(filepath.Join(dir, recordLogFile), log.Printf)}
}

// setLogger sends the record log's notices (a torn tail cut) to l.
func (r *DriverRunner) setLogger(l *log.Logger) { r.log.logf = l.Printf }

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
	if len(a.Job.Tasks) > 0 || len(a.Job.Volumes) > 0 || a.Job.HasGroups() {
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
	r.launch(d, a, nil)
	return nil
}

// launch runs a task's goroutine (under mu); task is a recovered one.
func (r *DriverRunner) launch(d driver.Driver, a *structs.Allocation, task driver.Task) {
	t := &runTask{stop: make(chan struct{}), detach: make(chan struct{})}
	r.tasks[a.ID] = t
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		detached := r.run(d, a, t, task)
		r.mu.Lock()
		delete(r.tasks, a.ID)
		r.mu.Unlock()
		if !detached {
			if err := r.log.end(a.ID); err != nil {
				// its start record stays: a restarted peer finds the
				// task gone and drops it then
				r.log.logf("exec: task %s ended: %v", a.ID, err)
			}
		}
	}()
}

// saveRecord keeps a task's allocation and handle for a re-attach.
func (r *DriverRunner) saveRecord(a *structs.Allocation, h *driver.Handle) error {
	b, err := json.Marshal(taskRecord{Alloc: a, Handle: h})
	if err != nil {
		return err
	}
	return r.log.start(a.ID, b)
}

// Recover re-attaches to the tasks a previous process of this peer left
// running (their records in the record log, and record files in the
// allocation directories from peers before the log, which are folded
// into it): adopt is told each one (before any of its updates), then its
// goroutine watches it as if this process had started it. A record whose
// task cannot be re-attached is dropped (the task ended, or its driver
// is gone), and returned as an error each; its owner places the copy
// again. A corrupt record log is returned as an error too (moved aside,
// none of its tasks re-attached).
func (r *DriverRunner) Recover(adopt func(a *structs.Allocation, h *driver.Handle)) []error {
	var errs []error
	recs, err := r.log.load()
	if rep := r.log.takeReport(); rep != nil {
		errs = append(errs, rep)
	}
	if err != nil {
		errs = append(errs, err)
	}
	for _, lr := range recs {
		rec, err := decodeTaskRecord(lr.payload, lr.id)
		if err != nil {
			err = fmt.Errorf("task record log %s: %w", r.log.path, err)
		} else if d, task, rerr := r.recoverTask(rec); rerr != nil {
			err = rerr
		} else if !r.launchRecovered(d, rec, task, adopt) {
			return errs // shutting down
		}
		if err != nil {
			errs = append(errs, err)
			if err := r.log.end(lr.id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		if !os.IsNotExist(err) {
			errs = append(errs, err)
		}
		return errs
	}
	for _, ent := range entries {
		if !ent.IsDir() || !validAllocID(ent.Name()) {
			continue
		}
		path := filepath.Join(r.dir, ent.Name(), taskRecordFile)
		rec, raw, err := readTaskRecord(path, ent.Name())
		if os.IsNotExist(err) {
			continue
		}
		if err == nil && !r.log.has(rec.Alloc.ID) { // else the log's record is the newer
			d, task, rerr := r.recoverTask(rec)
			if rerr == nil {
				// folded into the log before the task's goroutine can
				// append its end
				if lerr := r.log.start(rec.Alloc.ID, raw); lerr != nil {
					// the file stays for a later restart to find
					task.Detach()
					errs = append(errs, fmt.Errorf("task %s: folding %s into the record log: %w", rec.Alloc.ID, path, lerr))
					continue
				}
				if !r.launchRecovered(d, rec, task, adopt) {
					_ = os.Remove(path)
					return errs
				}
			}
			err = rerr
		}
		if err != nil {
			errs = append(errs, err)
		}
		_ = os.Remove(path)
	}
	return errs
}

// recoverTask re-attaches to one recorded task through its driver.
func (r *DriverRunner) recoverTask(rec *taskRecord) (driver.Driver, driver.Task, error) {
	a := rec.Alloc
	d := r.drivers[a.Job.Driver]
	if d == nil {
		return nil, nil, fmt.Errorf("task %s: driver %q not available on this peer", a.ID, a.Job.Driver)
	}
	task, err := d.Recover(rec.Handle, r.taskConfig(a))
	if err != nil {
		return nil, nil, fmt.Errorf("task %s: re-attaching: %w", a.ID, err)
	}
	return d, task, nil
}

// launchRecovered tells adopt of a re-attached task and runs its
// goroutine; false when the runner is shutting down (the task left
// running, detached).
func (r *DriverRunner) launchRecovered(d driver.Driver, rec *taskRecord, task driver.Task, adopt func(a *structs.Allocation, h *driver.Handle)) bool {
	adopt(rec.Alloc, rec.Handle)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		task.Detach()
		return false
	}
	r.launch(d, rec.Alloc, task)
	return true
}

// readTaskRecord reads and checks one record file.
func readTaskRecord(path, allocID string) (*taskRecord, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTaskRecord+1))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > maxTaskRecord {
		return nil, nil, fmt.Errorf("task record %s: larger than %d bytes", path, maxTaskRecord)
	}
	rec, err := decodeTaskRecord(b, allocID)
	if err != nil {
		return nil, nil, fmt.Errorf("task record %s: %w", path, err)
	}
	return rec, b, nil
}

// decodeTaskRecord decodes and checks a task record of allocID.
func decodeTaskRecord(b []byte, allocID string) (*taskRecord, error) {
	var rec taskRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("task %s: %w", allocID, err)
	}
	if rec.Alloc == nil || rec.Alloc.ID != allocID || rec.Alloc.Job == nil || rec.Alloc.JobID == "" || rec.Handle == nil {
		return nil, fmt.Errorf("task %s: record incomplete or for another allocation", allocID)
	}
	return &rec, nil
}

func (r *DriverRunner) taskConfig(a *structs.Allocation) *driver.TaskConfig {
	job := a.Job
	return &driver.TaskConfig{AllocID: a.ID, JobID: a.JobID, AllocIndex: a.Index, JobType: job.Type,
		Config: job.Config, Env: job.Env, Resources: a.Resources, Logs: job.Logs, AllocDir: r.AllocDir(a.ID)}
}

// Detach stops watching every task without stopping it, as a crash of
// the peer would leave them (tests; a new runner on the same directory
// re-attaches).
func (r *DriverRunner) Detach() {
	r.mu.Lock()
	r.closed = true
	for _, t := range r.tasks {
		close(t.detach)
	}
	r.mu.Unlock()
	r.wg.Wait()
	_ = r.log.close()
}

// needsAllocDir: the mock driver writes nothing in an allocation's
// directory (no logs; its handle is in the record log), and a missing
// directory serves empty logs, so its tasks get none: making one per
// copy was a fifth of a peer's CPU per placement in gantry bench. Other
// drivers write their logs there (exec also makes it itself).
func needsAllocDir(driverName string) bool { return driverName != "mock" }

// mkdir makes an allocation's directory: one mkdir when its parent
// exists (MkdirAll would stat it first), else MkdirAll.
func mkdir(dir string) error {
	err := os.Mkdir(dir, 0o755)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	}
	return err
}

// validAllocID keeps allocation IDs usable as directory names (and
// apart from the record log's files in the same directory).
func validAllocID(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." || strings.HasPrefix(id, recordLogFile) {
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
	_ = r.log.close()
}

// run drives one task until it ends for good (false) or is detached
// (true). task is a recovered task to watch first, or nil.
func (r *DriverRunner) run(d driver.Driver, a *structs.Allocation, t *runTask, task driver.Task) bool {
	ts := structs.TaskState{State: structs.TaskStatePending}
	event := func(typ, msg string) {
		ts.Events = append(ts.Events, structs.TaskEvent{Time: time.Now().UnixNano(), Type: typ, Message: msg})
		if len(ts.Events) > structs.MaxTaskEvents {
			ts.Events = ts.Events[len(ts.Events)-structs.MaxTaskEvents:]
		}
	}
	if task == nil {
		event("Received", "admitted by this peer")
	}
	if needsAllocDir(a.Job.Driver) {
		if err := mkdir(r.AllocDir(a.ID)); err != nil {
			ts.State, ts.Failed = structs.TaskStateDead, true
			event("Setup Failure", err.Error())
			r.update(a.ID, structs.AllocClientFailed, ts)
			return false
		}
	}
	job := a.Job
	pol := job.Restart
	var restarts []time.Time // within the policy's interval
	for {
		var err error
		recovered := task != nil
		if !recovered {
			task, err = d.Start(r.taskConfig(a))
		}
		var res driver.ExitResult
		if err != nil {
			event("Driver Failure", err.Error())
			res = driver.ExitResult{ExitCode: -1, Err: err}
		} else {
			h := task.Handle()
			ts.State, ts.StartedAt, ts.PID = structs.TaskStateRunning, h.StartedAt, h.PID
			if recovered {
				event("Reattached", fmt.Sprintf("peer restarted; re-attached to the running task (pid %d)", h.PID))
			} else {
				if ts.StartedAt == 0 {
					ts.StartedAt = time.Now().UnixNano()
				}
				event("Started", "")
				if err := r.saveRecord(a, h); err != nil {
					event("Record Failure", "the task cannot be re-attached after a crash: "+err.Error())
				}
			}
			r.update(a.ID, structs.AllocClientRunning, ts)
			select {
			case <-task.Exited():
			case <-t.detach:
				task.Detach()
				return true
			case <-t.stop:
				_ = task.Stop(r.grace)
				<-task.Exited()
				ts.State, ts.FinishedAt = structs.TaskStateDead, time.Now().UnixNano()
				event("Killed", "stopped by its owner")
				r.update(a.ID, structs.AllocClientComplete, ts)
				return false
			}
			res = task.Result()
		}
		task = nil
		ts.ExitCode, ts.FinishedAt = res.ExitCode, time.Now().UnixNano()
		event("Terminated", res.String())
		done := res.Successful() && job.Type == structs.JobTypeBatch
		if done {
			ts.State = structs.TaskStateDead
			r.update(a.ID, structs.AllocClientComplete, ts)
			return false
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
			return false
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
			return false
		}
	}
}
