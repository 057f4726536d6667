package peerexec

import (
	"fmt"
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

// ---- owner side: the jobs of the slots this peer owns ----

// ownerTick follows slot ownership, then (with a majority) reconciles
// jobs and retries admits.
func (e *Engine) ownerTick() {
	e.followOwnership()
	e.endGraces()
	if !e.cv.OK {
		return // a minority owner changes nothing; its workers keep running
	}
	full := e.now.Sub(e.lastSync) >= e.cfg.ResyncInterval
	if full {
		e.lastSync = e.now
	}
	if e.freed {
		e.freed = false
		for id := range e.blocked {
			if oj := e.jobs[id]; oj != nil {
				oj.dirty = true
			}
		}
	}
	var use map[string]structs.Resources // computed at the first reconcile
	for _, id := range slices.Sorted(mapKeys(e.jobs)) {
		oj := e.jobs[id]
		e.retryAdmits(oj)
		if e.now.Before(e.graceTill[oj.slot]) {
			continue
		}
		if e.blocked[id] && !e.windowRoom() {
			continue // held back until an answer frees room (it stays dirty)
		}
		if oj.dirty || full || (!oj.retryAt.IsZero() && !e.now.Before(oj.retryAt)) {
			if use == nil {
				use = e.ownerUse()
			}
			e.reconcile(oj, use)
		}
	}
}

// followOwnership drops the jobs of slots this peer no longer owns and
// loads those of slots it gained (a promotion, a reshard, the start).
func (e *Engine) followOwnership() {
	if e.cv.Version != 0 && e.cv.Version == e.ownedVer {
		return
	}
	var gained map[uint16]bool
	for s := 0; s < numSlots; s++ {
		own := e.cv.Owner(uint16(s)) == e.cfg.ID
		if own == e.owned[s] {
			continue
		}
		if !own {
			e.owned[s] = false
			for id, oj := range e.jobs {
				if oj.slot == uint16(s) {
					e.dropJob(id)
				}
			}
			continue
		}
		if gained == nil {
			gained = map[uint16]bool{}
		}
		gained[uint16(s)] = true
	}
	if len(gained) == 0 {
		e.ownedVer = e.cv.Version
		return
	}
	jobs, allocs, err := e.store.Load(func(jobID string) bool { return gained[JobSlot(jobID)] })
	if err != nil {
		return // tried again next tick
	}
	e.ownedVer = e.cv.Version
	to := &takeover{till: e.now.Add(e.cfg.TakeoverGrace), heard: map[string]bool{}}
	for s := range gained {
		e.owned[s] = true
		e.graceTill[s] = to.till
		to.slots = append(to.slots, s)
	}
	slices.Sort(to.slots)
	e.takeovers = append(e.takeovers, to)
	for _, j := range jobs {
		if _, ok := e.jobs[j.ID]; !ok {
			e.jobs[j.ID] = newOwnedJob(j)
		}
	}
	for _, a := range allocs {
		if oj := e.jobs[a.JobID]; oj != nil {
			if _, ok := oj.allocs[a.ID]; !ok {
				oj.allocs[a.ID] = a
				e.bumpIndex(a.CreateIndex)
			}
		}
	}
}

// heardFrom notes a full report from a peer for the given slot ranges:
// it is complete for them, so a takeover of slots it covers has learned
// what that peer runs there.
func (e *Engine) heardFrom(from string, slots [][2]uint16) {
	for _, to := range e.takeovers {
		if !to.heard[from] && coversAll(slots, to.slots) {
			to.heard[from] = true
		}
	}
}

// coversAll reports whether every slot of sorted lies in the ranges.
func coversAll(ranges [][2]uint16, sorted []uint16) bool {
	for _, s := range sorted {
		in := false
		for _, rg := range ranges {
			if s >= rg[0] && s <= rg[1] {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// endGraces ends the grace of a takeover once every live member (this
// peer too) sent a full report for its slots: nothing runs there that
// the owner does not know of, so it supervises at once. A member that
// does not report (unreachable but not failed yet) leaves the grace to
// its full length. A grace already over, or slots lost since, drop out.
func (e *Engine) endGraces() {
	kept := e.takeovers[:0]
	for _, to := range e.takeovers {
		if !e.now.Before(to.till) {
			continue
		}
		all := e.cv.OK
		for _, m := range e.cv.Members {
			if all && !e.failed(m) && !to.heard[m] {
				all = false
			}
		}
		if !all {
			kept = append(kept, to)
			continue
		}
		for _, s := range to.slots {
			if e.owned[s] && e.graceTill[s].Equal(to.till) {
				e.graceTill[s] = e.now
			}
		}
	}
	clear(e.takeovers[len(kept):])
	e.takeovers = kept
}

func newOwnedJob(j *structs.Job) *ownedJob {
	return &ownedJob{job: j, allocs: map[string]*structs.Allocation{}, admits: map[string]admission{},
		props: map[string]*proposal{}, refused: map[string]time.Time{}, dirty: true, slot: JobSlot(j.ID)}
}

func (e *Engine) dropJob(id string) {
	if oj := e.jobs[id]; oj != nil {
		for pid := range oj.props {
			e.delProp(oj, pid)
		}
		e.setWaiting(oj, 0)
	}
	delete(e.jobs, id)
	delete(e.blocked, id)
}

// addProp records an admit in flight: the copy counts against its
// peer's window (MaxAdmitsInFlight) until answered.
func (e *Engine) addProp(oj *ownedJob, p *proposal) {
	oj.props[p.alloc.ID] = p
	e.props[p.alloc.ID] = oj.job.ID
	e.inflight[p.alloc.NodeID]++
}

// delProp ends an admit in flight (answered, reported, given up or
// stopped); a window with room again lets the jobs held back place.
func (e *Engine) delProp(oj *ownedJob, id string) {
	p := oj.props[id]
	delete(oj.props, id)
	delete(e.props, id)
	if p == nil {
		return
	}
	node := p.alloc.NodeID
	n := e.inflight[node] - 1
	if n <= 0 {
		delete(e.inflight, node)
	} else {
		e.inflight[node] = n
	}
	if n < e.cfg.MaxAdmitsInFlight {
		e.freed = true // the next tick places the jobs held back
	}
}

// windowRoom reports whether some live peer other than this one has
// room in this owner's window: without any, a job holding copies back
// is not reconciled (its plan would be computed only to be held back
// again: the work grows with the jobs waiting, at every answer).
func (e *Engine) windowRoom() bool {
	if e.cfg.MaxAdmitsInFlight <= 0 {
		return true
	}
	for _, id := range e.cv.Members {
		if id != e.cfg.ID && !e.failed(id) && e.inflight[id] < e.cfg.MaxAdmitsInFlight {
			return true
		}
	}
	return false
}

// setWaiting sets how many copies of a job wait to be placed (held back
// by full windows, or not reconciled yet), keeping the owner's total.
func (e *Engine) setWaiting(oj *ownedJob, n int) {
	e.waiting += n - oj.waiting
	oj.waiting = n
}

func (e *Engine) bumpIndex(i uint64) {
	if i > e.index {
		e.index = i
	}
}

// nextIndex orders allocations across owners: unix nanoseconds, kept
// increasing on this peer.
func (e *Engine) nextIndex() uint64 {
	i := uint64(e.now.UnixNano())
	if i <= e.index {
		i = e.index + 1
	}
	e.index = i
	return i
}

func (e *Engine) putAlloc(a *structs.Allocation) {
	// a failed write means the slot moved away: followOwnership drops it
	_ = e.store.PutAlloc(a)
}

// reconcile runs the placement core on one job and acts on its plan:
// stops go to their peers (and the records), placements become admits.
// use is ownerUse (nil: computed here); reconcile adds its admits to it
// and takes its stops out, for the next job of the same tick.
func (e *Engine) reconcile(oj *ownedJob, use map[string]structs.Resources) {
	oj.dirty = false
	e.stats.Reconciles++
	if use == nil {
		use = e.ownerUse()
	}
	v := e.view(oj, use)
	res, err := scheduler.ComputePlan(scheduler.Options{Rand: e.rng, Now: func() time.Time { return e.now }}, v, oj.job.ID)
	if err != nil {
		return
	}
	plan := res.Plan
	stops := map[string][]StopRequest{}
	for _, st := range append(plan.Stops, plan.Preemptions...) {
		if p := oj.props[st.AllocID]; p != nil {
			use[p.alloc.NodeID] = use[p.alloc.NodeID].Sub(p.alloc.Resources)
			e.delProp(oj, st.AllocID)
			if !e.failed(p.alloc.NodeID) {
				stops[p.alloc.NodeID] = append(stops[p.alloc.NodeID], StopRequest{AllocID: st.AllocID, JobID: oj.job.ID})
			}
			continue
		}
		a := oj.allocs[st.AllocID]
		if a == nil {
			continue
		}
		if st.Description == scheduler.DescNodeDrained && !replacedAndRunning(oj, a) {
			continue // a leaving peer's copy stops once its replacement runs
		}
		if e.pendingUse(oj, a.ID, a) {
			use[a.NodeID] = use[a.NodeID].Sub(a.Resources)
		}
		a = a.Copy()
		a.DesiredStatus, a.DesiredDescription, a.ModifyTime = st.Desired, st.Description, e.now.UnixNano()
		a.PreemptedBy = st.PreemptedBy
		if nodeGone := v.NodeByID(a.NodeID); (nodeGone == nil || nodeGone.Status != structs.NodeStatusReady) && !a.ClientTerminal() {
			a.ClientStatus, a.ClientDescription = structs.AllocClientLost, "its peer failed"
		}
		oj.allocs[a.ID] = a
		e.putAlloc(a)
		if !e.failed(a.NodeID) && !a.ClientTerminal() {
			stops[a.NodeID] = append(stops[a.NodeID], StopRequest{AllocID: a.ID, JobID: oj.job.ID, Description: st.Description})
		}
	}
	for _, node := range slices.Sorted(mapKeys(stops)) {
		e.sendTo(node, &Message{Type: MsgStop, Stop: stops[node]})
	}
	admits := map[string][]*structs.Allocation{}
	// a peer's window of admits in flight bounds the work this owner
	// queues there: placements beyond it wait here (the job is placed
	// again once an answer frees room), unless they come with
	// preemptions (their victims are stopped already). This peer's own
	// admits are handled at once: no window.
	trim := e.cfg.MaxAdmitsInFlight > 0 && len(plan.Preemptions) == 0
	held := 0
	for _, p := range plan.Placements {
		if trim && p.NodeID != e.cfg.ID && e.inflight[p.NodeID] >= e.cfg.MaxAdmitsInFlight {
			held++
			continue
		}
		e.stats.Proposed++
		a := p.Copy()
		a.Job = oj.job
		a.CreateIndex = e.nextIndex()
		a.ModifyTime = a.CreateTime
		e.addProp(oj, &proposal{alloc: a, sent: e.now, tries: 1, link: e.link(a.NodeID)})
		use[a.NodeID] = use[a.NodeID].Add(a.Resources)
		admits[a.NodeID] = append(admits[a.NodeID], a)
	}
	e.sendAdmits(oj, admits)
	e.stats.HeldBack += uint64(held)
	e.setWaiting(oj, held)
	if held > 0 {
		e.blocked[oj.job.ID] = true
	} else {
		delete(e.blocked, oj.job.ID)
	}
	switch {
	case plan.Failure != nil:
		oj.failure = plan.Failure
	case plan.ClearFailure:
		oj.failure = nil
	}
	oj.retryAt = res.RetryAt
}

// replacedAndRunning reports whether another copy of a's index runs on
// another peer.
func replacedAndRunning(oj *ownedJob, a *structs.Allocation) bool {
	for _, b := range oj.allocs {
		if b.Index == a.Index && b.ID != a.ID && b.NodeID != a.NodeID && !b.Terminal() && b.ClientStatus == structs.AllocClientRunning {
			return true
		}
	}
	return false
}

// sendTo stamps and sends a message; to this peer it is handled at once.
func (e *Engine) sendTo(to string, m *Message) {
	m.From, m.Inc = e.cfg.ID, e.inc
	if to == e.cfg.ID {
		e.Step(e.now, e.cv, m)
		return
	}
	e.send(to, m)
}

// retryAdmits sends unanswered admits again (admits are idempotent),
// AdmitTimeout apart for the first sends, then twice as long after each
// retry, at most AdmitRetryMax apart (admitWait). An admit is given up only when
// the cluster judged its peer failed: the copy is then the failed
// peer's, admitted or not, and is placed again like every other copy
// there. A live peer that answers late (saturated, its messages queued
// behind seconds of work) may have started the copy: placing it again
// elsewhere would run it twice (a batch copy completes twice).
func (e *Engine) retryAdmits(oj *ownedJob) {
	var again map[string][]*structs.Allocation
	for _, id := range slices.Sorted(mapKeys(oj.props)) {
		p := oj.props[id]
		if e.failed(p.alloc.NodeID) {
			e.delProp(oj, id)
			oj.dirty = true
			e.stats.GivenUp++
			continue
		}
		if e.now.Sub(p.sent) < e.admitWait(p) {
			continue
		}
		p.tries++
		p.sent, p.link = e.now, e.link(p.alloc.NodeID)
		e.stats.Resent++
		if again == nil {
			again = map[string][]*structs.Allocation{}
		}
		again[p.alloc.NodeID] = append(again[p.alloc.NodeID], p.alloc)
	}
	e.sendAdmits(oj, again)
}

// admitQuickTries is how many times an admit is sent AdmitTimeout apart
// before the wait between sends grows. A lossy network needs the sends
// frequent (each one and its answer are lost with the same probability,
// however long the owner waits): with waits doubling from the second
// send (1 s, 2 s, 4 s), an admit lost three times in a row was sent a
// fourth time 7 s after the first, and a copy stayed unplaced that long
// on a network losing one message in five (the message-loss simulation
// failed on 5 of 40 seeds; with 3 quick sends on 3 of 40, with 5 on
// none: GANTRY_SIM_SEEDS=40 go test -run TestSimMessageLoss). A peer that answered none of five sends in 5 s is more likely
// saturated than unreached: from then on it is sent less.
const admitQuickTries = 5

// admitWait is how long an admit waits for its answer before it is sent
// again: AdmitTimeout for the first admitQuickTries sends, then
// doubling, at most AdmitRetryMax. An admit whose last send went on a
// stream that is still up waits AdmitRetryMax: a stream is ordered and
// reliable while it lasts, so the admit is not lost but waits at a slow
// peer, and each repeat would only add to that peer's work. An admit
// whose stream ended since may be lost: it goes again AdmitTimeout
// after its last send.
func (e *Engine) admitWait(p *proposal) time.Duration {
	if p.link != 0 {
		if p.link == e.link(p.alloc.NodeID) {
			return e.cfg.AdmitRetryMax
		}
		return e.cfg.AdmitTimeout // its stream ended: maybe lost
	}
	d := e.cfg.AdmitTimeout
	for i := admitQuickTries; i < p.tries && d < e.cfg.AdmitRetryMax; i++ {
		d *= 2
	}
	return min(d, e.cfg.AdmitRetryMax)
}

// link identifies the stream a message to peer goes on now: its
// linkGen while a stream is up, 0 (the cluster bus) otherwise.
func (e *Engine) link(peer string) uint64 {
	if !e.linked[peer] {
		return 0
	}
	return e.linkGen[peer]
}

// sendAdmits sends each peer one admit for all its copies of the job:
// the job goes once, not with every copy.
func (e *Engine) sendAdmits(oj *ownedJob, byNode map[string][]*structs.Allocation) {
	for _, node := range slices.Sorted(mapKeys(byNode)) {
		allocs := make([]*structs.Allocation, len(byNode[node]))
		for i, a := range byNode[node] {
			c := *a // the proposal keeps its job; the wire copy does not
			c.Job = nil
			allocs[i] = &c
		}
		e.sendTo(node, &Message{Type: MsgAdmit, Job: oj.job, Allocs: allocs})
	}
}

func (e *Engine) handleAdmitted(m *Message) {
	for _, ad := range m.answers() {
		e.handleAnswer(m.From, m.Inc, &ad)
	}
}

// handleAnswer takes a peer's answer to one admitted copy.
func (e *Engine) handleAnswer(from, inc string, ad *Admitted) {
	jobID, ok := e.props[ad.AllocID]
	if !ok {
		return // given up, or answered before
	}
	oj := e.jobs[jobID]
	if oj == nil {
		delete(e.props, ad.AllocID)
		return
	}
	p := oj.props[ad.AllocID]
	e.delProp(oj, ad.AllocID)
	if p == nil || p.alloc.NodeID != from {
		return
	}
	if !ad.OK {
		if ad.Full {
			e.stats.RefusedFit++
		} else {
			e.stats.Refused++
			oj.refused[from] = e.now.Add(e.cfg.RefuseBackoff)
		}
		if l := e.loads[from]; l != nil && ad.Seq >= l.load.Seq {
			// the peer's exact usage now: the view corrects itself
			l.load.Used, l.load.Seq = ad.Used, ad.Seq
		}
		oj.dirty = true
		return
	}
	e.stats.Admitted++
	a := p.alloc
	a.ModifyTime = e.now.UnixNano()
	oj.allocs[a.ID] = a
	oj.admits[a.ID] = admission{inc: inc, seq: ad.Seq}
	e.putAlloc(a)
	if e.cfg.OnPlaced != nil {
		e.cfg.OnPlaced(a.JobID)
	}
}

// handleReport merges a peer's report for the slots it believes this
// peer owns: states are recorded, copies the records lost are adopted,
// copies of unknown jobs stopped, and, from a full report, live records
// the peer no longer has (a new incarnation, or a report made after the
// admission) become lost so that Reconcile replaces them.
func (e *Engine) handleReport(from, inc string, r *Report) {
	e.followOwnership() // a report may be the first news of slots gained
	if !r.Delta {
		e.heardFrom(from, r.Slots)
	}
	covered := func(slot uint16) bool {
		for _, rg := range r.Slots {
			if slot >= rg[0] && slot <= rg[1] {
				return true
			}
		}
		return false
	}
	listed := make(map[string]bool, len(r.Tasks))
	unknown := []StopRequest{}
	restop := []StopRequest{}
	for i := range r.Tasks {
		t := &r.Tasks[i]
		listed[t.AllocID] = true
		slot := JobSlot(t.JobID)
		if !e.owned[slot] {
			continue
		}
		oj := e.jobs[t.JobID]
		if oj == nil {
			if e.cv.OK && !e.now.Before(e.graceTill[slot]) && !terminalStatus(t.ClientStatus) && !t.DesiredStop {
				unknown = append(unknown, StopRequest{AllocID: t.AllocID, JobID: t.JobID, Description: "job not found"})
			}
			continue
		}
		a := oj.allocs[t.AllocID]
		if a == nil {
			if p := oj.props[t.AllocID]; p != nil && p.alloc.NodeID == from {
				a = p.alloc
				e.delProp(oj, t.AllocID)
				if e.cfg.OnPlaced != nil {
					e.cfg.OnPlaced(a.JobID)
				}
			} else {
				a = adopt(oj.job, from, t)
				e.stats.Adopted++
			}
			oj.admits[a.ID] = admission{inc: inc, seq: r.Seq}
			oj.allocs[a.ID] = a
			e.bumpIndex(a.CreateIndex)
			oj.dirty = true
			e.putAlloc(a)
		}
		if a.ClientStatus != t.ClientStatus || a.TaskState.State != t.TaskState.State || a.TaskState.Restarts != t.TaskState.Restarts {
			if !a.ClientTerminal() || a.ClientStatus == structs.AllocClientLost {
				if t.ClientStatus == structs.AllocClientRunning && a.ClientStatus == structs.AllocClientPending && e.cfg.OnRunning != nil {
					e.cfg.OnRunning(a.JobID)
				}
				a = a.Copy()
				a.ClientStatus, a.TaskState, a.ModifyTime = t.ClientStatus, t.TaskState, e.now.UnixNano()
				if t.ClientStatus == structs.AllocClientRunning {
					a.ClientDescription = ""
				}
				oj.allocs[a.ID] = a
				oj.dirty = true
				e.putAlloc(a)
			}
		}
		if a.DesiredStatus != structs.AllocDesiredRun && !terminalStatus(t.ClientStatus) && !t.DesiredStop && e.cv.OK {
			restop = append(restop, StopRequest{AllocID: a.ID, JobID: a.JobID, Description: a.DesiredDescription})
		}
	}
	// live records on this peer that it no longer lists (a delta lists
	// only what changed)
	for _, oj := range e.jobs {
		if r.Delta {
			break
		}
		if !covered(oj.slot) {
			continue
		}
		for id, a := range oj.allocs {
			if a.NodeID != from || listed[id] || a.ClientTerminal() {
				continue
			}
			if ad, ok := oj.admits[id]; ok && ad.inc == inc && r.Seq < ad.seq {
				continue // the report was made before the admission
			}
			e.stats.Lost++
			a = a.Copy()
			a.ClientStatus, a.ClientDescription, a.ModifyTime = structs.AllocClientLost, "not running on its peer", e.now.UnixNano()
			if a.TaskState.State != structs.TaskStateDead {
				a.TaskState.State = structs.TaskStateDead
			}
			oj.allocs[id] = a
			oj.dirty = true
			e.putAlloc(a)
		}
	}
	if stops := slices.Concat(unknown, restop); len(stops) > 0 {
		e.sendTo(from, &Message{Type: MsgStop, Stop: stops})
	}
}

func terminalStatus(s string) bool {
	return s == structs.AllocClientComplete || s == structs.AllocClientFailed || s == structs.AllocClientLost
}

// adopt rebuilds the record of a copy a peer runs but the records lost
// (the previous owner admitted it and failed before its write reached the
// replica).
func adopt(job *structs.Job, node string, t *TaskReport) *structs.Allocation {
	a := &structs.Allocation{
		ID: t.AllocID, JobID: t.JobID, JobVersion: t.JobVersion, Name: t.Name, Index: t.Index,
		NodeID: node, NodeName: node, Resources: t.Resources, Priority: t.Priority,
		DesiredStatus: structs.AllocDesiredRun, ClientStatus: t.ClientStatus, TaskState: t.TaskState,
		PreviousAllocation: t.Previous, RescheduleCount: t.RescheduleCount,
		CreateTime: t.CreateTime, ModifyTime: t.CreateTime, CreateIndex: t.CreateIndex,
	}
	if t.DesiredStop {
		a.DesiredStatus = structs.AllocDesiredStop
	}
	if a.Name == "" {
		a.Name = structs.AllocName(job.Name, t.Index)
	}
	return a
}

// ---- the owner's API ----

// owns reports whether this peer may act for the job now.
func (e *Engine) owns(jobID string) error {
	s := JobSlot(jobID)
	if o := e.cv.Owner(s); o != e.cfg.ID {
		return &NotOwnerError{Owner: o}
	}
	if !e.cv.OK {
		return ErrClusterDown
	}
	if !e.owned[s] {
		// gained but not loaded yet: the records must be read first
		return fmt.Errorf("%w: taking the slot over, try again", ErrClusterDown)
	}
	return nil
}

// Register creates or updates a job (already validated, ID set). It is
// acknowledged once the store has made the record durable.
func (e *Engine) Register(now time.Time, cv ClusterView, job *structs.Job) (*structs.Job, error) {
	e.observe(now, cv)
	if err := e.owns(job.ID); err != nil {
		return nil, err
	}
	if err := e.admitWork(job.Count); err != nil {
		return nil, err
	}
	j := job.Copy()
	j.Stop, j.StopTime = false, 0
	j.SubmitTime = e.now.UnixNano()
	if old := e.jobs[j.ID]; old != nil {
		j.Version = old.job.Version
		j.CreateIndex = old.job.CreateIndex
		if structs.SpecChanged(old.job, j) {
			j.Version++
		}
	} else {
		j.CreateIndex = e.nextIndex()
	}
	j.ModifyIndex = e.nextIndex()
	j.Status = structs.JobStatusPending
	if err := e.saveJob(j); err != nil {
		return nil, err
	}
	oj := e.jobs[j.ID]
	e.setWaiting(oj, oj.waiting+j.Count) // until its next reconcile says
	e.stats.Registered++
	return j, nil
}

// admitWork refuses a request that would add copies to place while this
// owner has MaxWaiting or more waiting already: the clients' queue of
// work on an owner is bounded, and the request may be sent again later.
// An owner with nothing waiting takes any job.
func (e *Engine) admitWork(add int) error {
	if m := e.cfg.MaxWaiting; m > 0 && add > 0 && e.waiting > 0 && e.waiting+add > m {
		e.stats.Busy++
		return fmt.Errorf("%w: %d copies of the jobs this peer owns wait to be placed (limit %d); try again later", ErrBusy, e.waiting, m)
	}
	return nil
}

// Scale changes a job's count.
func (e *Engine) Scale(now time.Time, cv ClusterView, jobID string, count int) (*structs.Job, error) {
	e.observe(now, cv)
	if err := e.owns(jobID); err != nil {
		return nil, err
	}
	oj := e.jobs[jobID]
	if oj == nil {
		return nil, fmt.Errorf("job %s: %w", jobID, ErrNotFound)
	}
	if count < 0 {
		return nil, fmt.Errorf("count %d: must not be negative", count)
	}
	add := max(count-oj.job.Count, 0)
	if err := e.admitWork(add); err != nil {
		return nil, err
	}
	j := oj.job.Copy()
	j.Count = count
	j.ModifyIndex = e.nextIndex()
	if err := e.saveJob(j); err != nil {
		return nil, err
	}
	e.setWaiting(oj, oj.waiting+add)
	e.stats.Registered++
	return j, nil
}

// StopJob stops a job's copies; purge also removes its records (its
// copies are then stopped as copies of an unknown job).
func (e *Engine) StopJob(now time.Time, cv ClusterView, jobID string, purge bool) (*structs.Job, error) {
	e.observe(now, cv)
	if err := e.owns(jobID); err != nil {
		return nil, err
	}
	oj := e.jobs[jobID]
	if oj == nil {
		return nil, fmt.Errorf("job %s: %w", jobID, ErrNotFound)
	}
	j := oj.job.Copy()
	j.Stop, j.StopTime = true, e.now.UnixNano()
	j.ModifyIndex = e.nextIndex()
	if err := e.saveJob(j); err != nil {
		return nil, err
	}
	e.reconcile(e.jobs[jobID], nil) // send the stops now
	if purge {
		if err := e.store.DeleteJob(jobID); err != nil {
			return nil, err
		}
		if err := e.store.Sync(); err != nil {
			return nil, err
		}
		e.dropJob(jobID)
	}
	return j, nil
}

func (e *Engine) saveJob(j *structs.Job) error {
	if err := e.store.PutJob(j); err != nil {
		return err
	}
	if err := e.store.Sync(); err != nil {
		return err
	}
	oj := e.jobs[j.ID]
	if oj == nil {
		oj = newOwnedJob(j)
		e.jobs[j.ID] = oj
	}
	oj.job = j
	oj.dirty = true
	delete(e.blocked, j.ID) // reconciled at the next tick whatever the windows: a stop or a scale-down waits for nothing
	for _, a := range oj.allocs {
		a.Job = nil // records keep no stale job copy
	}
	return nil
}

// JobStatus is one owned job with its allocations (without the job).
type JobStatus struct {
	Job         *structs.Job
	Allocations []*structs.Allocation
	Failure     *structs.PlacementFailure
	Reschedules []scheduler.DelayedReschedule
}

// Job returns an owned job's status.
func (e *Engine) Job(jobID string) (*JobStatus, error) {
	if o := e.cv.Owner(JobSlot(jobID)); o != e.cfg.ID {
		return nil, &NotOwnerError{Owner: o}
	}
	oj := e.jobs[jobID]
	if oj == nil {
		return nil, fmt.Errorf("job %s: %w", jobID, ErrNotFound)
	}
	st := &JobStatus{Job: oj.job.Copy(), Failure: oj.failure}
	for _, id := range slices.Sorted(mapKeys(oj.allocs)) {
		st.Allocations = append(st.Allocations, oj.allocs[id].Stub())
	}
	st.Job.Status = jobStatus(oj)
	return st, nil
}

func jobStatus(oj *ownedJob) structs.JobStatus {
	live, done := 0, 0
	for _, a := range oj.allocs {
		switch {
		case !a.Terminal():
			live++
		case a.ClientStatus == structs.AllocClientComplete:
			done++
		}
	}
	switch {
	case oj.job.Stop:
		return structs.JobStatusDead
	case live > 0:
		return structs.JobStatusRunning
	case oj.job.Type == structs.JobTypeBatch && done >= oj.job.Count:
		return structs.JobStatusDead
	}
	return structs.JobStatusPending
}

// Jobs returns the IDs of the jobs this peer owns.
func (e *Engine) Jobs() []string { return slices.Sorted(mapKeys(e.jobs)) }

// FindAlloc returns an owned allocation by ID or unique prefix.
func (e *Engine) FindAlloc(ref string) ([]*structs.Allocation, error) {
	var out []*structs.Allocation
	for _, oj := range e.jobs {
		for id, a := range oj.allocs {
			if len(id) >= len(ref) && id[:len(ref)] == ref {
				c := a.Copy()
				c.Job = oj.job.Copy()
				out = append(out, c)
			}
		}
	}
	return out, nil
}
