package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// failoverRounds is how many primaries TestPeerReplicasAndFailover kills
// (GANTRY_PEER_FAILOVER_ROUNDS, default 5).
func failoverRounds(t *testing.T) int {
	if s := os.Getenv("GANTRY_PEER_FAILOVER_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 50 {
			t.Fatalf("GANTRY_PEER_FAILOVER_ROUNDS=%q: want 1..50", s)
		}
		return n
	}
	return 5
}

// TestPeerReplicasAndFailover: six gantry peers become three primaries
// with a replica each through redis-cli --cluster create
// --cluster-replicas 1; check is clean; redis-cli -c and the go-redis
// ClusterClient work across all slots. Then, round after round, a primary
// is killed with SIGKILL while a ClusterClient writes: writes it
// acknowledged with WAIT 1 before the kill are all readable afterwards,
// the time from the kill to the first successful write to one of its
// slots is measured, and the killed peer, restarted, comes back as a
// replica of the new primary.
func TestPeerReplicasAndFailover(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed (Debian package redis-tools; .ci/run installs it)")
	}
	ctx := context.Background()
	nodes := make([]*peerNode, 6)
	var addrs []string
	byAddr := map[string]*peerNode{}
	for i := range nodes {
		nodes[i] = &peerNode{port: freePort(t), bus: freePort(t), dir: t.TempDir()}
		startPeer(t, nodes[i])
		addrs = append(addrs, nodes[i].addr())
		byAddr[nodes[i].addr()] = nodes[i]
	}
	out := redisCLI(t, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")...)
	if !strings.Contains(out, "[OK] All 16384 slots covered") {
		t.Fatalf("cluster create:\n%s", out)
	}
	checkClean := func(at string) {
		t.Helper()
		waitUntil(t, 30*time.Second, "cluster check clean with 3 replicas", func() bool {
			out = redisCLI(t, "--cluster", "check", at)
			return strings.Contains(out, "[OK] All nodes agree about slots configuration") &&
				strings.Contains(out, "[OK] All 16384 slots covered") && !strings.Contains(out, "[ERR]") &&
				strings.Count(out, "1 additional replica(s)") == 3
		})
	}
	checkClean(addrs[0])
	t.Logf("redis-cli --cluster check:\n%s", out)

	for i := 0; i < 30; i++ {
		key := "cli:" + strconv.Itoa(i)
		if got := strings.TrimSpace(redisCLI(t, "-c", "-p", strconv.Itoa(nodes[i%6].port), "set", key, "v"+strconv.Itoa(i))); got != "OK" {
			t.Fatalf("redis-cli -c set %s: %q", key, got)
		}
	}
	for i := 0; i < 30; i++ {
		key := "cli:" + strconv.Itoa(i)
		got := strings.TrimSpace(redisCLI(t, "-c", "-p", strconv.Itoa(nodes[(i+1)%6].port), "get", key))
		if got != "v"+strconv.Itoa(i) {
			t.Fatalf("redis-cli -c get %s = %q", key, got)
		}
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 16,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		// go-redis reloads its slot map on MOVED, and otherwise only every
		// 60 s by default: after a crash it would dial the dead primary
		// that long (as with Redis Cluster)
		ClusterStateReloadInterval: 100 * time.Millisecond})
	defer cc.Close()
	clusterWorkload(t, ctx, cc, 3000)
	shards, err := cc.ClusterShards(ctx).Result()
	if err != nil || len(shards) != 3 {
		t.Fatalf("CLUSTER SHARDS: %v, %d shards", err, len(shards))
	}
	for _, sh := range shards {
		if len(sh.Nodes) != 2 {
			t.Fatalf("CLUSTER SHARDS: a shard with nodes %+v", sh.Nodes)
		}
	}
	waitUntil(t, 10*time.Second, "CLUSTER SHARDS shows the replicas' offsets", func() bool {
		shards, err := cc.ClusterShards(ctx).Result()
		if err != nil {
			return false
		}
		for _, sh := range shards {
			for _, n := range sh.Nodes {
				if n.Role == "replica" && n.ReplicationOffset == 0 {
					return false
				}
			}
		}
		return true
	})
	// reads from the replicas (READONLY), as a ClusterClient with ReadOnly does
	ro := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ReadOnly: true})
	defer ro.Close()
	for i := 0; i < 30; i++ {
		if got := ro.Get(ctx, "cli:"+strconv.Itoa(i)).Val(); got != "v"+strconv.Itoa(i) {
			t.Fatalf("READONLY read of cli:%d = %q", i, got)
		}
	}

	rounds := failoverRounds(t)
	var times, promos []time.Duration
	for round := 0; round < rounds; round++ {
		took, promoted := failoverRound(t, ctx, cc, byAddr, round)
		times = append(times, took)
		promos = append(promos, promoted)
		checkClean(addrs[round%6])
	}
	t.Logf("PEER FAILOVER median %s of %d kills (kill -9 of a primary -> first successful write to one of its slots by the go-redis ClusterClient); replica promoted: median %s",
		medianOf(times), len(times), medianOf(promos))
}

// medianOf returns the median and the sorted values, in milliseconds.
func medianOf(ds []time.Duration) string {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	var ms []string
	for _, d := range ds {
		ms = append(ms, strconv.FormatInt(d.Milliseconds(), 10))
	}
	return fmt.Sprintf("%dms (sorted ms: %s)", ds[len(ds)/2].Milliseconds(), strings.Join(ms, " "))
}

// failoverRound kills the primary of a random slot under load and returns
// the time from the kill to the first write accepted for that slot, and
// to the promotion of its replica.
func failoverRound(t *testing.T, ctx context.Context, cc *redis.ClusterClient, byAddr map[string]*peerNode, round int) (took, promoted time.Duration) {
	t.Helper()
	tag := fmt.Sprintf("{fo%d-%d}", round, rand.IntN(1<<30))
	// every primary has its replica attached and in sync before the kill
	waitUntil(t, 60*time.Second, "every primary has an online replica", func() bool {
		ok := true
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			if !strings.Contains(c.Info(ctx, "replication").Val(), "connected_slaves:1") {
				ok = false
			}
			return nil
		})
		return err == nil && ok
	})
	owner, err := cc.MasterForKey(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	victim := byAddr[owner.Options().Addr]
	if victim == nil {
		t.Fatalf("the owner of %s is %s, not one of ours", tag, owner.Options().Addr)
	}

	// background load over all slots during the kill
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var loadOK, loadErr atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if cc.Set(ctx, fmt.Sprintf("load:%d", i%5000), i, 0).Err() == nil {
				loadOK.Add(1)
			} else {
				loadErr.Add(1)
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	// writes acknowledged by the replica (WAIT 1) before the kill
	acked := map[string]string{}
	for i := 0; i < 200; i++ {
		k := tag + ":" + strconv.Itoa(i)
		v := strconv.Itoa(round*1000 + i)
		pipe := owner.Pipeline()
		pipe.Set(ctx, k, v, 0)
		w := pipe.Do(ctx, "wait", 1, 1000)
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("SET+WAIT on %s: %v", owner.Options().Addr, err)
		}
		if n, _ := w.Int(); n >= 1 {
			acked[k] = v
		}
	}
	if len(acked) < 150 {
		t.Fatalf("only %d of 200 writes acknowledged by a replica", len(acked))
	}

	// its replica, to see when the cluster promoted it
	victimID := owner.ClusterMyID(ctx).Val()
	var repAddr string
	waitUntil(t, 30*time.Second, "the primary's CLUSTER NODES lists its replica", func() bool {
		for _, l := range strings.Split(owner.ClusterNodes(ctx).Val(), "\n") {
			f := strings.Fields(l)
			if len(f) > 3 && f[3] == victimID && strings.Contains(f[2], "slave") {
				repAddr, _, _ = strings.Cut(f[1], "@")
			}
		}
		return repAddr != ""
	})
	rep := redis.NewClient(&redis.Options{Addr: repAddr, MaxRetries: -1})
	defer rep.Close()

	victim.p.Kill9()
	killed := time.Now()
	promotedCh := make(chan time.Duration, 1)
	go func() { // the replica's side, polled on its own connection
		for time.Since(killed) < 60*time.Second {
			if strings.Contains(rep.Info(ctx, "replication").Val(), "role:master") {
				promotedCh <- time.Since(killed)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		promotedCh <- -1
	}()
	for {
		if err := cc.Set(ctx, tag+":probe", "x", 0).Err(); err == nil {
			took = time.Since(killed)
			break
		}
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("no write to %s accepted within 60 s of killing %s", tag, victim.addr())
		}
		time.Sleep(5 * time.Millisecond)
	}
	promoted = <-promotedCh
	t.Logf("round %d: killed primary %s; replica %s promoted after %v; first write to its slot (go-redis ClusterClient) after %v (load: %d ok, %d errors so far)",
		round, victim.addr(), repAddr, promoted, took, loadOK.Load(), loadErr.Load())
	for k, v := range acked {
		got, err := cc.Get(ctx, k).Result()
		if err != nil || got != v {
			t.Fatalf("acknowledged write %s=%s lost after the failover: got %q, %v", k, v, got, err)
		}
	}

	// the killed peer comes back as a replica of the new primary
	startPeer(t, victim)
	vc := redis.NewClient(&redis.Options{Addr: victim.addr(), MaxRetries: -1})
	defer vc.Close()
	waitUntil(t, 60*time.Second, "the restarted peer replicates the new primary", func() bool {
		info := vc.Info(ctx, "replication").Val()
		return strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up")
	})
	return took, promoted
}

// TestGantryClusterCreateWithReplicas: gantry cluster create --replicas 1
// makes three primaries with a replica each; check is clean; a manual
// CLUSTER FAILOVER swaps a primary and its replica without losing a
// write.
func TestGantryClusterCreateWithReplicas(t *testing.T) {
	ctx := context.Background()
	nodes := make([]*peerNode, 6)
	var addrs []string
	for i := range nodes {
		nodes[i] = &peerNode{port: freePort(t), bus: freePort(t), dir: t.TempDir()}
		startPeer(t, nodes[i])
		addrs = append(addrs, nodes[i].addr())
	}
	out, err := exec.Command(gantryBin, append([]string{"cluster", "create", "--replicas", "1"}, addrs...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "[OK] 6 nodes agree") {
		t.Fatalf("gantry cluster create --replicas 1: %v\n%s", err, out)
	}
	if strings.Count(string(out), "S: ") != 3 {
		t.Fatalf("create does not list 3 replicas:\n%s", out)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 16, ClusterStateReloadInterval: 100 * time.Millisecond})
	defer cc.Close()
	for i := 0; i < 100; i++ {
		if err := cc.Set(ctx, "g"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// manual failover of the shard of g0, then every value is still there
	owner, err := cc.MasterForKey(ctx, "g0")
	if err != nil {
		t.Fatal(err)
	}
	myID := owner.ClusterMyID(ctx).Val()
	var replica *redis.Client
	for _, a := range addrs[3:] {
		c := redis.NewClient(&redis.Options{Addr: a})
		defer c.Close()
		nodes := c.ClusterNodes(ctx).Val()
		for _, l := range strings.Split(nodes, "\n") {
			if strings.Contains(l, "myself,slave "+myID) {
				replica = c
			}
		}
	}
	if replica == nil {
		t.Fatalf("no replica of %s (%s)", owner.Options().Addr, myID)
	}
	if err := replica.Do(ctx, "cluster", "failover").Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the replica took over", func() bool {
		return strings.Contains(replica.Info(ctx, "replication").Val(), "role:master") &&
			strings.Contains(owner.Info(ctx, "replication").Val(), "role:slave")
	})
	for i := 0; i < 100; i++ {
		var v string
		var err error
		for try := 0; try < 50; try++ {
			if v, err = cc.Get(ctx, "g"+strconv.Itoa(i)).Result(); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil || v != strconv.Itoa(i) {
			t.Fatalf("g%d = %q, %v after CLUSTER FAILOVER", i, v, err)
		}
	}
	out, err = exec.Command(gantryBin, "cluster", "check", addrs[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("gantry cluster check after the failover: %v\n%s", err, out)
	}
}
