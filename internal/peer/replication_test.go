package peer

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/kv"
)

// testPeer is a whole peer in process, made by the front door (New):
// cluster layer, router and store.
type testPeer struct {
	p    *Peer
	c    *Cluster
	srv  *kv.Server
	addr string
	id   NodeID
	done chan struct{}
}

func startTestPeer(t *testing.T, i int, dir string) *testPeer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Port = 0 // any free port, and any free bus port
	cfg.Cluster = true
	cfg.Store.DataDir = dir
	cfg.Store.EventLoops = 1
	cfg.Store.Logger = log.New(tlog{t}, fmt.Sprintf("kv%d ", i), log.Lmicroseconds)
	cfg.Logger = log.New(tlog{t}, fmt.Sprintf("p%d ", i), log.Lmicroseconds)
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPeer{p: p, c: p.Cluster(), srv: p.Store(), addr: p.Addr().String(), id: p.Cluster().ID(), done: make(chan struct{})}
	go func() {
		if err := p.Serve(); err != nil {
			t.Errorf("serve: %v", err)
		}
		close(tp.done)
	}()
	return tp
}

func (p *testPeer) stop() {
	p.p.Close()
	<-p.done
}

func clustersOf(ps []*testPeer) []*Cluster {
	cs := make([]*Cluster, len(ps))
	for i, p := range ps {
		cs[i] = p.c
	}
	return cs
}

func (p *testPeer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, PoolSize: 2, DisableIdentity: true})
}

// TestReplicatedCluster runs three primaries with a replica each, in
// process over real memberlist: CLUSTER REPLICATE, the data reaching the
// replicas, WAIT, READONLY reads, CLUSTER REPLICAS/NODES, a manual
// CLUSTER FAILOVER under a write load that loses no acknowledged write,
// and an automatic failover when a primary stops.
func TestReplicatedCluster(t *testing.T) {
	defer verifyNoLeaks(t)
	ctx := context.Background()
	ps := make([]*testPeer, 6)
	for i := range ps {
		ps[i] = startTestPeer(t, i, t.TempDir())
	}
	defer func() {
		for _, p := range ps {
			if p != nil {
				p.stop()
			}
		}
	}()
	// slots and config epochs as redis-cli sets them, before the peers
	// know each other
	splitSlotsAndJoin(t, ps[:6], 3)
	for i := 3; i < 6; i++ {
		cl := ps[i].client()
		waitFor(t, "cluster replicate", func() bool {
			return cl.Do(ctx, "cluster", "replicate", string(ps[i-3].id)).Err() == nil
		})
		cl.Close()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{ps[0].addr}, MaxRedirects: 16,
		DisableIdentity: true, ReadTimeout: 5 * time.Second,
		// go-redis reloads the slot map on MOVED, and only every minute by
		// default otherwise: it would dial a dead primary that long
		ClusterStateReloadInterval: 200 * time.Millisecond})
	defer cc.Close()
	waitFor(t, "replicas attached", func() bool {
		for i := 0; i < 3; i++ {
			if ps[i].srv.ReplInfo()["connected_slaves"] != "1" {
				return false
			}
		}
		return cc.Set(ctx, "probe", "1", 0).Err() == nil
	})
	for i := 0; i < 300; i++ {
		if err := cc.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// WAIT on the owner's connection after a write
	owner, err := cc.MasterForKey(ctx, "k7")
	if err != nil {
		t.Fatal(err)
	}
	pipe := owner.Pipeline()
	pipe.Set(ctx, "k7", "seven", 0)
	w := pipe.Do(ctx, "wait", 1, 5000)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := w.Int(); n != 1 {
		t.Errorf("WAIT 1 = %v", w.Val())
	}
	// READONLY reads on the replica of k7's owner
	slot := KeySlot([]byte("k7"))
	var rep *testPeer
	for i := 3; i < 6; i++ {
		if own := ps[i].c.SlotOwner(slot); own == ps[i-3].id && ps[i-3].addr == owner.Options().Addr {
			rep = ps[i]
		}
	}
	if rep == nil {
		t.Fatal("no replica found for k7's owner")
	}
	rc := rep.client()
	defer rc.Close()
	// READONLY and GET on one connection (a pipeline), as READONLY is a
	// connection's state. The replica answers CLUSTERDOWN until gossip
	// has given it a view of the whole cluster, as Redis does.
	var get *redis.StringCmd
	waitFor(t, "the replica's cluster state to be ok", func() bool {
		_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ReadOnly(ctx)
			get = p.Get(ctx, "k7")
			return nil
		})
		return err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN")
	})
	if got, err := get.Result(); err != nil || got != "seven" {
		t.Errorf("READONLY GET on the replica = %q, %v", got, err)
	}
	if err := rc.Set(ctx, "k7", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
		t.Errorf("a write on a replica: %v, want MOVED", err)
	}
	// the roles reach every view by gossip
	waitFor(t, "CLUSTER REPLICAS and NODES list the replicas", func() bool {
		reps, err := rc.Do(ctx, "cluster", "replicas", string(ps[0].id)).StringSlice()
		return err == nil && len(reps) == 1 && strings.Contains(reps[0], "slave "+string(ps[0].id)) &&
			strings.Count(rc.ClusterNodes(ctx).Val(), "slave ") == 3
	})

	// manual failover of shard 0 under writes to one of its keys
	key := ""
	for i := 0; ; i++ {
		k := "c" + strconv.Itoa(i)
		if ps[0].c.SlotOwner(KeySlot([]byte(k))) == ps[0].id {
			key = k
			break
		}
	}
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if cc.Incr(ctx, key).Err() == nil {
				acked.Add(1)
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	r0 := ps[3].client()
	if err := r0.Do(ctx, "cluster", "failover").Err(); err != nil {
		t.Fatal(err)
	}
	r0.Close()
	waitFor(t, "manual failover", func() bool {
		role := statusOf(t, ps[3].c).Self().Role
		return role == RolePrimary && !ps[3].srv.IsReplica() && ps[0].srv.IsReplica()
	})
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	got, err := cc.Get(ctx, key).Int64()
	if err != nil || got != acked.Load() {
		t.Errorf("after CLUSTER FAILOVER %s = %d (%v), acknowledged INCRs %d", key, got, err, acked.Load())
	}
	t.Logf("manual failover: %d INCRs acknowledged, value %d", acked.Load(), got)
	waitFor(t, "old primary replicates from the new one", func() bool {
		return ps[0].srv.LinkUp() && ps[0].srv.ReplOffset() == ps[3].srv.ReplOffset()
	})

	// automatic failover: shard 1's primary stops
	ps[1].stop()
	ps[1] = nil
	start := time.Now()
	waitFor(t, "automatic failover", func() bool {
		role := statusOf(t, ps[4].c).Self().Role
		return role == RolePrimary && !ps[4].srv.IsReplica()
	})
	t.Logf("replica promoted %v after its primary stopped", time.Since(start))
	waitFor(t, "writes everywhere", func() bool { return cc.Set(ctx, "probe2", "1", 0).Err() == nil })
	for i := 0; i < 300; i++ {
		want := strconv.Itoa(i)
		if i == 7 {
			want = "seven"
		}
		// the client learns the new owners through errors and MOVED
		var v string
		var err error
		t0 := time.Now()
		for try := 0; try < 100; try++ {
			if v, err = cc.Get(ctx, "k"+strconv.Itoa(i)).Result(); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if el := time.Since(t0); el > 200*time.Millisecond {
			t.Logf("reading k%d took %v", i, el)
		}
		if err != nil || v != want {
			t.Errorf("k%d = %q (%v) after failovers, want %s", i, v, err, want)
		}
	}
}
