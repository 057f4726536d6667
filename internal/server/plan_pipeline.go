package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// planView is what the plan check reads: a state snapshot, or a snapshot
// with uncommitted plans laid over it.
type planView interface {
	NodeByID(id string) *structs.Node
	JobByID(id string) *structs.Job
	AllocByID(id string) *structs.Allocation
	AllocsByNode(nodeID string) []*structs.Allocation
	// NodeUsage is what the node's live allocations use (their sum).
	NodeUsage(nodeID string) structs.Resources
}

var (
	_ scheduler.State           = (*state.Snapshot)(nil)
	_ planView                  = (*state.Snapshot)(nil)
	_ planView                  = (*overlayView)(nil)
	_ scheduler.State           = (*overlayView)(nil)
	_ scheduler.NodeUsageReader = (*overlayView)(nil)
	_ scheduler.QuotaReader     = (*overlayView)(nil)
	_ scheduler.QuotaReader     = (*state.Snapshot)(nil)
)

// maxEntryAllocs bounds the allocations of one plan entry (a plan bigger
// than that still goes alone). It was 1,024 while allocations lived in
// go-memdb (bigger transactions fell back to a slow notification walk);
// the allocation table has no such cliff, and with 1,024 the pipeline's
// window (entries in flight x allocations per entry) over the commit
// round trip bounded c1m-like to ~12,000 placements/s (Little's law:
// 8 x 1,024 allocations per ~0.7 s). Each entry is one log write.
const maxEntryAllocs = 8192

// errPlanAborted answers plans checked against a plan whose commit failed.
var errPlanAborted = errors.New("an earlier plan it was checked against failed to commit")

// checkedPlan is a plan the applier accepted (part of) and that waits for,
// or is in, its Raft entry. Its fields do not change after check, except
// res.Index/RefreshIndex, err and done, which the committer sets.
type checkedPlan struct {
	plan *structs.Plan
	res  *structs.PlanResult
	req  *structs.ApplyPlanRequest
	ov   *overlayEntry
	err  error
	done chan struct{}
}

// planPipeline is the plan applier: plans are checked one at a time, each
// against the committed state plus every plan checked before it that is not
// yet applied (the overlay), and committed in check order by one committer
// goroutine, every queued plan (up to max) in one Raft entry (group
// commit). The check never waits for Raft, and a submitter that does not
// need the commit (every scheduler, through the evaluation loop) goes on
// with its next job at once. If an entry fails, every plan checked against it fails too and the
// overlay is emptied: nothing is committed that was checked against a
// state that did not happen.
type planPipeline struct {
	s   *Server
	max int // most plans per entry
	// propose proposes an entry and returns a wait for its outcome; nil =
	// s.raftPropose without a timeout (tests inject failures).
	propose func(t structs.MessageType, req any) func() (uint64, any, error)

	check sync.Mutex // serializes checks

	mu         sync.Mutex
	inflight   []*checkedPlan // checked, not yet applied, in check order
	queued     int            // inflight[len-queued:] wait for the committer
	committing bool
	gen        uint64       // bumped when a commit fails and the overlay is dropped
	index      overlayIndex // the inflight plans by node and allocation
	seq        uint64       // the last checked plan's overlayEntry.seq

	nodes nodeList // the node list, kept while the nodes table does not change
}

// nodeList keeps the state's nodes at one index of the nodes table:
// every view a scheduler decides on lists them, and building the list
// walks the whole table (~2% of the server's CPU in c1m-like at 10,000
// nodes, where nodes change far less often than jobs are scheduled); the
// reconciler and the plan check look nodes up by ID, a go-memdb read each.
// Node objects are never modified once stored, so the nodes read at one
// index of the nodes table are the same nodes.
type nodeList struct {
	mu  sync.Mutex
	cur *nodeTable
}

// nodeTable is the nodes table at one index: the list and a map by ID.
// Never modified once built.
type nodeTable struct {
	index uint64
	list  []*structs.Node
	byID  map[string]*structs.Node
}

// at returns the nodes table the snapshot holds: the kept one while the
// table's index is unchanged, else read now.
func (c *nodeList) at(snap *state.Snapshot) *nodeTable {
	idx := snap.TableIndex(state.TableNodes)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.index != idx {
		t := &nodeTable{index: idx, list: snap.Nodes()}
		t.byID = make(map[string]*structs.Node, len(t.list))
		for _, n := range t.list {
			t.byID[n.ID] = n
		}
		c.cur = t
	}
	return c.cur
}

// get returns the snapshot's nodes (tests).
func (c *nodeList) get(snap *state.Snapshot) []*structs.Node { return c.at(snap).list }

// snapshot returns the committed state with the uncommitted plans laid
// over it: the view schedulers decide on.
func (q *planPipeline) snapshot() scheduler.State {
	v, _ := q.view()
	return v
}

func (q *planPipeline) view() (*overlayView, uint64) {
	q.mu.Lock()
	// The jobs first: a write leaves that set only once applied, so a
	// snapshot taken after has whatever left it meanwhile.
	jobs := q.s.jobs.inLog()
	entries := make([]*overlayEntry, 0, len(q.inflight))
	for _, c := range q.inflight {
		entries = append(entries, c.ov)
	}
	snap := q.s.state.Snapshot()
	v := &overlayView{Snapshot: snap, entries: entries, index: q.index, jobs: jobs, nodes: q.nodes.at(snap)}
	gen := q.gen
	q.mu.Unlock()
	v.applied = appliedThrough(snap, entries)
	return v, gen
}

// appliedThrough returns the seq of the newest entry the snapshot already
// holds (0: none). The FSM applies an entry before the committer hears of
// it and takes it out of the overlay; entries apply in check order, so
// those applied are the oldest, and the first one whose evidence
// (overlayEntry.placed) the snapshot lacks ends the walk: one lookup, plus
// one per entry applied and not yet answered. An entry without evidence
// places nothing new and so adds no usage. One whose placements the FSM
// dropped ends the walk too: the entries applied behind it are then
// counted twice until answered, on the safe side.
func appliedThrough(snap *state.Snapshot, entries []*overlayEntry) uint64 {
	var seq uint64
	for _, e := range entries {
		if e.placed == "" {
			continue
		}
		if snap.AllocByID(e.placed) == nil {
			break
		}
		seq = e.seq
	}
	return seq
}

// newPlacement returns the ID of one of a checked plan's new live
// placements that the view it was checked against does not hold, or "".
// Its presence in a later snapshot says the entry applied; that of an ID
// the view held (a placement taking an existing allocation's ID) would
// not.
func newPlacement(view planView, req *structs.ApplyPlanRequest) string {
	for _, a := range req.Allocs {
		if isPlacement(a) && !a.Terminal() && view.AllocByID(a.ID) == nil {
			return a.ID
		}
	}
	return ""
}

// submit checks a plan and queues its accepted part for commit. It
// returns the check's result and, if something is to be committed, the
// queued plan (nil otherwise).
func (q *planPipeline) submit(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, *checkedPlan, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("plan for job %s: %w", plan.JobID, err)
	}
	if !q.s.Leader() {
		return nil, nil, fmt.Errorf("plan for job %s: %w", plan.JobID, ErrNotLeader)
	}
	q.check.Lock()
	defer q.check.Unlock()
	start := time.Now()
	view, gen := q.view()
	res, req := evaluatePlan(view, plan, q.s.now().UnixNano())
	q.s.metrics.planRejected.Add(float64(len(res.RejectedNodes)))
	q.s.metrics.planApply.Observe(time.Since(start).Seconds())
	if req == nil {
		// Nothing to commit. A rejection may be due to uncommitted plans:
		// the scheduler's next view already holds them, so it need not
		// wait for a newer index.
		res.Index = view.Index()
		if len(res.RejectedNodes) > 0 {
			res.RefreshIndex = res.Index
		}
		return res, nil, nil
	}
	ov := newOverlayEntry(req)
	ov.placed = newPlacement(view, req)
	c := &checkedPlan{plan: plan, res: res, req: req, ov: ov, done: make(chan struct{})}
	// What the submitter sees before the commit (the committer sets
	// res.Index once the plan is queued).
	early := *res
	q.mu.Lock()
	if q.gen != gen {
		// A commit failed while this plan was checked against it.
		q.mu.Unlock()
		return nil, nil, fmt.Errorf("plan for job %s: %w", plan.JobID, errPlanAborted)
	}
	q.seq++
	c.ov.seq = q.seq
	q.inflight = append(q.inflight, c)
	q.index = q.index.add(c.ov)
	q.queued++
	if !q.committing {
		q.committing = true
		q.s.wg.Add(1)
		go q.commitLoop()
	}
	q.mu.Unlock()
	return &early, c, nil
}

// wait returns a queued plan's result once committed and applied.
func (c *checkedPlan) wait() (*structs.PlanResult, error) {
	<-c.done
	if c.err != nil {
		return nil, c.err
	}
	return c.res, nil
}

// maxEntriesInFlight bounds the plan entries proposed and not yet applied.
// Raft writes queued entries together and the FSM applies them back to
// back, so a commit costs less than a full round trip each (one entry at a
// time took ~0.3 s per 1,000-allocation plan in c1m-like). With
// maxEntryAllocs this bounds the placements waiting for their commit,
// which registrations queued behind them wait for too.
const maxEntriesInFlight = 16

// proposedBatch is an entry proposed and not yet applied.
type proposedBatch struct {
	batch []*checkedPlan
	wait  func() (uint64, any, error)
	// frees says the entry stops or evicts allocations. Nothing is
	// proposed after such an entry until it is applied: later plans may
	// use the room it frees (the overlay offers it, see NodeUsage), and
	// must not commit if it does not.
	frees bool
}

// commitLoop proposes queued plans, up to maxEntriesInFlight entries
// ahead, and answers them in order as they are applied, until nothing is
// queued or in flight.
//
// Entries behind one that fails were checked against its placements only
// (never against room it frees), which leaves them on the safe side
// whether or not it applied; they are answered by their own outcome. The FSM skips a plan's changes to allocations that do not
// exist, so a stop of a placement that never applied stores nothing.
func (q *planPipeline) commitLoop() {
	defer q.s.wg.Done()
	var window []proposedBatch
	for {
		q.mu.Lock()
		open := len(window) == 0 || (len(window) < maxEntriesInFlight && !window[len(window)-1].frees)
		if q.queued > 0 && open {
			batch := q.takeLocked()
			q.mu.Unlock()
			window = append(window, proposedBatch{batch: batch, wait: q.proposeBatch(batch), frees: freesRoom(batch)})
			continue
		}
		if len(window) == 0 {
			q.committing = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		p := window[0]
		window = window[1:]
		index, resp, err := p.wait()
		if err == nil {
			q.finish(p.batch, index, resp, nil)
			continue
		}
		// Learn the outcome of every entry behind it, then drop the
		// overlay: plans checked later must see in the state whatever
		// of these applied.
		outcomes := make([]entryOutcome, len(window))
		for i, later := range window {
			outcomes[i].batch = later.batch
			outcomes[i].index, outcomes[i].resp, outcomes[i].err = later.wait()
		}
		window = nil
		q.fail(p.batch, err, outcomes)
	}
}

// entryOutcome is how a proposed entry ended.
type entryOutcome struct {
	batch []*checkedPlan
	index uint64
	resp  any
	err   error
}

// freesRoom reports whether a batch stops or evicts allocations.
func freesRoom(batch []*checkedPlan) bool {
	for _, c := range batch {
		for _, a := range c.req.Allocs {
			if !isPlacement(a) {
				return true
			}
		}
	}
	return false
}

// takeLocked takes the next entry's plans off the queue: up to max plans
// and maxEntryAllocs allocations (at least one plan).
func (q *planPipeline) takeLocked() []*checkedPlan {
	first := len(q.inflight) - q.queued
	n, allocs := 0, 0
	for _, c := range q.inflight[first:] {
		if n > 0 && (n >= q.max || allocs+len(c.req.Allocs) > maxEntryAllocs) {
			break
		}
		n++
		allocs += len(c.req.Allocs)
	}
	q.queued -= n
	return slices.Clone(q.inflight[first : first+n])
}

// proposeBatch proposes one entry for a batch of plans.
func (q *planPipeline) proposeBatch(batch []*checkedPlan) func() (uint64, any, error) {
	q.s.metrics.planBatch.Observe(float64(len(batch)))
	propose := q.propose
	if propose == nil {
		propose = func(t structs.MessageType, req any) func() (uint64, any, error) {
			return q.s.raftPropose(t, req, 0)
		}
	}
	// Job writes still queued go first: the plans may have been checked
	// against them (job_batch.go), and both share one log write.
	q.s.jobs.flush()
	if len(batch) == 1 {
		return propose(structs.ApplyPlanRequestType, batch[0].req)
	}
	reqs := make([]*structs.ApplyPlanRequest, len(batch))
	for i, c := range batch {
		reqs[i] = c.req
	}
	return propose(structs.ApplyPlanBatchRequestType, &structs.ApplyPlanBatchRequest{Plans: reqs})
}

// finish answers the submitters of the oldest entry in flight, applied.
func (q *planPipeline) finish(batch []*checkedPlan, index uint64, resp any, _ error) {
	q.mu.Lock()
	q.inflight = slices.Delete(q.inflight, 0, len(batch))
	gone := make(map[*overlayEntry]bool, len(batch))
	for _, c := range batch {
		gone[c.ov] = true
	}
	q.index = q.index.remove(gone)
	q.mu.Unlock()
	q.answer(batch, index, resp, nil)
}

// fail handles a failed entry: it and every plan not yet proposed fail
// (they were checked against it), the entries proposed behind it are
// answered by their own outcome, and the overlay is dropped.
func (q *planPipeline) fail(batch []*checkedPlan, err error, later []entryOutcome) {
	q.mu.Lock()
	proposed := len(batch)
	for _, o := range later {
		proposed += len(o.batch)
	}
	aborted := slices.Clone(q.inflight[proposed:])
	q.inflight, q.queued = nil, 0
	q.index = newOverlayIndex()
	q.gen++
	q.mu.Unlock()
	// The entry may or may not commit (leadership lost); schedulers retry
	// on fresh views either way.
	q.answer(batch, 0, nil, err)
	for _, o := range later {
		q.answer(o.batch, o.index, o.resp, o.err)
	}
	for _, c := range aborted {
		c.err = fmt.Errorf("plan for job %s: %w", c.plan.JobID, errPlanAborted)
		close(c.done)
	}
}

// answer gives a batch's submitters the outcome of its entry.
func (q *planPipeline) answer(batch []*checkedPlan, index uint64, resp any, err error) {
	for _, c := range batch {
		if err != nil {
			c.err = fmt.Errorf("plan for job %s: %w", c.plan.JobID, err)
		} else {
			c.res.Index = index
			if len(c.res.RejectedNodes) > 0 {
				c.res.RefreshIndex = index
			}
			q.s.retryIfNodesChanged(c.plan, c.req)
		}
		close(c.done)
	}
	if res, ok := resp.(*fsmResult); ok && err == nil {
		// Placements the FSM dropped because their job changed after the
		// check: schedule those jobs again.
		for _, id := range res.dropped {
			q.s.enqueueJob(id)
		}
	}
}

// SubmitPlan is the plan applier (scheduler.Planner): it checks the plan
// against the committed state plus the plans checked before it, commits
// the parts that fit (group commit, plan_pipeline.go) and returns once the
// committed part is applied locally, so the scheduler's next snapshot sees
// it.
func (s *Server) SubmitPlan(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, error) {
	if plan == nil {
		return nil, fmt.Errorf("submit plan: nil plan")
	}
	res, c, err := s.plans.submit(ctx, plan)
	if err != nil || c == nil {
		return res, err
	}
	return c.wait()
}

var _ scheduler.PipelinedPlanner = (*Server)(nil)

// SubmitPlanPipelined checks the plan at once and returns a wait for its
// commit (scheduler.PipelinedPlanner).
func (s *Server) SubmitPlanPipelined(ctx context.Context, plan *structs.Plan) (*structs.PlanResult, func() (*structs.PlanResult, error), error) {
	if plan == nil {
		return nil, nil, fmt.Errorf("submit plan: nil plan")
	}
	res, c, err := s.plans.submit(ctx, plan)
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		return res, func() (*structs.PlanResult, error) { return res, nil }, nil
	}
	return res, c.wait, nil
}

// overlayEntry is one checked plan's changes, indexed for the view.
type overlayEntry struct {
	// allocs are the entry's allocations grouped by node: nodes[id]
	// says which span is on node id.
	allocs  []*structs.Allocation
	nodes   map[string]entryNode
	byJob   map[string][]*structs.Allocation
	jobID   string
	failure *structs.PlacementFailure // set: stored; nil and clear: removed
	clear   bool
	// nsAdds is what the new placements (not Terminal) add per namespace
	// (nil when they add nothing); placed is the ID of one of them
	// (through the pipeline: one the check's view did not hold, see
	// newPlacement), "" if none.
	nsAdds map[string]structs.Resources
	placed string
	// seq numbers the pipeline's entries in check order (from 1; 0: an
	// entry built by hand, never taken as applied).
	seq uint64
}

// entryNode is one entry's part on one node.
type entryNode struct {
	lo, hi int32 // allocs[lo:hi]
	// adds is what the new placements (not Terminal) add; stops and
	// evictions are not taken off (see NodeUsage).
	adds  structs.Resources
	stops bool // the entry stops or evicts allocations there
}

// onNode returns the entry's allocations on a node.
func (e *overlayEntry) onNode(nodeID string) []*structs.Allocation {
	if p, ok := e.nodes[nodeID]; ok {
		return e.allocs[p.lo:p.hi]
	}
	return nil
}

// newOverlayEntry groups a checked plan's allocations by node (a counting
// sort: three map operations per allocation, no slice per node).
func newOverlayEntry(req *structs.ApplyPlanRequest) *overlayEntry {
	e := &overlayEntry{
		allocs: make([]*structs.Allocation, len(req.Allocs)),
		nodes:  map[string]entryNode{},
		byJob:  map[string][]*structs.Allocation{},
		jobID:  req.JobID, failure: req.Failure, clear: req.ClearFailure && req.Failure == nil,
	}
	for _, a := range req.Allocs {
		p := e.nodes[a.NodeID]
		p.hi++ // a count for now
		e.nodes[a.NodeID] = p
	}
	off := int32(0)
	for id, p := range e.nodes {
		p.lo, p.hi, off = off, off, off+p.hi
		e.nodes[id] = p
	}
	// What the plan's own job's placements add (nearly all of them), in
	// one sum; others' go to the map directly.
	var jobAdds structs.Resources
	for _, a := range req.Allocs {
		p := e.nodes[a.NodeID]
		e.allocs[p.hi] = a
		p.hi++
		switch {
		case isPlacement(a) && !a.Terminal():
			p.adds = p.adds.Add(a.Resources)
			e.placed = a.ID
			if a.JobID == req.JobID {
				jobAdds = jobAdds.Add(a.Resources)
			} else {
				e.addNamespace(a.JobID, a.Resources)
			}
		case !isPlacement(a) && a.Terminal():
			p.stops = true
		}
		e.nodes[a.NodeID] = p
		if a.JobID == req.JobID && len(e.byJob) == 0 {
			// Nearly every allocation is the plan's own job's: one slice,
			// sized once.
			e.byJob[a.JobID] = make([]*structs.Allocation, 0, len(req.Allocs))
		}
		e.byJob[a.JobID] = append(e.byJob[a.JobID], a)
	}
	if !jobAdds.IsZero() {
		e.addNamespace(req.JobID, jobAdds)
	}
	return e
}

// addNamespace adds what a placement of job holds to its namespace's row.
func (e *overlayEntry) addNamespace(jobID string, r structs.Resources) {
	if e.nsAdds == nil {
		e.nsAdds = map[string]structs.Resources{}
	}
	ns := structs.JobNamespace(jobID)
	e.nsAdds[ns] = e.nsAdds[ns].Add(r)
}

// overlayView lays uncommitted plans (oldest first) over a snapshot. An
// allocation the overlay places that the snapshot already holds was
// committed meanwhile: the snapshot's copy (perhaps with the agent's
// report) wins. For changes to existing allocations (stops, evictions)
// the overlay wins. Allocations never change node or job.
type overlayView struct {
	*state.Snapshot
	entries []*overlayEntry // in check order
	index   overlayIndex    // the same entries by node and allocation
	// jobs are job writes in the Raft log, not yet applied (nil: purged).
	jobs map[string]*structs.Job
	// nodes, when set, are the snapshot's nodes, shared between views
	// while the nodes table does not change.
	nodes *nodeTable
	// applied is the seq of the newest entry the snapshot already holds
	// (appliedThrough; 0: none).
	applied uint64
}

// holds reports whether the snapshot already holds the entry (applied,
// its submitters not yet answered).
func (v *overlayView) holds(e *overlayEntry) bool {
	return e.seq != 0 && e.seq <= v.applied
}

// Nodes returns every node (scheduler.State).
func (v *overlayView) Nodes() []*structs.Node {
	if v.nodes != nil {
		return v.nodes.list // shared: callers must not modify it (scheduler.State)
	}
	return v.Snapshot.Nodes()
}

// NodeByID returns a node or nil.
func (v *overlayView) NodeByID(id string) *structs.Node {
	if v.nodes != nil {
		return v.nodes.byID[id]
	}
	return v.Snapshot.NodeByID(id)
}

// JobByID returns the job as the writes already in the Raft log leave it.
func (v *overlayView) JobByID(id string) *structs.Job {
	if j, ok := v.jobs[id]; ok {
		return j
	}
	return v.Snapshot.JobByID(id)
}

// nodeEntries returns the entries touching a node, in check order.
func (v *overlayView) nodeEntries(nodeID string) []*overlayEntry {
	if v.index.indexed() {
		return v.index.nodeEntries(nodeID)
	}
	var out []*overlayEntry // a view built by hand (tests)
	for _, e := range v.entries {
		if _, ok := e.nodes[nodeID]; ok {
			out = append(out, e)
		}
	}
	return out
}

// pick returns the view's version of an allocation that an entry holds.
func (v *overlayView) pick(ov, base *structs.Allocation) *structs.Allocation {
	if base != nil && ov.CreateIndex == 0 && ov.DesiredStatus == structs.AllocDesiredRun {
		return base
	}
	return ov
}

func (v *overlayView) AllocByID(id string) *structs.Allocation {
	if v.index.indexed() {
		if a := v.index.latest(id); a != nil {
			return v.pick(a, v.Snapshot.AllocByID(id))
		}
		return v.Snapshot.AllocByID(id)
	}
	for i := len(v.entries) - 1; i >= 0; i-- { // a view built by hand (tests)
		if a := v.entries[i].find(id); a != nil {
			return v.pick(a, v.Snapshot.AllocByID(id))
		}
	}
	return v.Snapshot.AllocByID(id)
}

// find returns the entry's (latest) version of an allocation by a scan:
// views built by hand (tests) only.
func (e *overlayEntry) find(id string) *structs.Allocation {
	var found *structs.Allocation
	for _, a := range e.allocs {
		if a.ID == id {
			found = a
		}
	}
	return found
}

func (v *overlayView) merge(base []*structs.Allocation, lists [][]*structs.Allocation) []*structs.Allocation {
	if len(lists) == 0 {
		return base
	}
	over := map[string]*structs.Allocation{}
	var order []string
	for _, l := range lists {
		for _, a := range l {
			if _, seen := over[a.ID]; !seen {
				order = append(order, a.ID)
			}
			over[a.ID] = a
		}
	}
	out := make([]*structs.Allocation, 0, len(base)+len(order))
	for _, a := range base {
		if o, ok := over[a.ID]; ok {
			out = append(out, v.pick(o, a))
			delete(over, a.ID)
			continue
		}
		out = append(out, a)
	}
	for _, id := range order {
		if a, ok := over[id]; ok {
			out = append(out, a)
		}
	}
	return out
}

func (v *overlayView) AllocsByNode(nodeID string) []*structs.Allocation {
	var lists [][]*structs.Allocation
	for _, e := range v.nodeEntries(nodeID) {
		lists = append(lists, e.onNode(nodeID))
	}
	return v.merge(v.Snapshot.AllocsByNode(nodeID), lists)
}

// isPlacement reports whether a plan's allocation is a new placement (the
// applier copies existing allocations it stops, with their CreateIndex).
func isPlacement(a *structs.Allocation) bool {
	return a.CreateIndex == 0 && a.DesiredStatus == structs.AllocDesiredRun
}

// NodeUsage is the snapshot's usage row plus what the uncommitted plans'
// new placements add to the node, minus what their stops and evictions
// free: one lookup in the overlay index, plus one per allocation stopped
// there in flight (per-allocation lookups of placements were most of the
// scheduler's time in c1m-like). The placements of entries the snapshot
// already holds (applied, not yet answered) are in its row and are not
// added again: counted twice, they made a scheduler find the node full,
// record a placement failure, and leave the job unplaced until something
// enqueued it again (the next reconcile). It errs only on the safe side:
// a placement taking an existing allocation's ID, or one applied behind
// an entry whose placements the FSM dropped (appliedThrough), counts
// twice for that moment, and a stop frees what the snapshot says the
// allocation holds (nothing if it already ended), or, for a placement
// not committed yet, what that placement added.
func (v *overlayView) NodeUsage(nodeID string) structs.Resources {
	used := v.Snapshot.NodeUsage(nodeID)
	var stopEntries []*overlayEntry
	if v.index.indexed() {
		n := v.index.node(nodeID)
		if n == nil {
			return used
		}
		used = used.Add(n.adds)
		for _, e := range n.entries { // in check order: those held first
			if !v.holds(e) {
				break
			}
			used = used.Sub(e.nodes[nodeID].adds)
		}
		stopEntries = n.stops
	} else {
		for _, e := range v.entries { // a view built by hand (tests)
			p, ok := e.nodes[nodeID]
			if !ok {
				continue
			}
			if !v.holds(e) {
				used = used.Add(p.adds)
			}
			if p.stops {
				stopEntries = append(stopEntries, e)
			}
		}
	}
	if len(stopEntries) == 0 {
		return used
	}
	var freed []string // IDs already freed: an allocation stopped twice frees once
	for _, e := range stopEntries {
		for _, a := range e.onNode(nodeID) {
			if isPlacement(a) || !a.Terminal() || slices.Contains(freed, a.ID) {
				continue
			}
			freed = append(freed, a.ID)
			if base := v.Snapshot.AllocByID(a.ID); base != nil {
				if !base.Terminal() {
					used = used.Sub(base.Resources)
				}
			} else if v.placedInOverlay(a.ID) {
				used = used.Sub(a.Resources)
			}
		}
	}
	return used
}

// NamespaceUsage is the snapshot's usage row of the namespace plus what
// the uncommitted plans' new placements there add (scheduler.QuotaReader).
// Unlike NodeUsage it leaves out the entries already committed but not yet
// out of the overlay: counted twice, they would make the scheduler record
// a quota failure that is not real, and the job would wait for the next
// trigger. An entry commits whole (one transaction) or its placements are
// dropped together (its job changed), so one placement of it in the
// snapshot says it is there: one lookup per entry in flight, and only for
// namespaces with a quota, which alone are asked. Stops free nothing until
// committed.
func (v *overlayView) NamespaceUsage(ns string) structs.Resources {
	used := v.Snapshot.NamespaceUsage(ns)
	if v.index.indexed() && v.index.nsAdds[ns].IsZero() {
		return used
	}
	for _, e := range v.entries {
		if add := e.nsAdds[ns]; !add.IsZero() && v.Snapshot.AllocByID(e.placed) == nil {
			used = used.Add(add)
		}
	}
	return used
}

// placedInOverlay reports whether an uncommitted entry places the
// allocation (so its resources are in the overlay's added usage).
func (v *overlayView) placedInOverlay(id string) bool {
	if v.index.indexed() {
		return v.index.placed(id)
	}
	for _, e := range v.entries {
		for _, a := range e.allocs {
			if a.ID == id && isPlacement(a) && !a.Terminal() {
				return true
			}
		}
	}
	return false
}

func (v *overlayView) AllocsByJob(jobID string) []*structs.Allocation {
	var lists [][]*structs.Allocation
	for _, e := range v.entries {
		if l := e.byJob[jobID]; len(l) > 0 {
			lists = append(lists, l)
		}
	}
	return v.merge(v.Snapshot.AllocsByJob(jobID), lists)
}

// PlacementFailure returns the job's failure record, the uncommitted
// plans' over the state's (scheduler.State).
func (v *overlayView) PlacementFailure(jobID string) *structs.PlacementFailure {
	for i := len(v.entries) - 1; i >= 0; i-- {
		e := v.entries[i]
		if e.jobID != jobID {
			continue
		}
		if e.failure != nil {
			return e.failure
		}
		if e.clear {
			return nil
		}
	}
	return v.Snapshot.PlacementFailure(jobID)
}
