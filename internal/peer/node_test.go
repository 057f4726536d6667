package peer

import (
	"errors"
	"testing"
	"time"
)

func TestFormationConverges(t *testing.T) {
	nw := newSimNet(t, 6, 1)
	nw.shards(3)
	if !nw.agreed(nw.ids) {
		t.Fatal("nodes disagree on the slot map after formation")
	}
	for i := 3; i < 6; i++ {
		for _, obs := range nw.ids {
			p, _ := nw.nodes[obs].Peer(nw.ids[i])
			if p.Role != RoleReplica || p.Primary != nw.ids[i-3] {
				t.Errorf("%s sees %s as %v of %s, want replica of %s", obs[36:], nw.ids[i][36:], p.Role, p.Primary, nw.ids[i-3])
			}
		}
	}
	for _, id := range nw.ids {
		if !nw.nodes[id].ClusterOK(true) {
			t.Errorf("%s: cluster not ok", id[36:])
		}
	}
}

// TestFailoverOnCrash: the primary of slot 0 crashes; its replica takes the
// slots over within 2 s of virtual time and every live node agrees.
func TestFailoverOnCrash(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		nw := newSimNet(t, 6, seed)
		nw.shards(3)
		prim, repl := nw.ids[0], nw.ids[3]
		nw.crash(prim)
		took := nw.runUntil(5*time.Second, "failover", func() bool { return nw.ownerEverywhere(0) == repl })
		if took > 2*time.Second {
			t.Errorf("seed %d: failover took %v of virtual time, want <= 2s", seed, took)
		}
		if r, _ := nw.role(repl); r != RolePrimary {
			t.Errorf("seed %d: replica role %v after failover", seed, r)
		}
		if e := nw.nodes[repl].Self().ConfigEpoch; e <= 3 {
			t.Errorf("seed %d: new primary's config epoch %d, want above every old one (3)", seed, e)
		}
		// the old primary comes back from disk and follows the new one
		nw.restart(prim)
		nw.runUntil(5*time.Second, "old primary rejoins as replica", func() bool {
			r, p := nw.role(prim)
			return r == RoleReplica && p == repl && nw.agreed(nw.ids)
		})
	}
}

// TestBestReplicaWins: of two replicas, the one with the higher replication
// offset is elected.
func TestBestReplicaWins(t *testing.T) {
	for _, better := range []int{3, 4} {
		nw := newSimNet(t, 5, uint64(better))
		nw.shards(3)
		// node 3 replicates primary 0; make node 4 a second replica of 0
		nw.must(nw.do(nw.ids[4], Op{Kind: OpReplicate, Node: nw.ids[0]}))
		nw.offsets[nw.ids[3]] = 1000
		nw.offsets[nw.ids[4]] = 1000
		nw.offsets[nw.ids[better]] = 5000
		nw.run(500 * time.Millisecond)
		nw.crash(nw.ids[0])
		nw.runUntil(5*time.Second, "failover", func() bool { return nw.ownerEverywhere(0) == nw.ids[better] })
		other := nw.ids[7-better]
		nw.runUntil(2*time.Second, "sibling follows", func() bool {
			r, p := nw.role(other)
			return r == RoleReplica && p == nw.ids[better]
		})
	}
}

// TestMinorityPrimaryStopsAndMajorityFailsOver: a primary isolated with one
// replica of another shard cannot win votes or keep serving; the majority
// elects its replica; after healing every slot has one owner.
func TestMinorityPrimaryStopsAndMajorityFailsOver(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		nw := newSimNet(t, 6, seed)
		nw.shards(3)
		prim := nw.ids[0]
		minority := []NodeID{prim, nw.ids[4]} // ids[4] replicates primary 1
		majority := []NodeID{nw.ids[1], nw.ids[2], nw.ids[3], nw.ids[5]}
		nw.partition(minority, majority)
		nw.runUntil(3*time.Second, "minority primary stops serving", func() bool { return !nw.nodes[prim].ClusterOK(false) })
		nw.runUntil(5*time.Second, "majority fails over", func() bool {
			for _, id := range majority {
				if nw.nodes[id].Slots().Owner(0).Node != nw.ids[3] {
					return false
				}
			}
			return true
		})
		if nw.nodes[nw.ids[4]].Self().Role != RoleReplica {
			t.Fatalf("seed %d: minority replica promoted itself", seed)
		}
		nw.heal()
		nw.runUntil(5*time.Second, "one owner per slot after healing", func() bool { return nw.agreed(nw.ids) })
		if o := nw.ownerEverywhere(0); o != nw.ids[3] {
			t.Fatalf("seed %d: owner of slot 0 after healing %s, want %s", seed, o, nw.ids[3])
		}
		if r, p := nw.role(prim); r != RoleReplica || p != nw.ids[3] {
			t.Fatalf("seed %d: old primary is %v of %s after healing", seed, r, p)
		}
	}
}

// TestLossyNetworkOneOwner: with 20% of messages dropped and delays up to
// 50 ms the cluster still fails over and ends with one owner per slot and
// at most one primary per election epoch.
func TestLossyNetworkOneOwner(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		nw := newSimNet(t, 6, seed)
		nw.shards(3)
		nw.dropRate, nw.maxDelay = 0.2, 50*time.Millisecond
		nw.crash(nw.ids[1])
		nw.runUntil(30*time.Second, "failover under loss", func() bool { return nw.ownerEverywhere(5461) == nw.ids[4] })
		nw.runUntil(5*time.Second, "agreement under loss", func() bool { return nw.agreed(nw.ids) })
		epochs := map[uint64]NodeID{}
		for _, id := range nw.ids {
			if nw.down[id] {
				continue
			}
			s := nw.nodes[id].Self()
			if s.Role == RolePrimary && nw.nodes[id].ownsSlots(id) {
				if o, dup := epochs[s.ConfigEpoch]; dup {
					t.Fatalf("seed %d: primaries %s and %s share config epoch %d", seed, o, id, s.ConfigEpoch)
				}
				epochs[s.ConfigEpoch] = id
			}
		}
	}
}

// TestNoFailWithoutMajority: one primary alone suspecting another does not
// make it FAIL, and reports older than the validity window do not count.
func TestNoFailWithoutMajority(t *testing.T) {
	nw := newSimNet(t, 6, 7)
	nw.shards(3)
	a, b, c := nw.ids[0], nw.ids[1], nw.ids[2]
	// a loses contact with c, b does not: one report of three needed two
	nw.partition([]NodeID{a}, []NodeID{c})
	nw.run(3 * time.Second)
	if p, _ := nw.nodes[a].Peer(c); !p.PFail || p.Fail {
		t.Fatalf("a's view of c: pfail %v fail %v, want pfail only", p.PFail, p.Fail)
	}
	if nw.ownerEverywhere(10923) != c {
		t.Fatal("slots of c moved without a majority")
	}
	// b now loses c too but a heals first: a's report is withdrawn and
	// b's alone is not enough
	nw.heal()
	nw.run(200 * time.Millisecond)
	nw.partition([]NodeID{b}, []NodeID{c})
	nw.run(3 * time.Second)
	if p, _ := nw.nodes[b].Peer(c); p.Fail {
		t.Fatal("b marked c failed on its own report")
	}
	if got := nw.nodes[b].FailureReports(c, nw.now); got != 0 {
		t.Fatalf("b holds %d failure reports about c, want 0 (a withdrew)", got)
	}
}

// TestReportsExpire: a failure report counts only within its validity.
func TestReportsExpire(t *testing.T) {
	nw := newSimNet(t, 3, 3)
	nw.shards(3)
	a, b, c := nw.ids[0], nw.ids[1], nw.ids[2]
	nw.partition([]NodeID{a}, []NodeID{c})
	nw.run(1500 * time.Millisecond)
	if got := nw.nodes[b].FailureReports(c, nw.now); got != 1 {
		t.Fatalf("b holds %d reports about c, want 1 (from a)", got)
	}
	// a is cut off from b too: its report is never renewed and expires
	nw.partition([]NodeID{a}, []NodeID{b})
	nw.run(3 * time.Second)
	if got := nw.nodes[b].FailureReports(c, nw.now); got != 0 {
		t.Fatalf("b holds %d reports about c after the window, want 0", got)
	}
}

// TestOneVotePerEpoch: a primary grants one vote per epoch, and a restart
// from its saved state does not let it vote again.
func TestOneVotePerEpoch(t *testing.T) {
	nw := newSimNet(t, 5, 11)
	nw.shards(3)
	voter, prim := nw.ids[1], nw.ids[0]
	v := nw.nodes[voter]
	v.peers[prim].Fail = true
	req := func(from NodeID, epoch uint64) Message {
		return Message{Type: MsgVoteRequest, From: from, CurrentEpoch: epoch, Role: RoleReplica,
			Primary: prim, Subject: prim, ConfigEpoch: 1, Slots: []SlotRange{{0, 5460}}}
	}
	votes := func() int {
		n := 0
		for _, m := range drain(v).Messages {
			if m.Type == MsgVote {
				n++
			}
		}
		return n
	}
	drain(v)
	if err := v.Step(req(nw.ids[3], 10), nw.now); err != nil {
		t.Fatal(err)
	}
	if got := votes(); got != 1 {
		t.Fatalf("first request: %d votes, want 1", got)
	}
	st := v.State()
	nw.saved[voter] = st
	nw.crash(voter)
	nw.restart(voter)
	v = nw.nodes[voter]
	v.peers[prim].Fail = true
	if err := v.Step(req(nw.ids[4], 10), nw.now); err != nil {
		t.Fatal(err)
	}
	if got := votes(); got != 0 {
		t.Fatalf("second request in the same epoch after a restart: %d votes, want 0", got)
	}
}

// TestStaleRequestRefused: a replica asking with an older view of the slots
// than the voter's gets no vote.
func TestStaleRequestRefused(t *testing.T) {
	nw := newSimNet(t, 4, 5)
	nw.shards(3)
	v := nw.nodes[nw.ids[1]]
	v.peers[nw.ids[0]].Fail = true
	v.slots.Set(0, nw.ids[0], 9) // the voter knows a newer claim of slot 0
	drain(v)
	m := Message{Type: MsgVoteRequest, From: nw.ids[3], CurrentEpoch: 20, Role: RoleReplica,
		Primary: nw.ids[0], Subject: nw.ids[0], ConfigEpoch: 1, Slots: []SlotRange{{0, 5460}}}
	if err := v.Step(m, nw.now); err != nil {
		t.Fatal(err)
	}
	for _, out := range drain(v).Messages {
		if out.Type == MsgVote {
			t.Fatal("voted for a replica with a stale slot view")
		}
	}
}

func TestEpochCollisionResolves(t *testing.T) {
	nw := newSimNet(t, 3, 2)
	for _, id := range nw.ids {
		nw.nodes[id].setConfigEpoch(1)
	}
	for i, r := range SplitEven(3) {
		nw.must(nw.do(nw.ids[i], Op{Kind: OpAddSlots, Slots: []SlotRange{r}}))
	}
	nw.runUntil(3*time.Second, "distinct config epochs", func() bool {
		seen := map[uint64]bool{}
		for _, id := range nw.ids {
			e := nw.nodes[id].Self().ConfigEpoch
			if seen[e] {
				return false
			}
			seen[e] = true
		}
		return nw.agreed(nw.ids)
	})
}

func TestManualFailover(t *testing.T) {
	tests := []struct {
		name string
		mode FailoverMode
	}{{"force", FailoverForce}, {"takeover", FailoverTakeover}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nw := newSimNet(t, 6, 9)
			nw.shards(3)
			nw.must(nw.do(nw.ids[5], Op{Kind: OpFailover, Mode: tt.mode}))
			nw.runUntil(3*time.Second, "manual failover", func() bool {
				r, p := nw.role(nw.ids[2])
				return nw.ownerEverywhere(16383) == nw.ids[5] && r == RoleReplica && p == nw.ids[5]
			})
		})
	}
	nw := newSimNet(t, 4, 9)
	nw.shards(3)
	if _, err := nw.do(nw.ids[3], Op{Kind: OpFailover}); !errors.Is(err, ErrFailoverNeedsSync) {
		t.Fatalf("plain failover: err %v, want ErrFailoverNeedsSync", err)
	}
	if _, err := nw.do(nw.ids[0], Op{Kind: OpFailover, Mode: FailoverForce}); err == nil {
		t.Fatal("failover on a primary: no error")
	}
}

// TestManualFailoverEnds: the forced election of a manual failover (the
// replication layer's CLUSTER FAILOVER, with its primary paused) promotes
// nothing after its end (Op.Until): the primary may be taking writes
// again, and a late promotion would lose them. Before its end it wins as
// a plain FORCE does.
func TestManualFailoverEnds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		until   time.Duration // after now
		promote bool
	}{{"ended before the votes", time.Millisecond, false}, {"votes in time", 10 * time.Second, true}} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newSimNet(t, 6, 9)
			nw.shards(3)
			nw.must(nw.do(nw.ids[5], Op{Kind: OpFailover, Mode: FailoverForce, Until: nw.now.Add(tc.until)}))
			nw.run(3 * time.Second)
			r, _ := nw.role(nw.ids[5])
			if promoted := r == RolePrimary; promoted != tc.promote {
				t.Fatalf("replica promoted %v, want %v", promoted, tc.promote)
			}
			if owner := nw.ownerEverywhere(16383); tc.promote && owner != nw.ids[5] || !tc.promote && owner != nw.ids[2] {
				t.Fatalf("slot 16383 owned by %q everywhere", owner)
			}
		})
	}
}

func TestStatePersistence(t *testing.T) {
	nw := newSimNet(t, 4, 4)
	nw.shards(3)
	fs := NewFileStore(t.TempDir())
	want := nw.nodes[nw.ids[3]].State()
	if err := fs.Save(want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := fs.Load()
	if err != nil || !ok {
		t.Fatalf("load: %v, %v", ok, err)
	}
	node, err := NewNode(nw.cfgs[nw.ids[3]])
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Restore(got, nw.now); err != nil {
		t.Fatal(err)
	}
	if r, p := node.Self().Role, node.Self().Primary; r != RoleReplica || p != nw.ids[0] {
		t.Fatalf("restored role %v of %s", r, p)
	}
	m := node.Slots()
	ref := nw.nodes[nw.ids[3]].Slots()
	for s := 0; s < NumSlots; s++ {
		if m.Owner(uint16(s)) != ref.Owner(uint16(s)) {
			t.Fatalf("slot %d: restored %v, want %v", s, m.Owner(uint16(s)), ref.Owner(uint16(s)))
		}
	}
	if _, ok, err := NewFileStore(t.TempDir()).Load(); ok || err != nil {
		t.Fatalf("missing state: %v, %v; want none and no error", ok, err)
	}
	other, _ := NewNode(nw.cfgs[nw.ids[0]])
	if err := other.Restore(got, nw.now); err == nil {
		t.Fatal("restored another node's state without error")
	}
}

func TestConfigValidation(t *testing.T) {
	good := DefaultNodeConfig(testID(0), "127.0.0.1:7000")
	tests := []struct {
		name string
		mod  func(*NodeConfig)
	}{
		{"bad id", func(c *NodeConfig) { c.ID = "xyz" }},
		{"zero timeout", func(c *NodeConfig) { c.NodeTimeout = 0 }},
		{"validity below timeout", func(c *NodeConfig) { c.FailReportValidity = c.NodeTimeout / 2 }},
		{"heartbeat too slow", func(c *NodeConfig) { c.HeartbeatInterval = c.NodeTimeout }},
		{"zero minimum heartbeat", func(c *NodeConfig) { c.MinHeartbeatInterval = 0 }},
		{"minimum above heartbeat", func(c *NodeConfig) { c.MinHeartbeatInterval = c.HeartbeatInterval + 1 }},
		{"negative delay", func(c *NodeConfig) { c.RankDelay = -1 }},
		{"zero election timeout", func(c *NodeConfig) { c.ElectionTimeout = 0 }},
	}
	for _, tt := range tests {
		c := good
		tt.mod(&c)
		if _, err := NewNode(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", tt.name, err)
		}
	}
	if _, err := NewNode(good); err != nil {
		t.Fatalf("default config: %v", err)
	}
}

func TestStepRejectsBadMessages(t *testing.T) {
	nw := newSimNet(t, 2, 1)
	n := nw.nodes[nw.ids[0]]
	for _, m := range []Message{
		{Type: MsgHeartbeat, From: "short", Role: RolePrimary},
		{Type: MsgHeartbeat, From: nw.ids[1], To: testID(9), Role: RolePrimary},
		{Type: 99, From: nw.ids[1], Role: RolePrimary},
		{Type: MsgHeartbeat, From: nw.ids[1]}, // no role
		{Type: MsgHeartbeat, From: nw.ids[1], Role: RoleReplica, Primary: "x"},
		{Type: MsgHeartbeat, From: nw.ids[1], Role: RolePrimary, Slots: []SlotRange{{10, 5}}},
		{Type: MsgHeartbeat, From: nw.ids[1], Role: RolePrimary, Slots: []SlotRange{{0, 65535}}},
	} {
		if err := n.Step(m, nw.now); err == nil {
			t.Errorf("Step(%+v): no error", m)
		}
	}
	if n.Slots().Count() != 0 {
		t.Fatal("a rejected message changed the slot map")
	}
}

// drain takes a node's Ready and acknowledges it, as an owner that
// persisted and sent it would.
func drain(n *Node) Ready {
	rd := n.Ready()
	n.Advance(rd)
	return rd
}

// TestMembersMatchStatus: Members is Status's membership (ID, OK, every
// peer's role, primary and FAIL), before and after a primary fails over.
func TestMembersMatchStatus(t *testing.T) {
	nw := newSimNet(t, 6, 1)
	nw.shards(3)
	check := func(when string) {
		t.Helper()
		for _, id := range nw.ids {
			n := nw.nodes[id]
			if nw.down[id] {
				continue
			}
			st, m := n.Status(nw.now, false), n.Members(false)
			if m.ID != st.ID || m.OK != st.OK || len(m.Peers) != len(st.Peers) {
				t.Fatalf("%s, node %s: members %+v, status id %s ok %v with %d peers", when, id, m, st.ID, st.OK, len(st.Peers))
			}
			for i, p := range st.Peers {
				want := Member{ID: p.ID, Role: p.Role, Primary: p.Primary, Fail: p.Fail}
				if m.Peers[i] != want {
					t.Fatalf("%s, node %s: member %d is %+v, status says %+v", when, id, i, m.Peers[i], want)
				}
			}
		}
	}
	check("formed")
	prim, repl := nw.ids[0], nw.ids[3]
	nw.crash(prim)
	nw.runUntil(5*time.Second, "failover", func() bool { return nw.ownerEverywhere(0) == repl })
	check("after failover")
}
