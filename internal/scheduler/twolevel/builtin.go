package twolevel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/jobqueue"
	"github.com/gantry-project/gantry/internal/scheduler/schedstat"
	"github.com/gantry-project/gantry/internal/structs"
)

// A built-in framework is a second-level scheduler inside the leader: a
// queue of jobs, the offers it holds, and the core's evaluation loop
// (scheduler.Evaluator) deciding each job on a view of state restricted
// to those offers (offerView). Its plans go through offerPlanner, which
// takes what they place out of the offers before they reach the plan
// applier, so a built-in framework obeys offers exactly as an external
// one must. The placement code is the core's, unchanged.
//
// A pass evaluates every job queued when it starts, on the offers held.
// Jobs with copies left over wait for more offers. When the queue is
// empty the offers are declined: with a filter (Refuse) if jobs still
// wait (the room did not fit them); if none wait, the framework keeps its
// offers for Linger (work arriving meanwhile is placed at once, without a
// new allocation round), then declines them and suppresses offers. A job
// enqueued revives it.
type builtin struct {
	s       *Scheduler
	name    string
	role    string
	cfg     BuiltinConfig
	eval    *scheduler.Evaluator
	retries *jobqueue.Retries
	opts    scheduler.Options // the framework goroutine's

	wake chan struct{} // buffered(1)

	mu        sync.Mutex // guards everything below
	queue     *jobqueue.Queue
	stopOnly  map[string]bool        // queued jobs that need no offers
	waiting   map[string]*waitingJob // jobs with copies waiting for offers
	offers    map[string]*heldOffer  // by node
	byID      map[string]string      // offer ID -> node
	order     []*heldOffer           // arrival order (closed ones skipped)
	gen       uint64                 // bumped when offers come or go
	newOffers bool
	view      offerSet // the offers as the last view saw them
	// suppressed and filtered mirror the allocator (guarded by
	// Scheduler.mu, not mu).
	suppressed, filtered bool

	evaluations, placements       uint64
	plans, conflicts, planRetries uint64
	busy                          time.Duration
	lat                           schedstat.Window
}

// heldOffer is an offer a built-in framework holds; res is what is left
// of it (written only by the framework's goroutine).
type heldOffer struct {
	id, node string
	res      structs.Resources
	gone     bool
	used     bool // launches took from it (closed as accepted)
}

type waitingJob struct {
	priority int
	unplaced int
	detail   string // why the last pass on offers placed no more
	since    time.Time
}

// offerSet is the offers as one view presents them, rebuilt when the
// framework's offers change.
type offerSet struct {
	gen   uint64
	nodes []*structs.Node
	held  map[string]*heldOffer
}

func newBuiltin(s *Scheduler, name string, cfg BuiltinConfig) (*builtin, error) {
	b := &builtin{
		s: s, name: name, role: cfg.Role, cfg: cfg,
		wake:     make(chan struct{}, 1),
		queue:    jobqueue.New(nil),
		stopOnly: map[string]bool{},
		waiting:  map[string]*waitingJob{},
		offers:   map[string]*heldOffer{},
		byID:     map[string]string{},
	}
	if b.role == "" {
		b.role = structs.DefaultRole
	}
	env := s.env
	env.Logger = s.log.With("framework", name)
	env.Snapshot = b.snapshot
	env.Planner = newOfferPlanner(b, s.env.Planner)
	b.retries = env.Retries(s.Enqueue)
	var err error
	if b.eval, err = scheduler.NewEvaluator(s.core, env, (*builtinHost)(b), cfg.MaxInflightPlans); err != nil {
		return nil, err
	}
	return b, nil
}

// reset prepares a run: a fresh random source, no offers.
func (b *builtin) reset(seed uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opts = scheduler.Options{
		SampleSize: b.s.core.SampleSize,
		Rand:       rand.New(rand.NewPCG(seed, seed^0xd1b54a32d192ed03)),
		Now:        b.s.env.Now,
		Cache:      scheduler.NewFeasibilityCache(0),
	}
	clear(b.offers)
	clear(b.byID)
	b.order, b.view = nil, offerSet{}
	b.gen++
	b.suppressed, b.filtered = true, false
	// Jobs that waited for the last leader's offers wait for this one's.
	for id, w := range b.waiting {
		b.queue.Add(id, w.priority)
	}
}

func (b *builtin) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// enqueue queues a job; stopOnly says it needs no offers (stopped or
// purged: its plan only stops allocations).
func (b *builtin) enqueue(jobID string, priority int, stopOnly bool) {
	b.mu.Lock()
	b.queue.Add(jobID, priority)
	if stopOnly {
		b.stopOnly[jobID] = true
	} else {
		delete(b.stopOnly, jobID)
	}
	b.mu.Unlock()
	b.signal()
}

// receive takes offers the allocator made to this framework and drops the
// ones it rescinded. Called with Scheduler.mu held.
func (b *builtin) receive(offers []heldOffer, gone []string) {
	b.mu.Lock()
	for _, id := range gone {
		if node, ok := b.byID[id]; ok {
			b.dropLocked(node)
		}
	}
	for _, o := range offers {
		h := &heldOffer{id: o.id, node: o.node, res: o.res}
		if old := b.offers[o.node]; old != nil {
			old.gone = true
		}
		b.offers[o.node] = h
		b.byID[o.id] = o.node
		b.order = append(b.order, h)
	}
	b.gen++
	if len(offers) > 0 {
		b.newOffers = true
	}
	b.mu.Unlock()
	b.signal()
}

func (b *builtin) dropLocked(node string) {
	if h := b.offers[node]; h != nil {
		h.gone = true
		delete(b.offers, node)
		delete(b.byID, h.id)
		b.gen++
	}
}

// run is the framework's loop: passes over its queue while it holds
// offers (jobs that only stop allocations need none).
func (b *builtin) run(ctx context.Context) {
	var linger *lingerTimer // running while idle with offers
	defer func() { linger.stop() }()
	for ctx.Err() == nil {
		jobs, needOffers, haveOffers := b.takePass()
		if needOffers && !haveOffers {
			b.s.setDemand(b, true)
		}
		if len(jobs) == 0 {
			var lingered <-chan struct{}
			switch {
			case haveOffers && b.idle() && b.cfg.Linger > 0:
				// Idle with offers: keep them a moment for work that
				// arrives meanwhile (no new round, no new offers).
				if linger == nil {
					linger = b.startLinger(b.cfg.Linger)
				}
				lingered = linger.done
			case haveOffers:
				b.endPass()
			}
			select {
			case <-ctx.Done():
				return
			case <-lingered:
				linger = nil
				b.endPass()
			case <-b.wake:
			}
			continue
		}
		linger.stop()
		linger = nil
		for _, it := range jobs {
			if ctx.Err() != nil {
				return
			}
			if d := b.cfg.DecisionDelay; d > 0 && !it.stopOnly && !b.s.sleep(ctx, d) {
				return
			}
			b.evaluate(ctx, it.JobID, it.Priority)
		}
		if !b.idle() {
			b.endPass() // jobs wait: return what did not fit them
		}
	}
}

// lingerTimer ends an idle framework's hold on its offers.
type lingerTimer struct {
	done chan struct{}
	t    interface{ Stop() bool }
}

func (b *builtin) startLinger(d time.Duration) *lingerTimer {
	l := &lingerTimer{done: make(chan struct{})}
	l.t = b.s.env.AfterFunc(d, func() { close(l.done) })
	return l
}

func (l *lingerTimer) stop() {
	if l != nil {
		l.t.Stop()
	}
}

// idle reports whether nothing is queued and no job waits.
func (b *builtin) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.queue.Len() == 0 && len(b.waiting) == 0
}

type passItem struct {
	*jobqueue.Item
	stopOnly bool
}

// takePass takes the jobs of the next pass: every queued job if the
// framework holds offers, else only those that need none. needOffers says
// jobs are queued that need offers the framework does not hold: jobs
// enqueued since they were last evaluated (waiting jobs alone wait for new
// offers; they do not ask for the room they declined again).
func (b *builtin) takePass() (jobs []passItem, needOffers, haveOffers bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	haveOffers = len(b.offers) > 0
	if b.newOffers && haveOffers {
		for id, w := range b.waiting {
			b.queue.Add(id, w.priority)
		}
	}
	b.newOffers = false
	var keep []*jobqueue.Item
	for {
		it, ok := b.queue.Pop()
		if !ok {
			break
		}
		so := b.stopOnly[it.JobID]
		if !haveOffers && !so {
			keep = append(keep, it)
			continue
		}
		delete(b.stopOnly, it.JobID)
		jobs = append(jobs, passItem{Item: it, stopOnly: so})
	}
	for _, it := range keep {
		b.queue.Add(it.JobID, it.Priority)
	}
	return jobs, len(keep) > 0, haveOffers
}

// evaluate runs the evaluation loop for one job and notes whether copies
// are left waiting for offers.
func (b *builtin) evaluate(ctx context.Context, jobID string, priority int) {
	start := b.s.now()
	ev := b.eval.Evaluate(ctx, b.opts, jobID, priority)
	d := b.s.now().Sub(start)
	b.mu.Lock()
	b.evaluations++
	b.plans += uint64(ev.Plans)
	b.conflicts += uint64(ev.Conflicts)
	b.planRetries += uint64(ev.Retries)
	b.busy += d
	b.lat.Add(d)
	if ev.Outcome == scheduler.OutcomeDone {
		if ev.Unplaced > 0 && ev.Job != nil && !ev.Job.Stop {
			w := b.waiting[jobID]
			if w == nil {
				w = &waitingJob{since: start}
				b.waiting[jobID] = w
			}
			w.priority, w.unplaced = ev.Priority, ev.Unplaced
		} else {
			delete(b.waiting, jobID)
		}
	}
	b.mu.Unlock()
	if m := b.s.m; m != nil {
		m.evaluations.WithLabelValues(b.name).Inc()
		m.busy.WithLabelValues(b.name).Add(d.Seconds())
		m.latency.WithLabelValues(b.name).Observe(d.Seconds())
	}
	if b.s.env.Evaluated != nil {
		b.s.env.Evaluated(ev)
	}
}

// endPass returns the offers once nothing is queued: declined with a
// filter if jobs still wait (the room did not fit them), and the
// framework suppresses offers when nothing waits (after Linger: see run).
func (b *builtin) endPass() {
	b.mu.Lock()
	queued := b.queue.Len() > 0
	waiting := len(b.waiting) > 0
	var used, unused []string
	if !queued {
		for _, h := range b.order {
			if h.gone {
				continue
			}
			if h.used {
				used = append(used, h.id)
			} else {
				unused = append(unused, h.id)
			}
			b.dropLocked(h.node)
		}
	}
	b.mu.Unlock()
	refuse := time.Duration(0)
	if waiting {
		refuse = b.cfg.Refuse
	}
	b.s.declineBuiltin(b, used, unused, refuse, !queued && !waiting)
}

// snapshot is the framework's view source: the current state restricted
// to its offers.
func (b *builtin) snapshot() (scheduler.State, error) {
	full, err := b.s.env.Snapshot()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.view.gen != b.gen || b.view.held == nil {
		// A node object changes only with its offer (the allocator
		// rescinds offers of nodes that stop being ready), so the list
		// is rebuilt only when offers come or go.
		set := offerSet{gen: b.gen, held: make(map[string]*heldOffer, len(b.offers))}
		live := b.order[:0]
		for _, h := range b.order {
			if h.gone {
				continue
			}
			live = append(live, h)
			if n := full.NodeByID(h.node); n != nil {
				set.nodes = append(set.nodes, n)
				set.held[h.node] = h
			}
		}
		clear(b.order[len(live):])
		b.order = live
		b.view = set
	}
	v := &offerView{State: full, set: b.view}
	v.rows, _ = full.(scheduler.NodeUsageReader)
	return v, nil
}

// builtinHost is a built-in framework as its evaluator's scheduler.Host.
type builtinHost builtin

func (h *builtinHost) Enqueue(jobID string, priority int) { h.s.Enqueue(jobID, priority) }

func (h *builtinHost) EnqueueAt(jobID string, priority int, at time.Time) {
	h.retries.After(jobID, priority, at)
}

func (h *builtinHost) Committed(_ string, placed int) {
	h.mu.Lock()
	h.placements += uint64(placed)
	h.mu.Unlock()
	if m := h.s.m; m != nil {
		m.placements.WithLabelValues(h.name).Add(float64(placed))
	}
}

// offerView is a state view restricted to a framework's offers: Nodes
// lists only the offered nodes, and an offered node's usage leaves free
// exactly what the offer still holds (or less, if state says more is
// used). Everything else (jobs, their allocations, other nodes by ID, for
// reconciliation) reads through to the full view. An offered node shows
// no allocations to preempt: a framework decides only over what it was
// offered (the cost Omega names: no global view for preemption).
type offerView struct {
	scheduler.State
	rows scheduler.NodeUsageReader // the full view's usage rows, if any
	set  offerSet
}

var (
	_ scheduler.State             = (*offerView)(nil)
	_ scheduler.NodeUsageReader   = (*offerView)(nil)
	_ scheduler.PortHoldersReader = (*offerView)(nil)
)

func (v *offerView) Nodes() []*structs.Node { return v.set.nodes }

// LatestDeployment reads through to the full view, so a built-in
// framework rolls a job's update as the other architectures do
// (scheduler.DeploymentReader; a full view without deployments gives nil,
// and a rolling job then waits for one).
func (v *offerView) LatestDeployment(jobID string) *structs.Deployment {
	if dr, ok := v.State.(scheduler.DeploymentReader); ok {
		return dr.LatestDeployment(jobID)
	}
	return nil
}

// NodeUsage of an offered node is its capacity minus what the offer
// holds, or what state says it uses if that is more.
func (v *offerView) NodeUsage(id string) structs.Resources {
	var used structs.Resources
	if v.rows != nil {
		used = v.rows.NodeUsage(id)
	} else {
		used = scheduler.LiveUsage(v.State.AllocsByNode(id), nil)
	}
	h := v.set.held[id]
	n := v.NodeByID(id)
	if h == nil || n == nil {
		if n != nil {
			return n.Capacity // not offered: no room
		}
		return used
	}
	offered := n.Capacity.Sub(h.res)
	return structs.Resources{CPU: max(used.CPU, offered.CPU), MemoryMB: max(used.MemoryMB, offered.MemoryMB)}
}

func (v *offerView) AllocsByNode(id string) []*structs.Allocation {
	if v.set.held[id] != nil {
		return nil
	}
	return v.State.AllocsByNode(id)
}

// PortHolders shows every allocation of a node for its used host ports:
// an offer holds cpu and memory, not the ports other frameworks' copies
// hold there.
func (v *offerView) PortHolders(id string) []*structs.Allocation { return v.State.AllocsByNode(id) }

// waitingReason says why a job of this framework waits, or "".
func (b *builtin) waitingReason(jobID string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.waiting[jobID]
	if w == nil && !b.queue.Has(jobID) {
		return "", false
	}
	detail := ""
	if w != nil && w.detail != "" {
		detail = fmt.Sprintf("; on the %s", w.detail)
	}
	return detail, true
}
