package peer

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/kv"
	"github.com/gantry-project/gantry/internal/resp"
)

// routes is an immutable snapshot of what routing needs, rebuilt when the
// node's view changes, so that commands never wait for the protocol lock.
type routes struct {
	owner   [NumSlots]int32 // index into addrs, -1 unassigned
	addrs   []string
	self    int32
	primary int32 // this replica's primary, -1 for a primary
	ok      bool  // cluster_state:ok
	// open slots of this node (nil when none): migrating to the node at
	// that index of addrs, importing
	migrating map[uint16]int32
	importing map[uint16]bool
}

// Router is the kv.ClusterHook of a cluster peer: it redirects commands
// for slots owned elsewhere and serves the CLUSTER commands.
type Router struct {
	c                   *Cluster
	ks                  atomic.Pointer[kv.Keyspace]
	requireFullCoverage bool
	rt                  atomic.Pointer[routes]
	waking              atomic.Bool // a WakeBlocked is on its way
}

var _ kv.ClusterHook = (*Router)(nil)

// NewRouter returns the router of c; requireFull is Redis's
// cluster-require-full-coverage (refuse every command while a slot is
// unassigned or its owner failed).
func NewRouter(c *Cluster, requireFull bool) *Router {
	r := &Router{c: c, requireFullCoverage: requireFull}
	c.mu.Lock()
	c.onChange = r.refresh
	r.rt.Store(r.build(c.node))
	c.mu.Unlock()
	return r
}

// SetKeyspace gives the router the store's keyspace (created after the
// router, since the store takes the router in its config).
func (r *Router) SetKeyspace(ks *kv.Keyspace) { r.ks.Store(ks) }

// refresh rebuilds the snapshot; the Cluster calls it with the node locked
// after every change.
func (r *Router) refresh(n *Node) {
	old := r.rt.Load()
	ok := n.ClusterOK(r.requireFullCoverage)
	if old != nil && !n.changed && old.ok == ok {
		return
	}
	n.changed = false
	r.rt.Store(r.build(n))
	r.wakeBlocked()
}

func (r *Router) build(n *Node) *routes {
	rt := &routes{self: -1, primary: -1, ok: n.ClusterOK(r.requireFullCoverage)}
	idx := map[NodeID]int32{}
	index := func(id NodeID) int32 {
		if i, ok := idx[id]; ok {
			return i
		}
		i := int32(len(rt.addrs))
		addr := ""
		if p, ok := n.peers[id]; ok {
			addr = p.Addr
		}
		rt.addrs = append(rt.addrs, addr)
		idx[id] = i
		return i
	}
	rt.self = index(n.id)
	if me := n.self(); me.Role == RoleReplica {
		rt.primary = index(me.Primary)
	}
	for s := range n.slots.owners {
		if o := n.slots.owners[s].Node; o != "" {
			rt.owner[s] = index(o)
		} else {
			rt.owner[s] = -1
		}
	}
	r.buildOpenSlots(n, rt, index)
	return rt
}

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

// InfoLines implements kv.ClusterHook.
func (r *Router) InfoLines(section string) []string {
	var lines []string
	r.c.View(func(n *Node) {
		me := n.self()
		if me.Role == RoleReplica {
			host, port := splitAddr(n.peers[me.Primary].Addr)
			lines = []string{"role:slave", "master_host:" + host, "master_port:" + port,
				"master_link_status:down", "master_repl_offset:" + strconv.FormatUint(me.Offset, 10)}
			return
		}
		lines = []string{"role:master", "connected_slaves:0", "master_repl_offset:" + strconv.FormatUint(me.Offset, 10)}
	})
	return lines
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
	}
}

func cmdMyID(r *Router, _ [][]byte, w *resp.Writer) { w.BulkString(string(r.c.ID())) }

func cmdMyShardID(r *Router, _ [][]byte, w *resp.Writer) {
	// a shard is named by its primary
	r.c.View(func(n *Node) {
		me := n.self()
		if me.Role == RoleReplica {
			w.BulkString(string(me.Primary))
			return
		}
		w.BulkString(string(n.id))
	})
}

func cmdKeySlot(_ *Router, args [][]byte, w *resp.Writer) { w.Int(int64(KeySlot(args[0]))) }

func cmdCountKeysInSlot(r *Router, args [][]byte, w *resp.Writer) {
	s, err := ParseSlot(string(args[0]))
	if err != nil {
		w.Error("ERR Invalid slot")
		return
	}
	ks := r.ks.Load()
	if ks == nil {
		w.Int(0)
		return
	}
	w.Int(int64(ks.CountKeysInSlot(int(s))))
}

func cmdGetKeysInSlot(r *Router, args [][]byte, w *resp.Writer) {
	s, err := ParseSlot(string(args[0]))
	if err != nil {
		w.Error("ERR Invalid slot")
		return
	}
	count, err := strconv.Atoi(string(args[1]))
	if err != nil || count < 0 {
		w.Error("ERR Invalid number of keys")
		return
	}
	var keys []string
	if ks := r.ks.Load(); ks != nil {
		keys = ks.KeysInSlot(int(s), count)
	}
	w.Array(len(keys))
	for _, k := range keys {
		w.BulkString(k)
	}
}

func cmdClusterInfo(r *Router, _ [][]byte, w *resp.Writer) {
	var b strings.Builder
	r.c.View(func(n *Node) {
		state := "fail"
		if n.ClusterOK(r.requireFullCoverage) {
			state = "ok"
		}
		assigned, pfail, fail := 0, 0, 0
		for s := range n.slots.owners {
			o := n.slots.owners[s].Node
			if o == "" {
				continue
			}
			assigned++
			if p := n.peers[o]; p != nil && p.Fail {
				fail++
			} else if p != nil && p.PFail {
				pfail++
			}
		}
		fmt.Fprintf(&b, "cluster_state:%s\r\ncluster_slots_assigned:%d\r\ncluster_slots_ok:%d\r\n"+
			"cluster_slots_pfail:%d\r\ncluster_slots_fail:%d\r\ncluster_known_nodes:%d\r\n"+
			"cluster_size:%d\r\ncluster_current_epoch:%d\r\ncluster_my_epoch:%d\r\n",
			state, assigned, assigned-pfail-fail, pfail, fail, len(n.peers), n.primaryCount(),
			n.currentEpoch, n.myEpoch())
	})
	w.Verbatim(b.String())
}

// myEpoch is the config epoch of this node's shard (its primary's for a
// replica), as CLUSTER INFO reports it.
func (n *Node) myEpoch() uint64 {
	me := n.self()
	if me.Role == RoleReplica {
		if p, ok := n.peers[me.Primary]; ok {
			return p.ConfigEpoch
		}
	}
	return me.ConfigEpoch
}

// busAddr is what CLUSTER NODES shows after '@': the client port + 10000
// unless told otherwise.
func busPortOf(p PeerInfo) string {
	if p.BusPort != 0 {
		return strconv.Itoa(p.BusPort)
	}
	_, port := splitAddr(p.Addr)
	n, _ := strconv.Atoi(port)
	return strconv.Itoa(n + 10000)
}

func cmdNodes(r *Router, _ [][]byte, w *resp.Writer) {
	var b strings.Builder
	now := time.Now()
	r.c.View(func(n *Node) {
		for _, p := range n.Peers() {
			flags := []string{}
			if p.ID == n.id {
				flags = append(flags, "myself")
			}
			flags = append(flags, p.Role.String())
			if p.Fail {
				flags = append(flags, "fail")
			} else if p.PFail {
				flags = append(flags, "fail?")
			}
			primary := "-"
			if p.Role == RoleReplica {
				primary = string(p.Primary)
			}
			link := "connected"
			if p.PFail || p.Fail {
				link = "disconnected"
			}
			pong := p.LastSeen.UnixMilli()
			if p.ID == n.id {
				pong = now.UnixMilli()
			}
			fmt.Fprintf(&b, "%s %s@%s %s %s 0 %d %d %s", p.ID, p.Addr, busPortOf(p),
				strings.Join(flags, ","), primary, pong, p.ConfigEpoch, link)
			if p.Role == RolePrimary {
				for _, sr := range n.slots.SlotsOf(p.ID) {
					b.WriteString(" " + sr.String())
				}
			}
			if p.ID == n.id {
				writeOpenSlots(&b, n)
			}
			b.WriteString("\n")
		}
	})
	w.Verbatim(b.String())
}

func cmdSlots(r *Router, _ [][]byte, w *resp.Writer) {
	type entry struct {
		r     SlotRange
		nodes []PeerInfo
	}
	var out []entry
	r.c.View(func(n *Node) {
		peers := n.Peers()
		for _, p := range peers {
			if p.Role != RolePrimary {
				continue
			}
			for _, sr := range n.slots.SlotsOf(p.ID) {
				e := entry{r: sr, nodes: []PeerInfo{p}}
				for _, q := range peers {
					if q.Role == RoleReplica && q.Primary == p.ID && !q.Fail {
						e.nodes = append(e.nodes, q)
					}
				}
				out = append(out, e)
			}
		}
	})
	w.Array(len(out))
	for _, e := range out {
		w.Array(2 + len(e.nodes))
		w.Int(int64(e.r.Start))
		w.Int(int64(e.r.End))
		for _, p := range e.nodes {
			host, port := splitAddr(p.Addr)
			pn, _ := strconv.Atoi(port)
			w.Array(4)
			w.BulkString(host)
			w.Int(int64(pn))
			w.BulkString(string(p.ID))
			w.Map(0)
		}
	}
}

func parseSlotArgs(args [][]byte) ([]SlotRange, error) {
	var out []SlotRange
	for _, a := range args {
		s, err := ParseSlot(string(a))
		if err != nil {
			return nil, err
		}
		out = append(out, SlotRange{s, s})
	}
	return out, nil
}

func (r *Router) updateReply(w *resp.Writer, fn func(n *Node) error) {
	err := r.c.Update(func(n *Node, _ time.Time) error { return fn(n) })
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	w.OK()
}

func cmdAddSlots(r *Router, args [][]byte, w *resp.Writer) {
	rs, err := parseSlotArgs(args)
	if err != nil {
		w.Error("ERR Invalid or out of range slot")
		return
	}
	r.updateReply(w, func(n *Node) error { return n.AddSlots(rs) })
}

func cmdAddSlotsRange(r *Router, args [][]byte, w *resp.Writer) {
	if len(args)%2 != 0 {
		w.Error("ERR wrong number of arguments for 'cluster|addslotsrange' command")
		return
	}
	var rs []SlotRange
	for i := 0; i < len(args); i += 2 {
		sr, err := ParseSlotRange(string(args[i]) + "-" + string(args[i+1]))
		if err != nil {
			w.Error("ERR Invalid or out of range slot")
			return
		}
		rs = append(rs, sr)
	}
	r.updateReply(w, func(n *Node) error { return n.AddSlots(rs) })
}

func cmdDelSlots(r *Router, args [][]byte, w *resp.Writer) {
	rs, err := parseSlotArgs(args)
	if err != nil {
		w.Error("ERR Invalid or out of range slot")
		return
	}
	r.updateReply(w, func(n *Node) error { return n.DelSlots(rs) })
}

func cmdMeet(r *Router, args [][]byte, w *resp.Writer) {
	port, err := strconv.Atoi(string(args[1]))
	if err != nil || port <= 0 || port > 65535 {
		w.Error("ERR Invalid base port specified: " + string(args[1]))
		return
	}
	bus := 0
	if len(args) > 2 {
		bus, err = strconv.Atoi(string(args[2]))
		if err != nil || bus <= 0 || bus > 65535 {
			w.Error("ERR Invalid bus port specified: " + string(args[2]))
			return
		}
	}
	// memberlist's join dials the peer: do it off the event loop
	host := string(args[0])
	go func() {
		if err := r.c.Meet(host, port, bus); err != nil {
			r.c.logger.Printf("cluster: meet %s:%d: %v", host, port, err)
		}
	}()
	w.OK()
}

func cmdForget(r *Router, args [][]byte, w *resp.Writer) {
	id := NodeID(args[0])
	err := r.c.Update(func(n *Node, now time.Time) error {
		if _, ok := n.peers[id]; !ok {
			return fmt.Errorf("Unknown node %s", id)
		}
		return n.ForgetUntil(id, now.Add(ForgetTTL))
	})
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	w.OK()
}

func cmdSetConfigEpoch(r *Router, args [][]byte, w *resp.Writer) {
	e, err := strconv.ParseUint(string(args[0]), 10, 64)
	if err != nil {
		w.Error("ERR Invalid config epoch specified: " + string(args[0]))
		return
	}
	r.updateReply(w, func(n *Node) error { return n.SetConfigEpoch(e) })
}

func cmdBumpEpoch(r *Router, _ [][]byte, w *resp.Writer) {
	var bumped bool
	var e uint64
	if err := r.c.Update(func(n *Node, _ time.Time) error {
		bumped = n.BumpEpoch()
		e = n.self().ConfigEpoch
		return nil
	}); err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	if bumped {
		w.Simple("BUMPED " + strconv.FormatUint(e, 10))
	} else {
		w.Simple("STILL " + strconv.FormatUint(e, 10))
	}
}

func cmdCountFailureReports(r *Router, args [][]byte, w *resp.Writer) {
	id := NodeID(args[0])
	var n int
	var known bool
	r.c.View(func(nd *Node) {
		_, known = nd.peers[id]
		n = nd.FailureReports(id, time.Now())
	})
	if !known {
		w.Error("ERR Unknown node " + string(id))
		return
	}
	w.Int(int64(n))
}

// cmdShards answers CLUSTER SHARDS: per primary its slot ranges (as a flat
// start, end list) and its nodes with role, offset and health.
func cmdShards(r *Router, _ [][]byte, w *resp.Writer) {
	type shard struct {
		slots []SlotRange
		nodes []PeerInfo
	}
	var out []shard
	r.c.View(func(n *Node) {
		peers := n.Peers()
		for _, p := range peers {
			if p.Role != RolePrimary {
				continue
			}
			sh := shard{slots: n.slots.SlotsOf(p.ID), nodes: []PeerInfo{p}}
			for _, q := range peers {
				if q.Role == RoleReplica && q.Primary == p.ID {
					sh.nodes = append(sh.nodes, q)
				}
			}
			out = append(out, sh)
		}
	})
	w.Array(len(out))
	for _, sh := range out {
		w.Map(2)
		w.BulkString("slots")
		w.Array(2 * len(sh.slots))
		for _, sr := range sh.slots {
			w.Int(int64(sr.Start))
			w.Int(int64(sr.End))
		}
		w.BulkString("nodes")
		w.Array(len(sh.nodes))
		for _, p := range sh.nodes {
			host, port := splitAddr(p.Addr)
			pn, _ := strconv.Atoi(port)
			role, health := "master", "online"
			if p.Role == RoleReplica {
				role = "replica"
			}
			if p.Fail || p.PFail {
				health = "fail"
			}
			w.Map(7)
			w.BulkString("id")
			w.BulkString(string(p.ID))
			w.BulkString("port")
			w.Int(int64(pn))
			w.BulkString("ip")
			w.BulkString(host)
			w.BulkString("endpoint")
			w.BulkString(host)
			w.BulkString("role")
			w.BulkString(role)
			w.BulkString("replication-offset")
			w.Int(int64(p.Offset))
			w.BulkString("health")
			w.BulkString(health)
		}
	}
}
