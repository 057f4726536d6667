package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrCheck is returned by Check when the cluster is not consistent and
// fully covered.
var ErrCheck = errors.New("cluster check failed")

// NodeLine is one line of CLUSTER NODES.
type NodeLine struct {
	ID      string
	Addr    string // host:port
	BusPort int
	Flags   []string
	Primary string
	Epoch   uint64
	Slots   []SlotRange
	// Open are the node's migrating/importing slots as CLUSTER NODES
	// shows them on the node's own line ("[5->-id]", "[5-<-id]")
	Open []string
}

// ParseClusterNodes parses the reply of CLUSTER NODES.
func ParseClusterNodes(s string) ([]NodeLine, error) {
	var out []NodeLine
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("cluster nodes line %q: want at least 8 fields", line)
		}
		nl := NodeLine{ID: f[0], Flags: strings.Split(f[2], ","), Primary: f[3]}
		addr, bus, _ := strings.Cut(f[1], "@")
		bus, _, _ = strings.Cut(bus, ",")
		nl.Addr = addr
		nl.BusPort, _ = strconv.Atoi(bus)
		nl.Epoch, _ = strconv.ParseUint(f[6], 10, 64)
		for _, sr := range f[8:] {
			if strings.HasPrefix(sr, "[") { // a migrating/importing slot
				nl.Open = append(nl.Open, sr)
				continue
			}
			r, err := ParseSlotRange(sr)
			if err != nil {
				return nil, fmt.Errorf("cluster nodes line %q: %w", line, err)
			}
			nl.Slots = append(nl.Slots, r)
		}
		out = append(out, nl)
	}
	return out, nil
}

func (nl NodeLine) has(flag string) bool { return slices.Contains(nl.Flags, flag) }

// signature is a node's view of who owns what, for comparing views.
func signature(lines []NodeLine) string {
	var parts []string
	for _, l := range lines {
		if len(l.Slots) == 0 {
			continue
		}
		var rs []string
		for _, r := range l.Slots {
			rs = append(rs, r.String())
		}
		parts = append(parts, l.ID+":"+strings.Join(rs, ","))
	}
	slices.Sort(parts)
	return strings.Join(parts, "|")
}

func nodesOf(ctx context.Context, addr string) ([]NodeLine, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	s, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: cluster nodes: %w", addr, err)
	}
	return ParseClusterNodes(s)
}

// Create makes a cluster of empty peers at addrs, as redis-cli --cluster
// create does with no replicas: an even split of the slots, a distinct
// config epoch per node, MEET of every node with the first, then it waits
// (up to wait) until every node has the same view. Progress goes to out.
func Create(ctx context.Context, addrs []string, wait time.Duration, out io.Writer) error {
	return CreateWithReplicas(ctx, addrs, 0, wait, out)
}

// CreateWithReplicas is Create with replicas per primary (redis-cli's
// --cluster-replicas): the first len(addrs)/(replicas+1) peers are the
// primaries, the others replicate them in turn (CLUSTER REPLICATE once
// they know each other).
func CreateWithReplicas(ctx context.Context, addrs []string, replicas int, wait time.Duration, out io.Writer) error {
	if replicas < 0 {
		return fmt.Errorf("create: %d replicas", replicas)
	}
	all := addrs
	nPrim := len(addrs) / (replicas + 1)
	if nPrim < 3 {
		return fmt.Errorf("create: %d nodes with %d replicas each leave %d primaries; a cluster needs at least 3", len(addrs), replicas, nPrim)
	}
	addrs = all[:nPrim]
	repAddrs := all[nPrim:]
	clients := make([]*redis.Client, len(addrs))
	for i, a := range addrs {
		clients[i] = redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		defer clients[i].Close()
	}
	for i, c := range clients {
		info, err := c.Info(ctx, "cluster").Result()
		if err != nil {
			return fmt.Errorf("%s: %w", addrs[i], err)
		}
		if !strings.Contains(info, "cluster_enabled:1") {
			return fmt.Errorf("%s is not a cluster node (start it with --cluster)", addrs[i])
		}
		ci, err := c.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: %w", addrs[i], err)
		}
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: %w", addrs[i], err)
		}
		if !strings.Contains(ci, "cluster_known_nodes:1\r") || !strings.Contains(ci, "cluster_slots_assigned:0\r") || n != 0 {
			return fmt.Errorf("%s is not empty (it knows other nodes, owns slots or holds keys)", addrs[i])
		}
	}
	for i, r := range SplitEven(len(addrs)) {
		fmt.Fprintf(out, ">>> %s: slots %v, config epoch %d\n", addrs[i], r, i+1)
		if err := clients[i].Do(ctx, "cluster", "addslotsrange", r.Start, r.End).Err(); err != nil {
			return fmt.Errorf("%s: addslotsrange %v: %w", addrs[i], r, err)
		}
		if err := clients[i].Do(ctx, "cluster", "set-config-epoch", i+1).Err(); err != nil {
			return fmt.Errorf("%s: set-config-epoch: %w", addrs[i], err)
		}
	}
	repClients := make([]*redis.Client, len(repAddrs))
	for i, a := range repAddrs {
		repClients[i] = redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		defer repClients[i].Close()
		if err := checkEmpty(ctx, repClients[i], a); err != nil {
			return err
		}
	}
	clients = append(clients, repClients...)
	first, err := nodesOf(ctx, addrs[0])
	if err != nil {
		return err
	}
	for _, l := range first {
		if l.has("myself") {
			host, port, err := net.SplitHostPort(l.Addr)
			if err != nil {
				return fmt.Errorf("%s announces %q: %w", addrs[0], l.Addr, err)
			}
			fmt.Fprintf(out, ">>> meeting %s (gossip port %d)\n", l.Addr, l.BusPort)
			for i := 1; i < len(clients); i++ {
				if err := clients[i].Do(ctx, "cluster", "meet", host, port, l.BusPort).Err(); err != nil {
					return fmt.Errorf("%s: meet: %w", addrs[i], err)
				}
			}
		}
	}
	deadline := time.Now().Add(wait)
	if len(repAddrs) > 0 {
		if err := replicateAll(ctx, addrs, repAddrs, repClients, deadline, out); err != nil {
			return err
		}
	}
	fmt.Fprint(out, "waiting for the cluster to agree")
	for {
		err := Check(ctx, addrs[0], io.Discard)
		if err == nil {
			fmt.Fprintln(out, " ok")
			return Check(ctx, addrs[0], out)
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(out)
			return fmt.Errorf("create: no agreement within %v: %w", wait, err)
		}
		fmt.Fprint(out, ".")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Check asks addr for the cluster's nodes, then every node for its view,
// and reports whether all views agree, every slot is covered and no node
// is failing. The summary goes to out; problems make it return ErrCheck.
func Check(ctx context.Context, addr string, out io.Writer) error {
	lines, err := nodesOf(ctx, addr)
	if err != nil {
		return err
	}
	var problems []string
	ref := signature(lines)
	var covered SlotMap
	for _, l := range lines {
		role := "M"
		if l.has("slave") {
			role = "S"
		}
		n := 0
		for _, r := range l.Slots {
			n += r.Len()
			for s := int(r.Start); s <= int(r.End); s++ {
				covered.Set(uint16(s), NodeID(l.ID), 0)
			}
		}
		fmt.Fprintf(out, "%s: %s %s slots:%d epoch:%d flags:%s\n", role, l.ID, l.Addr, n, l.Epoch, strings.Join(l.Flags, ","))
		if l.has("fail") || l.has("fail?") {
			problems = append(problems, fmt.Sprintf("node %s (%s) is failing", l.ID, l.Addr))
			continue
		}
		view, err := nodesOf(ctx, l.Addr)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if signature(view) != ref {
			problems = append(problems, fmt.Sprintf("node %s (%s) has another view of the slots", l.ID, l.Addr))
		}
		for _, v := range view {
			if v.has("myself") && len(v.Open) > 0 {
				problems = append(problems, fmt.Sprintf("node %s (%s) has open slots %s (a move was interrupted: finish it or CLUSTER SETSLOT s STABLE)",
					l.ID, l.Addr, strings.Join(v.Open, " ")))
			}
		}
	}
	if c := covered.Count(); c != NumSlots {
		problems = append(problems, fmt.Sprintf("%d of %d slots covered", c, NumSlots))
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(out, "[ERR] "+p)
		}
		return fmt.Errorf("%w: %s", ErrCheck, strings.Join(problems, "; "))
	}
	fmt.Fprintf(out, "[OK] %d nodes agree about the slots; all %d slots covered\n", len(lines), NumSlots)
	return nil
}
