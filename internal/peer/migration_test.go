package peer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv"
)

func existsSet(keys ...string) func([]byte) bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return func(k []byte) bool { return m[string(k)] }
}

// TestRouteMigration: the routing decisions while slot s moves from node
// 0 to node 1 (Redis's getNodeByQuery rules).
func TestRouteMigration(t *testing.T) {
	nw := newSimNet(t, 3, 7)
	nw.shards(3)
	a, b, c := nw.ids[0], nw.ids[1], nw.ids[2]
	k1 := keyIn(t, 100, 100)
	s := KeySlot([]byte(k1))
	k2 := "{" + k1 + "}2" // same slot
	if KeySlot([]byte(k2)) != s {
		t.Fatal("hash tag")
	}
	nw.must(nw.do(b, Op{Kind: OpSetSlot, Action: SlotImporting, Slot: s, Node: a}))
	nw.must(nw.do(a, Op{Kind: OpSetSlot, Action: SlotMigrating, Slot: s, Node: b}))
	slot := itoa(int(s))
	key := func(ks ...string) [][]byte {
		var out [][]byte
		for _, k := range ks {
			out = append(out, []byte(k))
		}
		return out
	}
	tests := []struct {
		name string
		at   NodeID
		req  kv.RouteRequest
		want string // exact
	}{
		{"source: key present runs", a, kv.RouteRequest{Keys: key(k1), Write: true, Exists: existsSet(k1)}, ""},
		{"source: key missing asks", a, kv.RouteRequest{Keys: key(k1), Exists: existsSet()}, "ASK " + slot + " 127.0.0.1:7001"},
		{"source: all keys missing asks", a, kv.RouteRequest{Keys: key(k1, k2), Exists: existsSet()}, "ASK " + slot + " 127.0.0.1:7001"},
		{"source: some keys missing", a, kv.RouteRequest{Keys: key(k1, k2), Exists: existsSet(k2)}, errTryAgainRehash},
		{"source: all present runs", a, kv.RouteRequest{Keys: key(k1, k2), Exists: existsSet(k1, k2)}, ""},
		{"source: existence unknown (MULTI queue) runs", a, kv.RouteRequest{Keys: key(k1)}, ""},
		{"source: MIGRATE runs", a, kv.RouteRequest{Keys: key(k1), Migrate: true, Exists: existsSet()}, ""},
		{"target: without ASKING moves", b, kv.RouteRequest{Keys: key(k1), Exists: existsSet(k1)}, "MOVED " + slot + " 127.0.0.1:7000"},
		{"target: ASKING runs", b, kv.RouteRequest{Keys: key(k1), Asking: true, Exists: existsSet()}, ""},
		{"target: ASKING multi-key missing", b, kv.RouteRequest{Keys: key(k1, k2), Asking: true, Exists: existsSet(k1)}, errTryAgainRehash},
		{"target: ASKING multi-key present runs", b, kv.RouteRequest{Keys: key(k1, k2), Asking: true, Exists: existsSet(k1, k2)}, ""},
		{"target: MIGRATE runs", b, kv.RouteRequest{Keys: key(k1), Migrate: true}, ""},
		{"third node moves to the owner", c, kv.RouteRequest{Keys: key(k1), Asking: true}, "MOVED " + slot + " 127.0.0.1:7000"},
		{"third node: MIGRATE of a slot it does not own moves", c, kv.RouteRequest{Keys: key(k1), Migrate: true}, "MOVED " + slot + " 127.0.0.1:7000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := routerFor(t, nw, tt.at, true).Route(tt.req); got != tt.want {
				t.Errorf("Route = %q, want %q", got, tt.want)
			}
		})
	}
	// once the slot is the target's, the source's MIGRATING state is moot
	nw.must(nw.do(b, Op{Kind: OpSetSlot, Action: SlotNode, Slot: s, Node: b}))
	nw.must(nw.do(a, Op{Kind: OpSetSlot, Action: SlotNode, Slot: s, Node: b}))
	if got := routerFor(t, nw, a, true).Route(kv.RouteRequest{Keys: key(k1), Exists: existsSet()}); !strings.HasPrefix(got, "MOVED "+slot+" 127.0.0.1:7001") {
		t.Errorf("after the move, source: %q", got)
	}
	if got := routerFor(t, nw, b, true).Route(kv.RouteRequest{Keys: key(k1), Exists: existsSet()}); got != "" {
		t.Errorf("after the move, target: %q", got)
	}
}

func TestSetSlotErrors(t *testing.T) {
	nw := newSimNet(t, 4, 3)
	nw.shards(3) // node 3 replicates node 0
	a, b, rep := nw.ids[0], nw.ids[1], nw.ids[3]
	unknown := testID(99)
	setslot := func(at NodeID, act SetSlotAction, s uint16, id NodeID, keys int) error {
		_, err := nw.do(at, Op{Kind: OpSetSlot, Action: act, Slot: s, Node: id, KeysHeld: keys})
		return err
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"migrating a slot not mine", setslot(a, SlotMigrating, 6000, b, 0), "I'm not the owner of hash slot 6000"},
		{"migrating to an unknown node", setslot(a, SlotMigrating, 1, unknown, 0), "I don't know about node"},
		{"migrating to a replica", setslot(a, SlotMigrating, 1, nw.ids[3], 0), "Target node is not a master"},
		{"migrating to myself", setslot(a, SlotMigrating, 1, a, 0), "Can't migrate a slot to myself"},
		{"importing a slot I own", setslot(a, SlotImporting, 1, b, 0), "I'm already the owner of hash slot 1"},
		{"setslot on a replica", setslot(rep, SlotStable, 1, "", 0), ErrSetSlotReplica.Error()},
		{"node on a replica", setslot(rep, SlotNode, 1, b, 0), ErrSetSlotReplica.Error()},
		{"node to an unknown node", setslot(a, SlotNode, 1, unknown, 0), "Unknown node " + string(unknown)},
		{"node away while holding keys", setslot(a, SlotNode, 1, b, 3), "Can't assign hashslot 1 to a different node while I still hold keys"},
		{"bad slot", setslot(a, SlotStable, NumSlots, "", 0), ErrBadSlot.Error()},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, c.err, c.want)
		}
	}
	if o := nw.nodes[a].slots.Owner(1).Node; o != a {
		t.Errorf("slot 1 moved to %s although the owner held keys", o)
	}
}

// migrate runs the SETSLOT sequence of redis-cli for slot s from src to
// dst; tell lists the nodes told SETSLOT NODE after dst and src.
func migrateSlot(t *testing.T, nw *simNet, s uint16, src, dst NodeID, tellSrc bool, others ...NodeID) {
	t.Helper()
	migrateSlotFor(t, nw, 30*time.Millisecond, s, src, dst, tellSrc, others...)
}

// migrateSlotFor is migrateSlot with the time the keys take to move.
func migrateSlotFor(t *testing.T, nw *simNet, keys time.Duration, s uint16, src, dst NodeID, tellSrc bool, others ...NodeID) {
	t.Helper()
	setslot := func(at NodeID, act SetSlotAction, id NodeID) error {
		op := Op{Kind: OpSetSlot, Action: act, Slot: s, Node: id}
		if keys == 0 { // many slots: the next tick persists and sends
			return nw.apply(at, op)
		}
		_, err := nw.do(at, op)
		return err
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(setslot(dst, SlotImporting, src))
	must(setslot(src, SlotMigrating, dst))
	if keys > 0 {
		nw.run(keys) // keys move meanwhile
	}
	must(setslot(dst, SlotNode, dst))
	if tellSrc {
		if err := setslot(src, SlotNode, dst); err != nil && !errors.Is(err, ErrSetSlotReplica) {
			t.Fatal(err)
		}
	}
	for _, o := range others {
		must(setslot(o, SlotNode, dst))
	}
}

// TestSimMigration: slots moved between primaries under message drops and
// delays, and with a partitioned bystander, end with one owner everywhere;
// the other slots do not move; a source that is never told learns it from
// the gossip; moving every slot away turns the old primary into a replica.
func TestSimMigration(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		nw := newSimNet(t, 4, seed)
		nw.shards(4)
		nw.dropRate = 0.2
		nw.maxDelay = 30 * time.Millisecond
		a, b, c, d := nw.ids[0], nw.ids[1], nw.ids[2], nw.ids[3]
		before := nw.nodes[a].Slots()
		// d is cut off while slots move
		nw.isolate(d)
		migrateSlot(t, nw, 10, a, b, true, c, d)
		migrateSlot(t, nw, 11, a, b, false, c) // the source learns it from gossip
		migrateSlot(t, nw, 12, a, c, true)     // only the two ends are told
		nw.run(200 * time.Millisecond)
		nw.heal()
		want := map[uint16]NodeID{10: b, 11: b, 12: c}
		nw.runUntil(5*time.Second, "migrated slots agreed", func() bool {
			for s, o := range want {
				if nw.ownerEverywhere(s) != o {
					return false
				}
			}
			return nw.agreed(nw.ids)
		})
		for s := 0; s < NumSlots; s++ {
			if _, moved := want[uint16(s)]; moved {
				continue
			}
			if o := nw.ownerEverywhere(uint16(s)); o != before.Owner(uint16(s)).Node {
				t.Fatalf("seed %d: slot %d moved to %q", seed, s, o)
			}
		}
		// no open slot is left
		for _, id := range nw.ids {
			for s := range want {
				if _, ok := nw.nodes[id].Migrating(s); ok {
					t.Errorf("seed %d: %s still migrating %d", seed, id, s)
				}
				if _, ok := nw.nodes[id].Importing(s); ok {
					t.Errorf("seed %d: %s still importing %d", seed, id, s)
				}
			}
		}
	}
}

// TestSimMigrateLastSlot: a primary that gives away all its slots follows
// the new owner as a replica, with or without being told.
func TestSimMigrateLastSlot(t *testing.T) {
	nw := newSimNet(t, 3, 11)
	nw.shards(3)
	nw.dropRate = 0.1
	a, b, c := nw.ids[0], nw.ids[1], nw.ids[2]
	r := nw.nodes[c].slots.SlotsOf(c)[0]
	for s := int(r.Start); s <= int(r.End); s++ {
		migrateSlotFor(t, nw, 0, uint16(s), c, a, s%2 == 0, b)
		if s%500 == 0 {
			nw.run(20 * time.Millisecond)
		}
	}
	nw.runUntil(5*time.Second, "all of c's slots with a", func() bool {
		role, primary := nw.role(c)
		return nw.agreed(nw.ids) && nw.nodes[a].slots.CountOf(c) == 0 && role == RoleReplica && primary == a
	})
	if n, m := nw.nodes[b].slots.CountOf(a), nw.nodes[a].slots.CountOf(a); n != m || n <= r.Len() {
		t.Errorf("b sees %d slots at a, a %d", n, m)
	}
}

// TestForgetBlacklist: a forgotten peer is not learned back from its own
// messages or other peers' views until the blacklist expires.
func TestForgetBlacklist(t *testing.T) {
	nw := newSimNet(t, 3, 5)
	nw.shards(3)
	a, c := nw.ids[0], nw.ids[2]
	// c gives its slots away first (as before del-node)
	r := nw.nodes[c].slots.SlotsOf(c)[0]
	for s := int(r.Start); s <= int(r.End); s++ {
		migrateSlotFor(t, nw, 0, uint16(s), c, a, true, nw.ids[1])
	}
	nw.run(500 * time.Millisecond)
	for _, id := range nw.ids[:2] {
		nw.must(nw.do(id, Op{Kind: OpForget, Node: c}))
	}
	nw.run(10 * time.Second) // c keeps talking
	for _, id := range nw.ids[:2] {
		if _, ok := nw.nodes[id].Peer(c); ok {
			t.Fatalf("%s learned the forgotten node back", id)
		}
	}
	// c is reset: it knows only itself, owns nothing, is a primary again
	nw.must(nw.do(c, Op{Kind: OpReset}))
	self := nw.nodes[c].Self()
	if len(nw.nodes[c].Peers()) != 1 || nw.nodes[c].slots.Count() != 0 || self.Role != RolePrimary || self.ID != c {
		t.Fatalf("after a soft reset: %d peers, %d slots, role %v", len(nw.nodes[c].Peers()), nw.nodes[c].slots.Count(), self.Role)
	}
	newID := testID(50)
	if res, err := nw.do(c, Op{Kind: OpReset, Hard: true, Node: newID}); err != nil || res.ID != newID {
		t.Fatalf("hard reset: %v, id %s", err, res.ID)
	}
	if nw.nodes[c].ID() != newID || nw.nodes[c].CurrentEpoch() != 0 || nw.nodes[c].Self().ConfigEpoch != 0 {
		t.Fatalf("hard reset: id %s epoch %d", nw.nodes[c].ID(), nw.nodes[c].CurrentEpoch())
	}
	// after the blacklist, the old ID may come back
	nw.now = nw.now.Add(ForgetTTL)
	nw.must(nw.do(a, Op{Kind: OpAddPeer, Node: c, Addr: "127.0.0.1:7002"}))
	if _, ok := nw.nodes[a].Peer(c); !ok {
		t.Error("blacklist did not expire")
	}
}

// TestMigrationStatePersists: open slots survive a restart.
func TestMigrationStatePersists(t *testing.T) {
	nw := newSimNet(t, 3, 9)
	nw.shards(3)
	a, b := nw.ids[0], nw.ids[1]
	nw.must(nw.do(a, Op{Kind: OpSetSlot, Action: SlotMigrating, Slot: 5, Node: b}))
	nw.must(nw.do(b, Op{Kind: OpSetSlot, Action: SlotImporting, Slot: 5, Node: a}))
	nw.crash(a)
	nw.crash(b)
	nw.restart(a)
	nw.restart(b)
	if dst, ok := nw.nodes[a].Migrating(5); !ok || dst != b {
		t.Errorf("migrating after restart: %v %v", dst, ok)
	}
	if src, ok := nw.nodes[b].Importing(5); !ok || src != a {
		t.Errorf("importing after restart: %v %v", src, ok)
	}
}

func TestParseClusterNodesOpenSlots(t *testing.T) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	s := a + " 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5 7 [5->-" + b + "] [9-<-" + b + "]\n" +
		b + " 127.0.0.1:7001@17001 master - 0 0 2 connected 8-16383\n"
	lines, err := ParseClusterNodes(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(lines[0].Slots, lines[0].Open); got != "[0-5 7] [[5->-"+b+"] [9-<-"+b+"]]" {
		t.Errorf("parsed %s", got)
	}
	if len(lines[1].Open) != 0 || lines[1].BusPort != 17001 {
		t.Errorf("second line: %+v", lines[1])
	}
}

// TestSimDirtySlots: a primary whose slots another primary takes over by
// a newer claim (SETSLOT NODE on the taker only, no migration) reports
// exactly those slots as dirty, once, whether it learns the claim from a
// heartbeat or a push-pull; a slot given away with SETSLOT NODE on the
// owner itself is not dirty; a primary that loses its last slot becomes a
// replica and reports none, nor do replicas.
func TestSimDirtySlots(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		nw := newSimNet(t, 4, seed)
		nw.shards(3) // a, b, c primaries; d replicates a
		nw.dropRate = 0.2
		nw.maxDelay = 20 * time.Millisecond
		a, b, c, d := nw.ids[0], nw.ids[1], nw.ids[2], nw.ids[3]
		clear(nw.dirty)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		// b takes slots 0 and 1 of a by itself: dirty on a
		setNode := func(at NodeID, s uint16) error {
			return nw.apply(at, Op{Kind: OpSetSlot, Action: SlotNode, Slot: s, Node: b})
		}
		must(setNode(b, 0))
		must(setNode(b, 1))
		nw.collect(b)
		// a gives slot 2 away itself (the end of a migration): not dirty
		must(setNode(a, 2))
		nw.collect(a)
		must(setNode(b, 2))
		nw.collect(b)
		nw.runUntil(5*time.Second, "slots 0-2 at b", func() bool {
			return nw.ownerEverywhere(0) == b && nw.ownerEverywhere(1) == b && nw.ownerEverywhere(2) == b
		})
		// b takes every slot of c at once: c becomes b's replica instead
		for _, r := range nw.nodes[c].slots.SlotsOf(c) {
			for s := int(r.Start); s <= int(r.End); s++ {
				must(setNode(b, uint16(s)))
			}
		}
		nw.collect(b)
		nw.runUntil(5*time.Second, "c's slots at b", func() bool {
			role, primary := nw.role(c)
			return nw.agreed(nw.ids) && role == RoleReplica && primary == b
		})
		// a view merged by push-pull: b takes slot 3 of a, a hears of it
		// only from c's view
		nw.isolate(a)
		must(setNode(b, 3))
		nw.collect(b)
		nw.runUntil(5*time.Second, "slot 3 at b on c", func() bool {
			return nw.nodes[c].slots.Owner(3).Node == b
		})
		view := nw.nodes[c].State()
		must(nw.apply(a, Op{Kind: OpMergeView, View: &view}))
		nw.collect(a)
		if o := nw.nodes[a].slots.Owner(3).Node; o != b {
			t.Fatalf("seed %d: after the merge a sees slot 3 at %s", seed, o)
		}
		nw.heal()
		nw.run(500 * time.Millisecond)

		want := map[NodeID][]uint16{a: {0, 1, 3}}
		for _, id := range nw.ids {
			got := slices.Clone(nw.dirty[id])
			slices.Sort(got)
			if !slices.Equal(got, want[id]) {
				t.Errorf("seed %d: node %d reported dirty slots %v, want %v", seed, slices.Index(nw.ids, id), got, want[id])
			}
		}
		if role, _ := nw.role(d); role != RoleReplica {
			t.Errorf("seed %d: d is %v", seed, role)
		}
	}
}
