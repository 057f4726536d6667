package peer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// The CLUSTER subcommands. Those that report read a Status copy
// (Cluster.Status); those that change the node send an Op to the owner
// (Cluster.Do), which answers once the change is durable.

func cmdMyID(r *Router, _ [][]byte, w *resp.Writer) { w.BulkString(string(r.c.ID())) }

// cmdMyShardID: a shard is named by its primary.
func cmdMyShardID(r *Router, _ [][]byte, w *resp.Writer) {
	rt := r.rt.Load()
	if rt.primary >= 0 {
		w.BulkString(string(rt.ids[rt.primary]))
		return
	}
	w.BulkString(string(rt.id()))
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

// status takes a Status for a reporting command; nil means the error
// reply is written.
func (r *Router) status(w *resp.Writer) *Status {
	st, err := r.c.Status()
	if err != nil {
		w.Error("ERR " + err.Error())
		return nil
	}
	return st
}

func cmdClusterInfo(r *Router, _ [][]byte, w *resp.Writer) {
	st := r.status(w)
	if st == nil {
		return
	}
	state := "fail"
	if st.OK {
		state = "ok"
	}
	w.Verbatim(fmt.Sprintf("cluster_state:%s\r\ncluster_slots_assigned:%d\r\ncluster_slots_ok:%d\r\n"+
		"cluster_slots_pfail:%d\r\ncluster_slots_fail:%d\r\ncluster_known_nodes:%d\r\n"+
		"cluster_size:%d\r\ncluster_current_epoch:%d\r\ncluster_my_epoch:%d\r\n",
		state, st.SlotsAssigned, st.SlotsAssigned-st.SlotsPFail-st.SlotsFail, st.SlotsPFail, st.SlotsFail, len(st.Peers), st.Size,
		st.CurrentEpoch, st.MyEpoch))
}

// busPortOf is what CLUSTER NODES shows after '@': the client port +
// 10000 unless told otherwise.
func busPortOf(p PeerInfo) string {
	if p.BusPort != 0 {
		return strconv.Itoa(p.BusPort)
	}
	_, port := splitAddr(p.Addr)
	n, _ := strconv.Atoi(port)
	return strconv.Itoa(n + 10000)
}

// nodeLine is p's line of CLUSTER NODES (without the newline).
func nodeLine(st *Status, p PeerStatus, now time.Time) string {
	var b strings.Builder
	flags := []string{}
	if p.ID == st.ID {
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
	if p.ID == st.ID {
		pong = now.UnixMilli()
	}
	fmt.Fprintf(&b, "%s %s@%s %s %s 0 %d %d %s", p.ID, p.Addr, busPortOf(p.PeerInfo),
		strings.Join(flags, ","), primary, pong, p.ConfigEpoch, link)
	for _, sr := range p.Slots {
		b.WriteString(" " + sr.String())
	}
	if p.ID == st.ID {
		writeOpenSlots(&b, st)
	}
	return b.String()
}

func cmdNodes(r *Router, _ [][]byte, w *resp.Writer) {
	st := r.status(w)
	if st == nil {
		return
	}
	now := time.Now()
	var b strings.Builder
	for _, p := range st.Peers {
		b.WriteString(nodeLine(st, p, now))
		b.WriteString("\n")
	}
	w.Verbatim(b.String())
}

// replicasOf returns the replicas of primary id in st; healthyOnly leaves
// out the failed ones.
func replicasOf(st *Status, id NodeID, healthyOnly bool) []PeerStatus {
	var out []PeerStatus
	for _, q := range st.Peers {
		if q.Role == RoleReplica && q.Primary == id && (!healthyOnly || !q.Fail) {
			out = append(out, q)
		}
	}
	return out
}

func cmdSlots(r *Router, _ [][]byte, w *resp.Writer) {
	st := r.status(w)
	if st == nil {
		return
	}
	type entry struct {
		r     SlotRange
		nodes []PeerStatus
	}
	var out []entry
	for _, p := range st.Peers {
		if p.Role != RolePrimary {
			continue
		}
		for _, sr := range p.Slots {
			out = append(out, entry{r: sr, nodes: append([]PeerStatus{p}, replicasOf(st, p.ID, true)...)})
		}
	}
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

// doReply sends op to the owner and replies OK once it is durable, or the
// error.
func (r *Router) doReply(w *resp.Writer, op Op) {
	if _, err := r.c.Do(op); err != nil {
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
	r.doReply(w, Op{Kind: OpAddSlots, Slots: rs})
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
	r.doReply(w, Op{Kind: OpAddSlots, Slots: rs})
}

func cmdDelSlots(r *Router, args [][]byte, w *resp.Writer) {
	rs, err := parseSlotArgs(args)
	if err != nil {
		w.Error("ERR Invalid or out of range slot")
		return
	}
	r.doReply(w, Op{Kind: OpDelSlots, Slots: rs})
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
	c := r.c
	if !c.goTracked(func() {
		if err := c.Meet(host, port, bus); err != nil {
			c.logger.Printf("cluster: meet %s:%d: %v", host, port, err)
		}
	}) {
		w.Error("ERR the node is shutting down")
		return
	}
	w.OK()
}

func cmdForget(r *Router, args [][]byte, w *resp.Writer) {
	r.doReply(w, Op{Kind: OpForget, Node: NodeID(args[0])})
}

func cmdSetConfigEpoch(r *Router, args [][]byte, w *resp.Writer) {
	e, err := strconv.ParseUint(string(args[0]), 10, 64)
	if err != nil {
		w.Error("ERR Invalid config epoch specified: " + string(args[0]))
		return
	}
	r.doReply(w, Op{Kind: OpSetConfigEpoch, Epoch: e})
}

func cmdBumpEpoch(r *Router, _ [][]byte, w *resp.Writer) {
	res, err := r.c.Do(Op{Kind: OpBumpEpoch})
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	if res.Bumped {
		w.Simple("BUMPED " + strconv.FormatUint(res.ConfigEpoch, 10))
	} else {
		w.Simple("STILL " + strconv.FormatUint(res.ConfigEpoch, 10))
	}
}

func cmdCountFailureReports(r *Router, args [][]byte, w *resp.Writer) {
	id := NodeID(args[0])
	st := r.status(w)
	if st == nil {
		return
	}
	p, ok := st.Peer(id)
	if !ok {
		w.Error("ERR " + unknownNode(id).Error())
		return
	}
	w.Int(int64(p.FailureReports))
}

// cmdShards answers CLUSTER SHARDS: per primary its slot ranges (as a flat
// start, end list) and its nodes with role, offset and health.
func cmdShards(r *Router, _ [][]byte, w *resp.Writer) {
	st := r.status(w)
	if st == nil {
		return
	}
	var out [][]PeerStatus // the primary first
	for _, p := range st.Peers {
		if p.Role == RolePrimary {
			out = append(out, append([]PeerStatus{p}, replicasOf(st, p.ID, false)...))
		}
	}
	w.Array(len(out))
	for _, sh := range out {
		w.Map(2)
		w.BulkString("slots")
		w.Array(2 * len(sh[0].Slots))
		for _, sr := range sh[0].Slots {
			w.Int(int64(sr.Start))
			w.Int(int64(sr.End))
		}
		w.BulkString("nodes")
		w.Array(len(sh))
		for _, p := range sh {
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
