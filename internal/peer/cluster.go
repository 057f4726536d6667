package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ClusterConfig configures a running peer's cluster layer: the protocol
// Node plus its network (hashicorp/memberlist) and disk.
type ClusterConfig struct {
	// Node configures the protocol; Node.ID may be empty: a saved ID from
	// DataDir is used, else a new random one.
	Node Config
	// BindAddr and BusPort are where memberlist listens (TCP and UDP); Redis
	// Cluster's convention is the client port + 10000, which CLUSTER MEET
	// relies on.
	BindAddr string
	BusPort  int
	// AdvertiseAddr/AdvertisePort, when set, are announced to other peers
	// instead of the bind address (NAT, containers).
	AdvertiseAddr string
	AdvertisePort int
	// DataDir keeps nodes.json (this node's view); empty keeps it in memory.
	DataDir string
	// SecretKey, when set (16, 24 or 32 bytes), encrypts the gossip.
	SecretKey []byte
	// TickInterval is how often the protocol's Tick runs.
	TickInterval time.Duration
	// ReconnectInterval is how often peers of the view that gossip lost
	// are dialled again (default 1 s).
	ReconnectInterval time.Duration
	Logger            *log.Logger
}

// Cluster runs a Node on the real network: a ticker goroutine, memberlist
// for membership and message transport, nodes.json for persistence.
type Cluster struct {
	cfg    ClusterConfig
	logger *log.Logger

	mu   sync.Mutex // guards node; held only for protocol steps, never for I/O
	node *Node

	ml    atomic.Pointer[memberlist.Memberlist] // set once Create returns; callbacks may run before
	mlLog *mlLog
	queue *memberlist.TransmitLimitedQueue

	// members are copies of memberlist's nodes taken in its event callbacks
	// (memberlist mutates the nodes Members returns while we would read them)
	memMu   sync.Mutex
	members map[string]memberlist.Node

	// onChange, when set, runs with the node locked after every step (the
	// Router refreshes its routing snapshot)
	onChange func(n *Node)

	gen int // gossip generation, bumped by CLUSTER RESET (guarded by mu)

	// repl is the store's replication, driven by the node's role
	// (replication.go); replWant is the primary address it follows
	repl     Replicator
	replWant string

	send senders // per-peer queues of reliable messages (sender.go)

	saveMu sync.Mutex // serialises writes of nodes.json
	done   chan struct{}
	wg     sync.WaitGroup
}

// StartCluster loads the saved view (if any), starts memberlist and the
// ticker. Close stops both.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 10 * time.Millisecond
	}
	if cfg.ReconnectInterval <= 0 {
		cfg.ReconnectInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(io.Discard, "", 0)
	}
	var saved *State
	if cfg.DataDir != "" {
		st, err := LoadState(cfg.DataDir)
		switch {
		case err == nil:
			saved = &st
			cfg.Node.ID = st.ID
		case errors.Is(err, os.ErrNotExist):
		default:
			return nil, err
		}
	}
	if cfg.Node.ID == "" {
		cfg.Node.ID = NewNodeID(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	}
	if cfg.Node.BusPort == 0 {
		cfg.Node.BusPort = cfg.AdvertisePort
		if cfg.Node.BusPort == 0 {
			cfg.Node.BusPort = cfg.BusPort
		}
	}
	node, err := NewNode(cfg.Node)
	if err != nil {
		return nil, err
	}
	if saved != nil {
		if err := node.Restore(*saved, time.Now()); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.DataDir, err)
		}
		cfg.Logger.Printf("cluster: loaded view of %d nodes from %s", len(saved.Peers), cfg.DataDir)
	}
	c := &Cluster{cfg: cfg, logger: cfg.Logger, node: node, done: make(chan struct{}),
		members: make(map[string]memberlist.Node)}

	c.mlLog = &mlLog{l: c.logger}
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numMembers, RetransmitMult: 3}
	ml, err := c.createMemberlist(string(node.ID()))
	if err != nil {
		return nil, err
	}
	c.ml.Store(ml)
	if cfg.Node.BusPort == 0 {
		// an automatic port: announce the one memberlist bound
		c.mu.Lock()
		c.node.self().BusPort = int(ml.LocalNode().Port)
		c.mu.Unlock()
	}
	c.wg.Add(2)
	go c.run()
	go c.reconnect()
	return c, nil
}

// createMemberlist starts the gossip under the node's name (at start, and
// again after CLUSTER RESET).
func (c *Cluster) createMemberlist(name string) (*memberlist.Memberlist, error) {
	cfg := c.cfg
	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BusPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BusPort
	}
	mc.SecretKey = cfg.SecretKey
	mc.Delegate = (*delegate)(c)
	mc.Events = (*events)(c)
	// memberlist is the membership layer; failures that move slots are
	// judged by the protocol's own heartbeats (NodeTimeout), so memberlist
	// keeps its LAN defaults except a quicker probe.
	mc.ProbeInterval = 500 * time.Millisecond
	// joins (at start, MEET, reconnects) must not hang on an unreachable
	// peer for the LAN default of 10 s
	mc.TCPTimeout = 2 * time.Second
	mc.Logger = log.New(c.mlLog, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s:%d: %w", cfg.BindAddr, cfg.BusPort, err)
	}
	return ml, nil
}

// Close leaves the gossip, stops the ticker and saves the view.
func (c *Cluster) Close() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	// under send.mu, so no sender starts (wg.Add) once Wait may be running
	c.send.mu.Lock()
	close(c.done)
	c.send.mu.Unlock()
	c.wg.Wait()
	err := c.ml.Load().Shutdown()
	c.mlLog.closed.Store(true)
	c.mu.Lock()
	st := c.node.State()
	c.mu.Unlock()
	if c.cfg.DataDir != "" {
		if serr := c.save(st); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// Join contacts peers by their gossip addresses (host:busport).
func (c *Cluster) Join(addrs []string) error {
	if _, err := c.ml.Load().Join(addrs); err != nil {
		return fmt.Errorf("join %v: %w", addrs, err)
	}
	return nil
}

// Meet joins the peer whose client port is host:port (CLUSTER MEET), at
// its bus port (port + 10000, or busPort when not zero).
func (c *Cluster) Meet(host string, port, busPort int) error {
	if busPort == 0 {
		busPort = port + 10000
	}
	return c.Join([]string{net.JoinHostPort(host, strconv.Itoa(busPort))})
}

// View runs fn with the node locked, for reads.
func (c *Cluster) View(fn func(n *Node)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.node)
}

// Update runs fn with the node locked, then saves and sends what it
// produced.
func (c *Cluster) Update(fn func(n *Node, now time.Time) error) error {
	c.mu.Lock()
	err := fn(c.node, time.Now())
	rd, st := c.readyLocked()
	c.mu.Unlock()
	c.output(rd, st)
	return err
}

// ID returns this node's ID.
func (c *Cluster) ID() NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.node.id
}

func (c *Cluster) readyLocked() (Ready, State) {
	rd := c.node.Ready()
	if c.onChange != nil {
		c.onChange(c.node)
	}
	c.syncReplLocked()
	var st State
	if rd.MustSave {
		st = c.node.State()
	}
	return rd, st
}

// output persists before sending, so a vote never leaves before the epoch
// it was cast in is on disk.
func (c *Cluster) output(rd Ready, st State) {
	if rd.MustSave && c.cfg.DataDir != "" {
		if err := c.save(st); err != nil {
			c.logger.Printf("cluster: %v (messages held back)", err)
			return
		}
	}
	for _, m := range rd.Messages {
		c.sendMsg(m)
	}
}

func (c *Cluster) save(st State) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	return SaveState(c.cfg.DataDir, st)
}

func (c *Cluster) numMembers() int {
	if ml := c.ml.Load(); ml != nil {
		return ml.NumMembers()
	}
	return 1
}

// BusPort returns the port memberlist listens on (useful with port 0).
func (c *Cluster) BusPort() int { return int(c.ml.Load().LocalNode().Port) }

func (c *Cluster) sendMsg(m Message) {
	ml := c.ml.Load()
	if ml == nil {
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		c.logger.Printf("cluster: encode %s: %v", m.Type, err)
		return
	}
	c.memMu.Lock()
	mems := make([]memberlist.Node, 0, len(c.members))
	for _, m := range c.members {
		mems = append(mems, m)
	}
	c.memMu.Unlock()
	for i := range mems {
		mem := &mems[i]
		if id := nodeOfMember(mem.Name); id == m.From || (m.To != "" && id != m.To) {
			continue
		}
		// heartbeats are small and periodic: UDP; anything that does not
		// fit a packet, or must arrive (votes, FAIL), goes over TCP
		if m.Type == MsgHeartbeat && len(b) < 1200 {
			if err := ml.SendBestEffort(mem, b); err != nil {
				c.logger.Printf("cluster: send %s to %s: %v", m.Type, mem.Name, err)
			}
		} else {
			c.sendReliable(mem.Name, b) // queued: a hanging peer delays only itself
		}
	}
	if m.Type == MsgFail {
		// also spread it by gossip, reaching peers a direct send missed
		c.queue.QueueBroadcast(&broadcast{msg: b})
	}
}

func (c *Cluster) run() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.mu.Lock()
			c.refreshOffsetLocked()
			c.node.Tick(now)
			rd, st := c.readyLocked()
			c.mu.Unlock()
			c.output(rd, st)
		}
	}
}

// reconnect rejoins, every ReconnectInterval, the peers of this node's
// view that memberlist does not list: memberlist forgets a peer it declared
// dead (a partition, a restart), and nothing else would dial it again, so
// the two sides of a healed partition would never merge their views.
func (c *Cluster) reconnect() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.memMu.Lock()
		known := make(map[string]bool, len(c.members))
		for name := range c.members {
			known[string(nodeOfMember(name))] = true
		}
		c.memMu.Unlock()
		var addrs []string
		c.mu.Lock()
		for id, p := range c.node.peers {
			if id == c.node.id || known[string(id)] || p.BusPort == 0 {
				continue
			}
			if host, _, err := net.SplitHostPort(p.Addr); err == nil {
				addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(p.BusPort)))
			}
		}
		c.mu.Unlock()
		for _, a := range addrs {
			select {
			case <-c.done:
				return
			default:
			}
			// a peer that stays away is retried next round; it is not an error
			_, _ = c.ml.Load().Join([]string{a})
		}
	}
}

func (c *Cluster) receive(b []byte) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		c.logger.Printf("cluster: bad message: %v", err)
		return
	}
	err := c.Update(func(n *Node, now time.Time) error { return n.Step(m, now) })
	if err != nil {
		c.logger.Printf("cluster: %v", err)
	}
}

// delegate is memberlist's Delegate. Its callbacks run on memberlist's
// goroutines and must not block: they take c.mu only for a protocol step.
type delegate Cluster

func (d *delegate) NodeMeta(limit int) []byte {
	return []byte(d.cfg.Node.Addr)
}

func (d *delegate) NotifyMsg(b []byte) {
	(*Cluster)(d).receive(b) // json.Unmarshal copies what it keeps
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

// LocalState sends this node's whole view in push-pull exchanges, so that
// a joining or partitioned peer learns every slot claim at once.
func (d *delegate) LocalState(join bool) []byte {
	d.mu.Lock()
	st := d.node.State()
	d.mu.Unlock()
	b, _ := json.Marshal(st)
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	var st State
	if err := json.Unmarshal(buf, &st); err != nil {
		d.logger.Printf("cluster: bad remote state: %v", err)
		return
	}
	if err := (*Cluster)(d).Update(func(n *Node, now time.Time) error { return n.MergeView(st, now) }); err != nil {
		d.logger.Printf("cluster: merging remote state: %v", err)
	}
}

// events is memberlist's EventDelegate: membership feeds the node's peer
// list; failure judgement stays with the protocol.
type events Cluster

func (e *events) NotifyJoin(m *memberlist.Node) {
	e.memMu.Lock()
	e.members[m.Name] = *m
	e.memMu.Unlock()
	if err := (*Cluster)(e).Update(func(n *Node, now time.Time) error {
		if id := nodeOfMember(m.Name); ValidNodeID(string(id)) {
			n.AddPeer(id, string(m.Meta), now)
		}
		return nil
	}); err != nil {
		e.logger.Printf("cluster: adding peer %s: %v", m.Name, err)
	}
}
func (e *events) NotifyLeave(m *memberlist.Node) {
	e.memMu.Lock()
	delete(e.members, m.Name)
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
