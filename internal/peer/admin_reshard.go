package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The resharding verbs of gantry cluster, speaking RESP to the peers as
// redis-cli --cluster does (and working against Redis nodes as well):
// slots move one at a time with SETSLOT IMPORTING/MIGRATING, keys in
// batches with GETKEYSINSLOT and MIGRATE ... KEYS, then SETSLOT NODE on
// the destination, the source and every other primary.

// MoveOptions tunes slot moves.
type MoveOptions struct {
	// Batch is how many keys one MIGRATE carries (redis-cli's --cluster-pipeline, 10).
	Batch int
	// Timeout is MIGRATE's timeout (redis-cli's --cluster-timeout, 60 s).
	Timeout time.Duration
}

func (o MoveOptions) withDefaults() MoveOptions {
	if o.Batch <= 0 {
		o.Batch = 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	return o
}

// adminNode is a node of the cluster being administered and a client.
type adminNode struct {
	NodeLine
	c *redis.Client
}

func (n *adminNode) primary() bool { return n.has("master") }

func (n *adminNode) slotCount() int {
	c := 0
	for _, r := range n.Slots {
		c += r.Len()
	}
	return c
}

// adminCluster is the cluster as seen from one node.
type adminCluster struct {
	nodes []*adminNode
}

func (ac *adminCluster) close() {
	for _, n := range ac.nodes {
		n.c.Close()
	}
}

func (ac *adminCluster) byID(id string) *adminNode {
	for _, n := range ac.nodes {
		if n.ID == id || (len(id) >= 8 && strings.HasPrefix(n.ID, id)) {
			return n
		}
	}
	return nil
}

// loadCluster reads CLUSTER NODES from addr and connects to every node
// that is not failing.
func loadCluster(ctx context.Context, addr string) (*adminCluster, error) {
	lines, err := nodesOf(ctx, addr)
	if err != nil {
		return nil, err
	}
	ac := &adminCluster{}
	for _, l := range lines {
		if l.has("fail") || l.has("noaddr") {
			continue
		}
		ac.nodes = append(ac.nodes, &adminNode{NodeLine: l,
			c: redis.NewClient(&redis.Options{Addr: l.Addr, MaxRetries: -1, ReadTimeout: 2 * time.Minute})})
	}
	return ac, nil
}

// checkStable refuses to reshard a cluster whose views differ, that does
// not cover every slot or has open slots (Check reports all three).
func checkStable(ctx context.Context, addr string) error {
	if err := Check(ctx, addr, io.Discard); err != nil {
		return fmt.Errorf("please fix the cluster first: %w", err)
	}
	return nil
}

// moveSlot moves slot s from src to dst with its keys; it returns the
// number of keys moved.
func (ac *adminCluster) moveSlot(ctx context.Context, s uint16, src, dst *adminNode, o MoveOptions) (int, error) {
	if err := dst.c.Do(ctx, "cluster", "setslot", s, "importing", src.ID).Err(); err != nil {
		return 0, fmt.Errorf("%s: setslot %d importing: %w", dst.Addr, s, err)
	}
	if err := src.c.Do(ctx, "cluster", "setslot", s, "migrating", dst.ID).Err(); err != nil {
		return 0, fmt.Errorf("%s: setslot %d migrating: %w", src.Addr, s, err)
	}
	host, port, err := net.SplitHostPort(dst.Addr)
	if err != nil {
		return 0, fmt.Errorf("destination address %q: %w", dst.Addr, err)
	}
	moved := 0
	for {
		keys, err := src.c.ClusterGetKeysInSlot(ctx, int(s), o.Batch).Result()
		if err != nil {
			return moved, fmt.Errorf("%s: getkeysinslot %d: %w", src.Addr, s, err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"migrate", host, port, "", 0, o.Timeout.Milliseconds(), "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.c.Do(ctx, args...).Err(); err != nil {
			return moved, fmt.Errorf("%s: migrate of %d keys of slot %d to %s: %w", src.Addr, len(keys), s, dst.Addr, err)
		}
		moved += len(keys)
	}
	// the destination first (it bumps its epoch), then the source, then the rest
	if err := dst.c.Do(ctx, "cluster", "setslot", s, "node", dst.ID).Err(); err != nil {
		return moved, fmt.Errorf("%s: setslot %d node: %w", dst.Addr, s, err)
	}
	if err := src.c.Do(ctx, "cluster", "setslot", s, "node", dst.ID).Err(); err != nil &&
		!strings.Contains(err.Error(), ErrSetSlotReplica.Error()) { // it gave away its last slot
		return moved, fmt.Errorf("%s: setslot %d node: %w", src.Addr, s, err)
	}
	for _, n := range ac.nodes {
		if n == src || n == dst || !n.primary() {
			continue
		}
		if err := n.c.Do(ctx, "cluster", "setslot", s, "node", dst.ID).Err(); err != nil {
			return moved, fmt.Errorf("%s: setslot %d node: %w", n.Addr, s, err)
		}
	}
	return moved, nil
}

// slotMove is one slot of a plan.
type slotMove struct {
	slot     uint16
	src, dst *adminNode
}

// ReshardPlan chooses n slots to move to dst from the sources (all other
// primaries with slots when from is empty), from each in proportion to
// how many it owns, as redis-cli does.
func reshardPlan(ac *adminCluster, from []string, to string, n int) ([]slotMove, error) {
	dst := ac.byID(to)
	if dst == nil {
		return nil, fmt.Errorf("no node %q in the cluster", to)
	}
	if !dst.primary() {
		return nil, fmt.Errorf("destination %s is not a primary", dst.Addr)
	}
	var srcs []*adminNode
	if len(from) == 0 || len(from) == 1 && from[0] == "all" {
		for _, x := range ac.nodes {
			if x != dst && x.primary() && x.slotCount() > 0 {
				srcs = append(srcs, x)
			}
		}
	} else {
		for _, id := range from {
			x := ac.byID(id)
			if x == nil {
				return nil, fmt.Errorf("no source node %q in the cluster", id)
			}
			if x == dst {
				return nil, errors.New("the destination is also a source")
			}
			srcs = append(srcs, x)
		}
	}
	total := 0
	for _, x := range srcs {
		total += x.slotCount()
	}
	if n <= 0 || n > total {
		return nil, fmt.Errorf("%d slots asked, the sources own %d", n, total)
	}
	slices.SortFunc(srcs, func(a, b *adminNode) int { return b.slotCount() - a.slotCount() })
	var plan []slotMove
	for i, x := range srcs {
		share := int(float64(n)*float64(x.slotCount())/float64(total) + 0.5)
		if i == 0 {
			share = int(float64(n)*float64(x.slotCount())/float64(total)) + 1
		}
		share = min(share, n-len(plan), x.slotCount())
		for _, r := range x.Slots {
			for s := int(r.Start); s <= int(r.End) && share > 0; s++ {
				plan = append(plan, slotMove{uint16(s), x, dst})
				share--
			}
		}
	}
	return plan, nil
}

func (ac *adminCluster) run(ctx context.Context, plan []slotMove, o MoveOptions, out io.Writer) error {
	start := time.Now()
	keys := 0
	for i, m := range plan {
		k, err := ac.moveSlot(ctx, m.slot, m.src, m.dst, o)
		keys += k
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Moving slot %d from %s to %s: %d keys (%d/%d)\n", m.slot, m.src.Addr, m.dst.Addr, k, i+1, len(plan))
	}
	fmt.Fprintf(out, "[OK] moved %d slots and %d keys in %v\n", len(plan), keys, time.Since(start).Round(time.Millisecond))
	return nil
}

// Reshard moves n slots to the node to from the nodes from (IDs or
// unique ID prefixes of 8+ characters; empty or "all" for every other
// primary). It prints the plan and moves only if confirm (nil: yes)
// agrees.
func Reshard(ctx context.Context, addr string, from []string, to string, n int, confirm func() bool, o MoveOptions, out io.Writer) error {
	o = o.withDefaults()
	ac, err := loadCluster(ctx, addr)
	if err != nil {
		return err
	}
	defer ac.close()
	if err := checkStable(ctx, addr); err != nil {
		return err
	}
	plan, err := reshardPlan(ac, from, to, n)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, m := range plan {
		counts[m.src.Addr]++
	}
	fmt.Fprintf(out, ">>> Resharding plan: %d slots to %s (%s)\n", len(plan), plan[0].dst.Addr, plan[0].dst.ID)
	for a, c := range counts {
		fmt.Fprintf(out, "    %d slots from %s\n", c, a)
	}
	if confirm != nil && !confirm() {
		return errors.New("reshard: not confirmed, nothing moved")
	}
	return ac.run(ctx, plan, o, out)
}

// Rebalance moves slots so that every primary (with useEmpty, also the
// primaries without slots) owns about the same number; a primary off by
// less than threshold percent is left alone, as in redis-cli.
func Rebalance(ctx context.Context, addr string, useEmpty bool, threshold float64, o MoveOptions, out io.Writer) error {
	o = o.withDefaults()
	ac, err := loadCluster(ctx, addr)
	if err != nil {
		return err
	}
	defer ac.close()
	if err := checkStable(ctx, addr); err != nil {
		return err
	}
	var ps []*adminNode
	for _, x := range ac.nodes {
		if x.primary() && (useEmpty || x.slotCount() > 0) {
			ps = append(ps, x)
		}
	}
	if len(ps) < 2 {
		return errors.New("rebalance: fewer than two primaries to balance")
	}
	expected := float64(NumSlots) / float64(len(ps))
	balance := map[*adminNode]int{}
	over := false
	for _, x := range ps {
		balance[x] = x.slotCount() - int(expected)
		if threshold > 0 && abs(float64(x.slotCount())-expected)/expected*100 > threshold {
			over = true
		}
	}
	if !over {
		fmt.Fprintf(out, "*** No rebalancing needed! All nodes are within the %.2f%% threshold.\n", threshold)
		return nil
	}
	// the remainder of the integer division goes to the first ones
	sum := 0
	for _, x := range ps {
		sum += balance[x]
	}
	for i := 0; sum > 0; i = (i + 1) % len(ps) {
		balance[ps[i]]--
		sum--
	}
	var plan []slotMove
	for {
		slices.SortFunc(ps, func(a, b *adminNode) int { return balance[a] - balance[b] })
		dst, src := ps[0], ps[len(ps)-1]
		if balance[dst] >= 0 || balance[src] <= 0 {
			break
		}
		n := min(-balance[dst], balance[src])
		taken := 0
		for _, m := range plan {
			if m.src == src {
				taken++
			}
		}
		var own []uint16
		for _, r := range src.Slots {
			for s := int(r.Start); s <= int(r.End); s++ {
				own = append(own, uint16(s))
			}
		}
		for _, s := range own[taken : taken+n] {
			plan = append(plan, slotMove{s, src, dst})
		}
		fmt.Fprintf(out, ">>> Moving %d slots from %s to %s\n", n, src.Addr, dst.Addr)
		balance[dst] += n
		balance[src] -= n
	}
	return ac.run(ctx, plan, o, out)
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// AddNode makes the empty peer at newAddr join the cluster of existing
// (CLUSTER MEET) and waits up to wait until the cluster knows it.
func AddNode(ctx context.Context, newAddr, existing string, wait time.Duration, out io.Writer) error {
	nc := redis.NewClient(&redis.Options{Addr: newAddr, MaxRetries: -1})
	defer nc.Close()
	info, err := nc.Info(ctx, "cluster").Result()
	if err != nil {
		return fmt.Errorf("%s: %w", newAddr, err)
	}
	if !strings.Contains(info, "cluster_enabled:1") {
		return fmt.Errorf("%s is not a cluster node (start it with --cluster)", newAddr)
	}
	ci, err := nc.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", newAddr, err)
	}
	keys, err := nc.DBSize(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", newAddr, err)
	}
	if !strings.Contains(ci, "cluster_known_nodes:1\r") || keys != 0 {
		return fmt.Errorf("%s is not empty (it knows other nodes or holds keys)", newAddr)
	}
	lines, err := nodesOf(ctx, existing)
	if err != nil {
		return err
	}
	var me NodeLine
	for _, l := range lines {
		if l.has("myself") {
			me = l
		}
	}
	host, port, err := net.SplitHostPort(me.Addr)
	if err != nil {
		return fmt.Errorf("%s announces %q: %w", existing, me.Addr, err)
	}
	newID, err := nc.ClusterMyID(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", newAddr, err)
	}
	fmt.Fprintf(out, ">>> Sending CLUSTER MEET %s %s %d to %s\n", host, port, me.BusPort, newAddr)
	if err := nc.Do(ctx, "cluster", "meet", host, port, me.BusPort).Err(); err != nil {
		return fmt.Errorf("%s: meet: %w", newAddr, err)
	}
	fmt.Fprint(out, "waiting for the cluster to know the new node")
	deadline := time.Now().Add(wait)
	for {
		lines, err := nodesOf(ctx, existing)
		if err == nil && slices.ContainsFunc(lines, func(l NodeLine) bool { return l.ID == newID }) {
			fmt.Fprintf(out, " ok\n[OK] New node %s (%s) added\n", newAddr, newID)
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(out)
			return fmt.Errorf("add-node: %s does not know %s after %v", existing, newAddr, wait)
		}
		fmt.Fprint(out, ".")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// DelNode removes the node id, which must own no slots, from the cluster
// of addr: every other node forgets it, then it is reset (CLUSTER RESET
// SOFT), as redis-cli --cluster del-node does.
func DelNode(ctx context.Context, addr, id string, out io.Writer) error {
	ac, err := loadCluster(ctx, addr)
	if err != nil {
		return err
	}
	defer ac.close()
	victim := ac.byID(id)
	if victim == nil {
		return fmt.Errorf("no node %q in the cluster of %s", id, addr)
	}
	if c := victim.slotCount(); c > 0 {
		return fmt.Errorf("node %s owns %d slots: reshard them away first", victim.Addr, c)
	}
	for _, n := range ac.nodes {
		if n != victim && n.Primary == victim.ID {
			return fmt.Errorf("node %s replicates %s: move it first (CLUSTER REPLICATE)", n.Addr, victim.Addr)
		}
	}
	fmt.Fprintf(out, ">>> Removing node %s (%s)\n", victim.ID, victim.Addr)
	for _, n := range ac.nodes {
		if n == victim {
			continue
		}
		if err := n.c.Do(ctx, "cluster", "forget", victim.ID).Err(); err != nil {
			return fmt.Errorf("%s: forget %s: %w", n.Addr, victim.ID, err)
		}
		fmt.Fprintf(out, "    %s forgot it\n", n.Addr)
	}
	if err := victim.c.Do(ctx, "cluster", "reset", "soft").Err(); err != nil {
		return fmt.Errorf("%s: cluster reset: %w", victim.Addr, err)
	}
	fmt.Fprintf(out, "[OK] %s reset; it can be stopped\n", victim.Addr)
	return nil
}

// ParseIDList splits a comma-separated list of node IDs.
func ParseIDList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
