package peerexec

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// The simulator: engines on a seeded network with a virtual clock,
// per-message delay, random drops, partitions and crashes, and a model of
// the cluster layer's decisions (who owns each slot, who is FAIL, which
// replica is promoted, cluster_state on each side of a partition), with
// the records replicated from each shard's primary to its replicas with a
// delay (Sync, the WAIT behind an acknowledged submission, flushes them).
// Every run replays from its seed.

const (
	simStep      = 10 * time.Millisecond
	simFailAfter = time.Second // node timeout: FAIL and promotion
)

type simEvent struct {
	at  time.Time
	seq int
	fn  func()
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

type simShard struct {
	primary  string
	replicas []string
	lo, hi   uint16
}

type simPeer struct {
	id     string
	eng    *Engine
	store  *MemStore
	runner *simRunner
	up     bool
	side   int // partition side; 0 is the majority's
	// the view a cut-off peer keeps (nil: the cluster's current one)
	frozen *ClusterView
	gen    int
}

type simTask struct {
	job     string
	index   int
	batch   bool
	started time.Time
}

// simRunner runs tasks as timers on the virtual clock.
type simRunner struct {
	s       *sim
	p       *simPeer
	running map[string]simTask
}

func (r *simRunner) Start(a *structs.Allocation) error {
	p, gen := r.p, r.p.gen
	t := simTask{job: a.JobID, index: a.Index, batch: a.Job.Type == structs.JobTypeBatch, started: r.s.now}
	r.running[a.ID] = t
	r.s.starts = append(r.s.starts, simStart{job: a.JobID, index: a.Index, at: r.s.now, alloc: a.ID, peer: p.id})
	r.s.after(time.Millisecond, func() {
		if p.gen == gen && p.up {
			if _, ok := r.running[a.ID]; ok {
				p.eng.TaskUpdate(r.s.now, a.ID, structs.AllocClientRunning, structs.TaskState{State: structs.TaskStateRunning})
			}
		}
	})
	if t.batch {
		d := 300 * time.Millisecond
		if v, ok := a.Job.Config["run_for_ms"].(float64); ok {
			d = time.Duration(v) * time.Millisecond
		}
		r.s.after(d, func() {
			if p.gen == gen && p.up {
				if _, ok := r.running[a.ID]; ok {
					delete(r.running, a.ID)
					r.s.completed[fmt.Sprintf("%s[%d]", a.JobID, a.Index)] = append(r.s.completed[fmt.Sprintf("%s[%d]", a.JobID, a.Index)], r.s.now)
					p.eng.TaskUpdate(r.s.now, a.ID, structs.AllocClientComplete, structs.TaskState{State: structs.TaskStateDead})
				}
			}
		})
	}
	return nil
}

func (r *simRunner) Stop(id string) {
	p, gen := r.p, r.p.gen
	r.s.after(time.Millisecond, func() {
		if p.gen == gen && p.up {
			if _, ok := r.running[id]; ok {
				delete(r.running, id)
				p.eng.TaskUpdate(r.s.now, id, structs.AllocClientComplete, structs.TaskState{State: structs.TaskStateDead})
			}
		}
	})
}

type simStart struct {
	job, alloc, peer string
	index            int
	at               time.Time
}

type sim struct {
	t      *testing.T
	rng    *rand.Rand
	now    time.Time
	q      eventQueue
	seq    int
	peers  map[string]*simPeer
	order  []string
	shards []*simShard
	failed map[string]bool
	// downAt: when each unreachable peer was cut or crashed
	downAt map[string]time.Time
	drop   float64 // message loss probability
	maxLat time.Duration
	// slow: a saturated peer's messages wait this long before it handles
	// them (its work queued ahead of them); the cluster layer does not
	// judge it failed
	slow map[string]time.Duration
	// streams: every pair of live peers is linked by a stream (ordered,
	// nothing lost while it lasts: drop spares them); a crash ends the
	// crashed peer's streams, a restart opens new ones
	streams bool

	starts    []simStart
	completed map[string][]time.Time
	acked     map[string]*structs.Job

	replLag  time.Duration
	inflight []*simWrite

	ver    uint64       // bumped at every change of the slot owners or failures
	cached *ClusterView // current() at ver

	sent int // messages delivered: every other one goes binary
}

// newSim starts primaries peers with replicas each (slots split evenly).
func newSim(t *testing.T, seed uint64, primaries, replicas int) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, 1)), now: time.Unix(1_700_000_000, 0),
		peers: map[string]*simPeer{}, failed: map[string]bool{}, downAt: map[string]time.Time{},
		maxLat: 5 * time.Millisecond, replLag: 2 * time.Millisecond, completed: map[string][]time.Time{}, acked: map[string]*structs.Job{}}
	n := primaries * (1 + replicas)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("p%02d", i)
		s.order = append(s.order, id)
		s.peers[id] = &simPeer{id: id, store: NewMemStore(), up: true}
	}
	per := numSlots / primaries
	for i := 0; i < primaries; i++ {
		sh := &simShard{primary: s.order[i], lo: uint16(i * per), hi: uint16((i+1)*per - 1)}
		if i == primaries-1 {
			sh.hi = numSlots - 1
		}
		for r := 0; r < replicas; r++ {
			sh.replicas = append(sh.replicas, s.order[primaries+i*replicas+r])
		}
		s.shards = append(s.shards, sh)
	}
	for _, id := range s.order {
		s.boot(s.peers[id])
	}
	return s
}

func (s *sim) boot(p *simPeer) {
	p.gen++
	p.runner = &simRunner{s: s, p: p, running: map[string]simTask{}}
	cfg := DefaultConfig(p.id)
	cfg.Seed = s.rng.Uint64()
	cfg.Node = structs.Node{Capacity: structs.Resources{CPU: 4000, MemoryMB: 4096},
		Attributes: map[string]string{"driver.mock": "true"}, Labels: map[string]string{"zone": p.id}}
	eng, err := New(cfg, func(to string, m *Message) { s.deliver(p.id, to, m) }, p.store, p.runner)
	if err != nil {
		s.t.Fatal(err)
	}
	p.eng = eng
	p.store.OnWrite = func(kind, jobID, allocID string, b []byte) { s.replicate(p, kind, jobID, allocID, b) }
	s.link(p, true)
}

// link tells p and every other live peer that their streams came up
// (or went down), with streams on.
func (s *sim) link(p *simPeer, up bool) {
	if !s.streams {
		return
	}
	for _, id := range s.order {
		q := s.peers[id]
		if q == p || q.eng == nil || !q.up {
			continue
		}
		q.eng.Linked(p.id, up)
		if up {
			p.eng.Linked(q.id, true)
		}
	}
}

// linkAll links every pair of peers (streams up from now on).
func (s *sim) linkAll() {
	s.streams = true
	for _, id := range s.order {
		if p := s.peers[id]; p.up {
			s.link(p, true)
		}
	}
}

func (s *sim) after(d time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.q, &simEvent{at: s.now.Add(d), seq: s.seq, fn: fn})
}

func (s *sim) cut(a, b string) bool { return s.peers[a].side != s.peers[b].side }

// deliver sends a message through the network: encoded and decoded (as
// on the wire: JSON and binary by turns), delayed, maybe dropped.
func (s *sim) deliver(from, to string, m *Message) {
	if s.rng.Float64() < s.drop && !s.streams {
		return
	}
	s.sent++
	encode := Encode
	if s.sent%2 == 0 {
		encode = func(m *Message) ([]byte, error) { return EncodeBinaryBatch([]*Message{m}) }
	}
	b, err := encode(m)
	if err != nil {
		s.t.Fatalf("encode: %v", err)
	}
	lat := time.Duration(s.rng.Int64N(int64(s.maxLat))) + 100*time.Microsecond + s.slow[to]
	s.after(lat, func() {
		src, dst := s.peers[from], s.peers[to]
		if dst == nil || !dst.up || !src.up || s.cut(from, to) {
			return
		}
		dms, err := DecodeBatch(b)
		if err != nil || len(dms) != 1 {
			s.t.Fatalf("decode: %v (%d messages)", err, len(dms))
		}
		dst.eng.Step(s.now, s.view(dst), dms[0])
	})
}

func (s *sim) shardOf(slot uint16) *simShard {
	for _, sh := range s.shards {
		if slot >= sh.lo && slot <= sh.hi {
			return sh
		}
	}
	return nil
}

// replicate sends a primary's write to its shard's replicas, in order,
// replLag later (asynchronous replication); flushReplication (WAIT)
// delivers what is in flight at once.
func (s *sim) replicate(p *simPeer, kind, jobID, allocID string, b []byte) {
	sh := s.shardOf(JobSlot(jobID))
	if sh == nil || sh.primary != p.id {
		return
	}
	for _, r := range sh.replicas {
		w := &simWrite{from: p.id, to: r, kind: kind, job: jobID, alloc: allocID, b: b}
		s.inflight = append(s.inflight, w)
		s.after(s.replLag, func() { s.applyWrite(w) })
	}
}

type simWrite struct {
	from, to, kind, job, alloc string
	b                          []byte
	done                       bool
}

func (s *sim) applyWrite(w *simWrite) {
	if w.done {
		return
	}
	w.done = true
	src, rp := s.peers[w.from], s.peers[w.to]
	if !rp.up || !src.up || s.cut(w.from, w.to) {
		return
	}
	hook := rp.store.OnWrite
	rp.store.OnWrite = nil
	rp.store.Apply(w.kind, w.job, w.alloc, w.b)
	rp.store.OnWrite = hook
}

// flushReplication delivers the replication in flight now (WAIT).
func (s *sim) flushReplication() {
	for _, w := range s.inflight {
		s.applyWrite(w)
	}
	s.inflight = s.inflight[:0]
}

// view is the cluster layer's view at peer p.
func (s *sim) view(p *simPeer) ClusterView {
	if p.frozen != nil {
		return *p.frozen
	}
	return s.current()
}

func (s *sim) changed() { s.ver++; s.cached = nil }

func (s *sim) current() ClusterView {
	if s.cached != nil {
		return *s.cached
	}
	owners := make([]string, numSlots)
	for _, sh := range s.shards {
		for x := int(sh.lo); x <= int(sh.hi); x++ {
			owners[x] = sh.primary
		}
	}
	failed := map[string]bool{}
	for id, f := range s.failed {
		failed[id] = f
	}
	cv := ClusterView{OK: true, Owner: func(slot uint16) string { return owners[slot] }, Members: slices.Clone(s.order), Failed: failed, Version: s.ver}
	s.cached = &cv
	return cv
}

// crash stops a peer: its tasks end with it.
func (s *sim) crash(id string) {
	p := s.peers[id]
	p.up = false
	p.gen++
	s.link(p, false)
	p.runner.running = map[string]simTask{}
	s.downAt[id] = s.now
}

// restart brings a crashed peer back (new incarnation, no tasks); its
// store resyncs from its shard's primary, as a replica's does.
func (s *sim) restart(id string) {
	p := s.peers[id]
	p.up = true
	delete(s.downAt, id)
	delete(s.failed, id)
	s.changed()
	for _, sh := range s.shards {
		if slices.Contains(sh.replicas, id) && sh.primary != id {
			src := s.peers[sh.primary].store
			src.mu.Lock()
			p.store.mu.Lock()
			p.store.jobs, p.store.allocs = cloneStore(src)
			p.store.mu.Unlock()
			src.mu.Unlock()
		}
	}
	s.boot(p)
}

func cloneStore(m *MemStore) (map[string][]byte, map[string]map[string][]byte) {
	jobs := map[string][]byte{}
	for k, v := range m.jobs {
		jobs[k] = v
	}
	allocs := map[string]map[string][]byte{}
	for k, v := range m.allocs {
		allocs[k] = map[string][]byte{}
		for k2, v2 := range v {
			allocs[k][k2] = v2
		}
	}
	return jobs, allocs
}

// partition moves ids to side 1 (the minority): they keep the view of
// now, not OK once the node timeout passes.
func (s *sim) partition(ids ...string) {
	for _, id := range ids {
		p := s.peers[id]
		p.side = 1
		s.downAt[id] = s.now
		v := s.current()
		s.ver++
		v.Version = s.ver // its own view from now on
		p.frozen = &v
	}
}

// heal joins the sides: the returning peers adopt the current view (a
// primary that lost its slots follows the new owner as a replica).
func (s *sim) heal() {
	for _, id := range s.order {
		p := s.peers[id]
		if p.side == 1 {
			p.side = 0
			p.frozen = nil
			delete(s.downAt, id)
			delete(s.failed, id)
		}
	}
	s.changed()
}

// detect applies the cluster layer's failure agreement: a peer gone for
// the node timeout is FAIL on the majority side, and its shard's first
// reachable replica is promoted; a cut-off peer sees cluster down.
func (s *sim) detect() {
	for _, id := range s.order {
		at, gone := s.downAt[id]
		if !gone || s.now.Sub(at) < simFailAfter || s.failed[id] {
			continue
		}
		s.failed[id] = true
		s.changed()
		if p := s.peers[id]; p.frozen != nil {
			p.frozen.OK = false
		}
		for _, sh := range s.shards {
			if sh.primary != id {
				continue
			}
			for i, r := range sh.replicas {
				rp := s.peers[r]
				if rp.up && rp.side == 0 {
					sh.replicas = append(append(slices.Clone(sh.replicas[:i]), sh.replicas[i+1:]...), id)
					sh.primary = r
					break
				}
			}
		}
	}
}

// run advances the virtual clock by d.
func (s *sim) run(d time.Duration) {
	end := s.now.Add(d)
	for s.now.Before(end) {
		next := s.now.Add(simStep)
		for s.q.Len() > 0 && !s.q[0].at.After(next) {
			ev := heap.Pop(&s.q).(*simEvent)
			if ev.at.After(s.now) {
				s.now = ev.at
			}
			ev.fn()
		}
		s.now = next
		s.detect()
		for _, id := range s.order {
			if p := s.peers[id]; p.up {
				p.eng.Tick(s.now, s.view(p))
			}
		}
	}
}

// submit registers a job at its owner, as the HTTP API does after
// forwarding; it is acknowledged once Sync returns (the replicas have it).
func (s *sim) submit(j *structs.Job) error {
	cv := s.current()
	owner := s.peers[cv.Owner(JobSlot(j.ID))]
	if !owner.up {
		return fmt.Errorf("owner down")
	}
	if _, err := owner.eng.Register(s.now, s.view(owner), j); err != nil {
		return err
	}
	s.flushReplication()
	s.acked[j.ID] = j
	return nil
}

func simJob(name string, typ structs.JobType, count int) *structs.Job {
	return &structs.Job{ID: name, Name: name, Type: typ, Count: count, Priority: 50, Driver: "mock",
		Resources:  structs.Resources{CPU: 100, MemoryMB: 64},
		Reschedule: structs.ReschedulePolicy{Unlimited: true},
	}
}

// running counts the copies of a job running on live peers, by index.
func (s *sim) running(job string) map[int]int {
	out := map[int]int{}
	for _, id := range s.order {
		p := s.peers[id]
		if !p.up {
			continue
		}
		for _, t := range p.runner.running {
			if t.job == job {
				out[t.index]++
			}
		}
	}
	return out
}

// checkConverged asserts every acknowledged service job runs exactly
// count copies, one per index, and every batch copy completed.
func (s *sim) checkConverged() {
	s.t.Helper()
	for _, id := range slices.Sorted(mapKeys(s.acked)) {
		j := s.acked[id]
		run := s.running(id)
		if j.Type == structs.JobTypeService {
			total := 0
			for idx := 0; idx < j.Count; idx++ {
				if run[idx] != 1 {
					s.t.Errorf("%s[%d]: %d copies running, want 1", id, idx, run[idx])
				}
				total += run[idx]
			}
			for idx, n := range run {
				if idx >= j.Count {
					s.t.Errorf("%s[%d]: %d copies above count", id, idx, n)
				}
			}
			continue
		}
		for idx := 0; idx < j.Count; idx++ {
			if len(s.completed[fmt.Sprintf("%s[%d]", id, idx)]) == 0 {
				s.t.Errorf("%s[%d]: batch copy never completed", id, idx)
			}
		}
	}
}

// checkNoRerun asserts no batch copy started after another copy of its
// index completed at or before since... (completions after since only).
func (s *sim) checkNoRerun(since time.Time) {
	s.t.Helper()
	for _, st := range s.starts {
		if st.at.Before(since) {
			continue
		}
		for _, done := range s.completed[fmt.Sprintf("%s[%d]", st.job, st.index)] {
			if done.Before(st.at) && !done.Before(since) {
				s.t.Errorf("%s[%d] started again at %v on %s after completing at %v", st.job, st.index,
					st.at.Sub(since), st.peer, done.Sub(since))
			}
		}
	}
}

// checkHeldOnce asserts, from the owners' records, that every copy of
// every acknowledged job is held by exactly one allocation that is
// wanted and pending, running or complete (the final-state check of
// gantry bench), and that no batch copy completed twice.
func (s *sim) checkHeldOnce() {
	s.t.Helper()
	for _, id := range slices.Sorted(mapKeys(s.acked)) {
		j := s.acked[id]
		owner := s.peers[s.ownerOf(id)]
		st, err := owner.eng.Job(id)
		if err != nil {
			s.t.Errorf("%s: %v", id, err)
			continue
		}
		held := map[int]int{}
		for _, a := range st.Allocations {
			if a.DesiredStatus == structs.AllocDesiredRun && (a.ClientStatus == structs.AllocClientPending ||
				a.ClientStatus == structs.AllocClientRunning || a.ClientStatus == structs.AllocClientComplete) {
				held[a.Index]++
			}
		}
		for idx := 0; idx < j.Count; idx++ {
			if held[idx] != 1 {
				s.t.Errorf("%s[%d]: held by %d allocations in its owner's records, want 1", id, idx, held[idx])
			}
			if n := len(s.completed[fmt.Sprintf("%s[%d]", id, idx)]); j.Type == structs.JobTypeBatch && n > 1 {
				s.t.Errorf("%s[%d]: completed %d times", id, idx, n)
			}
		}
	}
}

// ownerOf returns the current owner of a job.
func (s *sim) ownerOf(job string) string { return s.current().Owner(JobSlot(job)) }

// jobsOwnedBy finds job names owned by a given peer (for scenarios).
func (s *sim) jobsOn(owner string, n int, prefix string) []string {
	var out []string
	for i := 0; len(out) < n && i < 100000; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		if s.ownerOf(name) == owner {
			out = append(out, name)
		}
	}
	return out
}

func (s *sim) submitAll(t *testing.T, jobs ...*structs.Job) {
	t.Helper()
	for _, j := range jobs {
		if err := s.submit(j); err != nil {
			t.Fatalf("submit %s: %v", j.ID, err)
		}
	}
}

// seeds are the simulations' seeds: 1 to 6 (1 and 2 with -short), or 1
// to N with GANTRY_SIM_SEEDS=N (to measure how often a scenario fails).
func seeds(t *testing.T) []uint64 {
	n := 6
	if testing.Short() {
		n = 2
	}
	if v := os.Getenv("GANTRY_SIM_SEEDS"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			t.Fatalf("GANTRY_SIM_SEEDS=%q: want a positive number of seeds", v)
		}
		n = k
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

func TestSimPlaceAndRun(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newSim(t, seed, 3, 1)
			s.run(time.Second) // loads spread
			s.submitAll(t, simJob("web", structs.JobTypeService, 10), simJob("api", structs.JobTypeService, 7),
				simJob("etl", structs.JobTypeBatch, 5))
			s.run(3 * time.Second)
			s.checkConverged()
			s.checkNoRerun(time.Time{})
			// scale and stop
			owner := s.peers[s.ownerOf("web")]
			if _, err := owner.eng.Scale(s.now, s.view(owner), "web", 4); err != nil {
				t.Fatal(err)
			}
			s.acked["web"].Count = 4
			s.run(2 * time.Second)
			s.checkConverged()
			ao := s.peers[s.ownerOf("api")]
			if _, err := ao.eng.StopJob(s.now, s.view(ao), "api", false); err != nil {
				t.Fatal(err)
			}
			delete(s.acked, "api")
			s.run(2 * time.Second)
			if n := len(s.running("api")); n != 0 {
				t.Errorf("stopped job still runs %d copies", n)
			}
		})
	}
}

// TestSimOwnerCrash: the owner of jobs crashes; its replica is promoted,
// loads the records, learns the copies from the peers' reports and
// neither loses nor duplicates one.
func TestSimOwnerCrash(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newSim(t, seed, 3, 1)
			// replication lags far behind: the promoted replica misses the
			// latest allocation records and must learn them from reports
			s.replLag = 700 * time.Millisecond
			s.run(time.Second)
			owner := "p00"
			var jobs []*structs.Job
			for i, name := range s.jobsOn(owner, 4, "svc") {
				jobs = append(jobs, simJob(name, structs.JobTypeService, 5+i))
			}
			for _, name := range s.jobsOn(owner, 2, "batch") {
				j := simJob(name, structs.JobTypeBatch, 6)
				j.Config = map[string]any{"run_for_ms": 2500.0}
				jobs = append(jobs, j)
			}
			s.submitAll(t, jobs...)
			s.run(300 * time.Millisecond) // placed and running, records not yet replicated
			crashAt := s.now
			s.crash(owner)
			// submissions go on: they land on the new owner once promoted
			s.run(1500 * time.Millisecond)
			if s.ownerOf(jobs[0].ID) == owner {
				t.Fatal("no promotion")
			}
			extra := s.jobsOn(s.ownerOf(jobs[0].ID), 1, "late")
			s.submitAll(t, simJob(extra[0], structs.JobTypeService, 3))
			s.run(6 * time.Second)
			s.checkConverged()
			s.checkNoRerun(crashAt)
			// no duplication: at no point after the takeover grace more than one copy of an index
			for _, j := range jobs {
				if j.Type == structs.JobTypeService {
					for idx, n := range s.running(j.ID) {
						if n > 1 {
							t.Errorf("%s[%d] duplicated: %d", j.ID, idx, n)
						}
					}
				}
			}
		})
	}
}

// TestSimWorkerCrash: a worker (not an owner) crashes; its copies are
// placed again by their owners; it returns empty and gets work again.
func TestSimWorkerCrash(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newSim(t, seed, 3, 1)
			s.run(time.Second)
			s.submitAll(t, simJob("a", structs.JobTypeService, 12), simJob("b", structs.JobTypeService, 9),
				simJob("c", structs.JobTypeBatch, 8))
			s.run(2 * time.Second)
			s.checkConverged()
			victim := "p05" // a replica: owns no slot
			if len(s.peers[victim].runner.running) == 0 {
				victim = "p04"
			}
			before := len(s.peers[victim].runner.running)
			s.crash(victim)
			s.run(3 * time.Second)
			s.checkConverged()
			s.restart(victim)
			s.run(2 * time.Second)
			s.checkConverged()
			t.Logf("victim %s ran %d copies", victim, before)
		})
	}
}

// TestSimWorkerRestartBeforeFail: a worker restarts faster than the
// failure detector: the owners learn from its first report (a new
// incarnation with no tasks) that its copies are gone.
func TestSimWorkerRestartBeforeFail(t *testing.T) {
	s := newSim(t, 7, 3, 1)
	s.run(time.Second)
	s.submitAll(t, simJob("a", structs.JobTypeService, 12))
	s.run(2 * time.Second)
	victim := ""
	for _, id := range s.order[3:] {
		if len(s.peers[id].runner.running) > 0 {
			victim = id
		}
	}
	if victim == "" {
		t.Fatal("no replica runs a copy")
	}
	s.crash(victim)
	s.run(200 * time.Millisecond)
	s.restart(victim)
	s.run(3 * time.Second)
	s.checkConverged()
}

// TestSimPartition: one primary is cut off with its share of workers'
// tasks. The majority promotes its replica and keeps every service at
// count; the minority changes nothing; after healing each service runs
// exactly count copies and no batch copy completed is run again.
func TestSimPartition(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newSim(t, seed, 3, 1)
			s.run(time.Second)
			var jobs []*structs.Job
			for _, o := range []string{"p00", "p01", "p02"} {
				for _, name := range s.jobsOn(o, 2, "svc-"+o+"-") {
					jobs = append(jobs, simJob(name, structs.JobTypeService, 6))
				}
				for _, name := range s.jobsOn(o, 1, "bat-"+o+"-") {
					jobs = append(jobs, simJob(name, structs.JobTypeBatch, 4))
				}
			}
			s.submitAll(t, jobs...)
			s.run(2 * time.Second)
			s.checkConverged()
			s.partition("p00")
			s.run(4 * time.Second)
			// the majority keeps every service at count on its side
			for _, j := range jobs {
				if j.Type != structs.JobTypeService {
					continue
				}
				n := 0
				for _, id := range s.order {
					p := s.peers[id]
					if p.side != 0 {
						continue
					}
					for _, t := range p.runner.running {
						if t.job == j.ID {
							n++
						}
					}
				}
				if n != j.Count {
					t.Errorf("majority side runs %d copies of %s, want %d", n, j.ID, j.Count)
				}
			}
			healAt := s.now
			s.heal()
			s.run(4 * time.Second)
			s.checkConverged()
			s.checkNoRerun(healAt)
		})
	}
}

// TestSimMessageLoss: a fifth of all messages are lost, with longer
// delays; jobs still converge, and an owner crash under loss too.
func TestSimMessageLoss(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newSim(t, seed, 3, 1)
			s.drop, s.maxLat = 0.2, 30*time.Millisecond
			s.run(time.Second)
			s.submitAll(t, simJob("a", structs.JobTypeService, 10), simJob("b", structs.JobTypeService, 5),
				simJob("c", structs.JobTypeBatch, 6))
			s.run(5 * time.Second)
			s.checkConverged()
			s.checkNoRerun(time.Time{})
			s.crash(s.ownerOf("a"))
			s.run(8 * time.Second)
			s.checkConverged()
		})
	}
}

// TestSimSlowWorker: a worker saturated by its work handles every
// message seconds late (its admits queue behind the work), and the
// cluster layer does not judge it failed. Its owners must not give the
// admits up and place the copies again: every copy is held once, and
// no batch copy runs again after it completed (before, an admit
// unanswered after three tries was given up, its copies placed again,
// and the late peer ran both sets: batch copies completed twice).
//
// With streams between the peers (ordered, nothing lost while they
// last), the owners do not send the slow peer's admits again at all:
// its answers come 4.5 s late, before AdmitRetryMax; over the cluster
// bus they send each one again every second meanwhile.
func TestSimSlowWorker(t *testing.T) {
	for _, streams := range []bool{false, true} {
		for _, seed := range seeds(t) {
			t.Run(fmt.Sprintf("streams=%v/%d", streams, seed), func(t *testing.T) {
				testSimSlowWorker(t, seed, streams)
			})
		}
	}
}

func testSimSlowWorker(t *testing.T, seed uint64, streams bool) {
	s := newSim(t, seed, 3, 0)
	if streams {
		s.linkAll()
	}
	s.run(time.Second)
	slow := "p02"
	s.slow = map[string]time.Duration{slow: 4500 * time.Millisecond}
	var jobs []*structs.Job
	for _, o := range []string{"p00", "p01"} {
		for i, name := range s.jobsOn(o, 2, "bat-"+o+"-") {
			j := simJob(name, structs.JobTypeBatch, 6)
			j.Config = map[string]any{"run_for_ms": 100.0}
			if i == 0 { // only the slow peer may run it
				j.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: slow}}
			}
			jobs = append(jobs, j)
		}
		for i, name := range s.jobsOn(o, 2, "svc-"+o+"-") {
			j := simJob(name, structs.JobTypeService, 6)
			if i == 0 {
				j.Constraints = []structs.Constraint{{Label: "zone", Operator: "=", Value: slow}}
			}
			jobs = append(jobs, j)
		}
	}
	s.submitAll(t, jobs...)
	s.run(25 * time.Second)
	s.checkConverged()
	s.checkNoRerun(time.Time{})
	s.checkHeldOnce()
	if len(s.peers[slow].runner.running) == 0 {
		t.Fatal("the slow peer runs nothing: the scenario tests nothing")
	}
	var resent uint64
	for _, id := range s.order {
		resent += s.peers[id].eng.Stats().Resent
	}
	if streams && resent != 0 {
		t.Errorf("with streams up, the owners sent %d admits again to a peer that is only slow; want none", resent)
	}
	if !streams && resent == 0 {
		t.Error("over the cluster bus no admit was sent again: the slow peer was not slow")
	}
}
