package kv

import (
	"fmt"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
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

// NumSlots is the number of Redis Cluster hash slots.
const NumSlots = keyspace.NumSlots

// KeySlot returns the Redis Cluster hash slot of a key: CRC16 of the key, or
// of the part between the first '{' and the next '}' when that is not empty,
// modulo 16384.
func KeySlot(key []byte) uint16 { return keyspace.KeySlot(key) }

var bDEL = []byte("DEL")

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
func (s *Server) route(c *Client, cmd *command.Command, asking bool, exists func([]byte) bool) bool {
	keys := cmd.GetKeys(c.Args, c.Keys[:0])
	c.Keys = keys
	if len(keys) == 0 {
		return true
	}
	msg := s.cfg.Cluster.Route(c.routeRequest(cmd, keys, asking, exists))
	if msg == "" {
		return true
	}
	c.W.Error(msg)
	return false
}

func (c *Client) routeRequest(cmd *command.Command, keys [][]byte, asking bool, exists func([]byte) bool) RouteRequest {
	return RouteRequest{
		Keys: keys, Write: cmd.Mask&command.Write != 0,
		Asking: asking || cmd.Mask&command.Asking != 0, ReadOnly: c.cluster.readOnly,
		Exists: exists, Migrate: cmd.Mask&command.SelfLock != 0 && cmd.Name == "migrate",
	}
}

// existsLocked reports whether key exists; its shard is locked.
func (c *Client) existsLocked(key []byte) bool { return c.srv.ks.LookupLocked(key, c.Now) != nil }

// existsSelfLocking reports whether key exists, locking its shard.
func (c *Client) existsSelfLocking(key []byte) bool {
	i := keyspace.ShardOf(key)
	c.KS.LockShard(i)
	defer c.KS.UnlockShard(i)
	return c.KS.LookupLocked(key, c.srv.nowMs()) != nil
}

// admitLocked runs, with the command's shards locked, the checks that
// depend on the keys' state: the routing the dispatcher left pending
// (ASK/TRYAGAIN need to know which keys exist) and writes to keys that
// MIGRATE is sending. false means the reply is written.
func (c *Client) admitLocked(cmd *command.Command) bool {
	if c.cluster.pending {
		c.cluster.pending = false
		if len(c.Keys) > 0 {
			if c.cluster.exists == nil {
				c.cluster.exists = c.existsLocked
			}
			msg := c.srv.cfg.Cluster.Route(c.routeRequest(cmd, c.Keys, c.cluster.pendingAsking, c.cluster.exists))
			if msg != "" {
				c.W.Error(msg)
				return false
			}
		}
	}
	if cmd.Mask&command.Write != 0 && c.Track.MovingLocked(c.Keys) {
		c.W.Error(errMoving)
		return false
	}
	return true
}

// ClusterStore is everything the cluster layer (internal/peer) calls on
// the store, in one place; *Server implements it. The other direction is
// ClusterHook. (internal/peer holds the Keyspace and, through its own
// Replicator interface, the replication methods.)
type ClusterStore interface {
	// Keyspace returns the slot view: counts, listings, WakeBlocked.
	Keyspace() *Keyspace
	// ReplicaOf follows the node's role: replicate from addr, or be a
	// primary with "".
	ReplicaOf(addr string)
	// ReplOffset is the replication offset (election rank, CLUSTER SHARDS).
	ReplOffset() int64
	// DeleteKeysInSlot drops a slot another primary took over.
	DeleteKeysInSlot(slot int) (int, error)
	// FlushAll empties a replica that CLUSTER RESET made a primary.
	FlushAll()
}

var _ ClusterStore = (*Server)(nil)

// Keyspace is the store as the cluster layer (internal/peer) reads it:
// how many and which keys a slot holds, whether the node holds any, and
// waking blocked clients when routing changes. Server.Keyspace returns it;
// together with ClusterHook (the other direction) and the Server's
// replication methods (peer.Replicator) it is all the cluster layer
// reaches of the store.
type Keyspace struct{ s *Server }

// CountKeysInSlot returns the number of keys stored in a hash slot.
func (k *Keyspace) CountKeysInSlot(slot int) int { return k.s.ks.CountKeysInSlot(slot) }

// KeysInSlot returns up to count keys stored in slot (CLUSTER
// GETKEYSINSLOT).
func (k *Keyspace) KeysInSlot(slot, count int) []string { return k.s.ks.KeysInSlot(slot, count) }

// Len returns the number of keys, including expired keys not yet removed.
func (k *Keyspace) Len() int { return k.s.ks.Len() }

// WakeBlocked wakes every client blocked on a key (BLPOP ...): each routes
// its command again and, if its slot has moved or is migrating away, gets
// the redirection instead of waiting on the wrong node. The cluster layer
// calls it when its routing changes (Redis redirects blocked clients of a
// moved slot the same way).
func (k *Keyspace) WakeBlocked() {
	s := k.s
	for i := 0; i < keyspace.NumShards; i++ {
		s.ks.LockShard(i)
		s.track.WakeBlockedLocked(i)
		s.ks.UnlockShard(i)
	}
}

// FlushAll deletes every key, logged as FLUSHALL (CLUSTER RESET of a
// replica, which Redis empties). It bypasses the replica's refusal of
// writes: the cluster layer has already made the node a primary.
func (s *Server) FlushAll() {
	c := newClient(s, nil)
	c.Args = [][]byte{[]byte("FLUSHALL")}
	c.Cmd = s.cmds.Lookup(c.Args[0])
	c.Now = s.nowMs()
	c.lockAll()
	c.Cmd.Handler(&c.Ctx)
	c.commitLocked()
	c.unlock()
	if c.aofWait > 0 {
		if err := s.aof.WaitDurable(c.aofWait); err != nil {
			s.logger.Printf("FLUSHALL of a reset replica not logged yet (the log retries it): %v", err)
		}
	}
}

// rerouteLocked routes a blocking command again, with its shards locked,
// each time it tries (its keys may have been migrated meanwhile); "" lets
// it go on.
func (c *Client) rerouteLocked() string {
	s := c.srv
	if s.cfg.Cluster == nil || len(c.Keys) == 0 || c.InExec {
		return ""
	}
	return s.cfg.Cluster.Route(c.routeRequest(c.Cmd, c.Keys, c.cluster.pendingAsking, c.existsLocked))
}

// execAdmitLocked routes the queued commands of EXEC again, with every
// shard they use locked, and refuses the transaction when one of them
// writes a key being migrated; it returns the error reply, "" to run.
func (c *Client) execAdmitLocked(cmds []*command.Command, queued [][][]byte) string {
	s := c.srv
	saved := c.Keys
	defer func() { c.Keys = saved }()
	for i, cmd := range cmds {
		keys := cmd.GetKeys(queued[i], nil)
		if len(keys) == 0 {
			continue
		}
		if s.cfg.Cluster != nil && cmd.Mask&command.AllShards == 0 {
			if msg := s.cfg.Cluster.Route(c.routeRequest(cmd, keys, false, c.existsLocked)); msg != "" {
				return msg
			}
		}
		c.Keys = keys
		if cmd.Mask&command.Write != 0 && c.Track.MovingLocked(c.Keys) {
			return errMoving
		}
	}
	return ""
}

// clusterSpecs: the cluster commands and MIGRATE. CLUSTER is refused inside MULTI: EXEC runs its commands
// with shards locked, and CLUSTER takes the cluster layer's lock and, for
// COUNTKEYSINSLOT, GETKEYSINSLOT and RESET, shard locks of its own.
func clusterSpecs() []cmdSpec {
	const flags = "noscript loading stale fast"
	return []cmdSpec{
		{"cluster", -2, "noscript loading stale no-multi", 0, 0, 0, "cluster", cmdCluster, nil},
		{"asking", 1, flags, 0, 0, 0, "cluster", cmdAsking, nil},
		{"readonly", 1, flags, 0, 0, 0, "cluster", cmdReadOnly, nil},
		{"readwrite", 1, flags, 0, 0, 0, "cluster", cmdReadWrite, nil},
		{"migrate", -6, "write selflock no-multi", 3, 3, 1, "generic", cmdMigrate, migrateKeys},
	}
}

const errNoCluster = "ERR This instance has cluster support disabled"

func cmdCluster(c *Client) {
	if c.srv.cfg.Cluster == nil {
		c.W.Error(errNoCluster)
		return
	}
	c.srv.cfg.Cluster.Command(c.Args, &c.W)
}

func cmdAsking(c *Client) {
	if c.srv.cfg.Cluster == nil {
		c.W.Error(errNoCluster)
		return
	}
	c.cluster.asking = true
	c.W.OK()
}

func cmdReadOnly(c *Client) {
	if c.srv.cfg.Cluster == nil {
		c.W.Error(errNoCluster)
		return
	}
	c.cluster.readOnly = true
	c.W.OK()
}

func cmdReadWrite(c *Client) {
	if c.srv.cfg.Cluster == nil {
		c.W.Error(errNoCluster)
		return
	}
	c.cluster.readOnly = false
	c.W.OK()
}

// delSlotBatch is how many keys one logged DEL of DeleteKeysInSlot names.
const delSlotBatch = 1000

// DeleteKeysInSlot deletes every key of a hash slot (expired or not) and
// returns how many it deleted. The cluster layer calls it for a "dirty
// slot": a slot this primary owned and another node took over by a newer
// claim while this node still held keys of it (Redis's delKeysInSlot). The
// deletion is logged as DELs (of up to 1000 keys each), so the append-only
// log and the replicas drop the same keys; WATCHes on the keys are
// invalidated. Like FlushAll it bypasses routing.
func (s *Server) DeleteKeysInSlot(slot int) (int, error) {
	if slot < 0 || slot >= keyspace.NumSlots {
		return 0, fmt.Errorf("delete keys in slot: slot %d out of range 0-%d", slot, keyspace.NumSlots-1)
	}
	c := newClient(s, nil)
	c.Now = s.nowMs()
	sh := slot % keyspace.NumShards
	c.Locked = append(c.Locked[:0], sh)
	s.ks.LockShard(sh)
	c.prepare()
	var keys [][]byte
	s.ks.ForEachInSlotLocked(slot, func(key string, _ *keyspace.Entry) bool {
		keys = append(keys, []byte(key))
		return true
	})
	for _, k := range keys {
		s.ks.DeleteLocked(k)
	}
	for i := 0; i < len(keys); i += delSlotBatch {
		batch := keys[i:min(i+delSlotBatch, len(keys))]
		c.Log(append([][]byte{bDEL}, batch...)...)
	}
	c.Dirty = len(keys)
	c.Keys = keys
	c.commitLocked()
	c.unlock()
	if c.aofWait > 0 {
		if err := s.aof.WaitDurable(c.aofWait); err != nil {
			return len(keys), fmt.Errorf("slot %d: %d keys deleted, not logged yet (the log retries): %w", slot, len(keys), err)
		}
	}
	return len(keys), nil
}
