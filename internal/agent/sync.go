package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// watchLoop learns the node's allocations through the multiplexed watch
// (POST /v1/nodes/allocations/watch?stream=true, for this one node) and
// reconciles the local runners after every frame. The server sends only
// what changed since the agent's index; the agent keeps the server's view
// (every allocation listed, terminal ones included) and patches it, or
// replaces it when a frame is the full list (the server found the agent's
// view stale: first watch, a removal, a server with another history).
// Reconcile always sees the whole view, as with full answers.
func (a *Agent) watchLoop(ctx context.Context) {
	select {
	case <-a.registered:
	case <-ctx.Done():
		return
	}
	var index uint64
	view := map[string]*structs.Allocation{} // the server's list, by ID
	b := newBackoff(250*time.Millisecond, 10*time.Second)
	for {
		req := &api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{a.nodeID: {Index: index, Known: len(view)}}}
		w, err := a.client.WatchNodeAllocations(ctx, req, true, a.cfg.WatchWait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			a.log.Warn("watching allocations", "err", err)
			if !sleepCtx(ctx, b.next()) {
				return
			}
			continue
		}
		notFound, err := a.serveWatch(ctx, w, &index, view, b)
		_ = w.Close()
		if ctx.Err() != nil {
			return
		}
		if notFound {
			index = 0
			a.triggerReregister()
		}
		if err != nil || notFound {
			if err != nil {
				a.log.Warn("watching allocations", "err", err)
			}
			if !sleepCtx(ctx, b.next()) {
				return
			}
		}
	}
}

// serveWatch applies a watch stream's frames until it ends (io.EOF: the
// server's wait passed; reconnect at once) or fails. It reports whether
// the server said it does not know the node.
func (a *Agent) serveWatch(ctx context.Context, w *api.NodeWatch, index *uint64, view map[string]*structs.Allocation, b *backoff) (bool, error) {
	for {
		_, nodes, err := w.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		b.reset()
		ch := nodes[a.nodeID]
		if ch == nil {
			continue
		}
		if ch.NotFound {
			return true, nil
		}
		if ch.Full {
			clear(view)
		}
		for _, al := range ch.Allocs {
			if al != nil {
				view[al.ID] = al
			}
		}
		*index = ch.Index
		allocs := make([]*structs.Allocation, 0, len(view))
		for _, al := range view {
			allocs = append(allocs, al)
		}
		a.reconcile(ctx, allocs)
	}
}

// reconcile makes the runners match the server's list: stop what the
// server stopped or no longer lists, then start what is new. Stops finish
// before starts, so resources freed by the stops are free when the new
// tasks begin.
func (a *Agent) reconcile(ctx context.Context, allocs []*structs.Allocation) {
	listed := make(map[string]*structs.Allocation, len(allocs))
	for _, al := range allocs {
		if al == nil {
			continue
		}
		if !validFileID(al.ID) {
			a.log.Warn("ignoring allocation with an unusable ID", "alloc", al.ID)
			continue
		}
		listed[al.ID] = groupAlloc(al)
	}
	var stops, gone []*runner
	var starts []*allocRecord
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	for id, al := range listed {
		if r := a.runners[id]; r != nil {
			r.setAlloc(al)
			if al.DesiredStatus != structs.AllocDesiredRun && !r.finished() {
				stops = append(stops, r)
			}
			continue
		}
		if al.DesiredStatus != structs.AllocDesiredRun || al.ClientTerminal() {
			continue
		}
		if al.Job == nil {
			a.log.Warn("allocation listed without its job; skipping", "alloc", id)
			continue
		}
		// A record without a runner: received or between restarts when a
		// previous agent stopped. Nothing of it runs: carry on from it.
		rec := a.store.get(id)
		if rec == nil {
			rec = &allocRecord{Alloc: al.Copy(), Phase: phaseReceived,
				ClientStatus: structs.AllocClientPending,
				TaskState:    structs.TaskState{State: structs.TaskStatePending}}
		} else {
			rec.Alloc = al.Copy()
		}
		starts = append(starts, rec)
	}
	for id, r := range a.runners {
		if _, ok := listed[id]; !ok {
			gone = append(gone, r)
		}
	}
	a.mu.Unlock()

	for _, r := range gone {
		r.kill()
	}
	for _, r := range stops {
		r.kill()
	}
	a.waitStopped(ctx, append(stops, gone...))
	for _, r := range gone {
		// Kept in the map until stopped, so Shutdown can reach it.
		a.mu.Lock()
		if a.runners[r.id] == r {
			delete(a.runners, r.id)
		}
		a.mu.Unlock()
		a.forget(r.id)
	}
	// Records of allocations the server forgot while no runner held them.
	for _, rec := range a.store.all() {
		if _, ok := listed[rec.Alloc.ID]; ok {
			continue
		}
		a.mu.Lock()
		_, running := a.runners[rec.Alloc.ID]
		a.mu.Unlock()
		if !running {
			a.forget(rec.Alloc.ID)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	for _, rec := range starts {
		r := newRunner(a, rec)
		a.runners[rec.Alloc.ID] = r
		go r.run()
	}
}

// waitStopped waits for runners to finish their stop, bounded so that one
// stuck task cannot hold up the node's other work forever.
func (a *Agent) waitStopped(ctx context.Context, rs []*runner) {
	if len(rs) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-r.done
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(a.cfg.KillTimeout + 30*time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.log.Error("tasks did not stop in time; starting new work anyway", "count", len(rs))
	case <-ctx.Done():
	}
}

// forget drops an allocation the server no longer lists: its record and
// its directory (with its logs).
func (a *Agent) forget(id string) {
	if err := a.store.delete(id); err != nil {
		a.log.Error("forgetting allocation", "alloc", id, "err", err)
	}
	if err := os.RemoveAll(filepath.Join(a.cfg.DataDir, allocsDir, id)); err != nil {
		a.log.Warn("removing alloc dir", "alloc", id, "err", err)
	}
}

// groupAlloc returns the allocation as the agent keeps it: with its job
// narrowed to the copy's task group (structs.Job.GroupView), so what runs
// reads the group's tasks, ports, volumes and services as a one-group
// job's. A job without groups is kept as it is; a job that lacks the
// allocation's group leaves the allocation without a job.
func groupAlloc(al *structs.Allocation) *structs.Allocation {
	if al.Job == nil || (!al.Job.HasGroups() && al.Job.Group == al.Group) {
		return al
	}
	c := al.Copy()
	c.Job = al.GroupJob()
	return c
}
