package partition

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/peer"
)

// peerCluster is six `gantry peer --cluster` containers (three primaries,
// three replicas). Each container sits on two networks: the cluster
// network, which peers announce and gossip on and which the partition cuts,
// and a control network the test uses to reach every node, isolated or not.
type peerCluster struct {
	t          *testing.T
	names      []string
	clusterIPs []string // on the cluster network: announced, gossip, clients
	ctlIPs     []string // on the control network: the test's own view
	network    string   // the cluster network
	ids        []string // node IDs, once create has run
}

// skipWithoutPeerTools skips a peer container test on a machine without
// Docker or redis-cli.
func skipWithoutPeerTools(t *testing.T, what string) {
	t.Helper()
	if dockerSkip != "" {
		t.Skip(what + " skipped: " + dockerSkip)
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip(what + " skipped: redis-cli not installed (Debian package redis-tools; .ci/run installs it)")
	}
}

const peerNodeTimeout = time.Second

func newPeerCluster(t *testing.T, n int) *peerCluster {
	t.Helper()
	return newPeerClusterArgs(t, n, nil)
}

// newPeerClusterArgs starts the containers with extra(i) appended to
// container i's flags.
func newPeerClusterArgs(t *testing.T, n int, extra func(i int, clusterIP string) []string) *peerCluster {
	t.Helper()
	ctx := context.Background()
	tag := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	image := buildImage(t, "gantry-peer-partition-test:"+tag)
	clusterNet, clusterSub := createNetwork(t, "gantry-peers-"+tag)
	ctlNet, ctlSub := createNetwork(t, "gantry-peers-ctl-"+tag)
	c := &peerCluster{t: t, network: clusterNet}
	for i := range n {
		c.names = append(c.names, fmt.Sprintf("gantry-peer-%s-p%d", tag, i+1))
		c.clusterIPs = append(c.clusterIPs, fmt.Sprintf("%s.%d", clusterSub, 11+i))
		c.ctlIPs = append(c.ctlIPs, fmt.Sprintf("%s.%d", ctlSub, 11+i))
	}
	removeContainers(t, c.names)
	for i := range n {
		args := []string{"run", "-d", "--name", c.names[i], "--network", clusterNet, "--ip", c.clusterIPs[i],
			image, "peer", "--cluster",
			"--bind", "0.0.0.0", "--port", "6379", "--cluster-port", "16379",
			"--protected-mode", "no", // replicas connect from other hosts, without a password
			"--announce-addr", c.clusterIPs[i] + ":6379",
			"--cluster-node-timeout", peerNodeTimeout.String(),
			"--data-dir", "/data",
		}
		if extra != nil {
			args = append(args, extra(i, c.clusterIPs[i])...)
		}
		if _, err := docker(ctx, args...); err != nil {
			t.Fatal(err)
		}
		if _, err := docker(ctx, "network", "connect", "--ip", c.ctlIPs[i], ctlNet, c.names[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		cl := c.node(i)
		waitFor(t, 30*time.Second, c.names[i]+" answers PING", func() (bool, string) {
			err := cl.Ping(ctx).Err()
			return err == nil, fmt.Sprint(err)
		})
	}
	return c
}

// create makes the containers one cluster with `redis-cli --cluster
// create --cluster-replicas 1` (three primaries, three replicas), waits
// until every node sees three primaries with slots and three replicas,
// records the node IDs and returns the last node's view.
func (c *peerCluster) create(ctx context.Context) []peer.NodeLine {
	t := c.t
	t.Helper()
	var addrs []string
	for _, ip := range c.clusterIPs {
		addrs = append(addrs, ip+":6379")
	}
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Minute)
	out, err := exec.CommandContext(cctx, "redis-cli",
		append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	ccancel()
	if err != nil || !strings.Contains(string(out), "[OK] All 16384 slots covered") {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	var lines []peer.NodeLine
	waitFor(t, 60*time.Second, "every node to see 3 primaries and 3 replicas", func() (bool, string) {
		for i := range c.names {
			v, err := c.view(ctx, i)
			if err != nil {
				return false, err.Error()
			}
			var prim, repl int
			for _, l := range v {
				switch {
				case slices.Contains(l.Flags, "master") && len(l.Slots) > 0:
					prim++
				case slices.Contains(l.Flags, "slave"):
					repl++
				}
			}
			if prim != 3 || repl != 3 {
				return false, fmt.Sprintf("%s: %d primaries, %d replicas", c.names[i], prim, repl)
			}
			lines = v
		}
		return true, ""
	})
	c.ids = make([]string, len(c.names))
	for i := range c.names {
		id, err := c.node(i).ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		c.ids[i] = id
	}
	return lines
}

// index returns the container of a node ID, or -1.
func (c *peerCluster) index(id string) int { return slices.Index(c.ids, id) }

// replicaOf returns the container replicating primary in lines, or -1.
func (c *peerCluster) replicaOf(lines []peer.NodeLine, primary string) int {
	for _, l := range lines {
		if l.Primary == primary {
			if i := c.index(l.ID); i >= 0 {
				return i
			}
		}
	}
	return -1
}

// node is a plain (non-cluster) client of container i over the control
// network.
func (c *peerCluster) node(i int) *redis.Client {
	cl := redis.NewClient(&redis.Options{Addr: c.ctlIPs[i] + ":6379", MaxRetries: -1,
		DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second})
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// view is container i's CLUSTER NODES, parsed.
func (c *peerCluster) view(ctx context.Context, i int) ([]peer.NodeLine, error) {
	s, err := c.node(i).ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	return peer.ParseClusterNodes(s)
}

// ownerOfSlot returns the ID of the primary that lines says owns slot.
func ownerOfSlot(lines []peer.NodeLine, slot uint16) string {
	for _, l := range lines {
		for _, r := range l.Slots {
			if slot >= r.Start && slot <= r.End {
				return l.ID
			}
		}
	}
	return ""
}

// healed reports whether every node has the same owner for every slot,
// slot owned by newOwner, and oldPrimary as a replica of newOwner (a
// healed partition), or what is not so yet.
func (c *peerCluster) healed(ctx context.Context, slot uint16, newOwner, oldPrimary string) (bool, string) {
	var first map[uint16]string
	for i := range c.names {
		v, err := c.view(ctx, i)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", c.names[i], err)
		}
		owners := map[uint16]string{}
		for _, l := range v {
			for _, r := range l.Slots {
				for s := r.Start; s <= r.End; s++ {
					if prev, dup := owners[s]; dup && prev != l.ID {
						return false, fmt.Sprintf("%s: slot %d owned by %s and %s", c.names[i], s, prev, l.ID)
					}
					owners[s] = l.ID
				}
			}
		}
		if len(owners) != peer.NumSlots {
			return false, fmt.Sprintf("%s: %d slots covered", c.names[i], len(owners))
		}
		if owners[slot] != newOwner {
			return false, fmt.Sprintf("%s: slot %d owned by %s, want %s", c.names[i], slot, owners[slot], newOwner)
		}
		if old, ok := lineOf(v, oldPrimary); !ok || old.Primary != newOwner {
			return false, fmt.Sprintf("%s: old primary is %+v", c.names[i], old)
		}
		if first == nil {
			first = owners
			continue
		}
		for s, o := range owners {
			if first[s] != o {
				return false, fmt.Sprintf("slot %d: %s vs %s", s, first[s], o)
			}
		}
	}
	return true, ""
}

func lineOf(lines []peer.NodeLine, id string) (peer.NodeLine, bool) {
	for _, l := range lines {
		if l.ID == id {
			return l, true
		}
	}
	return peer.NodeLine{}, false
}

// TestPeerPartitionedPrimary cuts one primary off from the rest of a
// six-node cluster: it refuses writes once its node timeout has passed,
// the majority promotes its replica, writes acknowledged with WAIT 1 before
// the cut survive, and after healing every node agrees on one owner per
// slot, with the old primary now a replica of the new one.
func TestPeerPartitionedPrimary(t *testing.T) {
	skipWithoutPeerTools(t, "peer partition test")
	ctx := context.Background()
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(time.Millisecond) }
	c := newPeerCluster(t, 6)
	t.Logf("%s: image built, six peers answer", since())

	lines := c.create(ctx)
	t.Logf("%s: cluster formed", since())

	// The victim: the primary that owns slot 0; its replica should take over.
	victimID := ownerOfSlot(lines, 0)
	victim, replica := c.index(victimID), c.replicaOf(lines, victimID)
	if victim < 0 || replica < 0 {
		t.Fatalf("no primary of slot 0 with a replica in %+v", lines)
	}
	replicaID := c.ids[replica]

	// Keys that live on the victim, written and acknowledged by its replica
	// (WAIT 1) before the cut.
	vc := c.node(victim)
	acked := map[string]string{}
	for k := 0; len(acked) < 200 && k < 20000; k++ {
		key := "pk:" + strconv.Itoa(k)
		if ownerOfSlot(lines, peer.KeySlot([]byte(key))) != victimID {
			continue
		}
		val := "v" + strconv.Itoa(k)
		var n *redis.Cmd
		_, err := vc.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, val, 0)
			n = p.Do(ctx, "WAIT", 1, 2000)
			return nil
		})
		if err != nil {
			t.Fatalf("set %s on the victim: %v", key, err)
		}
		if got, _ := n.Int(); got >= 1 {
			acked[key] = val
		}
	}
	if len(acked) < 100 {
		t.Fatalf("only %d of the victim's writes were acknowledged by a replica", len(acked))
	}
	t.Logf("%s: %d writes acknowledged with WAIT 1 on %s", since(), len(acked), c.names[victim])

	// Cut the victim off the cluster network (the control network stays).
	if _, err := docker(ctx, "network", "disconnect", c.network, c.names[victim]); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	t.Logf("%s: disconnected %s (primary of slot 0) from the cluster network", since(), c.names[victim])

	// The isolated primary refuses writes once it has lost the majority.
	var probe string
	for k := range acked {
		probe = k
		break
	}
	waitFor(t, 30*time.Second, "the isolated primary to refuse writes", func() (bool, string) {
		err := vc.Set(ctx, probe, "isolated", 0).Err()
		return err != nil && strings.HasPrefix(err.Error(), "CLUSTERDOWN"), fmt.Sprint(err)
	})
	refused := time.Since(cut)
	t.Logf("%s: the isolated primary refuses writes (%s after the cut; node timeout %s)", since(), refused.Round(time.Millisecond), peerNodeTimeout)

	// The majority promotes the replica.
	others := []int{}
	for i := range c.names {
		if i != victim {
			others = append(others, i)
		}
	}
	waitFor(t, 60*time.Second, "the majority to promote the replica", func() (bool, string) {
		for _, i := range others {
			v, err := c.view(ctx, i)
			if err != nil {
				return false, err.Error()
			}
			if o := ownerOfSlot(v, 0); o != replicaID {
				return false, fmt.Sprintf("%s: slot 0 owned by %s", c.names[i], o)
			}
		}
		return true, ""
	})
	t.Logf("%s: replica %s owns the slots (%s after the cut)", since(), c.names[replica], time.Since(cut).Round(time.Millisecond))

	// The majority side serves the victim's slots: acknowledged writes are
	// there, new writes go through.
	rc := c.node(replica)
	for k, v := range acked {
		got, err := rc.Get(ctx, k).Result()
		if err != nil || got != v {
			t.Fatalf("acknowledged %s=%s before the cut; new primary answers %q %v", k, v, got, err)
		}
	}
	if err := rc.Set(ctx, probe, "majority", 0).Err(); err != nil {
		t.Fatalf("write to the new primary: %v", err)
	}

	// Heal.
	if _, err := docker(ctx, "network", "connect", "--ip", c.clusterIPs[victim], c.network, c.names[victim]); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: reconnected %s", since(), c.names[victim])

	// One owner per slot, the same on every node, and the old primary is a
	// replica of the new one.
	waitFor(t, 90*time.Second, "every node to agree, the old primary a replica", func() (bool, string) {
		return c.healed(ctx, 0, replicaID, victimID)
	})
	t.Logf("%s: converged: one owner per slot on all six nodes", since())

	// The old primary, now a replica, catches up with the new primary's
	// data: the write made while it was away reaches it.
	waitFor(t, 30*time.Second, "the old primary to replicate the new one", func() (bool, string) {
		// READONLY and GET on one connection: reads on a replica need it
		var get *redis.StringCmd
		_, _ = vc.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ReadOnly(ctx)
			get = p.Get(ctx, probe)
			return nil
		})
		v, err := get.Result()
		if errors.Is(err, redis.Nil) {
			return false, "missing"
		}
		return err == nil && v == "majority", fmt.Sprintf("%q %v", v, err)
	})
	t.Logf("%s: old primary holds the majority's write", since())
}
