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
}

// connection flags of cluster mode
type clusterConnState struct {
	asking   bool // set by ASKING, cleared after the next command
	readOnly bool // READONLY until READWRITE
}

// route runs the hook for a command with keys; false means the reply is
// written and the command must not run.
func (s *Server) route(c *Client, cmd *Command, asking bool) bool {
	keys := cmd.getKeys(c.args, c.keys[:0])
	c.keys = keys
	if len(keys) == 0 {
		return true
	}
	msg := s.cfg.Cluster.Route(RouteRequest{
		Keys: keys, Write: cmd.flags&flagWrite != 0,
		Asking: asking, ReadOnly: c.cluster.readOnly,
	})
	if msg == "" {
		return true
	}
	c.w.Error(msg)
	return false
}

func clusterSpecs() []cmdSpec {
	const flags = "noscript loading stale fast"
	return []cmdSpec{
		{"cluster", -2, "noscript loading stale", 0, 0, 0, "cluster", cmdCluster, nil},
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
