package kv

import (
	"github.com/gantry-project/gantry/internal/resp"
)

// ClusterHook is how a cluster layer (internal/peer) plugs into the store:
// it routes every command that has keys before it runs (or is queued in
// MULTI), and serves CLUSTER. A nil Config.Cluster is a standalone server.
// Route and Command run on the connection's goroutine or event loop and
// must not block on the network.
type ClusterHook interface {
	// Route decides whether this node runs a command on keys: "" runs it,
	// anything else is the error reply to send instead (without '-'), such
	// as "MOVED 3999 127.0.0.1:6381", "CROSSSLOT ..." or "CLUSTERDOWN ...".
	Route(r RouteRequest) string
	// Command serves CLUSTER; args[0] is the command name.
	Command(args [][]byte, w *resp.Writer)
	// InfoLines returns the lines of INFO's Cluster and Replication
	// sections.
	InfoLines(section string) []string
}

// RouteRequest describes a command to route.
type RouteRequest struct {
	Keys  [][]byte
	Write bool
	// Asking is set for the command right after ASKING (a slot being
	// imported); ReadOnly when the connection sent READONLY.
	Asking   bool
	ReadOnly bool
	// Exists reports whether a key of Keys exists on this node. The store
	// passes it when it routes with the command's shards locked, just
	// before the command runs, so that the answer still holds when the
	// command runs: a router that redirects by existence (ASK and TRYAGAIN
	// while a slot migrates) must decide under the same locks as the
	// command, or a key could be migrated between the decision and the
	// write. The router calls it only for slots being migrated or
	// imported, so other commands pay nothing for it. It is nil where the
	// command does not run yet (queued in MULTI; EXEC routes again with
	// it) and for blocking commands, which lock by themselves; a router
	// then treats the keys as present.
	Exists func(key []byte) bool
	// Migrate is set for MIGRATE, which runs where it is sent while its
	// slot is being migrated or imported (Redis's rule).
	Migrate bool
}

// connection flags of cluster mode
type clusterConnState struct {
	asking   bool // set by ASKING, cleared after the next command
	readOnly bool // READONLY until READWRITE
	// pending: the dispatcher left the routing of the command to call,
	// which routes it with its shards locked; pendingAsking is the ASKING
	// flag it had
	pending       bool
	pendingAsking bool
	exists        func(key []byte) bool // c.existsLocked, made once
}

// route runs the hook for a command with keys before it runs (queued in
// MULTI, blocking commands, MIGRATE); false means the reply is written and
// the command must not run. exists may be nil.
func (s *Server) route(c *Client, cmd *Command, asking bool, exists func([]byte) bool) bool {
	keys := cmd.getKeys(c.args, c.keys[:0])
	c.keys = keys
	if len(keys) == 0 {
		return true
	}
	msg := s.cfg.Cluster.Route(c.routeRequest(cmd, keys, asking, exists))
	if msg == "" {
		return true
	}
	c.w.Error(msg)
	return false
}

func (c *Client) routeRequest(cmd *Command, keys [][]byte, asking bool, exists func([]byte) bool) RouteRequest {
	return RouteRequest{
		Keys: keys, Write: cmd.flags&flagWrite != 0,
		Asking: asking || cmd.flags&flagAsking != 0, ReadOnly: c.cluster.readOnly,
		Exists: exists, Migrate: cmd.flags&flagSelfLock != 0 && cmd.Name == "migrate",
	}
}

// existsLocked reports whether key exists; its shard is locked.
func (c *Client) existsLocked(key []byte) bool { return c.srv.ks.lookupLocked(key, c.now) != nil }

// existsSelfLocking reports whether key exists, locking its shard.
func (c *Client) existsSelfLocking(key []byte) bool {
	sh := &c.srv.ks.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return c.srv.ks.lookupLocked(key, c.srv.nowMs()) != nil
}

// admitLocked runs, with the command's shards locked, the checks that
// depend on the keys' state: the routing the dispatcher left pending
// (ASK/TRYAGAIN need to know which keys exist) and writes to keys that
// MIGRATE is sending. false means the reply is written.
func (c *Client) admitLocked(cmd *Command) bool {
	if c.cluster.pending {
		c.cluster.pending = false
		if len(c.keys) > 0 {
			if c.cluster.exists == nil {
				c.cluster.exists = c.existsLocked
			}
			msg := c.srv.cfg.Cluster.Route(c.routeRequest(cmd, c.keys, c.cluster.pendingAsking, c.cluster.exists))
			if msg != "" {
				c.w.Error(msg)
				return false
			}
		}
	}
	if cmd.flags&flagWrite != 0 && c.movingLocked() {
		c.w.Error(errMoving)
		return false
	}
	return true
}

// WakeBlocked wakes every client blocked on a key (BLPOP ...): each routes
// its command again and, if its slot has moved or is migrating away, gets
// the redirection instead of waiting on the wrong node. The cluster layer
// calls it when its routing changes (Redis redirects blocked clients of a
// moved slot the same way).
func (ks *Keyspace) WakeBlocked() {
	for i := range ks.shards {
		sh := &ks.shards[i]
		sh.mu.Lock()
		for _, chans := range sh.blocked {
			for _, ch := range chans {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
		sh.mu.Unlock()
	}
}

// FlushAll deletes every key, logged as FLUSHALL (CLUSTER RESET of a
// replica, which Redis empties). It bypasses the replica's refusal of
// writes: the cluster layer has already made the node a primary.
func (s *Server) FlushAll() {
	c := newClient(s, nil)
	c.args = [][]byte{[]byte("FLUSHALL")}
	c.cmd = s.cmds["flushall"]
	c.now = s.nowMs()
	cmdFlushAll(c)
	if c.aofWait > 0 {
		s.aof.waitDurable(c.aofWait)
	}
}

// rerouteLocked routes a blocking command again, with its shards locked,
// each time it tries (its keys may have been migrated meanwhile); "" lets
// it go on.
func (c *Client) rerouteLocked() string {
	s := c.srv
	if s.cfg.Cluster == nil || len(c.keys) == 0 || c.inExec {
		return ""
	}
	return s.cfg.Cluster.Route(c.routeRequest(c.cmd, c.keys, c.cluster.pendingAsking, c.existsLocked))
}

// execAdmitLocked routes the queued commands of EXEC again, with every
// shard they use locked, and refuses the transaction when one of them
// writes a key being migrated; it returns the error reply, "" to run.
func (c *Client) execAdmitLocked(cmds []*Command, queued [][][]byte) string {
	s := c.srv
	saved := c.keys
	defer func() { c.keys = saved }()
	for i, cmd := range cmds {
		keys := cmd.getKeys(queued[i], nil)
		if len(keys) == 0 {
			continue
		}
		if s.cfg.Cluster != nil && cmd.flags&flagAllShards == 0 {
			if msg := s.cfg.Cluster.Route(c.routeRequest(cmd, keys, false, c.existsLocked)); msg != "" {
				return msg
			}
		}
		c.keys = keys
		if cmd.flags&flagWrite != 0 && c.movingLocked() {
			return errMoving
		}
	}
	return ""
}

// clusterSpecs: CLUSTER is refused inside MULTI: EXEC runs its commands
// with shards locked, and CLUSTER takes the cluster layer's lock and, for
// COUNTKEYSINSLOT, GETKEYSINSLOT and RESET, shard locks of its own.
func clusterSpecs() []cmdSpec {
	const flags = "noscript loading stale fast"
	return []cmdSpec{
		{"cluster", -2, "noscript loading stale no-multi", 0, 0, 0, "cluster", cmdCluster, nil},
		{"asking", 1, flags, 0, 0, 0, "cluster", cmdAsking, nil},
		{"readonly", 1, flags, 0, 0, 0, "cluster", cmdReadOnly, nil},
		{"readwrite", 1, flags, 0, 0, 0, "cluster", cmdReadWrite, nil},
	}
}

const errNoCluster = "ERR This instance has cluster support disabled"

func cmdCluster(c *Client) {
	if c.srv.cfg.Cluster == nil {
		c.w.Error(errNoCluster)
		return
	}
	c.srv.cfg.Cluster.Command(c.args, &c.w)
}

func cmdAsking(c *Client) {
	if c.srv.cfg.Cluster == nil {
		c.w.Error(errNoCluster)
		return
	}
	c.cluster.asking = true
	c.w.OK()
}

func cmdReadOnly(c *Client) {
	if c.srv.cfg.Cluster == nil {
		c.w.Error(errNoCluster)
		return
	}
	c.cluster.readOnly = true
	c.w.OK()
}

func cmdReadWrite(c *Client) {
	if c.srv.cfg.Cluster == nil {
		c.w.Error(errNoCluster)
		return
	}
	c.cluster.readOnly = false
	c.w.OK()
}

// KeysInSlot returns up to count keys stored in slot (CLUSTER
// GETKEYSINSLOT).
func (ks *Keyspace) KeysInSlot(slot, count int) []string {
	sh := &ks.shards[slot%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []string
	ks.forEachInSlotLocked(slot, func(key string, _ *entry) bool {
		if len(out) >= count {
			return false
		}
		out = append(out, key)
		return true
	})
	return out
}
