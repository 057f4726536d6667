package peer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/kv/kvtest"
)

// TestClusterLuaQueueAndShardedPubSub runs three primaries in process:
// the Lua queue of kvtest through go-redis's cluster client (every
// queue's keys in one slot, queues spread over the shards), scripts with
// keys of two slots refused (CROSSSLOT), and sharded pub/sub routed by
// the channel's slot (SSUBSCRIBE on the owner, MOVED elsewhere).
func TestClusterLuaQueueAndShardedPubSub(t *testing.T) {
	// Cleanups run last in first: the peers stop before the leak check.
	t.Cleanup(func() { verifyNoLeaks(t) })
	ctx := context.Background()
	ps, cc := startThreePrimaries(t)
	for _, q := range []string{"emails", "images", "reports"} {
		if err := kvtest.RunQueue(ctx, cc, q, 100, 4); err != nil {
			t.Fatalf("queue %s: %v", q, err)
		}
	}
	err := cc.Eval(ctx, "return 1", []string{"a", "b"}).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Errorf("EVAL with keys of two slots: %v", err)
	}

	sub := cc.SSubscribe(ctx, "orders")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := cc.SPublish(ctx, "orders", "o1").Result(); err != nil || n != 1 {
		t.Fatalf("spublish: %d %v", n, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := sub.ReceiveMessage(rctx)
	if err != nil || m.Channel != "orders" || m.Payload != "o1" {
		t.Fatalf("sharded message %+v %v", m, err)
	}
	moved := 0
	for _, p := range ps {
		cl := p.client()
		err := cl.Do(ctx, "spublish", "orders", "x").Err()
		cl.Close()
		if err != nil && strings.HasPrefix(err.Error(), "MOVED") {
			moved++
		}
	}
	if moved != 2 {
		t.Errorf("SPUBLISH on the two nodes that do not own the slot: %d MOVED, want 2", moved)
	}
}

// startThreePrimaries starts three primaries in process with the slots
// split evenly, and returns them with a go-redis cluster client once
// every shard serves. The peers and the client are closed at the test's cleanup.
func startThreePrimaries(t *testing.T) ([]*testPeer, *redis.ClusterClient) {
	t.Helper()
	ctx := context.Background()
	ps := make([]*testPeer, 3)
	for i := range ps {
		ps[i] = startTestPeer(t, i, t.TempDir())
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.stop()
		}
	})
	splitSlotsAndJoin(t, ps, 3)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{ps[0].addr}, MaxRedirects: 16,
		DisableIdentity: true, ReadTimeout: 10 * time.Second, ClusterStateReloadInterval: 200 * time.Millisecond})
	t.Cleanup(func() { cc.Close() })
	waitFor(t, "cluster serving", func() bool {
		for _, k := range []string{"a", "b", "c", "d"} {
			if cc.Set(ctx, k, "1", 0).Err() != nil {
				return false
			}
		}
		return true
	})
	return ps, cc
}

// splitSlotsAndJoin gives the first primaries of ps the slots split
// evenly with config epochs 1..primaries, as redis-cli sets them before
// the peers know each other, then joins every other peer to the first.
func splitSlotsAndJoin(t *testing.T, ps []*testPeer, primaries int) {
	t.Helper()
	ctx := context.Background()
	for i, r := range SplitEven(primaries) {
		cl := ps[i].client()
		if err := cl.Do(ctx, "cluster", "addslotsrange", r.Start, r.End).Err(); err != nil {
			t.Fatal(err)
		}
		if err := cl.Do(ctx, "cluster", "set-config-epoch", i+1).Err(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	for _, p := range ps[1:] {
		if err := p.c.Join([]string{busAddr(ps[0].c)}); err != nil {
			t.Fatal(err)
		}
	}
}
