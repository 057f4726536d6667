package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/peer"
	"github.com/gantry-project/gantry/internal/testutil"
)

// startPeerCluster starts n gantry peers and makes a cluster of them with
// redis-cli --cluster create.
func startPeerCluster(t *testing.T, n int) ([]*peerNode, []string) {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed (Debian package redis-tools; .ci/run installs it)")
	}
	nodes := make([]*peerNode, n)
	var addrs []string
	for i := range nodes {
		// these tests move slots under load and kill no peer: a node
		// timeout of 5 s (the default is 1 s) keeps a heartbeat late on a
		// busy test machine from failing the cluster in mid-move
		nodes[i] = &peerNode{port: freePort(t), bus: freePort(t), dir: t.TempDir(),
			args: []string{"--cluster-node-timeout", "5s"}}
		startPeer(t, nodes[i])
		addrs = append(addrs, nodes[i].addr())
	}
	out := redisCLI(t, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if !strings.Contains(out, "[OK] All 16384 slots covered") {
		t.Fatalf("cluster create:\n%s", out)
	}
	waitCheckClean(t, addrs[0])
	return nodes, addrs
}

// waitCheckClean waits until redis-cli --cluster check finds nothing wrong.
func waitCheckClean(t *testing.T, addr string) {
	t.Helper()
	out := ""
	deadline := time.Now().Add(30 * time.Second)
	for {
		o, _ := exec.Command("redis-cli", "--cluster", "check", addr).CombinedOutput()
		out = string(o)
		if strings.Contains(out, "[OK] All nodes agree about slots configuration") &&
			strings.Contains(out, "[OK] All 16384 slots covered") && !strings.Contains(out, "[ERR]") &&
			!strings.Contains(out, "[WARNING]") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-cli --cluster check %s not clean:\n%s", addr, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func myID(t *testing.T, addr string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	id, err := c.ClusterMyID(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// retryable reports whether err is one a cluster client may retry: the
// redirections and TRYAGAIN/CLUSTERDOWN when go-redis ran out of retries.
func retryable(err error) bool {
	s := err.Error()
	for _, p := range []string{"MOVED ", "ASK ", "TRYAGAIN ", "CLUSTERDOWN "} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// keyLoad writes and reads a bounded set of keys through a ClusterClient:
// each key belongs to one goroutine, so after an acknowledged SET a GET
// must return that value. It records the last acknowledged value of
// every key, and the values of writes that failed (their outcome is
// unknown).
type keyLoad struct {
	mu        sync.Mutex
	acked     map[string]string
	uncertain map[string][]string
	ops       int
	retryErrs int
	firstErr  error
}

// count returns the writes so far.
func (l *keyLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ops
}

// waitOps waits until n writes were made, or the load failed or ended.
func (l *keyLoad) waitOps(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, 60*time.Second, fmt.Sprintf("%d writes", n), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.ops >= n || l.firstErr != nil
	})
}

func (l *keyLoad) fail(err error) {
	l.mu.Lock()
	if l.firstErr == nil {
		l.firstErr = err
	}
	l.mu.Unlock()
}

func (l *keyLoad) run(ctx context.Context, cc *redis.ClusterClient, keys []string) {
	// bounded in time by ctx and in count; paced to leave the shared
	// machine some room
	for seq := 0; ctx.Err() == nil && seq < 500_000; seq++ {
		if seq%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		k := keys[seq%len(keys)]
		v := strconv.Itoa(seq)
		err := cc.Set(context.Background(), k, v, 0).Err()
		l.mu.Lock()
		l.ops++
		switch {
		case err == nil:
			l.acked[k] = v
			delete(l.uncertain, k)
		case retryable(err):
			l.retryErrs++
			l.uncertain[k] = append(l.uncertain[k], v)
		default:
			l.mu.Unlock()
			l.fail(fmt.Errorf("SET %s: %w", k, err))
			return
		}
		want, unsure := l.acked[k], len(l.uncertain[k]) > 0
		l.mu.Unlock()
		got, err := cc.Get(context.Background(), k).Result()
		switch {
		case err != nil && retryable(err):
			l.mu.Lock()
			l.retryErrs++
			l.mu.Unlock()
		case err != nil && !errors.Is(err, redis.Nil):
			l.fail(fmt.Errorf("GET %s: %w", k, err))
			return
		case !unsure && got != want:
			l.fail(fmt.Errorf("GET %s = %q right after SET acknowledged %q", k, got, want))
			return
		}
	}
}

// verify checks, after the load, that every key holds its last
// acknowledged value (or one of the writes whose outcome is unknown) and
// that no key is stored twice.
func (l *keyLoad) verify(t *testing.T, cc *redis.ClusterClient, addrs []string) {
	t.Helper()
	ctx := context.Background()
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := map[string]bool{}
	for k := range l.acked {
		keys[k] = true
	}
	for k := range l.uncertain {
		keys[k] = true
	}
	for k := range keys {
		got, err := cc.Get(ctx, k).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("final GET %s: %v", k, err)
		}
		ok := got == l.acked[k] && !errors.Is(err, redis.Nil)
		for _, v := range l.uncertain[k] {
			ok = ok || got == v
		}
		if !ok {
			t.Fatalf("key %s = %q (err %v), last acknowledged %q, unknown outcomes %v", k, got, err, l.acked[k], l.uncertain[k])
		}
	}
	var total int64
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		n, err := c.DBSize(ctx).Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != int64(len(keys)) {
		t.Fatalf("the nodes hold %d keys, %d were written: a key is stored twice or lost", total, len(keys))
	}
}

// TestPeerReshardUnderLoad: 1,000 slots move between three primaries (500
// with redis-cli --cluster reshard, 500 with gantry cluster reshard) while
// a go-redis ClusterClient writes and reads 400 keys of the moved slots;
// no acknowledged
// write is lost, no key is on two nodes, check is clean, and the client
// sees no error but retryable ones.
func TestPeerReshardUnderLoad(t *testing.T) {
	_, addrs := startPeerCluster(t, 3)
	ids := []string{myID(t, addrs[0]), myID(t, addrs[1]), myID(t, addrs[2])}
	redirects := &redirectCount{}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 16,
		MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond,
		NewClient: func(o *redis.Options) *redis.Client {
			c := redis.NewClient(o)
			c.AddHook(redirects)
			return c
		}})
	defer cc.Close()
	load := &keyLoad{acked: map[string]string{}, uncertain: map[string][]string{}}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// 400 keys in the slots both moves take (redis-cli takes the first
	// slots of each source: about 0-249 and 5461-5711; gantry's reshard
	// then takes the first 500 of the receiver, the same ones), so keys
	// are migrated while they are written
	var keys []string
	for i := 0; len(keys) < 400; i++ {
		k := "rk:" + strconv.Itoa(i)
		if s := peer.KeySlot([]byte(k)); s < 240 || s >= 5461 && s < 5700 {
			keys = append(keys, k)
		}
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load.run(ctx, cc, keys[w*100:(w+1)*100])
		}()
	}
	// bounded: the moves below end the load; a hang ends it after 4 minutes
	guard := time.AfterFunc(4*time.Minute, stop)
	defer guard.Stop()
	// the moves start under load: every writer has written a few keys
	load.waitOps(t, 40)

	start := time.Now()
	out, err := exec.Command("redis-cli", "--cluster", "reshard", addrs[0], "--cluster-from", ids[0]+","+ids[1],
		"--cluster-to", ids[2], "--cluster-slots", "500", "--cluster-yes").CombinedOutput()
	if err != nil || strings.Contains(string(out), "[ERR]") {
		stop()
		wg.Wait()
		t.Fatalf("redis-cli --cluster reshard: %v\n%s", err, testutil.Tail(string(out), 4000))
	}
	t.Logf("redis-cli --cluster reshard: 500 slots in %v", time.Since(start).Round(time.Millisecond))
	waitCheckClean(t, addrs[0])

	start = time.Now()
	out, err = exec.Command(gantryBin, "cluster", "reshard", addrs[1], "--from", ids[2], "--to", ids[0],
		"--slots", "500", "--yes").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "[OK] moved 500 slots") {
		stop()
		wg.Wait()
		t.Fatalf("gantry cluster reshard: %v\n%s", err, testutil.Tail(string(out), 4000))
	}
	t.Logf("gantry cluster reshard: 500 slots in %v; %s", time.Since(start).Round(time.Millisecond),
		lastLine(string(out)))
	// the load goes on past the moves: about every key written once more
	// on the layout they left
	load.waitOps(t, load.count()+len(keys))
	stop()
	wg.Wait()
	if load.firstErr != nil {
		t.Fatalf("client error: %v", load.firstErr)
	}
	t.Logf("client: %d SETs, %d retryable errors surfaced after go-redis's retries; replies go-redis followed: %s",
		load.ops, load.retryErrs, redirects)
	if redirects.total() == 0 {
		t.Fatal("the client was never redirected: the slots did not move under it")
	}
	if load.ops < 100 {
		t.Fatalf("only %d writes during the moves", load.ops)
	}
	waitCheckClean(t, addrs[2])
	load.verify(t, cc, addrs)
}

// TestPeerAddRebalanceDelNode: a fourth peer joins (redis-cli --cluster
// add-node), gets its share (gantry cluster rebalance --use-empty-masters),
// gives it all away again (gantry cluster reshard) and is deleted
// (redis-cli --cluster del-node); the keys stay readable throughout and
// the deleted node ends alone.
func TestPeerAddRebalanceDelNode(t *testing.T) {
	_, addrs := startPeerCluster(t, 3)
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 16})
	defer cc.Close()
	for i := 0; i < 300; i++ {
		if err := cc.Set(ctx, "ak:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	n4 := &peerNode{port: freePort(t), bus: freePort(t), dir: t.TempDir()}
	startPeer(t, n4)
	out := redisCLI(t, "--cluster", "add-node", n4.addr(), addrs[0])
	if !strings.Contains(out, "[OK] New node added correctly") {
		t.Fatalf("add-node:\n%s", out)
	}
	id4 := myID(t, n4.addr())
	waitCheckClean(t, addrs[0])
	// check compares slot maps, which a slot-less fourth node does not
	// change: wait until gossip has told every node about it, since
	// rebalance reads the cluster from addrs[1]
	for _, a := range append(slices.Clone(addrs), n4.addr()) {
		c := redis.NewClient(&redis.Options{Addr: a})
		waitUntil(t, 30*time.Second, a+" lists 4 nodes", func() bool {
			s, err := c.ClusterNodes(ctx).Result()
			return err == nil && strings.Count(strings.TrimSpace(s), "\n") == 3
		})
		_ = c.Close()
	}

	o, err := exec.Command(gantryBin, "cluster", "rebalance", addrs[1], "--use-empty-masters").CombinedOutput()
	if err != nil || !strings.Contains(string(o), "[OK] moved") {
		t.Fatalf("gantry cluster rebalance: %v\n%s", err, testutil.Tail(string(o), 3000))
	}
	waitCheckClean(t, n4.addr())
	out = redisCLI(t, "--cluster", "check", addrs[0])
	if c := strings.Count(out, "(4096 slots) master"); c != 4 {
		t.Fatalf("after rebalance, %d of 4 primaries own 4096 slots:\n%s", c, out)
	}
	checkKeys := func() {
		t.Helper()
		for i := 0; i < 300; i++ {
			if got, err := cc.Get(ctx, "ak:"+strconv.Itoa(i)).Result(); err != nil || got != strconv.Itoa(i) {
				for _, a := range addrs {
					c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
					info := c.ClusterInfo(ctx).Val()
					nodes := c.ClusterNodes(ctx).Val()
					c.Close()
					t.Logf("%s:\n%s\n%s", a, info, nodes)
				}
				t.Fatalf("ak:%d = %q, %v", i, got, err)
			}
		}
	}
	checkKeys()

	o, err = exec.Command(gantryBin, "cluster", "reshard", addrs[0], "--from", id4, "--to", myID(t, addrs[0]),
		"--slots", "4096", "--yes").CombinedOutput()
	if err != nil || !strings.Contains(string(o), "[OK] moved 4096 slots") {
		t.Fatalf("gantry cluster reshard away: %v\n%s", err, testutil.Tail(string(o), 3000))
	}
	waitCheckClean(t, addrs[0])
	checkKeys() // the client follows MOVED from the emptied node
	out = redisCLI(t, "--cluster", "del-node", addrs[0], id4)
	if !strings.Contains(out, "CLUSTER RESET") {
		t.Fatalf("del-node:\n%s", out)
	}
	waitCheckClean(t, addrs[1])
	out = redisCLI(t, "--cluster", "check", addrs[1])
	if strings.Contains(out, id4) || strings.Contains(out, n4.addr()) {
		t.Fatalf("the deleted node is still in the cluster:\n%s", out)
	}
	checkKeys()
	c4 := redis.NewClient(&redis.Options{Addr: n4.addr(), MaxRetries: -1})
	defer c4.Close()
	// it stays alone (the others do not gossip it back, nor it them): not
	// a wait for anything, a window in which nothing may happen
	time.Sleep(3 * time.Second)
	nodes, err := c4.ClusterNodes(ctx).Result()
	if err != nil || strings.Count(strings.TrimSpace(nodes), "\n") != 0 {
		t.Fatalf("the deleted node knows: %v\n%s", err, nodes)
	}
	if err := exec.Command(gantryBin, "cluster", "check", addrs[2]).Run(); err != nil {
		t.Fatalf("gantry cluster check after del-node: %v", err)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

// redirectCount counts the redirections and TRYAGAINs that node clients
// received (and the ClusterClient followed).
type redirectCount struct {
	mu     sync.Mutex
	counts map[string]int
}

func (r *redirectCount) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *redirectCount) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil {
			if kind, _, ok := strings.Cut(err.Error(), " "); ok && (kind == "MOVED" || kind == "ASK" || kind == "TRYAGAIN") {
				r.mu.Lock()
				if r.counts == nil {
					r.counts = map[string]int{}
				}
				r.counts[kind]++
				r.mu.Unlock()
			}
		}
		return err
	}
}

func (r *redirectCount) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (r *redirectCount) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.counts {
		n += c
	}
	return n
}

func (r *redirectCount) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("MOVED %d, ASK %d, TRYAGAIN %d", r.counts["MOVED"], r.counts["ASK"], r.counts["TRYAGAIN"])
}
