package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/resp"
)

// Replicator is the data side of replication, and of slots lost to another
// primary; *kv.Server implements it. The Cluster's owner goroutine calls
// it: ReplicaOf must not block on the network.
type Replicator interface {
	// ReplicaOf replicates from the primary at addr (host:port), or with
	// "" becomes a primary keeping its data (REPLICAOF NO ONE).
	ReplicaOf(addr string)
	// ReplOffset is the replication offset (what a replica has applied).
	ReplOffset() int64
	// DeleteKeysInSlot deletes the keys of a slot another primary took
	// over (Ready.DirtySlots), logged as DELs, and returns how many.
	DeleteKeysInSlot(slot int) (int, error)
}

// ManualFailoverTimeout bounds a CLUSTER FAILOVER (without FORCE): the
// primary's writes stay paused for twice this at most, as in Redis.
var ManualFailoverTimeout = 5 * time.Second

// SetReplicator connects the store: from now on the node's role drives
// it (a replica replicates from its primary's address, a primary stops
// replicating), and its replication offset is the node's offset in
// heartbeats (election rank, CLUSTER SHARDS).
func (c *Cluster) SetReplicator(rep Replicator) error {
	c.replShared.Store(&replBox{rep})
	_, err := c.call(input{repl: rep})
	return err
}

// replBox holds the Replicator for the goroutines other than the owner
// (a manual failover waits for its offset; CLUSTER RESET empties it).
type replBox struct{ Replicator }

// replicator returns the store set by SetReplicator, or nil.
func (c *Cluster) replicator() Replicator {
	if b := c.replShared.Load(); b != nil {
		return b.Replicator
	}
	return nil
}

// manualFailoverCheck refuses a plain CLUSTER FAILOVER on a primary, or
// when the primary failed (FORCE is for that).
func manualFailoverCheck(st *Status) error {
	me := st.Self()
	if me.Role != RoleReplica {
		return errors.New("You should send CLUSTER FAILOVER to a replica")
	}
	if p, ok := st.Peer(me.Primary); ok && p.Fail {
		return errors.New("Master is down or failed, please use CLUSTER FAILOVER FORCE")
	}
	return nil
}

// syncRepl makes the store follow the node's role; it runs on the owner
// after every persisted step, so a replica that won an election is a
// writable primary before the router sends it a command, and a demoted
// primary replicates from the new owner of its slots.
func (c *Cluster) syncRepl() {
	if c.repl == nil {
		return
	}
	me := c.node.Self()
	want := ""
	if me.Role == RoleReplica {
		if p, ok := c.node.Peer(me.Primary); ok && p.Addr != "" {
			want = p.Addr
		} else {
			want = c.replWant // primary unknown yet: keep what we have
		}
	}
	if want == c.replWant {
		return
	}
	if want == "" {
		c.logger.Printf("cluster: promoted: the store stops replicating from %s", c.replWant)
	} else {
		c.logger.Printf("cluster: replica of %s: the store replicates from %s", me.Primary, want)
	}
	c.replWant = want
	c.repl.ReplicaOf(want)
}

// ManualFailover is CLUSTER FAILOVER without options, as Redis does it: the
// replica asks its primary to pause client writes (CLIENT PAUSE WRITE),
// learns the primary's replication offset at the pause, waits until it
// has applied that much, then holds a forced election (the primaries vote
// although its primary is alive) and takes over with a new epoch. Every
// write acknowledged by the old primary is on the new one. The old primary
// learns of the new epoch, follows the new primary and ends the pause; a
// failed attempt ends the pause at once.
func (c *Cluster) ManualFailover(ctx context.Context, timeout time.Duration) error {
	st, err := c.Status()
	if err != nil {
		return err
	}
	if err := manualFailoverCheck(st); err != nil {
		return err
	}
	p, _ := st.Peer(st.Self().Primary)
	if p.Addr == "" {
		return errors.New("my primary is unknown")
	}
	primaryAddr := p.Addr
	rep := c.replicator()
	if rep == nil {
		return errors.New("no replication")
	}
	// The election may promote this replica only while the primary is
	// surely paused: it ends no later than this call (taken first, so
	// the call's deadline is not before it), and the pause lasts twice
	// as long.
	until := c.now().Add(timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := &redis.Options{Addr: primaryAddr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: timeout, PoolSize: 1, DisableIdentity: true}
	if c.cfg.PeerClient != nil {
		c.cfg.PeerClient(opts)
	}
	cli := redis.NewClient(opts)
	defer func() { _ = cli.Close() }()
	pause := strconv.FormatInt((2 * timeout).Milliseconds(), 10)
	if err := cli.Do(ctx, "client", "pause", pause, "write").Err(); err != nil {
		return fmt.Errorf("pause the primary %s: %w", primaryAddr, err)
	}
	unpause := func() { _ = cli.Do(context.Background(), "client", "unpause").Err() }
	role, err := cli.Do(ctx, "role").Slice()
	if err != nil || len(role) < 2 {
		unpause()
		return fmt.Errorf("primary %s: ROLE: %w", primaryAddr, err)
	}
	target, ok := role[1].(int64)
	if !ok {
		unpause()
		return fmt.Errorf("primary %s: ROLE offset %v", primaryAddr, role[1])
	}
	for rep.ReplOffset() < target {
		select {
		case <-ctx.Done():
			unpause()
			return fmt.Errorf("manual failover: the replica did not reach the primary's offset %d in %v (at %d)",
				target, timeout, rep.ReplOffset())
		case <-time.After(2 * time.Millisecond):
		}
	}
	c.logger.Printf("cluster: manual failover: caught up with %s at offset %d, asking for votes", primaryAddr, target)
	if _, err := c.Do(Op{Kind: OpFailover, Mode: FailoverForce, Until: until}); err != nil {
		unpause()
		return err
	}
	// wait for the outcome; an election without a majority is tried again
	// once the voters may vote for this shard again (2 x node timeout); no
	// success by the deadline ends the pause
	attempt := time.Now()
	for {
		st, err := c.Status()
		if err != nil {
			unpause()
			return err
		}
		if st.Self().Role == RolePrimary {
			return nil
		}
		if retryAfter := 2*st.NodeTimeout + 100*time.Millisecond; !st.Electing && time.Since(attempt) > retryAfter {
			attempt = time.Now()
			c.logger.Printf("cluster: manual failover: no majority yet, asking again")
			if _, err := c.Do(Op{Kind: OpFailover, Mode: FailoverForce, Until: until}); err != nil {
				unpause()
				return err
			}
		}
		select {
		case <-ctx.Done():
			// A vote counted just before the end promoted this replica:
			// the primary stays paused until it follows it. Otherwise
			// no vote can promote it any more (the owner handles the
			// Status call after any vote it counted), and the primary
			// may go on.
			if st, err := c.Status(); err == nil && st.Self().Role == RolePrimary {
				return nil
			}
			unpause()
			return errors.New("manual failover: no majority of votes in time")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// CLUSTER REPLICATE node-id
func cmdReplicate(r *Router, args [][]byte, w *resp.Writer) {
	r.doReply(w, Op{Kind: OpReplicate, Node: NodeID(args[0])})
}

// CLUSTER FAILOVER [FORCE|TAKEOVER]: the default mode runs in the
// background (Redis also replies OK at once).
func cmdFailover(r *Router, args [][]byte, w *resp.Writer) {
	if len(args) > 1 {
		w.Error("ERR syntax error")
		return
	}
	mode := ""
	if len(args) == 1 {
		mode = strings.ToUpper(string(args[0]))
		if mode != "FORCE" && mode != "TAKEOVER" {
			w.Error("ERR syntax error")
			return
		}
	}
	switch mode {
	case "FORCE":
		r.doReply(w, Op{Kind: OpFailover, Mode: FailoverForce})
		return
	case "TAKEOVER":
		r.doReply(w, Op{Kind: OpFailover, Mode: FailoverTakeover})
		return
	}
	st, err := r.c.Status()
	if err == nil {
		err = manualFailoverCheck(st)
	}
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	c := r.c
	if !c.goTracked(func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-c.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := c.ManualFailover(ctx, ManualFailoverTimeout); err != nil {
			c.logger.Printf("cluster: manual failover: %v", err)
			return
		}
		c.logger.Printf("cluster: manual failover done")
	}) {
		w.Error("ERR the node is shutting down")
		return
	}
	w.OK()
}

// CLUSTER REPLICAS|SLAVES node-id: the CLUSTER NODES lines of its replicas.
func cmdReplicas(r *Router, args [][]byte, w *resp.Writer) {
	id := NodeID(args[0])
	st, err := r.c.Status()
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	p, ok := st.Peer(id)
	if !ok {
		w.Error("ERR " + unknownNode(id).Error())
		return
	}
	if p.Role != RolePrimary {
		w.Error("ERR The specified node is not a master")
		return
	}
	now := time.Now()
	var lines []string
	for _, q := range st.Peers {
		if q.Role == RoleReplica && q.Primary == id {
			lines = append(lines, nodeLine(st, q, now))
		}
	}
	w.Array(len(lines))
	for _, l := range lines {
		w.BulkString(l)
	}
}

// replicateAll makes replica i replicate primary i % len(primaries), once
// it knows that primary (CLUSTER REPLICATE fails with an unknown node
// until the MEETs have spread), and waits for every link to be up.
func replicateAll(ctx context.Context, primaries, repAddrs []string, reps []*redis.Client, deadline time.Time, out io.Writer) error {
	ids := make([]string, len(primaries))
	for i, a := range primaries {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		id, err := c.Do(ctx, "cluster", "myid").Text()
		_ = c.Close()
		if err != nil {
			return fmt.Errorf("%s: cluster myid: %w", a, err)
		}
		ids[i] = id
	}
	for i, rc := range reps {
		p := i % len(primaries)
		fmt.Fprintf(out, ">>> %s replicates %s (%s)\n", repAddrs[i], primaries[p], ids[p])
		for {
			err := rc.Do(ctx, "cluster", "replicate", ids[p]).Err()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: cluster replicate %s: %w", repAddrs[i], ids[p], err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	fmt.Fprint(out, "waiting for the replicas to sync")
	for i, rc := range reps {
		for {
			info, err := rc.Info(ctx, "replication").Result()
			if err == nil && strings.Contains(info, "master_link_status:up") {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(out)
				return fmt.Errorf("%s: replication link not up in time", repAddrs[i])
			}
			fmt.Fprint(out, ".")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	// every node's view lists the replicas (gossip spreads the roles)
	all := append(append([]string(nil), primaries...), repAddrs...)
	for _, a := range all {
		for {
			lines, err := nodesOf(ctx, a)
			n := 0
			for _, l := range lines {
				if l.has("slave") {
					n++
				}
			}
			if err == nil && n >= len(repAddrs) {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(out)
				return fmt.Errorf("%s does not see the %d replicas in time: %w", a, len(repAddrs), err)
			}
			fmt.Fprint(out, ".")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	fmt.Fprintln(out, " ok")
	return nil
}

// checkEmpty refuses a node that is not a fresh cluster node: a replica's
// data would be replaced by its primary's.
func checkEmpty(ctx context.Context, c *redis.Client, addr string) error {
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	if !strings.Contains(info, "cluster_enabled:1") {
		return fmt.Errorf("%s is not a cluster node (start it with --cluster)", addr)
	}
	ci, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	if !strings.Contains(ci, "cluster_known_nodes:1\r") || !strings.Contains(ci, "cluster_slots_assigned:0\r") || n != 0 {
		return fmt.Errorf("%s is not empty (it knows other nodes, owns slots or holds keys)", addr)
	}
	return nil
}
