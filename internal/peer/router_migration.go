package peer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/kv"
	"github.com/gantry-project/gantry/internal/resp"
)

const errTryAgainRehash = "TRYAGAIN Multiple keys request during rehashing of slot"

// wakeBlocked wakes the store's blocked clients so that they route again
// (a client blocked on a slot that moved gets MOVED or ASK). It runs on a
// goroutine of its own: refresh holds the cluster lock, and the shard
// locks must never be taken under it (EXEC holds shard locks and may run
// CLUSTER commands, which take the cluster lock).
func (r *Router) wakeBlocked() {
	ks := r.ks.Load()
	if ks == nil || !r.waking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		r.waking.Store(false)
		ks.WakeBlocked()
	}()
}

// buildOpenSlots adds the node's migrating and importing slots to a
// routing snapshot.
func (r *Router) buildOpenSlots(n *Node, rt *routes, index func(NodeID) int32) {
	for s := range n.mig.migrating {
		if dst, ok := n.Migrating(s); ok {
			if rt.migrating == nil {
				rt.migrating = make(map[uint16]int32)
			}
			rt.migrating[s] = index(dst)
		}
	}
	for s := range n.mig.importing {
		if _, ok := n.Importing(s); ok {
			if rt.importing == nil {
				rt.importing = make(map[uint16]bool)
			}
			rt.importing[s] = true
		}
	}
}

// routeOpenSlot routes a command on a slot this node migrates or imports,
// with Redis's rules; done is false when the normal rules apply.
//
//   - MIGRATE runs where it is sent.
//   - Migrating (this node owns the slot): keys that all exist run here;
//     all missing -> ASK to the destination; some missing -> TRYAGAIN.
//   - Importing: a command after ASKING (or RESTORE-ASKING) runs here,
//     except a multi-key command with a missing key (TRYAGAIN); without
//     ASKING the owner's MOVED applies.
//
// Existence comes from req.Exists, called under the command's shard locks;
// without it (a command queued in MULTI) the keys count as present.
func routeOpenSlot(rt *routes, slot uint16, req kv.RouteRequest) (string, bool) {
	to, migrating := rt.migrating[slot]
	importing := rt.importing[slot]
	if !migrating && !importing {
		return "", false
	}
	if req.Migrate {
		return "", true
	}
	missing := 0
	if req.Exists != nil {
		for _, k := range req.Keys {
			if !req.Exists(k) {
				missing++
			}
		}
	}
	if migrating {
		switch {
		case missing == 0:
			return "", true
		case missing < len(req.Keys):
			return errTryAgainRehash, true
		}
		return "ASK " + strconv.Itoa(int(slot)) + " " + rt.addrs[to], true
	}
	if !req.Asking {
		return "", false
	}
	if len(req.Keys) > 1 && missing > 0 {
		return errTryAgainRehash, true
	}
	return "", true
}

// writeOpenSlots appends this node's open slots to its CLUSTER NODES line
// as Redis does: [slot->-dst] migrating, [slot-<-src] importing.
func writeOpenSlots(b *strings.Builder, n *Node) {
	var ss []int
	for s := range n.mig.migrating {
		if _, ok := n.Migrating(s); ok {
			ss = append(ss, int(s))
		}
	}
	slices.Sort(ss)
	for _, s := range ss {
		fmt.Fprintf(b, " [%d->-%s]", s, n.mig.migrating[uint16(s)])
	}
	ss = ss[:0]
	for s := range n.mig.importing {
		if _, ok := n.Importing(s); ok {
			ss = append(ss, int(s))
		}
	}
	slices.Sort(ss)
	for _, s := range ss {
		fmt.Fprintf(b, " [%d-<-%s]", s, n.mig.importing[uint16(s)])
	}
}

// cmdSetSlot: CLUSTER SETSLOT slot IMPORTING id | MIGRATING id | STABLE |
// NODE id.
func cmdSetSlot(r *Router, args [][]byte, w *resp.Writer) {
	s, err := ParseSlot(string(args[0]))
	if err != nil {
		w.Error("ERR Invalid or out of range slot")
		return
	}
	action := strings.ToUpper(string(args[1]))
	wantArgs := 3
	if action == "STABLE" {
		wantArgs = 2
	}
	if len(args) != wantArgs || !slices.Contains([]string{"IMPORTING", "MIGRATING", "STABLE", "NODE"}, action) {
		w.Error("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
		return
	}
	var id NodeID
	if wantArgs == 3 {
		id = NodeID(args[2])
	}
	// count the keys before taking the cluster lock: shard locks are never
	// taken under it (see wakeBlocked)
	keys := 0
	if ks := r.ks.Load(); ks != nil && action == "NODE" {
		keys = ks.CountKeysInSlot(int(s))
	}
	r.updateReply(w, func(n *Node) error {
		switch action {
		case "MIGRATING":
			return n.SetSlotMigrating(s, id)
		case "IMPORTING":
			return n.SetSlotImporting(s, id)
		case "STABLE":
			return n.SetSlotStable(s)
		}
		if _, ok := n.peers[id]; !ok {
			return fmt.Errorf("Unknown node %s", id)
		}
		if n.slots.owners[s].Node == n.id && id != n.id && keys > 0 {
			return fmt.Errorf("Can't assign hashslot %d to a different node while I still hold keys for this hash slot.", s)
		}
		return n.SetSlotNode(s, id)
	})
}

// cmdReset: CLUSTER RESET [HARD|SOFT]. A primary holding keys refuses; a
// replica is emptied.
func cmdReset(r *Router, args [][]byte, w *resp.Writer) {
	hard := false
	switch {
	case len(args) == 0:
	case len(args) == 1 && strings.EqualFold(string(args[0]), "hard"):
		hard = true
	case len(args) == 1 && strings.EqualFold(string(args[0]), "soft"):
	default:
		w.Error("ERR syntax error")
		return
	}
	var replica bool
	var repl Replicator
	r.c.View(func(n *Node) { replica, repl = n.self().Role == RoleReplica, r.c.repl })
	if ks := r.ks.Load(); ks != nil && ks.Len() > 0 && !replica {
		w.Error("ERR CLUSTER RESET can't be called with master nodes containing keys")
		return
	}
	if err := r.c.Reset(hard); err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	// a replica is emptied, as in Redis (the reset made it a primary
	// that replicates from nobody)
	if f, ok := repl.(interface{ FlushAll() }); ok && replica {
		f.FlushAll()
	}
	w.OK()
}

// nodeOfMember returns the node ID of a memberlist member name: the ID,
// followed after a reset by "." and the gossip generation.
func nodeOfMember(name string) NodeID {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return NodeID(name[:i])
	}
	return NodeID(name)
}

// Reset runs CLUSTER RESET: the node forgets its view (a hard reset also
// takes a new ID and epoch 0), saves it, and restarts the gossip under a
// new member name (ID.generation): the old cluster's memberlists lose the
// old name (probes of it fail) instead of gossiping with the reset node,
// and the reset node ignores the peers it knew for ForgetTTL, as they
// ignore it after CLUSTER FORGET, so neither side brings the other back.
func (c *Cluster) Reset(hard bool) error {
	newID := NodeID("")
	if hard {
		newID = NewNodeID(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	}
	old := c.ml.Load()
	c.mu.Lock()
	now := time.Now()
	var known []NodeID
	for id := range c.node.peers {
		if id != c.node.id {
			known = append(known, id)
		}
	}
	err := c.node.Reset(hard, newID)
	if err == nil {
		for _, id := range known {
			if c.node.mig.forgotten == nil {
				c.node.mig.forgotten = make(map[NodeID]time.Time)
			}
			c.node.mig.forgotten[id] = now.Add(ForgetTTL)
		}
	}
	c.gen++
	name := string(c.node.id) + "." + strconv.Itoa(c.gen)
	rd, st := c.readyLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.output(rd, st)
	port := int(old.LocalNode().Port)
	if err := old.Shutdown(); err != nil {
		c.logger.Printf("cluster: reset: stop gossip: %v", err)
	}
	c.memMu.Lock()
	clear(c.members)
	c.memMu.Unlock()
	c.cfg.BusPort = port
	ml, err := c.createMemberlist(name)
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	c.ml.Store(ml)
	c.logger.Printf("cluster: reset (hard=%v), node %s", hard, name)
	return nil
}
