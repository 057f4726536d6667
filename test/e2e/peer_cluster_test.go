package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// peerNode is one `gantry peer --cluster` process.
type peerNode struct {
	port, bus int
	dir       string
	p         *proc
	// extra flags for `gantry peer`
	args []string
}

func startPeer(t *testing.T, n *peerNode) {
	t.Helper()
	args := append([]string{"peer", "--cluster", "--port", strconv.Itoa(n.port), "--cluster-port", strconv.Itoa(n.bus),
		"--data-dir", n.dir, "--cpus", "1"}, n.args...)
	n.p = startProc(t, "peer:"+strconv.Itoa(n.port), args...)
	waitPing(t, n.addr())
}

// waitPing waits until the peers at addrs answer PING (a process just
// started may not listen yet).
func waitPing(t *testing.T, addrs ...string) {
	t.Helper()
	for _, addr := range addrs {
		func() {
			c := redis.NewClient(&redis.Options{Addr: addr})
			defer c.Close()
			waitUntil(t, 20*time.Second, "peer "+addr+" answers PING", func() bool {
				return c.Ping(context.Background()).Err() == nil
			})
		}()
	}
}

func (n *peerNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func redisCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPeerClusterWithRedisTools: three gantry peers become a cluster with
// redis-cli --cluster create; check is clean; redis-cli -c and the go-redis
// ClusterClient read and write across all slots; a restarted peer comes
// back with its view from its data dir.
func TestPeerClusterWithRedisTools(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed (Debian package redis-tools; .ci/run installs it)")
	}
	nodes := make([]*peerNode, 3)
	var addrs []string
	for i := range nodes {
		nodes[i] = &peerNode{port: freePort(t), bus: freePort(t), dir: t.TempDir()}
		startPeer(t, nodes[i])
		addrs = append(addrs, nodes[i].addr())
	}
	out := redisCLI(t, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if !strings.Contains(out, "[OK] All 16384 slots covered") {
		t.Fatalf("cluster create:\n%s", out)
	}
	waitUntil(t, 20*time.Second, "cluster check clean", func() bool {
		out = redisCLI(t, "--cluster", "check", addrs[1])
		return strings.Contains(out, "[OK] All nodes agree about slots configuration") &&
			strings.Contains(out, "[OK] All 16384 slots covered") && !strings.Contains(out, "[ERR]")
	})

	// redis-cli -c follows MOVED: write through one node, read through another
	for i := 0; i < 30; i++ {
		key := "cli:" + strconv.Itoa(i)
		if got := strings.TrimSpace(redisCLI(t, "-c", "-p", strconv.Itoa(nodes[i%3].port), "set", key, "v"+strconv.Itoa(i))); got != "OK" {
			t.Fatalf("redis-cli -c set %s: %q", key, got)
		}
	}
	for i := 0; i < 30; i++ {
		key := "cli:" + strconv.Itoa(i)
		got := strings.TrimSpace(redisCLI(t, "-c", "-p", strconv.Itoa(nodes[(i+1)%3].port), "get", key))
		if got != "v"+strconv.Itoa(i) {
			t.Fatalf("redis-cli -c get %s = %q", key, got)
		}
	}
	// without -c the client sees the redirection itself
	moved := 0
	for i := 0; i < 30; i++ {
		if strings.HasPrefix(redisCLI(t, "-p", strconv.Itoa(nodes[0].port), "get", "cli:"+strconv.Itoa(i)), "MOVED ") {
			moved++
		}
	}
	if moved == 0 || moved == 30 {
		t.Fatalf("%d of 30 keys MOVED from one of three primaries", moved)
	}

	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	clusterWorkload(t, ctx, cc, 3000)
	err := cc.MSet(ctx, "a", "1", "b", "2").Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MSET across slots: %v, want CROSSSLOT", err)
	}
	if err := cc.MSet(ctx, "{u1}a", "1", "{u1}b", "2").Err(); err != nil {
		t.Fatalf("MSET with a hash tag: %v", err)
	}

	shards, err := cc.ClusterShards(ctx).Result()
	if err != nil || len(shards) != 3 {
		t.Fatalf("CLUSTER SHARDS: %v, %d shards", err, len(shards))
	}
	total := int64(0)
	for _, sh := range shards {
		for _, r := range sh.Slots {
			total += r.End - r.Start + 1
		}
		if len(sh.Nodes) != 1 || sh.Nodes[0].Role != "master" || sh.Nodes[0].Health != "online" {
			t.Fatalf("CLUSTER SHARDS nodes: %+v", sh.Nodes)
		}
	}
	if total != 16384 {
		t.Fatalf("CLUSTER SHARDS covers %d slots", total)
	}

	// a restarted peer reloads its data and its view
	var before string
	c0 := redis.NewClient(&redis.Options{Addr: addrs[0]})
	before = c0.ClusterMyID(ctx).Val()
	c0.Close()
	nodes[0].p.Stop(syscall.SIGTERM, 10*time.Second)
	startPeer(t, nodes[0])
	c0 = redis.NewClient(&redis.Options{Addr: addrs[0]})
	defer c0.Close()
	if id := c0.ClusterMyID(ctx).Val(); id != before {
		t.Fatalf("node id after restart %q, was %q", id, before)
	}
	waitUntil(t, 20*time.Second, "cluster ok after restart", func() bool {
		info := c0.ClusterInfo(ctx).Val()
		return strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3")
	})
	for i := 0; i < 30; i++ {
		key := "cli:" + strconv.Itoa(i)
		if got, err := cc.Get(ctx, key).Result(); err != nil || got != "v"+strconv.Itoa(i) {
			t.Fatalf("after restart: get %s = %q, %v", key, got, err)
		}
	}
}

// clusterWorkload runs a bounded mixed workload (strings, counters,
// hashes, lists) over keys in every slot range and checks every value.
func clusterWorkload(t *testing.T, ctx context.Context, cc *redis.ClusterClient, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		k := "w:" + strconv.Itoa(i%500)
		var err error
		switch i % 4 {
		case 0:
			err = cc.Set(ctx, k+":s", i, 0).Err()
		case 1:
			err = cc.Incr(ctx, k+":n").Err()
		case 2:
			err = cc.HSet(ctx, k+":h", "f"+strconv.Itoa(i), i).Err()
		case 3:
			err = cc.RPush(ctx, k+":l", i).Err()
		}
		if err != nil {
			t.Fatalf("op %d on %s: %v", i, k, err)
		}
	}
	for j := 0; j < 500; j++ {
		k := "w:" + strconv.Itoa(j)
		// key j saw ops i = j, j+500, ... with i%4 deciding the type
		var s, incr, hset, push []int
		for i := j; i < n; i += 500 {
			switch i % 4 {
			case 0:
				s = append(s, i)
			case 1:
				incr = append(incr, i)
			case 2:
				hset = append(hset, i)
			case 3:
				push = append(push, i)
			}
		}
		if len(s) > 0 {
			if got := cc.Get(ctx, k+":s").Val(); got != strconv.Itoa(s[len(s)-1]) {
				t.Fatalf("%s:s = %q, want %d", k, got, s[len(s)-1])
			}
		}
		if got := cc.Get(ctx, k+":n").Val(); len(incr) > 0 && got != strconv.Itoa(len(incr)) {
			t.Fatalf("%s:n = %q, want %d", k, got, len(incr))
		}
		if got := cc.HLen(ctx, k+":h").Val(); got != int64(len(hset)) {
			t.Fatalf("%s:h has %d fields, want %d", k, got, len(hset))
		}
		if got := cc.LRange(ctx, k+":l", 0, -1).Val(); fmt.Sprint(got) != fmt.Sprint(intsToStrings(push)) {
			t.Fatalf("%s:l = %v, want %v", k, got, push)
		}
	}
}

func intsToStrings(v []int) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strconv.Itoa(x)
	}
	return out
}

// TestGantryClusterCreateAndCheck: gantry's own cluster create and check
// make a cluster that redis-cli --cluster check also finds clean.
func TestGantryClusterCreateAndCheck(t *testing.T) {
	nodes := make([]*peerNode, 3)
	var addrs []string
	for i := range nodes {
		nodes[i] = &peerNode{port: freePort(t), bus: freePort(t), dir: t.TempDir()}
		startPeer(t, nodes[i])
		addrs = append(addrs, nodes[i].addr())
	}
	out, err := exec.Command(gantryBin, append([]string{"cluster", "create"}, addrs...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "[OK] 3 nodes agree") {
		t.Fatalf("gantry cluster create: %v\n%s", err, out)
	}
	// a second create refuses nodes that are no longer empty
	if out, err := exec.Command(gantryBin, append([]string{"cluster", "create"}, addrs...)...).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "is not empty") {
		t.Fatalf("second create: %v\n%s", err, out)
	}
	out, err = exec.Command(gantryBin, "cluster", "check", addrs[2]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "all 16384 slots covered") {
		t.Fatalf("gantry cluster check: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("redis-cli"); err == nil {
		out := redisCLI(t, "--cluster", "check", addrs[0])
		if !strings.Contains(out, "[OK] All 16384 slots covered") || strings.Contains(out, "[ERR]") {
			t.Fatalf("redis-cli --cluster check:\n%s", out)
		}
	}
	// primary 0 cut off from the two others (they are frozen with SIGSTOP,
	// so to it they fall silent as behind a partition): it refuses writes
	// once the node timeout has passed, and serves again when they return
	ctx := context.Background()
	c0 := redis.NewClient(&redis.Options{Addr: addrs[0], MaxRetries: -1})
	defer c0.Close()
	key := ""
	for i := 0; ; i++ {
		k := "p" + strconv.Itoa(i)
		if c0.Set(ctx, k, "1", 0).Err() == nil {
			key = k
			break
		}
	}
	for _, n := range nodes[1:] {
		_ = n.p.Cmd.Process.Signal(syscall.SIGSTOP)
	}
	waitUntil(t, 30*time.Second, "isolated primary refuses writes", func() bool {
		err := c0.Set(ctx, key, "2", 0).Err()
		return err != nil && strings.HasPrefix(err.Error(), "CLUSTERDOWN")
	})
	for _, n := range nodes[1:] {
		_ = n.p.Cmd.Process.Signal(syscall.SIGCONT)
	}
	waitUntil(t, 30*time.Second, "writes accepted after healing", func() bool {
		return c0.Set(ctx, key, "3", 0).Err() == nil
	})
	waitUntil(t, 30*time.Second, "check clean after healing", func() bool {
		return exec.Command(gantryBin, "cluster", "check", addrs[1]).Run() == nil
	})

	// a stopped primary makes check fail with a clear reason
	nodes[1].p.Stop(syscall.SIGTERM, 10*time.Second)
	waitUntil(t, 30*time.Second, "check reports the stopped node", func() bool {
		out, err := exec.Command(gantryBin, "cluster", "check", addrs[0]).CombinedOutput()
		return err != nil && strings.Contains(string(out), "is failing")
	})
}
