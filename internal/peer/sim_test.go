package peer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// simNet is an in-process network in the style of etcd-io/raft's tests: a
// virtual clock, per-message delay, random drops, cut links and isolated
// nodes, crashes and restarts from the persisted state. Every run with the
// same seed is the same run.
type simNet struct {
	t     testing.TB
	now   time.Time
	step  time.Duration
	nodes map[NodeID]*Node
	ids   []NodeID // creation order
	rnd   *rand.Rand

	dropRate float64
	minDelay time.Duration
	maxDelay time.Duration
	cut      map[[2]NodeID]bool
	down     map[NodeID]bool
	saved    map[NodeID]State
	cfgs     map[NodeID]Config

	queue []inflight
	seq   int
	log   []string // delivered vote traffic, for failure messages
	// dirty are the slots each node reported in Ready.DirtySlots
	dirty map[NodeID][]uint16
}

type inflight struct {
	at  time.Time
	seq int
	to  NodeID
	m   Message
}

func testID(i int) NodeID { return NodeID(fmt.Sprintf("%040x", i+1)) }

// newSimNet creates n fresh nodes that know each other.
func newSimNet(t testing.TB, n int, seed uint64) *simNet {
	t.Helper()
	nw := &simNet{
		t: t, now: time.Unix(1_700_000_000, 0), step: 10 * time.Millisecond,
		nodes: make(map[NodeID]*Node), rnd: rand.New(rand.NewPCG(seed, seed^0x9e37)),
		minDelay: time.Millisecond, maxDelay: 5 * time.Millisecond,
		cut: make(map[[2]NodeID]bool), down: make(map[NodeID]bool),
		saved: make(map[NodeID]State), cfgs: make(map[NodeID]Config),
		dirty: make(map[NodeID][]uint16),
	}
	for i := 0; i < n; i++ {
		id := testID(i)
		cfg := DefaultConfig(id, fmt.Sprintf("127.0.0.1:%d", 7000+i))
		cfg.Rand = rand.New(rand.NewPCG(seed, uint64(i)))
		node, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nw.nodes[id], nw.cfgs[id] = node, cfg
		nw.ids = append(nw.ids, id)
	}
	for _, a := range nw.ids {
		for _, b := range nw.ids {
			nw.nodes[a].AddPeer(b, nw.cfgs[b].Addr, nw.now)
		}
	}
	return nw
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
		if err := nd.AddSlots([]SlotRange{r}); err != nil {
			nw.t.Fatal(err)
		}
	}
	// let the primaries learn each other's slots before replicas attach
	nw.run(500 * time.Millisecond)
	for i := p; i < len(nw.ids); i++ {
		if err := nw.nodes[nw.ids[i]].Replicate(nw.ids[(i-p)%p]); err != nil {
			nw.t.Fatal(err)
		}
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
	node, err := NewNode(nw.cfgs[id])
	if err != nil {
		nw.t.Fatal(err)
	}
	if st, ok := nw.saved[id]; ok {
		if err := node.Restore(st, nw.now); err != nil {
			nw.t.Fatal(err)
		}
	}
	nw.nodes[id] = node
	delete(nw.down, id)
}

// collect takes a node's output: save first, then queue the messages.
func (nw *simNet) collect(id NodeID) {
	rd := nw.nodes[id].Ready()
	nw.dirty[id] = append(nw.dirty[id], rd.DirtySlots...)
	if rd.MustSave {
		nw.saved[id] = nw.nodes[id].State()
	}
	for _, m := range rd.Messages {
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
		nw.nodes[id].Tick(nw.now)
		nw.collect(id)
	}
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
