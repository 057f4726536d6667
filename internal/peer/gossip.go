package peer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// gossip is the Cluster's Transport over hashicorp/memberlist: direct
// UDP (heartbeats) and TCP (votes, FAIL, anything larger) sends, FAIL
// also as a broadcast, push-pull of the whole view, and membership
// events. Its callbacks run on memberlist's goroutines; they only queue
// inputs for the Cluster's owner (and wait for its answer where
// memberlist wants one), never touching the Node.
type gossip struct {
	c     *Cluster
	ml    atomic.Pointer[memberlist.Memberlist] // set once Create returns; callbacks may run before
	mlLog *mlLog
	queue *memberlist.TransmitLimitedQueue

	// members are copies of memberlist's nodes taken in its event callbacks
	// (memberlist mutates the nodes Members returns while we would read them)
	memMu   sync.Mutex
	members map[string]memberlist.Node
	// gone are the members memberlist declared dead, kept goneKeep (at
	// most maxGone): the protocol's messages still go to them (see
	// targets). Guarded by memMu.
	gone map[string]goneMember

	send senders // per-peer queues of reliable messages (sender.go)

	// wire are the peers that read binary protocol messages (wire.go);
	// guarded by memMu
	wire map[NodeID]bool
	// legacyJSON makes this node behave as one of the version before the
	// binary form (tests of a rolling upgrade): JSON without Wire, and
	// binary messages refused as that version's decoder refused them.
	legacyJSON atomic.Bool

	restartMu sync.Mutex // serialises CLUSTER RESET's restarts
	gen       int        // gossip generation, bumped by each restart (restartMu)
	bindPort  int        // the configured bus port, then the bound one (restartMu)
}

var _ Transport = (*gossip)(nil)

// startGossip starts memberlist under the node's name.
func startGossip(c *Cluster, id NodeID) (*gossip, error) {
	g := &gossip{c: c, mlLog: &mlLog{l: c.logger}, members: make(map[string]memberlist.Node), bindPort: c.cfg.BusPort}
	g.queue = &memberlist.TransmitLimitedQueue{NumNodes: g.numMembers, RetransmitMult: 3}
	ml, err := g.create(string(id), g.bindPort)
	if err != nil {
		return nil, err
	}
	g.ml.Store(ml)
	return g, nil
}

// create starts memberlist under name on port (at start, and again after
// CLUSTER RESET).
func (g *gossip) create(name string, port int) (*memberlist.Memberlist, error) {
	cfg := &g.c.cfg
	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = port
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = port
	}
	mc.SecretKey = cfg.SecretKey
	if cfg.Keyring != nil { // survives CLUSTER RESET's restarts
		mc.SecretKey, mc.Keyring = nil, cfg.Keyring.Memberlist()
	}
	mc.Delegate = (*delegate)(g)
	mc.Events = (*events)(g)
	// memberlist is the membership layer; failures that move slots are
	// judged by the protocol's own heartbeats (NodeTimeout), so memberlist
	// keeps its LAN defaults except a quicker probe.
	mc.ProbeInterval = 500 * time.Millisecond
	// joins (at start, MEET, reconnects) must not hang on an unreachable
	// peer for the LAN default of 10 s
	mc.TCPTimeout = 2 * time.Second
	// heartbeats go to every peer several times per node timeout and are
	// small: compressing each (LZW, a fresh table per message) cost more
	// CPU than any other part of a 12-peer cluster running jobs.
	// Receivers still accept compressed messages.
	mc.EnableCompression = false
	mc.Logger = log.New(g.mlLog, "", 0)
	// memberlist's transport, without a 64 KiB buffer per received packet
	// (transport_net.go)
	tr, err := newBusTransport(cfg.BindAddr, port, mc.Logger)
	// With port 0 the UDP socket takes the TCP listener's port, which
	// another process may hold: pick again, as memberlist's own transport
	// does.
	for try := 1; err != nil && port == 0 && try < 10; try++ {
		tr, err = newBusTransport(cfg.BindAddr, port, mc.Logger)
	}
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s:%d: %w", cfg.BindAddr, port, err)
	}
	mc.Transport, mc.BindPort = tr, tr.Port()
	if cfg.AdvertisePort == 0 {
		mc.AdvertisePort = tr.Port()
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = tr.Shutdown()
		return nil, fmt.Errorf("start gossip on %s:%d: %w", cfg.BindAddr, port, err)
	}
	return ml, nil
}

func (g *gossip) port() int { return int(g.ml.Load().LocalNode().Port) }

func (g *gossip) numMembers() int {
	if ml := g.ml.Load(); ml != nil {
		return ml.NumMembers()
	}
	return 1
}

func (g *gossip) join(addrs []string) error {
	if _, err := g.ml.Load().Join(addrs); err != nil {
		return fmt.Errorf("join %v: %w", addrs, err)
	}
	return nil
}

// shutdown leaves the gossip; memberlist's log lines after it are dropped
// (its suspicion timers can still fire).
func (g *gossip) shutdown() error {
	err := g.ml.Load().Shutdown()
	g.mlLog.closed.Store(true)
	return err
}

// restart starts memberlist again on the same port under the name
// id.generation (CLUSTER RESET).
func (g *gossip) restart(id NodeID) error {
	g.restartMu.Lock()
	defer g.restartMu.Unlock()
	g.gen++
	name := string(id) + "." + strconv.Itoa(g.gen)
	old := g.ml.Load()
	port := int(old.LocalNode().Port)
	if err := old.Shutdown(); err != nil {
		g.c.logger.Printf("cluster: reset: stop gossip: %v", err)
	}
	g.memMu.Lock()
	clear(g.members)
	clear(g.gone)
	g.memMu.Unlock()
	g.bindPort = port
	ml, err := g.create(name, port)
	if err != nil {
		return err
	}
	g.ml.Store(ml)
	return nil
}

// goneMember is a member memberlist declared dead, and when.
type goneMember struct {
	node memberlist.Node
	at   time.Time
}

const (
	// goneKeep is how long the protocol's messages still go to a member
	// memberlist declared dead, unless it joins again (the reconnect loop
	// dials it every ReconnectInterval) or its node is seen under another
	// name; maxGone bounds them. Shorter than ForgetTTL: a node reset
	// (del-node) ignores its old peers' messages for that long.
	goneKeep = 30 * time.Second
	maxGone  = 4096
)

// targets returns the members the protocol's messages go to (under
// memMu): memberlist's live members, and the ones it declared dead in
// the last goneKeep. Failures are judged by the protocol's heartbeats
// (NodeTimeout), not by memberlist's probes: a peer saturated at its CPU
// quota answers probes late, memberlist declares it dead within a few
// seconds (0.5 s probe timeout, then the suspicion timeout), and, sent
// nothing more, it would miss every heartbeat and be judged FAIL by the
// protocol too, while it lives and would have heard them.
func (g *gossip) targets(now time.Time) []memberlist.Node {
	out := make([]memberlist.Node, 0, len(g.members)+len(g.gone))
	live := make(map[NodeID]bool, len(g.members))
	for _, mem := range g.members {
		out = append(out, mem)
		live[nodeOfMember(mem.Name)] = true
	}
	for name, gm := range g.gone {
		switch {
		case now.Sub(gm.at) > goneKeep:
			delete(g.gone, name)
		case !live[nodeOfMember(name)]:
			out = append(out, gm.node)
		}
	}
	return out
}

// member returns the member named name: live, or declared dead in the
// last goneKeep (under memMu).
func (g *gossip) member(name string, now time.Time) (memberlist.Node, bool) {
	if mem, ok := g.members[name]; ok {
		return mem, true
	}
	if gm, ok := g.gone[name]; ok && now.Sub(gm.at) <= goneKeep {
		return gm.node, true
	}
	return memberlist.Node{}, false
}

// Send implements Transport. The message is encoded once per encoding:
// binary for the peers that read it, JSON for the others.
func (g *gossip) Send(m Message) {
	ml := g.ml.Load()
	if ml == nil {
		return
	}
	var js, bin []byte
	jsonOf := func() []byte {
		if js == nil {
			jm := m
			if !g.legacyJSON.Load() {
				jm.Wire = wireVersion
			}
			var err error
			if js, err = json.Marshal(jm); err != nil {
				g.c.logger.Printf("cluster: encode %s: %v", m.Type, err)
			}
		}
		return js
	}
	g.memMu.Lock()
	type dest struct {
		mem    memberlist.Node
		binary bool
	}
	targets := g.targets(time.Now())
	dests := make([]dest, 0, len(targets))
	for _, mem := range targets {
		id := nodeOfMember(mem.Name)
		if id == m.From || (m.To != "" && id != m.To) {
			continue
		}
		dests = append(dests, dest{mem, g.wire[id] && !g.legacyJSON.Load()})
	}
	g.memMu.Unlock()
	for i := range dests {
		mem := &dests[i].mem
		b := []byte(nil)
		if dests[i].binary {
			if bin == nil {
				bin, _ = encodeWire(&m)
			}
			b = bin
		}
		if b == nil {
			b = jsonOf()
		}
		if b == nil {
			return
		}
		// heartbeats are small and periodic: UDP; anything that does not
		// fit a packet, or must arrive (votes, FAIL), goes over TCP
		if m.Type == MsgHeartbeat && len(b) < 1200 {
			if err := ml.SendBestEffort(mem, b); err != nil {
				g.c.logger.Printf("cluster: send %s to %s: %v", m.Type, mem.Name, err)
			}
		} else {
			g.sendReliable(mem.Name, b) // queued: a hanging peer delays only itself
		}
	}
	if m.Type == MsgFail {
		// also spread it by gossip, reaching peers a direct send missed
		// (any peer, so in JSON)
		if b := jsonOf(); b != nil {
			g.queue.QueueBroadcast(&broadcast{msg: b})
		}
	}
}

// maxWirePeers bounds the peers remembered as reading binary messages.
const maxWirePeers = 4096

// noteWire remembers whether the peer id reads binary protocol messages,
// from a message it sent: binary, or JSON saying so (Message.Wire). A
// peer restarted with an older version goes back to JSON.
func (g *gossip) noteWire(id NodeID, reads bool) {
	g.memMu.Lock()
	defer g.memMu.Unlock()
	if g.wire[id] == reads {
		return
	}
	if !reads {
		delete(g.wire, id)
		return
	}
	if g.wire == nil {
		g.wire = map[NodeID]bool{}
	}
	if len(g.wire) < maxWirePeers {
		g.wire[id] = true
	}
}

// reconnect rejoins, every ReconnectInterval, the peers of this node's
// view that memberlist does not list: memberlist forgets a peer it declared
// dead (a partition, a restart), and nothing else would dial it again, so
// the two sides of a healed partition would never merge their views.
func (g *gossip) reconnect() {
	c := g.c
	t := time.NewTicker(c.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		st, err := c.Status()
		if err != nil {
			return // closed
		}
		g.memMu.Lock()
		known := make(map[string]bool, len(g.members))
		for name := range g.members {
			known[string(nodeOfMember(name))] = true
		}
		g.memMu.Unlock()
		var addrs []string
		for _, p := range st.Peers {
			if p.ID == st.ID || known[string(p.ID)] || p.BusPort == 0 {
				continue
			}
			if host, _, err := net.SplitHostPort(p.Addr); err == nil {
				addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(p.BusPort)))
			}
		}
		for _, a := range addrs {
			select {
			case <-c.done:
				return
			default:
			}
			// a peer that stays away is retried next round; it is not an error
			_, _ = g.ml.Load().Join([]string{a})
		}
	}
}

// nodeOfMember returns the node ID of a memberlist member name: the ID,
// followed after a reset by "." and the gossip generation.
func nodeOfMember(name string) NodeID {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return NodeID(name[:i])
	}
	return NodeID(name)
}

// delegate is memberlist's Delegate. Its callbacks run on memberlist's
// goroutines: they queue inputs for the owner.
type delegate gossip

func (d *delegate) NodeMeta(limit int) []byte {
	return []byte(d.c.cfg.Node.Addr)
}

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) > 0 && b[0] == extMarker {
		d.c.receiveExt(b[1:]) // another layer's message (ext.go)
		return
	}
	if len(b) > 0 && b[0] == wireV1 && d.legacyJSON.Load() {
		d.c.logger.Printf("cluster: bad message: binary (this node reads JSON only)")
		return
	}
	m, ok := d.c.decode(b) // copies what it keeps
	if !ok {
		return
	}
	(*gossip)(d).noteWire(m.From, m.bin || m.Wire >= wireVersion)
	d.c.submit(input{msg: &m.Message})
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

// LocalState sends this node's whole view in push-pull exchanges, so that
// a joining or partitioned peer learns every slot claim at once.
func (d *delegate) LocalState(join bool) []byte {
	st, err := d.c.State()
	if err != nil {
		return nil
	}
	b, _ := json.Marshal(st)
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	var st State
	if err := json.Unmarshal(buf, &st); err != nil {
		d.c.logger.Printf("cluster: bad remote state: %v", err)
		return
	}
	d.c.submit(input{op: &Op{Kind: OpMergeView, View: &st}})
}

// events is memberlist's EventDelegate: membership feeds the node's peer
// list; failure judgement stays with the protocol.
type events gossip

func (e *events) NotifyJoin(m *memberlist.Node) {
	e.memMu.Lock()
	e.members[m.Name] = *m
	id := nodeOfMember(m.Name)
	for name := range e.gone {
		if nodeOfMember(name) == id {
			delete(e.gone, name) // back (under this name or a new one)
		}
	}
	e.memMu.Unlock()
	if id := nodeOfMember(m.Name); ValidNodeID(string(id)) {
		e.c.submit(input{op: &Op{Kind: OpAddPeer, Node: id, Addr: string(m.Meta)}})
	}
}

func (e *events) NotifyLeave(m *memberlist.Node) {
	e.memMu.Lock()
	delete(e.members, m.Name)
	if e.gone == nil {
		e.gone = map[string]goneMember{}
	}
	if _, ok := e.gone[m.Name]; ok || len(e.gone) < maxGone {
		e.gone[m.Name] = goneMember{node: *m, at: time.Now()}
	}
	delete(e.wire, nodeOfMember(m.Name)) // it may come back another version
	e.memMu.Unlock()
}

func (e *events) NotifyUpdate(m *memberlist.Node) { e.NotifyJoin(m) }

type broadcast struct{ msg []byte }

func (b *broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *broadcast) Message() []byte                       { return b.msg }
func (b *broadcast) Finished()                             {}

// mlLog forwards memberlist's log lines to the cluster logger.
// After Close it drops them: memberlist's suspicion timers can still fire
// and log after Shutdown returns.
type mlLog struct {
	l      *log.Logger
	closed atomic.Bool
}

func (w *mlLog) Write(p []byte) (int, error) {
	if w.closed.Load() || bytes.Contains(p, []byte("[DEBUG]")) {
		return len(p), nil
	}
	w.l.Printf("gossip: %s", p)
	return len(p), nil
}
