package peer

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestDirtySlotDeleted: three primaries and a replica of the first, in
// process over memberlist. Another primary takes a slot of the first with
// CLUSTER SETSLOT NODE (a bumped epoch, no migration, the first not told)
// while the first holds keys of it: the first learns the claim by gossip,
// deletes those keys (its replica drops them too, through the DELs), keeps
// the keys of its other slots, stays a primary and redirects the slot.
func TestDirtySlotDeleted(t *testing.T) {
	defer verifyNoLeaks(t)
	ctx := context.Background()
	ps := make([]*testPeer, 4)
	for i := range ps {
		ps[i] = startTestPeer(t, i, t.TempDir())
	}
	defer func() {
		for _, p := range ps {
			p.stop()
		}
	}()
	formShards(t, clustersOf(ps))
	ranges := SplitEven(3)
	owner := func(i int, s uint16) NodeID { return ps[i].c.SlotOwner(s) }
	waitFor(t, "slots known", func() bool {
		for i := range ps {
			if owner(i, 0) != ps[0].id || owner(i, 16383) != ps[2].id {
				return false
			}
		}
		return true
	})
	rc := ps[3].client()
	defer rc.Close()
	waitFor(t, "replica attached", func() bool {
		return rc.Do(ctx, "cluster", "replicate", string(ps[0].id)).Err() == nil &&
			ps[0].srv.ReplInfo()["connected_slaves"] == "1"
	})

	// two hash tags in the first primary's slots
	var tags []string
	for i := 0; len(tags) < 2; i++ {
		tag := fmt.Sprintf("{t%d}", i)
		if s := KeySlot([]byte(tag)); s <= ranges[0].End && (len(tags) == 0 || KeySlot([]byte(tags[0])) != s) {
			tags = append(tags, tag)
		}
	}
	lost, kept := KeySlot([]byte(tags[0])), KeySlot([]byte(tags[1]))
	pc := ps[0].client()
	defer pc.Close()
	const n = 50
	for i := 0; i < n; i++ {
		for _, tag := range tags {
			if err := pc.Set(ctx, fmt.Sprintf("%sk%d", tag, i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func(p *testPeer, s uint16) int { return p.srv.Keyspace().CountKeysInSlot(int(s)) }
	waitFor(t, "replica has the keys", func() bool { return count(ps[3], lost) == n && count(ps[3], kept) == n })

	// the second primary takes the slot; the first is not told
	c1 := ps[1].client()
	defer c1.Close()
	if err := c1.Do(ctx, "cluster", "setslot", lost, "node", string(ps[1].id)).Err(); err != nil {
		t.Fatalf("setslot node on the taker: %v", err)
	}
	waitFor(t, "the old owner and its replica dropped the slot's keys", func() bool {
		return owner(0, lost) == ps[1].id && count(ps[0], lost) == 0 && count(ps[3], lost) == 0
	})
	if c0, c3 := count(ps[0], kept), count(ps[3], kept); c0 != n || c3 != n {
		t.Errorf("keys of the kept slot: %d on the primary, %d on its replica, want %d", c0, c3, n)
	}
	if role := statusOf(t, ps[0].c).Self().Role; role != RolePrimary {
		t.Errorf("the old owner is %v", role)
	}
	// Under load a heartbeat can come late and the old owner briefly judge
	// the cluster down (CLUSTERDOWN, as Redis Cluster would); it must
	// redirect once it sees the cluster whole again.
	var err error
	moved := fmt.Sprintf("MOVED %d %s", lost, ps[1].addr)
	waitFor(t, "the old owner redirects a key of the lost slot", func() bool {
		err = pc.Get(ctx, tags[0]+"k1").Err()
		return err != nil && strings.HasPrefix(err.Error(), moved)
	})
	if got := pc.Get(ctx, tags[1]+"k1").Val(); got != "1" {
		t.Errorf("GET of a key of the kept slot: %q", got)
	}
}
