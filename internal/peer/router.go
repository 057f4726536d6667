package peer

import (
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gantry-project/gantry/internal/kv"
	"github.com/gantry-project/gantry/internal/resp"
)

// Router is the kv.ClusterHook of a cluster peer: it redirects commands
// for slots owned elsewhere and serves the CLUSTER commands. It never
// touches the Node: routing reads the Cluster's routing snapshot (one
// atomic load per command, no lock, no allocation), CLUSTER commands that
// report go through Cluster.Status and those that change something
// through Cluster.Do, both answered by the Cluster's owner goroutine.
type Router struct {
	c      *Cluster
	rt     *atomic.Pointer[routes] // the Cluster's snapshot
	ks     atomic.Pointer[kv.Keyspace]
	waking atomic.Bool // a WakeBlocked is on its way
}

var _ kv.ClusterHook = (*Router)(nil)

// NewRouter returns the router of c.
func NewRouter(c *Cluster) *Router {
	r := &Router{c: c, rt: &c.routes}
	wake := r.wakeBlocked
	c.onRoutes.Store(&wake)
	return r
}

// SetKeyspace gives the router the store's keyspace (created after the
// router, since the store takes the router in its config).
func (r *Router) SetKeyspace(ks *kv.Keyspace) { r.ks.Store(ks) }

// Route implements kv.ClusterHook.
func (r *Router) Route(req kv.RouteRequest) string {
	slot := KeySlot(req.Keys[0])
	for _, k := range req.Keys[1:] {
		if KeySlot(k) != slot {
			return "CROSSSLOT Keys in request don't hash to the same slot"
		}
	}
	rt := r.rt.Load()
	o := rt.owner[slot]
	if !rt.ok {
		return "CLUSTERDOWN The cluster is down"
	}
	if rt.migrating != nil || rt.importing != nil {
		if msg, done := routeOpenSlot(rt, slot, req); done {
			return msg
		}
	}
	if o < 0 {
		return "CLUSTERDOWN Hash slot not served"
	}
	if o == rt.self || (req.ReadOnly && !req.Write && o == rt.primary) {
		return ""
	}
	return "MOVED " + strconv.Itoa(int(slot)) + " " + rt.addrs[o]
}

// InfoLines implements kv.ClusterHook. It reads the routing snapshot and
// the store's offset, so INFO never waits for the cluster layer.
func (r *Router) InfoLines(section string) []string {
	rt := r.rt.Load()
	var off uint64
	if rep := r.c.replicator(); rep != nil {
		off = uint64(rep.ReplOffset())
	}
	offLine := "master_repl_offset:" + strconv.FormatUint(off, 10)
	if rt.primary >= 0 {
		host, port := splitAddr(rt.addrs[rt.primary])
		return []string{"role:slave", "master_host:" + host, "master_port:" + port, "master_link_status:down", offLine}
	}
	return []string{"role:master", "connected_slaves:0", offLine}
}

func splitAddr(a string) (string, string) {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return a, "0"
	}
	return a[:i], a[i+1:]
}

// Command implements kv.ClusterHook: CLUSTER subcommands.
func (r *Router) Command(args [][]byte, w *resp.Writer) {
	sub := strings.ToUpper(string(args[1]))
	h, ok := clusterCommands[sub]
	if !ok {
		w.Error("ERR unknown subcommand '" + string(args[1]) + "'. Try CLUSTER HELP.")
		return
	}
	if h.arity > 0 && len(args) != h.arity || h.arity < 0 && len(args) < -h.arity {
		w.Error("ERR wrong number of arguments for 'cluster|" + strings.ToLower(sub) + "' command")
		return
	}
	h.fn(r, args[2:], w)
}

type clusterCmd struct {
	arity int // of the whole command, as in the command table
	fn    func(r *Router, args [][]byte, w *resp.Writer)
}

var clusterCommands map[string]clusterCmd

func init() {
	clusterCommands = map[string]clusterCmd{
		"MYID":                  {2, cmdMyID},
		"MYSHARDID":             {2, cmdMyShardID},
		"KEYSLOT":               {3, cmdKeySlot},
		"INFO":                  {2, cmdClusterInfo},
		"NODES":                 {2, cmdNodes},
		"SLOTS":                 {2, cmdSlots},
		"COUNTKEYSINSLOT":       {3, cmdCountKeysInSlot},
		"GETKEYSINSLOT":         {4, cmdGetKeysInSlot},
		"ADDSLOTS":              {-3, cmdAddSlots},
		"ADDSLOTSRANGE":         {-4, cmdAddSlotsRange},
		"DELSLOTS":              {-3, cmdDelSlots},
		"MEET":                  {-4, cmdMeet},
		"FORGET":                {3, cmdForget},
		"SET-CONFIG-EPOCH":      {3, cmdSetConfigEpoch},
		"BUMPEPOCH":             {2, cmdBumpEpoch},
		"COUNT-FAILURE-REPORTS": {3, cmdCountFailureReports},
		"REPLICATE":             {3, cmdReplicate},
		"FAILOVER":              {-2, cmdFailover},
		"REPLICAS":              {3, cmdReplicas},
		"SLAVES":                {3, cmdReplicas},
		"SETSLOT":               {-4, cmdSetSlot},
		"SHARDS":                {2, cmdShards},
		"RESET":                 {-2, cmdReset},
		"KEYRING":               {-3, cmdKeyring}, // gantry's: the gossip keyring (keyring.go)
	}
}
