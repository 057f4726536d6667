package agent

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// watchLoop learns the node's allocations with a blocking query and
// reconciles the local runners with them after every answer.
func (a *Agent) watchLoop(ctx context.Context) {
	select {
	case <-a.registered:
	case <-ctx.Done():
		return
	}
	var index uint64
	known := 0 // allocations in the last answer
	b := newBackoff(250*time.Millisecond, 10*time.Second)
	for {
		// Passing known makes the server wake this query only for changes
		// to this node's allocations (not every plan in the cluster).
		allocs, meta, err := a.client.NodeAllocationsKnown(ctx, a.nodeID, &api.QueryOptions{WaitIndex: index, WaitTime: a.cfg.WatchWait}, known, false)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if api.IsNotFound(err) {
				a.triggerReregister()
			}
			a.log.Warn("watching allocations", "err", err)
			if !sleepCtx(ctx, b.next()) {
				return
			}
			continue
		}
		b.reset()
		// An index that goes backwards means a server with a fresh state
		// (restored or replaced): start over from it.
		if meta.LastIndex < index {
			index = 0
		} else {
			index = meta.LastIndex
		}
		known = len(allocs)
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
		listed[al.ID] = al
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
