package bench

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// simNode is one simulated agent. It speaks the real agent protocol over
// HTTP (register, heartbeat, a blocking query on its allocations, batched
// status reports) and runs its tasks with the mock driver, but keeps no
// state files and serves no HTTP of its own, so 10,000 fit in one process.
//
// Goroutines: watch (the blocking query), heartbeat, report (sends queued
// status updates, one request per batch). run starts them and returns
// when all three have stopped.
type simNode struct {
	node  *structs.Node
	poll  *api.Client // blocking queries hold a connection each
	write *api.Client // registers, heartbeats and reports share a pool
	rec   *recorder
	drv   *driver.MockDriver
	log   *slog.Logger
	ttl   time.Duration
	rng   *rand.Rand // used by the heartbeat goroutine only

	ctx     context.Context // set by run before its goroutines start
	waiters sync.WaitGroup  // goroutines waiting for tasks to exit

	mu      sync.Mutex
	tasks   map[string]*simTask // by allocation ID
	known   map[string]bool     // every allocation the server has listed (watch goroutine only)
	pending []*structs.AllocClientUpdate
	errs    int // failed requests (counted into the report)
	kick    chan struct{}
}

type simTask struct {
	alloc    *structs.Allocation
	task     driver.Task
	finished bool
}

func newSimNode(n *structs.Node, poll, write *api.Client, rec *recorder, ttl time.Duration, seed uint64, log *slog.Logger) *simNode {
	return &simNode{
		node: n, poll: poll, write: write, rec: rec, log: log, ttl: ttl,
		drv:   driver.NewMock(nil),
		rng:   rand.New(rand.NewPCG(seed, seed^0x5bd1e995)),
		tasks: map[string]*simTask{},
		known: map[string]bool{},
		kick:  make(chan struct{}, 1),
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
		if !sleepCtx(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// run serves the node until ctx ends.
func (n *simNode) run(ctx context.Context) {
	n.ctx = ctx
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); n.watch(ctx) }()
	go func() { defer wg.Done(); n.heartbeat(ctx) }()
	go func() { defer wg.Done(); n.report(ctx) }()
	wg.Wait()
	n.waiters.Wait()
	n.mu.Lock()
	for _, t := range n.tasks {
		if t.task != nil {
			t.task.Detach() // stop the mock timers; nothing else runs
		}
	}
	n.mu.Unlock()
}

func (n *simNode) countErr() {
	n.mu.Lock()
	n.errs++
	n.mu.Unlock()
}

func (n *simNode) heartbeat(ctx context.Context) {
	for {
		// A third of the TTL, jittered so 10,000 nodes spread out.
		d := n.ttl/3 - time.Duration(n.rng.Int64N(int64(n.ttl/6)+1))
		if !sleepCtx(ctx, d) {
			return
		}
		if _, err := n.write.Heartbeat(ctx, n.node.ID); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.countErr()
			if api.IsNotFound(err) {
				_ = n.register(ctx)
			}
		}
	}
}

// watch is the agent's blocking query on its allocations, in its
// changes-only form (see nodeAllocs in internal/server).
func (n *simNode) watch(ctx context.Context) {
	var index uint64
	for {
		allocs, meta, err := n.poll.NodeAllocationsKnown(ctx, n.node.ID,
			&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Minute}, len(n.known), true)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.countErr()
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		if meta.LastIndex < index {
			index = 0
		} else {
			index = meta.LastIndex
		}
		n.reconcile(allocs, meta.Full)
	}
}

// reconcile starts new allocations, stops those the server stopped (or no
// longer lists, when the answer is the full list), and queues the status
// reports.
func (n *simNode) reconcile(allocs []*structs.Allocation, full bool) {
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
			n.rec.placedAlloc(a.JobID, a.Index)
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

func (n *simNode) kickReport() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// report sends queued updates, one request per batch, as the agent's
// updater does; a failed batch is retried.
func (n *simNode) report(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		for {
			n.mu.Lock()
			batch := n.pending
			n.pending = nil
			n.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			_, err := n.write.UpdateAllocations(ctx, n.node.ID, batch)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				n.countErr()
				var ae *api.APIError
				if errors.As(err, &ae) && ae.StatusCode/100 == 4 {
					continue // refused for good: drop, as the agent does
				}
				n.mu.Lock()
				n.pending = append(batch, n.pending...)
				n.mu.Unlock()
				if !sleepCtx(ctx, 100*time.Millisecond) {
					return
				}
				continue
			}
			n.mu.Lock()
			for _, u := range batch {
				if u.ClientStatus == structs.AllocClientRunning {
					if t := n.tasks[u.ID]; t != nil {
						n.rec.runningAlloc(t.alloc.JobID, t.alloc.Index)
					}
				}
			}
			n.mu.Unlock()
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
