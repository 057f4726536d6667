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

	mu sync.Mutex
	// tasks holds every allocation the server has listed, by ID (those
	// it listed already stopped too, as finished): its size is what the
	// node holds, for the watch.
	tasks map[string]*simTask
	// pending are the queued reports, pendingTasks their tasks.
	pending      []*structs.AllocClientUpdate
	pendingTasks []*simTask
	listGen      uint64 // full lists received, to find the unlisted
	errs         int    // failed requests (counted into the report)
}

type simTask struct {
	alloc    *structs.Allocation
	task     driver.Task
	finished bool
	listed   uint64 // the full list (listGen) it was last in
}

func newSimNode(n *structs.Node, write *api.Client, rec *recorder, log *slog.Logger) *simNode {
	return &simNode{
		node: n, write: write, rec: rec, log: log,
		drv:   driver.NewMock(nil),
		tasks: map[string]*simTask{},
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
		n.listGen++
	}
	for _, a := range allocs {
		if a == nil {
			continue
		}
		t := n.tasks[a.ID]
		if t == nil {
			t = &simTask{alloc: a, listed: n.listGen}
			n.tasks[a.ID] = t
			if a.DesiredStatus != structs.AllocDesiredRun || a.ClientTerminal() {
				t.finished = true // listed, never to run
				continue
			}
			n.rec.placedAlloc(a, frameAt)
			n.start(t)
			queued = true
			continue
		}
		t.listed = n.listGen
		if a.DesiredStatus != structs.AllocDesiredRun && !t.finished {
			if t.task != nil {
				_ = t.task.Stop(0)
			}
			n.finishLocked(t, structs.AllocClientComplete, "stopped by the server")
			queued = true
		}
	}
	if full {
		// What the full list leaves out was purged: stop it, with
		// nothing to report to, and forget it.
		for id, t := range n.tasks {
			if t.listed == n.listGen {
				continue
			}
			if !t.finished && t.task != nil {
				_ = t.task.Stop(0)
			}
			t.finished = true
			delete(n.tasks, id)
		}
	}
	if queued {
		n.kickReport()
	}
}

// known is the number of allocations the node holds from the server's
// answers (mu held).
func (n *simNode) known() int { return len(n.tasks) }

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
	n.queue(t, &structs.AllocClientUpdate{ID: a.ID, ClientStatus: structs.AllocClientRunning,
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
	n.queue(t, &structs.AllocClientUpdate{ID: t.alloc.ID, ClientStatus: status, ClientDescription: desc,
		TaskState: structs.TaskState{State: structs.TaskStateDead, FinishedAt: time.Now().UnixNano(),
			Failed: status == structs.AllocClientFailed}})
}

// queue queues a report of t (mu held).
func (n *simNode) queue(t *simTask, u *structs.AllocClientUpdate) {
	n.pending = append(n.pending, u)
	n.pendingTasks = append(n.pendingTasks, t)
}

func (n *simNode) kickReport() { n.group.kickReport() }

// reports are reports taken from a node's queue, with their tasks.
type reports struct {
	updates []*structs.AllocClientUpdate
	tasks   []*simTask
}

// takePending returns and clears the node's queued reports.
func (n *simNode) takePending() reports {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := reports{n.pending, n.pendingTasks}
	n.pending, n.pendingTasks = nil, nil
	return p
}

// requeue puts reports that could not be sent back in front of the queue.
func (n *simNode) requeue(p reports) {
	n.mu.Lock()
	n.pending = append(p.updates, n.pending...)
	n.pendingTasks = append(p.tasks, n.pendingTasks...)
	n.mu.Unlock()
}

// sent records the reports the server acknowledged.
func (n *simNode) sent(p reports) {
	for i, u := range p.updates {
		if u.ClientStatus == structs.AllocClientRunning {
			t := p.tasks[i]
			n.rec.runningAlloc(t.alloc.JobID, t.alloc.Index)
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
