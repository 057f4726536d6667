package scheduler

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// DefaultSampleSize is how many feasible nodes with room are ranked per
// placement when the caller sets none. Eight is Borg's relaxed randomization
// in small: with a random sample of k candidates the chosen node is better
// than all but ~1/(k+1) of the feasible nodes, so 8 lands in the best ~11%
// while the work per placement stays constant as the cluster grows. Nomad
// uses 2 for batch and log2(N) for services (≈13 at 10,000 nodes); 8 sits
// between the two.
const DefaultSampleSize = 8

// CopyPenalty is subtracted from a node's score for each copy of the same
// job already on it (live or planned), so copies spread over nodes when
// scores are close, without defeating bin-packing.
const CopyPenalty = 0.1

// PlaceRequest asks for one copy of a job to be placed.
type PlaceRequest struct {
	Index int
	// Previous is the allocation the new one replaces, if any.
	Previous string
	// RescheduleCount is carried to the new allocation.
	RescheduleCount int
	// Reason says why the copy is placed ("new", "job updated", ...); logs only.
	Reason string
}

// nodeInfo is what one pass knows about one node, computed on first visit:
// the job's feasibility verdict (cached so constraints are evaluated once per
// node per job, Borg's equivalence classes at the granularity of a node) and
// the node's usage including what the plan has added or removed so far.
type nodeInfo struct {
	reason    string // filter reason, "" = passes status and constraints
	used      structs.Resources
	copies    int32 // live and planned copies of this job
	usageDone bool
	kept      bool // in Placer.kept: a candidate of the next copy
	// plannedDone: Placer.planned is in used.
	plannedDone bool
}

// Placer places copies of one job onto the nodes of a State view, adding
// them (and any preemptions) to a Plan. One Placer serves one job in one
// scheduling pass; it is not safe for concurrent use. It does not know
// which architecture calls it.
type Placer struct {
	state   State
	job     *structs.Job
	jobCopy *structs.Job // shared by every allocation this pass creates
	// group is the task group placed (job is then the group's view and
	// jobCopy the whole job), with its copies' name prefix "job.group";
	// "" for a job's implicit group.
	group, namePrefix string
	// planned is what placements already in the plan when the Placer was
	// made hold per node (another group's copies of the same pass).
	planned map[string]structs.Resources
	plan    *structs.Plan
	rng     *rand.Rand
	now     func() time.Time
	sample  int
	cons    *Constraints

	// nodes is a copy of state.Nodes() shuffled lazily: positions below
	// len(info) are final and visited in order, wrapping around, so a job's
	// copies continue the scan where the previous copy stopped.
	nodes    []*structs.Node
	info     []nodeInfo
	allocsAt map[int][]*structs.Allocation // position -> the node's allocations, once read
	pos      int
	removed  map[string]bool // allocation IDs the plan stops or evicts
	// cached says nodes holds only the nodes the cache found feasible;
	// total and prefiltered describe the whole list and what was left out.
	cached      bool
	total       int
	prefiltered map[string]int

	// With a NodeUsageReader, usage is the node's row minus what the
	// plan stops there, and copies come from the job's allocations.
	usageRows NodeUsageReader
	stopped   map[string]structs.Resources // node -> live resources the plan's stops free
	copiesOn  map[string]int               // node -> live copies of the job

	// kept are the best candidates the last copy did not take (at most
	// SampleSize/2): the next copy ranks them again without reading their
	// usage again, and scans only for the rest of its sample.
	kept  []int
	cands []candidate // scratch of selectNode

	// With a QuotaReader and a quota on the job's namespace: the quota,
	// and what the namespace holds with this pass's placements so far
	// (its own stops taken off: they commit in the same entry).
	quota     *structs.Quota
	quotaUsed structs.Resources

	// portsAt holds, for jobs that ask for host ports, each visited
	// node's used ports (position -> set; ports.go).
	portsAt map[int]portSet

	failed  *structs.PlacementFailure // set once a copy could not be placed
	lastAsk structs.Resources
	victims []*structs.Allocation // allocations evicted so far
	visited int                   // node visits, for tests and benchmarks

	// The new allocations and their IDs and names come from chunks (ids.go).
	strs  stringArena
	slab  allocSlab
	nowNS int64 // the clock read once per pass: every copy gets the same time
}

// NewPlacer prepares to place copies of job into plan. Allocations the plan
// already stops count as gone. It fails only without opts.Rand.
func NewPlacer(opts Options, state State, job *structs.Job, plan *structs.Plan) (*Placer, error) {
	opts, err := opts.complete()
	if err != nil {
		return nil, err
	}
	return newPlacer(opts, state, job, plan, nil), nil
}

// newPlacer is NewPlacer with complete options and the job's allocations
// already read from state (nil: read them if needed), so ComputePlan does
// not merge a big job's allocations with the overlay twice.
func newPlacer(opts Options, state State, job *structs.Job, plan *structs.Plan, jobAllocs []*structs.Allocation) *Placer {
	cons := compileJobConstraints(job)
	p := &Placer{
		state: state, job: job, jobCopy: job.Copy(), plan: plan, namePrefix: job.ID,
		rng: opts.Rand, now: opts.Now, sample: opts.SampleSize, cons: cons,
		removed: make(map[string]bool, len(plan.Stops)+len(plan.Preemptions)),
	}
	for _, s := range plan.Stops {
		p.removed[s.AllocID] = true
	}
	for _, s := range plan.Preemptions {
		p.removed[s.AllocID] = true
	}
	p.initUsageRows(jobAllocs)
	p.initQuota(jobAllocs)
	for _, a := range plan.Placements {
		if p.planned == nil {
			p.planned = map[string]structs.Resources{}
		}
		p.planned[a.NodeID] = p.planned[a.NodeID].Add(a.Resources)
		p.quotaUsed = p.quotaUsed.Add(a.Resources)
	}
	src := state.Nodes()
	p.total = len(src)
	if opts.Cache != nil && (len(job.Constraints) > 0 || len(job.Volumes) > 0) {
		p.nodes, p.prefiltered = opts.Cache.filter(src, job)
		p.cached = true
		return p
	}
	if b, ok := placerBufPool.Get().(*placerBufs); ok {
		b.nodes = append(b.nodes[:0], src...)
		p.nodes, p.info = b.nodes, b.info[:0]
		return p
	}
	p.nodes = make([]*structs.Node, len(src))
	copy(p.nodes, src)
	return p
}

// placerBufs are a pass's node order and scan state, reused by the next
// pass (ComputePlan releases them): at 10,000 nodes they are ~0.5 MB a
// pass, ~0.5 KB per placement of a 1,000-copy job.
type placerBufs struct {
	nodes []*structs.Node
	info  []nodeInfo
}

var placerBufPool sync.Pool

// release gives the Placer's buffers to the next pass; the Placer must
// not be used afterwards. The plan, its allocations and the victims are
// not part of them.
func (p *Placer) release() {
	if p.cached {
		p.nodes = nil // the cache's list, not ours
	}
	clear(p.nodes)
	clear(p.info)
	placerBufPool.Put(&placerBufs{nodes: p.nodes[:0], info: p.info[:0]})
	p.nodes, p.info = nil, nil
}

// Victims returns the allocations the plan evicts, as read from state, so
// the caller can requeue their jobs once the plan commits.
func (p *Placer) Victims() []*structs.Allocation { return p.victims }

// NodesVisited counts node visits so far (a node visited by two copies
// counts twice): the work the sample bound limits.
func (p *Placer) NodesVisited() int { return p.visited }

// Failure returns the record of why copies could not be placed, or nil.
func (p *Placer) Failure() *structs.PlacementFailure { return p.failed }

// next returns the next position in the shuffled order, finalizing it (one
// Fisher-Yates step) on first visit and evaluating the node's feasibility.
func (p *Placer) next() int {
	p.visited++
	i := p.pos
	p.pos++
	if p.pos == len(p.nodes) {
		p.pos = 0
	}
	if i == len(p.info) {
		j := i + p.rng.IntN(len(p.nodes)-i)
		p.nodes[i], p.nodes[j] = p.nodes[j], p.nodes[i]
		var r string
		if !p.cached {
			n := p.nodes[i]
			r = nodeStatusReason(n)
			if r == "" {
				r = p.cons.Check(n)
			}
		}
		p.info = append(p.info, nodeInfo{reason: r})
	}
	return i
}

// initUsageRows prepares O(1) usage when the state keeps usage rows: the
// job's live copies per node, and what the plan's stops free per node. It
// falls back to scanning nodes if a removed allocation is not the job's
// own (then its resources are unknown without the node's list).
func (p *Placer) initUsageRows(jobAllocs []*structs.Allocation) {
	r, ok := p.state.(NodeUsageReader)
	if !ok {
		return
	}
	if jobAllocs == nil {
		jobAllocs = p.state.AllocsByJob(p.job.ID)
	}
	p.stopped = map[string]structs.Resources{}
	p.copiesOn = map[string]int{}
	found := 0
	for _, a := range jobAllocs {
		if a.Terminal() {
			continue
		}
		if p.removed[a.ID] {
			found++
			p.stopped[a.NodeID] = p.stopped[a.NodeID].Add(a.Resources)
			continue
		}
		p.copiesOn[a.NodeID]++
	}
	if found != len(p.removed) {
		// Some removed allocation is terminal or another job's: scan.
		p.stopped, p.copiesOn = nil, nil
		return
	}
	p.usageRows = r
}

// initQuota reads the quota of the job's namespace, if the state keeps
// quotas and the namespace has one, and what the namespace holds minus
// the job's live allocations the plan stops.
func (p *Placer) initQuota(jobAllocs []*structs.Allocation) {
	qr, ok := p.state.(QuotaReader)
	if !ok {
		return
	}
	ns := structs.JobNamespace(p.job.ID)
	if p.quota = qr.NamespaceQuota(ns); p.quota == nil {
		return
	}
	p.quotaUsed = qr.NamespaceUsage(ns)
	if len(p.removed) == 0 {
		return
	}
	if jobAllocs == nil {
		jobAllocs = p.state.AllocsByJob(p.job.ID)
	}
	for _, a := range jobAllocs {
		if p.removed[a.ID] && !a.Terminal() {
			p.quotaUsed = p.quotaUsed.Sub(a.Resources)
		}
	}
}

// recordQuotaFailure fills p.failed after a copy would have taken the
// namespace over its quota in dimension dim.
func (p *Placer) recordQuotaFailure(dim string) {
	p.failed = &structs.PlacementFailure{
		JobID:    p.job.ID,
		Unplaced: 1,
		Time:     p.now().UnixNano(),
		Message:  "quota " + structs.JobNamespace(p.job.ID) + ": " + p.quota.Describe(dim, p.quotaUsed),
	}
}

// nodeAllocs returns the node's allocations in state, loading them once
// (only scans without usage rows and preemption need them).
func (p *Placer) nodeAllocs(i int) []*structs.Allocation {
	if as, ok := p.allocsAt[i]; ok {
		return as
	}
	if p.allocsAt == nil {
		p.allocsAt = map[int][]*structs.Allocation{}
	}
	as := p.state.AllocsByNode(p.nodes[i].ID)
	p.allocsAt[i] = as
	return as
}

// usage returns the node's usage, computing it on first need.
func (p *Placer) usage(i int) *nodeInfo {
	in := &p.info[i]
	if !in.usageDone && p.usageRows != nil {
		id := p.nodes[i].ID
		in.usageDone = true
		in.used = p.usageRows.NodeUsage(id).Sub(p.stopped[id])
		in.copies = int32(p.copiesOn[id])
	}
	if !in.usageDone {
		in.usageDone = true
		for _, a := range p.nodeAllocs(i) {
			if a.Terminal() || p.removed[a.ID] {
				continue
			}
			in.used = in.used.Add(a.Resources)
			if a.JobID == p.job.ID {
				in.copies++
			}
		}
	}
	if p.planned != nil && !in.plannedDone {
		in.plannedDone = true
		in.used = in.used.Add(p.planned[p.nodes[i].ID])
	}
	return in
}

// score ranks a node that fits ask: bin-pack prefers the node fullest after
// placement, spread the emptiest; both lose CopyPenalty per copy of the job.
func (p *Placer) score(n *structs.Node, in *nodeInfo, ask structs.Resources) float64 {
	util := 0.0
	if n.Capacity.CPU > 0 {
		util += float64(in.used.CPU+ask.CPU) / float64(n.Capacity.CPU)
	}
	if n.Capacity.MemoryMB > 0 {
		util += float64(in.used.MemoryMB+ask.MemoryMB) / float64(n.Capacity.MemoryMB)
	}
	util /= 2
	s := util
	if p.job.Placement == structs.PlacementSpread {
		s = 1 - util
	}
	return s - CopyPenalty*float64(in.copies)
}

// candidate is a node of one selection and its score.
type candidate struct {
	i     int
	score float64
}

// selectNode ranks SampleSize candidates, feasible nodes with room, and
// returns the best-scoring one, or -1. The candidates are those the last
// copy kept that still have room, then nodes scanned from where the last
// scan stopped until the sample is full (or every node was seen). It keeps
// the best half of the candidates it does not take for the next copy:
// copies of a job are identical, so a kept node's usage and score are
// still known, and a big job reads about half as many nodes' usage per
// copy while every copy still ranks a sample of at least half fresh
// random nodes. The node taken is not kept, so copies still spread.
func (p *Placer) selectNode(ask structs.Resources) int {
	cands := p.cands[:0]
	consider := func(i int) {
		in := p.usage(i)
		n := p.nodes[i]
		if ok, _ := n.Capacity.Sub(in.used).Fits(ask); ok && (!p.job.HasPorts() || p.portsFit(i) == "") {
			cands = append(cands, candidate{i: i, score: p.score(n, in, ask)})
		}
	}
	for _, i := range p.kept {
		consider(i)
	}
	for seen := 0; seen < len(p.nodes) && len(cands) < p.sample; seen++ {
		i := p.next()
		if p.info[i].reason != "" || p.info[i].kept {
			continue // filtered, or a candidate already
		}
		consider(i)
	}
	for _, i := range p.kept {
		p.info[i].kept = false
	}
	p.kept = p.kept[:0]
	best := -1
	for k, c := range cands {
		if best < 0 || c.score > cands[best].score {
			best = k
		}
	}
	if best < 0 {
		p.cands = cands
		return -1
	}
	chosen := cands[best].i
	cands = slices.Delete(cands, best, best+1)
	// Best first; equal scores keep their order, so runs are deterministic.
	slices.SortStableFunc(cands, func(a, b candidate) int { return cmp.Compare(b.score, a.score) })
	for _, c := range cands[:min(len(cands), keepCandidates(p.sample))] {
		p.info[c.i].kept = true
		p.kept = append(p.kept, c.i)
	}
	p.cands = cands
	return chosen
}

// Place places one copy. It returns the new allocation, or nil when no node
// can take it even with preemption; the reason is then in Failure().
func (p *Placer) Place(req PlaceRequest) *structs.Allocation {
	ask := p.job.TotalResources()
	if p.failed != nil && ask == p.lastAsk {
		// Nothing has freed room since the last copy failed: this one fails
		// the same way, so skip the full scan.
		p.failed.Unplaced++
		return nil
	}
	p.lastAsk = ask
	if p.quota != nil {
		if dim := p.quota.Exceeds(p.quotaUsed.Add(ask)); dim != "" {
			p.recordQuotaFailure(dim)
			return nil
		}
	}
	i := p.selectNode(ask)
	var victims []*structs.Allocation
	if i < 0 {
		i, victims = p.findPreemption(ask)
		if i >= 0 && p.job.HasPorts() && p.portsFit(i) != "" {
			// Preemption frees cpu and memory; a port another job holds
			// stays taken.
			i, victims = -1, nil
		}
	}
	if i < 0 {
		p.recordFailure(ask)
		return nil
	}
	n := p.nodes[i]
	if p.nowNS == 0 {
		p.nowNS = p.now().UnixNano()
	}
	a := p.slab.get()
	*a = structs.Allocation{
		ID:                 p.strs.id(p.rng),
		JobID:              p.job.ID,
		JobVersion:         p.job.Version,
		Name:               p.strs.name(p.namePrefix, req.Index),
		Index:              req.Index,
		Group:              p.group,
		NodeID:             n.ID,
		NodeName:           n.Name,
		Resources:          ask,
		Priority:           p.job.Priority,
		Job:                p.jobCopy,
		DesiredStatus:      structs.AllocDesiredRun,
		ClientStatus:       structs.AllocClientPending,
		PreviousAllocation: req.Previous,
		RescheduleCount:    req.RescheduleCount,
		CreateTime:         p.nowNS,
		ModifyTime:         p.nowNS,
	}
	if p.job.HasPorts() {
		a.Ports = p.takePorts(i)
	}
	in := p.usage(i)
	for _, v := range victims {
		p.removed[v.ID] = true
		p.victims = append(p.victims, v)
		in.used = in.used.Sub(v.Resources)
		p.plan.Preemptions = append(p.plan.Preemptions, structs.AllocStop{
			AllocID:     v.ID,
			NodeID:      n.ID,
			Desired:     structs.AllocDesiredEvict,
			Description: "preempted by " + a.Name,
			PreemptedBy: a.ID,
		})
	}
	in.used = in.used.Add(ask)
	in.copies++
	p.quotaUsed = p.quotaUsed.Add(ask)
	p.plan.Placements = append(p.plan.Placements, a)
	return a
}

// keepCandidates is how many unchosen candidates a copy keeps for the
// next: half the sample. Keeping all but one packed a little worse in
// TestKeptCandidatesPackAsWell (each copy then ranks one fresh node and
// the sample stops being random); keeping half packs as well as keeping
// none while reading about half as many nodes.
var keepCandidates = func(sample int) int { return sample / 2 }
