package bench

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// simNode is one simulated agent: it runs its tasks with the mock driver
// and keeps no state files and serves no HTTP of its own, so 10,000 fit
// in one process. Its protocol traffic goes through its simGroup, which
// multiplexes many nodes over the agent protocol's many-node endpoints: one
// watch stream (POST /v1/nodes/allocations/watch?stream=true), batched
// reports (POST /v1/nodes/allocations) and batched heartbeats
// (PUT /v1/nodes/heartbeat). The server handles each node as it handles a
// real agent's (the real agent uses the same watch for its one node).
type simNode struct {
	node  *structs.Node
	write *api.Client // registers
	rec   *recorder
	drv   *driver.MockDriver
	log   *slog.Logger
	group *simGroup // set before the group runs

	ctx     context.Context // set by the group before it runs
	waiters sync.WaitGroup  // goroutines waiting for tasks to exit

	// watchIndex is the node's index from the last watch answer (the
	// group's watch goroutine only).
	watchIndex uint64

	mu      sync.Mutex
	tasks   map[string]*simTask // by allocation ID
	known   map[string]bool     // every allocation the server has listed
	pending []*structs.AllocClientUpdate
	errs    int // failed requests (counted into the report)
}

type simTask struct {
	alloc    *structs.Allocation
	task     driver.Task
	finished bool
}

func newSimNode(n *structs.Node, write *api.Client, rec *recorder, log *slog.Logger) *simNode {
	return &simNode{
		node: n, write: write, rec: rec, log: log,
		drv:   driver.NewMock(nil),
		tasks: map[string]*simTask{},
		known: map[string]bool{},
	}
}

// register registers the node, retrying with a short backoff until ctx ends.
func (n *simNode) register(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for {
		_, err := n.write.RegisterNode(ctx, n.node)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.countErr()
		n.log.Warn("simulated node: registering", "node", n.node.Name, "err", err)
		if !sleepCtx(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// detach stops the mock timers of the node's tasks once its group has
// stopped; nothing else runs.
func (n *simNode) detach() {
	n.waiters.Wait()
	n.mu.Lock()
	for _, t := range n.tasks {
		if t.task != nil {
			t.task.Detach()
		}
	}
	n.mu.Unlock()
}

func (n *simNode) countErr() {
	n.mu.Lock()
	n.errs++
	n.mu.Unlock()
}

// reconcile starts new allocations, stops those the server stopped (or no
// longer lists, when the answer is the full list), and queues the status
// reports. frameAt is when the server sent the frame (unix nanoseconds; 0
// if unknown).
func (n *simNode) reconcile(allocs []*structs.Allocation, full bool, frameAt int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	queued := false
	if full {
		listed := make(map[string]bool, len(allocs))
		for _, a := range allocs {
			if a != nil {
				listed[a.ID] = true
			}
		}
		for id, t := range n.tasks {
			if !listed[id] && !t.finished {
				if t.task != nil {
					_ = t.task.Stop(0)
				}
				t.finished = true // purged: nothing to report to
			}
		}
		n.known = listed
	}
	for _, a := range allocs {
		if a == nil {
			continue
		}
		n.known[a.ID] = true
		t := n.tasks[a.ID]
		if t == nil {
			if a.DesiredStatus != structs.AllocDesiredRun || a.ClientTerminal() {
				continue
			}
			n.rec.placedAlloc(a, frameAt)
			t = &simTask{alloc: a}
			n.tasks[a.ID] = t
			n.start(t)
			queued = true
			continue
		}
		if a.DesiredStatus != structs.AllocDesiredRun && !t.finished {
			if t.task != nil {
				_ = t.task.Stop(0)
			}
			n.finishLocked(t, structs.AllocClientComplete, "stopped by the server")
			queued = true
		}
	}
	if queued {
		n.kickReport()
	}
}

// start runs the allocation's task with the mock driver (mu held).
func (n *simNode) start(t *simTask) {
	a := t.alloc
	if a.Job == nil {
		n.finishLocked(t, structs.AllocClientFailed, "allocation has no job to run")
		return
	}
	task, err := n.drv.Start(&driver.TaskConfig{AllocID: a.ID, JobID: a.JobID, AllocIndex: a.Index,
		JobType: a.Job.Type, Config: a.Job.Config, Resources: a.Resources})
	if err != nil {
		n.finishLocked(t, structs.AllocClientFailed, err.Error())
		return
	}
	t.task = task
	now := time.Now().UnixNano()
	n.pending = append(n.pending, &structs.AllocClientUpdate{ID: a.ID, ClientStatus: structs.AllocClientRunning,
		TaskState: structs.TaskState{State: structs.TaskStateRunning, StartedAt: now}})
	select {
	case <-task.Exited():
		n.exitedLocked(t)
		return
	default:
	}
	if a.Job.Type == structs.JobTypeBatch || n.runsFor(a) > 0 {
		// Only tasks that end need a waiter; a service that runs until
		// stopped costs nothing while it runs.
		n.waiters.Add(1)
		go func() {
			defer n.waiters.Done()
			select {
			case <-task.Exited():
			case <-n.ctx.Done():
				return
			}
			n.mu.Lock()
			n.exitedLocked(t)
			n.mu.Unlock()
			n.kickReport()
		}()
	}
}

func (n *simNode) runsFor(a *structs.Allocation) time.Duration {
	if s, ok := a.Job.Config["run_for"].(string); ok {
		d, _ := time.ParseDuration(s)
		return d
	}
	return 0
}

func (n *simNode) exitedLocked(t *simTask) {
	if t.finished {
		return
	}
	res := t.task.Result()
	status := structs.AllocClientComplete
	if !res.Successful() {
		status = structs.AllocClientFailed
	}
	n.finishLocked(t, status, res.String())
}

func (n *simNode) finishLocked(t *simTask, status, desc string) {
	t.finished = true
	n.pending = append(n.pending, &structs.AllocClientUpdate{ID: t.alloc.ID, ClientStatus: status, ClientDescription: desc,
		TaskState: structs.TaskState{State: structs.TaskStateDead, FinishedAt: time.Now().UnixNano(),
			Failed: status == structs.AllocClientFailed}})
}

func (n *simNode) kickReport() { n.group.kickReport() }

// takePending returns and clears the node's queued reports.
func (n *simNode) takePending() []*structs.AllocClientUpdate {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.pending
	n.pending = nil
	return p
}

// requeue puts reports that could not be sent back in front of the queue.
func (n *simNode) requeue(batch []*structs.AllocClientUpdate) {
	n.mu.Lock()
	n.pending = append(batch, n.pending...)
	n.mu.Unlock()
}

// sent records the reports the server acknowledged.
func (n *simNode) sent(batch []*structs.AllocClientUpdate) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, u := range batch {
		if u.ClientStatus == structs.AllocClientRunning {
			if t := n.tasks[u.ID]; t != nil {
				n.rec.runningAlloc(t.alloc.JobID, t.alloc.Index)
			}
		}
	}
}

func (n *simNode) errorCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.errs
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
