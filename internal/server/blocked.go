package server

import (
	"cmp"
	"context"
	"slices"
	"sync"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// Blocked jobs (Nomad's blocked evaluations).
//
// A job whose evaluation left copies unplaced for want of room is kept in
// the leader's blocked set, one entry per job, with the index of the view
// it was decided on and what one copy needs (scheduler.Admission). When
// room may have grown on a node, the tracker asks each blocked job whether
// that node could now take a copy of it (the node may receive placements,
// passes the job's constraints, its free room holds one copy), and
// enqueues the jobs it admits, once each: an enqueued job leaves the set
// and comes back only if its next evaluation still leaves copies unplaced.
// So a thousand allocations ending at once evaluate each blocked job once.
//
// Room may grow when
//   - the server changes a node's allocations (a plan's stops: a job
//     stopped, scaled down or updated; evictions; a purge): the state's
//     change feed of node allocations names those nodes
//     (state.Snapshot.NodeAllocChangesSince), read by one goroutine;
//   - an agent reports an allocation ended (complete, failed, lost):
//     roomGrew, from the report batcher;
//   - a node registers, comes back or stops draining: roomGrew, from the
//     node handlers.
//
// An evaluation can race the change that would unblock it: it decided on
// the view at index S, the room grew at I > S, and the tracker looked
// before the job was blocked. Each newly blocked job is therefore checked
// against every change after its own S: the feed since S and the reported
// events kept (the last roomEventsKept; if one newer than S was dropped,
// the job is enqueued at once).
//
// The set is the leader's memory: a new leader starts empty and evaluates
// every job (enqueueAllJobs), which blocks again those that still do not
// fit. The periodic reconcile (Config.ReconcileInterval) stays the safety
// sweep. At most maxBlockedJobs are tracked; beyond that a blocked job
// waits for the sweep and for node events, which then enqueue every job
// with a stored placement failure as before.
//
// Unblocked (count, `gantry scheduler status`,
// gantry_scheduler_unblocked_total) counts the tracker's enqueues: a
// blocked job enqueued by a pass because room grew on a node that admits
// it. It does not count a blocked job that an evaluation from another path
// places first (its registration's second enqueue, an update, a
// deployment, the reconcile): that evaluation, which may have read the
// room in the schedulers' view (the plan pipeline's overlay) before the
// state has it, drops the entry (evaluated, ev.Unplaced == 0) and the
// tracker never enqueues the job. Nor does it count whether the enqueued
// job's next evaluation placed it (another job may have taken the room
// first, and it is blocked again).
//
// The two-level architecture has no use for it: its frameworks' waiting
// jobs are retried when the allocator offers the room that grew.

const (
	// maxBlockedJobs bounds the blocked set (one entry per job, ~200
	// bytes plus the compiled constraints).
	maxBlockedJobs = 16384
	// roomEventsKept bounds the reported events (allocations ended,
	// nodes ready) kept for jobs whose evaluation raced them.
	roomEventsKept = 16384
)

// blockedEntry is one blocked job.
type blockedEntry struct {
	jobID    string
	priority int
	// index is the view index of the evaluation that left copies
	// unplaced.
	index   uint64
	job     *structs.Job
	adm     *scheduler.Admission
	min     structs.Resources
	perNode bool
	// fresh: blocked (again) since the last pass; checked against every
	// change after index rather than after the pass's cursor.
	fresh bool
}

// roomEvent is a reported change that may have grown a node's room.
type roomEvent struct {
	node  string
	index uint64
	seq   uint64
}

// blockedJobs is the leader's blocked set. evaluated, roomGrew and count
// are safe from any goroutine; run is the leader's loop.
type blockedJobs struct {
	snapshot func() *state.Snapshot
	enqueue  func(jobID string, priority int)
	wake     chan struct{}

	mu      sync.Mutex
	running bool
	entries map[string]*blockedEntry
	order   []*blockedEntry // entries by ascending min CPU; nil: rebuild
	// ring keeps the last roomEventsKept reported events; seq counts
	// events recorded, done those a pass has read.
	ring      []roomEvent
	seq, done uint64
	// lostNew: an event was dropped before a pass read it; lostIndex:
	// the highest index of a dropped event.
	lostNew   bool
	lostIndex uint64
	// cursor: the feed was read up to here.
	cursor uint64
	// untracked counts evaluations that left copies unplaced while the
	// set was full (since this server last gained leadership).
	untracked uint64
	unblocked uint64 // jobs the tracker enqueued because room grew (all time)

	// beforePass, when set (before the leader starts; tests), runs at the
	// start of each pass, outside the lock.
	beforePass func()
}

func newBlockedJobs(snapshot func() *state.Snapshot, enqueue func(jobID string, priority int)) *blockedJobs {
	return &blockedJobs{snapshot: snapshot, enqueue: enqueue, wake: make(chan struct{}, 1)}
}

// start empties the set and starts tracking; changes up to index are
// left to the evaluation of every job that follows leadership.
func (t *blockedJobs) start(index uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running = true
	t.entries = map[string]*blockedEntry{}
	t.order = nil
	t.ring = t.ring[:0]
	t.seq, t.done, t.lostNew, t.lostIndex = 0, 0, false, 0
	t.cursor = index
	t.untracked = 0
}

// stop forgets the set (leadership lost).
func (t *blockedJobs) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running = false
	t.entries, t.order, t.ring = nil, nil, nil
}

// run tracks blocked jobs until ctx ends (the leader's duty, after
// start): a pass after each change to a node's allocations while jobs
// are blocked, and after each reported event or newly blocked job.
func (t *blockedJobs) run(ctx context.Context) {
	defer t.stop()
	for {
		snap, blocked := t.pass()
		ws := memdb.NewWatchSet()
		ws.Add(t.wake)
		if blocked && snap != nil {
			snap.NodeAllocFeedWatch(ws)
		}
		if ws.WatchCtx(ctx) != nil {
			return
		}
	}
}

func (t *blockedJobs) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// evaluated is told of every evaluation (scheduler.Env.Evaluated): a job
// left with unplaced copies is blocked, one placed whole, stopped, gone
// or invalid is not. A give-up that retries by itself (conflicts, errors)
// leaves the entry as it was.
func (t *blockedJobs) evaluated(ev scheduler.Evaluation) {
	t.mu.Lock()
	if !t.running {
		t.mu.Unlock()
		return
	}
	e := t.entries[ev.JobID]
	switch {
	case ev.Outcome != scheduler.OutcomeDone && ev.Outcome != scheduler.OutcomeInvalidJob:
		t.mu.Unlock()
		return
	case ev.Outcome == scheduler.OutcomeInvalidJob || ev.Job == nil || ev.Job.Stop || ev.Unplaced == 0:
		if e != nil {
			delete(t.entries, ev.JobID)
			t.order = nil
		}
		t.mu.Unlock()
		return
	}
	if e == nil {
		if len(t.entries) >= maxBlockedJobs {
			t.untracked++
			t.mu.Unlock()
			return
		}
		e = &blockedEntry{jobID: ev.JobID}
		t.entries[ev.JobID] = e
		t.order = nil
	}
	if e.job != ev.Job {
		e.job, e.adm = ev.Job, scheduler.NewAdmission(ev.Job)
		e.min, e.perNode = e.adm.MinAsk(), ev.Job.Type.PerNode()
		t.order = nil
	}
	e.priority, e.index, e.fresh = ev.Job.Priority, ev.Index, true
	t.mu.Unlock()
	t.poke()
}

// roomGrew is told that room may have grown on the nodes at index (an
// allocation ended there, the node registered, came back or stopped
// draining). It reports whether the set covers every blocked job: false
// when not tracking (not leading, two-level) or when the set overflowed,
// and the caller must then enqueue the jobs with a stored failure itself.
func (t *blockedJobs) roomGrew(index uint64, nodes ...string) bool {
	t.mu.Lock()
	if !t.running {
		t.mu.Unlock()
		return false
	}
	for _, n := range nodes {
		t.recordLocked(n, index)
	}
	covers, wake := t.untracked == 0, len(t.entries) > 0
	t.mu.Unlock()
	if wake {
		t.poke()
	}
	return covers
}

func (t *blockedJobs) recordLocked(node string, index uint64) {
	ev := roomEvent{node: node, index: index, seq: t.seq}
	t.seq++
	if len(t.ring) < roomEventsKept {
		t.ring = append(t.ring, ev)
		return
	}
	slot := &t.ring[ev.seq%roomEventsKept]
	if slot.seq >= t.done {
		t.lostNew = true
	}
	t.lostIndex = max(t.lostIndex, slot.index)
	*slot = ev
}

// count returns the jobs blocked now and the jobs unblocked so far.
func (t *blockedJobs) count() (blocked int, unblocked uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries), t.unblocked
}

// roomChange is a node where room may have grown, with the highest index
// of its changes and whether a pass has not read it yet.
type roomChange struct {
	index  uint64
	unread bool
}

// pass reads what changed since the last pass on a fresh snapshot,
// enqueues the blocked jobs a changed node now admits, and returns the
// snapshot and whether jobs remain blocked.
func (t *blockedJobs) pass() (*state.Snapshot, bool) {
	if t.beforePass != nil {
		t.beforePass()
	}
	t.mu.Lock()
	if !t.running {
		t.mu.Unlock()
		return nil, false
	}
	// Under the lock: every event recorded before it is in this snapshot.
	snap := t.snapshot()
	top := snap.Index()
	if top < t.cursor {
		t.cursor = 0 // the state was restored from a snapshot: read it all
	}
	if len(t.entries) == 0 {
		t.cursor, t.done, t.lostNew = top, t.seq, false
		t.mu.Unlock()
		return snap, false
	}
	from, fresh := t.cursor, false
	for _, e := range t.entries {
		if e.fresh {
			from, fresh = min(from, e.index), true
		}
	}
	changes := map[string]roomChange{}
	snap.NodeAllocChangesSince(from, func(id string, index uint64) bool {
		c := changes[id]
		c.index = max(c.index, index)
		changes[id] = c
		return true
	})
	// The ring holds events seq-roomEventsKept..seq-1; without a fresh
	// entry only the unread ones matter.
	first := uint64(0)
	if !fresh {
		first = t.done
	}
	if t.seq > uint64(len(t.ring)) {
		first = max(first, t.seq-uint64(len(t.ring)))
	}
	for k := first; k < t.seq; k++ {
		ev := &t.ring[k%roomEventsKept]
		unread := ev.seq >= t.done
		if !unread && ev.index <= from {
			continue
		}
		c := changes[ev.node]
		c.index = max(c.index, ev.index)
		c.unread = c.unread || unread
		changes[ev.node] = c
	}

	if t.order == nil {
		t.order = make([]*blockedEntry, 0, len(t.entries))
		for _, e := range t.entries {
			t.order = append(t.order, e)
		}
		slices.SortFunc(t.order, func(a, b *blockedEntry) int {
			return cmp.Or(cmp.Compare(a.min.CPU, b.min.CPU), cmp.Compare(a.jobID, b.jobID))
		})
	}
	unblock := map[string]*blockedEntry{}
	for _, e := range t.order {
		// Conservative when reported events were dropped unread.
		if (!e.fresh && t.lostNew) || (e.fresh && e.index < t.lostIndex) {
			unblock[e.jobID] = e
		}
	}
	quotaFull := map[string]bool{}
	nodes := make([]string, 0, len(changes))
	for id := range changes {
		nodes = append(nodes, id)
	}
	slices.Sort(nodes)
	for _, id := range nodes {
		if len(unblock) == len(t.order) {
			break
		}
		c := changes[id]
		n := snap.NodeByID(id)
		if n == nil || n.Status != structs.NodeStatusReady || n.Drain || n.Ineligible != "" {
			continue
		}
		free := n.Capacity.Sub(snap.NodeUsage(id))
		for _, e := range t.order {
			if e.min.CPU > free.CPU {
				break
			}
			if unblock[e.jobID] != nil || e.min.MemoryMB > free.MemoryMB {
				continue
			}
			if e.fresh && c.index <= e.index {
				continue // the evaluation saw this node's last change
			}
			if !e.fresh && c.index <= t.cursor && !c.unread {
				continue
			}
			if !e.adm.Admits(n, free) {
				continue
			}
			if e.perNode && hasLiveCopy(snap, id, e.jobID) {
				continue // its copy there runs: the room is not for it
			}
			full, seen := quotaFull[e.jobID]
			if !seen {
				full = namespaceQuotaFull(snap, e)
				quotaFull[e.jobID] = full
			}
			if full {
				continue // room under the quota, not on nodes, is missing
			}
			unblock[e.jobID] = e
		}
	}
	for _, e := range t.entries {
		e.fresh = false
	}
	out := make([]*blockedEntry, 0, len(unblock))
	for id, e := range unblock {
		delete(t.entries, id)
		out = append(out, e)
	}
	if len(out) > 0 {
		t.order = nil
	}
	t.cursor, t.done, t.lostNew = top, t.seq, false
	t.unblocked += uint64(len(out))
	remain := len(t.entries) > 0
	t.mu.Unlock()

	slices.SortFunc(out, func(a, b *blockedEntry) int { return cmp.Compare(a.jobID, b.jobID) })
	for _, e := range out {
		t.enqueue(e.jobID, e.priority)
	}
	return snap, remain
}

// hasLiveCopy reports whether the node holds a live allocation of the job.
func hasLiveCopy(snap *state.Snapshot, nodeID, jobID string) bool {
	found := false
	snap.EachAllocOfNode(nodeID, func(a *structs.Allocation) bool {
		if a.JobID == jobID && !a.Terminal() {
			found = true
			return false
		}
		return true
	})
	return found
}

// namespaceQuotaFull reports whether one more copy would take the job's
// namespace over its quota: room on nodes does not help it then (the
// quota's own path, enqueueQuotaBlocked, enqueues it when room under the
// quota frees).
func namespaceQuotaFull(snap *state.Snapshot, e *blockedEntry) bool {
	ns := structs.JobNamespace(e.jobID)
	q := snap.NamespaceQuota(ns)
	return q != nil && q.Exceeds(snap.NamespaceUsage(ns).Add(e.min)) != ""
}
