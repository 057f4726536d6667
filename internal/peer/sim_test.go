package peer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// simNet is an in-process network in the style of etcd-io/raft's tests: a
// virtual clock, per-message delay, random drops, cut links and isolated
// nodes, crashes and restarts from the persisted state. Every run with the
// same seed is the same run.
//
// Each node is driven by the production owner code: an unstarted Cluster
// whose Transport is the simulated network, whose Store is the simulated
// disk (saved) and whose Replicator records dirty slots. The simulation
// calls the owner's handle, tick and flush itself, on one goroutine, so
// every step persists before it sends exactly as the owner goroutine does.
type simNet struct {
	t     testing.TB
	now   time.Time
	step  time.Duration
	nodes map[NodeID]*Node    // each cluster's node (replaced on restart)
	cls   map[NodeID]*Cluster // the owner code of each node
	ids   []NodeID            // creation order
	rnd   *rand.Rand

	dropRate float64
	minDelay time.Duration
	maxDelay time.Duration
	cut      map[[2]NodeID]bool
	down     map[NodeID]bool
	saved    map[NodeID]State // the disk: what each Store holds
	cfgs     map[NodeID]NodeConfig
	offsets  map[NodeID]uint64 // each store's replication offset

	queue []inflight
	seq   int
	log   []string // delivered vote traffic, for failure messages
	// dirty are the slots each node deleted the keys of (Ready.DirtySlots)
	dirty map[NodeID][]uint16

	// afterTick, when set, runs after every step of the simulation (the
	// messages due delivered, every live node ticked)
	afterTick func()
	// onSend and onDeliver, when set, see every message a live node
	// sends, and every message delivered
	onSend    func(from NodeID, m Message)
	onDeliver func(to NodeID, m Message)

	// atDeadlines ticks each node only when its owner would (untilTick:
	// its next deadline, 10-100 ms after its last Tick) instead of at
	// every step; lastTick and nextTick are each node's schedule, ticks
	// counts the Ticks
	atDeadlines bool
	lastTick    map[NodeID]time.Time
	nextTick    map[NodeID]time.Time
	ticks       map[NodeID]int
}

type inflight struct {
	at  time.Time
	seq int
	to  NodeID
	m   Message
}

func testID(i int) NodeID { return NodeID(fmt.Sprintf("%040x", i+1)) }

// simStore is a node's disk in the simulation.
type simStore struct {
	nw *simNet
	id NodeID
}

func (s simStore) Load() (State, bool, error) {
	st, ok := s.nw.saved[s.id]
	return st, ok, nil
}

func (s simStore) Save(st State) error {
	s.nw.saved[s.id] = st
	return nil
}

// simPort is a node's network interface in the simulation.
type simPort struct {
	nw *simNet
	id NodeID
}

func (p simPort) Send(m Message) { p.nw.send(p.id, m) }

// simRepl is a node's store in the simulation: its replication offset is
// set by the test, and dirty slots are recorded.
type simRepl struct {
	nw *simNet
	id NodeID
}

func (r simRepl) ReplicaOf(string)  {}
func (r simRepl) ReplOffset() int64 { return int64(r.nw.offsets[r.id]) }
func (r simRepl) DeleteKeysInSlot(s int) (int, error) {
	r.nw.dirty[r.id] = append(r.nw.dirty[r.id], uint16(s))
	return 0, nil
}

// newSimNet creates n fresh nodes that know each other.
func newSimNet(t testing.TB, n int, seed uint64) *simNet {
	return newSimNetWith(t, n, seed, nil)
}

// newSimNetWith is newSimNet with each node's configuration adjusted by
// mod (nil: the defaults).
func newSimNetWith(t testing.TB, n int, seed uint64, mod func(i int, c *NodeConfig)) *simNet {
	t.Helper()
	nw := &simNet{
		t: t, now: time.Unix(1_700_000_000, 0), step: 10 * time.Millisecond,
		nodes: make(map[NodeID]*Node), cls: make(map[NodeID]*Cluster), rnd: rand.New(rand.NewPCG(seed, seed^0x9e37)),
		minDelay: time.Millisecond, maxDelay: 5 * time.Millisecond,
		cut: make(map[[2]NodeID]bool), down: make(map[NodeID]bool),
		saved: make(map[NodeID]State), cfgs: make(map[NodeID]NodeConfig),
		offsets: make(map[NodeID]uint64), dirty: make(map[NodeID][]uint16),
		lastTick: make(map[NodeID]time.Time), nextTick: make(map[NodeID]time.Time), ticks: make(map[NodeID]int),
	}
	for i := 0; i < n; i++ {
		id := testID(i)
		cfg := DefaultNodeConfig(id, fmt.Sprintf("127.0.0.1:%d", 7000+i))
		cfg.Rand = rand.New(rand.NewPCG(seed, uint64(i)))
		if mod != nil {
			mod(i, &cfg)
		}
		nw.cfgs[id] = cfg
		nw.ids = append(nw.ids, id)
		nw.boot(id)
	}
	for _, a := range nw.ids {
		for _, b := range nw.ids {
			if _, err := nw.do(a, Op{Kind: OpAddPeer, Node: b, Addr: nw.cfgs[b].Addr}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return nw
}

// boot starts node id's owner code from what its disk holds.
func (nw *simNet) boot(id NodeID) {
	nw.t.Helper()
	ccfg := DefaultClusterConfig()
	ccfg.Node = nw.cfgs[id]
	ccfg.Store = simStore{nw, id}
	c, saved, err := newCluster(ccfg)
	if err != nil {
		nw.t.Fatal(err)
	}
	c.now = func() time.Time { return nw.now }
	c.tr = simPort{nw, id}
	if err := c.initNode(0, saved); err != nil {
		nw.t.Fatal(err)
	}
	// the store attaches as in Peer.New (SetReplicator)
	c.handle(input{repl: simRepl{nw, id}}, nw.now, nil)
	nw.cls[id], nw.nodes[id] = c, c.node
}

// do applies an operator command on node id through its owner code and
// returns the answer, as Cluster.Do does.
func (nw *simNet) do(id NodeID, op Op) (OpResult, error) {
	c := nw.cls[id]
	ch := make(chan result, 1)
	w := c.handle(input{op: &op, reply: ch}, nw.now, nil)
	c.answer(w, c.flush())
	r := <-ch
	return r.res, r.err
}

// apply applies an operator command on node id without flushing (the
// next tick persists and sends): for tests that change many slots.
func (nw *simNet) apply(id NodeID, op Op) error {
	_, err := nw.nodes[id].Apply(op, nw.now)
	return err
}

// must fails the test on an error.
func (nw *simNet) must(_ OpResult, err error) {
	nw.t.Helper()
	if err != nil {
		nw.t.Fatal(err)
	}
}

// shards sets up primaries 0..p-1 with an even split of the slots, each
// with config epoch i+1, and the remaining nodes as replicas round-robin.
func (nw *simNet) shards(p int) {
	nw.t.Helper()
	for i, r := range SplitEven(p) {
		id := nw.ids[i]
		nd := nw.nodes[id]
		nd.setConfigEpoch(uint64(i + 1))
		nd.observeEpoch(uint64(i + 1))
		nw.must(nw.do(id, Op{Kind: OpAddSlots, Slots: []SlotRange{r}}))
	}
	// let the primaries learn each other's slots before replicas attach
	nw.run(500 * time.Millisecond)
	for i := p; i < len(nw.ids); i++ {
		nw.must(nw.do(nw.ids[i], Op{Kind: OpReplicate, Node: nw.ids[(i-p)%p]}))
	}
	nw.run(500 * time.Millisecond)
}

func (nw *simNet) linkUp(a, b NodeID) bool {
	return !nw.down[a] && !nw.down[b] && !nw.cut[[2]NodeID{a, b}]
}

// partition cuts every link between the groups.
func (nw *simNet) partition(groups ...[]NodeID) {
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					nw.cut[[2]NodeID{a, b}] = true
				}
			}
		}
	}
}

func (nw *simNet) isolate(id NodeID) {
	var rest []NodeID
	for _, o := range nw.ids {
		if o != id {
			rest = append(rest, o)
		}
	}
	nw.partition([]NodeID{id}, rest)
}

func (nw *simNet) heal() { nw.cut = make(map[[2]NodeID]bool) }

// crash stops a node; its persisted state stays.
func (nw *simNet) crash(id NodeID) { nw.down[id] = true }

// restart brings a crashed node back from its last saved state.
func (nw *simNet) restart(id NodeID) {
	nw.t.Helper()
	nw.boot(id)
	delete(nw.down, id)
}

// collect runs node id's owner flush: persist, then send, then Advance.
// Tests call it after changing a node by hand.
func (nw *simNet) collect(id NodeID) {
	nw.t.Helper()
	if err := nw.cls[id].flush(); err != nil {
		nw.t.Fatal(err)
	}
}

// send puts a message a node sends on the simulated network.
func (nw *simNet) send(id NodeID, m Message) {
	if nw.down[id] {
		return
	}
	if nw.onSend != nil {
		nw.onSend(id, m)
	}
	var tos []NodeID
	if m.To != "" {
		tos = []NodeID{m.To}
	} else {
		for _, o := range nw.ids {
			if o != id {
				tos = append(tos, o)
			}
		}
	}
	for _, to := range tos {
		if !nw.linkUp(id, to) || nw.rnd.Float64() < nw.dropRate {
			continue
		}
		d := nw.minDelay
		if nw.maxDelay > nw.minDelay {
			d += time.Duration(nw.rnd.Int64N(int64(nw.maxDelay - nw.minDelay)))
		}
		nw.seq++
		m := m
		m.Slots = slices.Clone(m.Slots)
		nw.queue = append(nw.queue, inflight{at: nw.now.Add(d), seq: nw.seq, to: to, m: m})
	}
}

// run advances the virtual clock by d: deliver due messages in order, tick
// every live node, collect output.
func (nw *simNet) run(d time.Duration) {
	end := nw.now.Add(d)
	for nw.now.Before(end) {
		nw.tick()
	}
}

// runUntil advances until cond holds, failing after limit.
func (nw *simNet) runUntil(limit time.Duration, what string, cond func() bool) time.Duration {
	nw.t.Helper()
	start := nw.now
	for !cond() {
		if nw.now.Sub(start) > limit {
			nw.t.Fatalf("%s: not reached within %v of virtual time; vote traffic:\n%v", what, limit, nw.log)
		}
		nw.tick()
	}
	return nw.now.Sub(start)
}

func (nw *simNet) tick() {
	nw.now = nw.now.Add(nw.step)
	slices.SortFunc(nw.queue, func(a, b inflight) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	i := 0
	for ; i < len(nw.queue) && !nw.queue[i].at.After(nw.now); i++ {
		f := nw.queue[i]
		if nw.down[f.to] || !nw.linkUp(f.m.From, f.to) {
			continue
		}
		if f.m.Type == MsgVote || f.m.Type == MsgVoteRequest {
			nw.log = append(nw.log, fmt.Sprintf("%v %s %s->%s e%d", nw.now.Format("05.000"), f.m.Type, f.m.From[36:], f.to[36:], f.m.CurrentEpoch))
		}
		if nw.onDeliver != nil {
			nw.onDeliver(f.to, f.m)
		}
		if err := nw.nodes[f.to].Step(f.m, nw.now); err != nil {
			nw.t.Fatalf("step: %v", err)
		}
		nw.collect(f.to)
	}
	nw.queue = nw.queue[i:]
	for _, id := range nw.ids {
		if nw.down[id] {
			continue
		}
		c := nw.cls[id]
		if nw.atDeadlines {
			// the owner resets its timer after every input and tick
			next := nw.now.Add(c.untilTick(nw.lastTick[id], nw.now))
			if nw.now.Before(next) {
				continue
			}
			nw.lastTick[id] = nw.now
		}
		nw.ticks[id]++
		// a Tick before the node's deadline must change nothing: the
		// owner skips it
		early := nw.now.Before(c.node.NextDeadline(nw.now))
		var before string
		if early {
			before = tickState(c.node)
		}
		c.tick(nw.now)
		if early {
			if after := tickState(c.node); after != before {
				nw.t.Fatalf("%s: a Tick at %v before the deadline %v changed the node:\nbefore %s\nafter  %s",
					id[36:], nw.now.Format("05.000"), c.node.NextDeadline(nw.now).Format("05.000"), before, after)
			}
		}
		nw.collect(id)
	}
	if nw.afterTick != nil {
		nw.afterTick()
	}
}

// tickState is what a Tick can change in a node: its pending messages,
// its heartbeat schedule, each peer's suspicion, failure and reports, and
// the election.
func tickState(n *Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "msgs %d save %v hb %v epoch %d |", len(n.msgs), n.mustSave, n.lastHeartbeat.UnixNano(), n.currentEpoch)
	for _, id := range n.sortedPeerIDs() {
		p := n.peers[id]
		fmt.Fprintf(&b, " %s:%v/%v/%d/%d", id[36:], p.PFail, p.Fail, p.FailTime.UnixNano(), len(p.reports))
	}
	e := &n.el
	fmt.Fprintf(&b, " | el %d %d %v %d %d %d %v %d %v %d", e.startAt.UnixNano(), e.rank, e.asking, e.epoch,
		e.deadline.UnixNano(), len(e.votes), e.votes == nil, e.retryAt.UnixNano(), e.forced, e.until.UnixNano())
	return b.String()
}

// owners returns, for the live nodes, the owner each sees of slot s.
func (nw *simNet) ownersOf(s uint16, among []NodeID) map[NodeID]int {
	out := make(map[NodeID]int)
	for _, id := range among {
		if !nw.down[id] {
			out[nw.nodes[id].slots.Owner(s).Node]++
		}
	}
	return out
}

// agreed reports whether every live node in among has the same slot map
// and it covers every slot.
func (nw *simNet) agreed(among []NodeID) bool {
	var ref *SlotMap
	for _, id := range among {
		if nw.down[id] {
			continue
		}
		m := &nw.nodes[id].slots
		if !m.Covered() {
			return false
		}
		if ref == nil {
			ref = m
			continue
		}
		for s := 0; s < NumSlots; s++ {
			if ref.Owner(uint16(s)).Node != m.Owner(uint16(s)).Node {
				return false
			}
		}
	}
	return true
}

func (nw *simNet) role(id NodeID) (Role, NodeID) {
	s := nw.nodes[id].Self()
	return s.Role, s.Primary
}

// ownersEverywhere returns the owner of s if all live nodes agree, "" if not.
func (nw *simNet) ownerEverywhere(s uint16) NodeID {
	o := nw.ownersOf(s, nw.ids)
	if len(o) != 1 {
		return ""
	}
	for id := range o {
		return id
	}
	return ""
}

// TestSimCrashVoterEveryStep: two replicas of one shard ask for votes in
// the same epoch, round after round (forced elections started at the same
// instant), over a network with delays up to 40 ms and drops; a voter is
// crashed and restarted from its disk at every step of the simulation
// (every 10 ms of virtual time, after the messages due were delivered and
// every node ticked).
// It must never vote for two candidates in one epoch: every vote it sent
// is on its disk before it left, so the restarted voter refuses the
// other candidate.
func TestSimCrashVoterEveryStep(t *testing.T) {
	contested := 0
	for seed := uint64(1); seed <= 3; seed++ {
		// no rank delay: both replicas ask at the same tick, in the same
		// epoch; heartbeats every 20 ms spread a new epoch to the voter
		// before the (slower) requests, so its state changes just before
		// it votes
		nw := newSimNetWith(t, 5, seed, func(_ int, c *NodeConfig) {
			c.RankDelay, c.HeartbeatInterval, c.MinHeartbeatInterval = 0, 20*time.Millisecond, 20*time.Millisecond
		})
		nw.shards(3) // 3 and 4 replicate 0
		nw.maxDelay, nw.dropRate = 40*time.Millisecond, 0.05
		voter := nw.ids[1]
		voted := map[uint64]map[NodeID]bool{} // epoch -> candidates the voter voted for
		asked := map[uint64]map[NodeID]bool{} // epoch -> candidates that asked the voter
		record := func(m map[uint64]map[NodeID]bool, e uint64, id NodeID) {
			if m[e] == nil {
				m[e] = map[NodeID]bool{}
			}
			m[e][id] = true
		}
		nw.onSend = func(from NodeID, m Message) {
			if from == voter && m.Type == MsgVote {
				record(voted, m.CurrentEpoch, m.To)
			}
		}
		nw.onDeliver = func(to NodeID, m Message) {
			if to == voter && m.Type == MsgVoteRequest {
				record(asked, m.CurrentEpoch, m.From)
			}
		}
		nw.afterTick = func() {
			nw.crash(voter)
			nw.restart(voter)
		}
		shard := []NodeID{nw.ids[0], nw.ids[3], nw.ids[4]}
		for round := 0; round < 6; round++ {
			for _, id := range shard {
				if r, _ := nw.role(id); r == RoleReplica {
					nw.must(nw.do(id, Op{Kind: OpFailover, Mode: FailoverForce}))
				}
			}
			nw.run(600 * time.Millisecond)
		}
		for e, cands := range voted {
			if len(cands) > 1 {
				var traffic []string
				for _, l := range nw.log {
					if strings.HasSuffix(l, fmt.Sprintf(" e%d", e)) {
						traffic = append(traffic, l)
					}
				}
				t.Errorf("seed %d: the voter (0002) voted for %d candidates in epoch %d; vote traffic of the epoch:\n%s",
					seed, len(cands), e, strings.Join(traffic, "\n"))
			}
		}
		for _, cands := range asked {
			if len(cands) > 1 {
				contested++
			}
		}
		if len(voted) == 0 {
			t.Errorf("seed %d: the voter never voted", seed)
		}
	}
	if contested == 0 {
		t.Fatal("no epoch had two candidates asking the voter: the test exercises nothing")
	}
	t.Logf("%d epochs with two candidates asking the voter", contested)
}
