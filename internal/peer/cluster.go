package peer

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterConfig configures a running peer's cluster layer: the protocol
// Node, its network (hashicorp/memberlist) and its disk (a Store).
type ClusterConfig struct {
	// PeerClient, when set, completes the options of the cluster layer's
	// own connections to other peers (a replica pausing its primary for
	// CLUSTER FAILOVER): masteruser and masterauth, TLS with tls-cluster.
	PeerClient func(*redis.Options)
	// Keyring, when set, encrypts the gossip (keyring.go); it takes the
	// place of SecretKey and CLUSTER KEYRING changes it.
	Keyring *Keyring
	// Node configures the protocol. Node.ID may be empty: the ID saved in
	// Store is used, else a new random one. Node.BusPort 0 announces the
	// gossip port (AdvertisePort, else the bound one).
	Node NodeConfig
	// BindAddr and BusPort are where memberlist listens (TCP and UDP);
	// BusPort 0 takes any free port. Redis Cluster's convention is the
	// client port + 10000, which CLUSTER MEET relies on.
	BindAddr string
	BusPort  int
	// AdvertiseAddr (an IP address) and AdvertisePort, when set, are
	// announced to other peers instead of the bind address (NAT,
	// containers).
	AdvertiseAddr string
	AdvertisePort int
	// SecretKey, when set (16, 24 or 32 bytes), encrypts the gossip.
	SecretKey []byte
	// RequireFullCoverage is Redis's cluster-require-full-coverage:
	// refuse every command while a slot is unassigned or its owner failed.
	RequireFullCoverage bool
	// TickInterval is the shortest time between two of the protocol's
	// Ticks, and MaxTickInterval the longest: in between, the owner ticks
	// when the node has something to do (Node.NextDeadline).
	TickInterval    time.Duration
	MaxTickInterval time.Duration
	// ReconnectInterval is how often peers of the view that gossip lost
	// are dialled again.
	ReconnectInterval time.Duration
	// Store keeps the node's state across restarts (NewFileStore); nil
	// keeps it in memory only.
	Store Store
	// Logger receives operational messages; nil discards them.
	Logger *log.Logger
}

// DefaultClusterConfig returns the settings of gantry peer --cluster: the
// default protocol timers, gossip on loopback at any port, full coverage
// required, ticks 10 ms to 1 s apart, reconnects every second, no
// persistence. The
// announced address (Node.Addr) is the caller's to set.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{
		Node:                DefaultNodeConfig("", ""),
		BindAddr:            "127.0.0.1",
		RequireFullCoverage: true,
		TickInterval:        10 * time.Millisecond,
		MaxTickInterval:     time.Second,
		ReconnectInterval:   time.Second,
	}
}

// Validate reports the first setting that is out of range; it changes
// nothing.
func (c ClusterConfig) Validate() error {
	if c.Node.ID != "" && !ValidNodeID(string(c.Node.ID)) {
		return badConfig("node id %q: want 40 lowercase hex characters or none", c.Node.ID)
	}
	if c.Node.Addr == "" {
		return badConfig("announced address: empty (host:port clients and peers reach this node on)")
	}
	if err := c.Node.validateTimers(); err != nil {
		return err
	}
	if c.BusPort < 0 || c.BusPort > 65535 || c.AdvertisePort < 0 || c.AdvertisePort > 65535 || c.Node.BusPort < 0 || c.Node.BusPort > 65535 {
		return badConfig("bus port %d, advertised port %d, announced bus port %d: want 0..65535", c.BusPort, c.AdvertisePort, c.Node.BusPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return badConfig("advertise address %q: want an IP address (gossip announces it)", c.AdvertiseAddr)
	}
	if l := len(c.SecretKey); l != 0 && l != 16 && l != 24 && l != 32 {
		return badConfig("gossip key of %d bytes: want 16, 24 or 32", l)
	}
	if c.TickInterval <= 0 || c.TickInterval > c.Node.MinHeartbeatInterval {
		return badConfig("tick interval %v: must be positive and at most the minimum heartbeat interval %v", c.TickInterval, c.Node.MinHeartbeatInterval)
	}
	if c.MaxTickInterval < c.TickInterval {
		return badConfig("longest tick interval %v: must be at least the tick interval %v", c.MaxTickInterval, c.TickInterval)
	}
	if c.ReconnectInterval <= 0 {
		return badConfig("reconnect interval %v: must be positive", c.ReconnectInterval)
	}
	return nil
}

// Transport carries the owner's messages to the peers. Send is called
// from the owner goroutine only, after the state the message depends on
// is durable; it must not block on the network (memberlist's sends are
// queued per peer, sender.go).
type Transport interface {
	Send(m Message)
}

// ErrClosed is returned by calls into a closed Cluster.
var ErrClosed = errors.New("cluster layer closed")

// inputsQueue bounds the inputs waiting for the owner; senders block
// (memberlist's handlers, CLUSTER commands) until there is room.
const inputsQueue = 256

// maxBatch bounds how many queued inputs one owner step takes before it
// persists and sends: one save covers them all, and a long queue still
// gets its replies in bounded time.
const maxBatch = 64

// Cluster runs a Node on the real network. One goroutine, the owner
// (run), is the only one that touches the Node. It takes every input
// (peer messages, gossip events, operator commands, queries) from one
// channel, steps the node, and then handles the node's Ready in a fixed
// order: persist the state and wait until it is durable, make the store
// and the router follow it, send the messages, Advance, answer the
// callers. So a vote never leaves before the epoch it was cast in is on
// disk, states reach the disk in the order they were produced, and a
// CLUSTER command answers only once its change is durable.
//
// Everyone else sees the node through what the owner publishes: the
// routing snapshot (an atomic pointer the router reads on every command,
// without a lock) and Status copies taken on request.
type Cluster struct {
	cfg    ClusterConfig
	logger *log.Logger
	now    func() time.Time

	// owned by the owner goroutine (and by the constructor before it runs)
	node       *Node
	repl       Replicator
	replWant   string
	saveFailed bool // the last save failed (logged once until one succeeds)

	inputs   chan input
	routes   atomic.Pointer[routes]
	onRoutes atomic.Pointer[func()] // the router's wake-up of blocked clients

	tr     Transport
	gossip *gossip // nil when tr is not memberlist (tests)
	ext    extHook // receiver of extension messages (ext.go)

	done      chan struct{}
	closeOnce sync.Once
	trackMu   sync.Mutex // held to close done, and to start a tracked goroutine
	wg        sync.WaitGroup
	// replShared is the Replicator for goroutines other than the owner
	replShared atomic.Pointer[replBox]
}

// input is one thing for the owner to do. Exactly one of msg, op, query
// and repl is set; reply, when set, gets the answer once the owner has
// persisted and sent what the input caused.
type input struct {
	msg   *Message
	op    *Op
	query queryKind
	repl  Replicator
	reply chan<- result
}

type queryKind uint8

const (
	queryNone    queryKind = iota
	queryStatus            // result.status
	queryState             // result.state (what push-pull sends)
	queryMembers           // result.members
)

type result struct {
	res     OpResult
	err     error
	status  *Status
	state   *State
	members *Members
}

// pending is an input waiting for its answer until the step is durable.
type pending struct {
	in  input
	res OpResult
	err error
}

// NewCluster loads the saved view from cfg.Store (if any), starts
// memberlist and the owner goroutine. Close stops both.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	c, saved, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}
	g, err := startGossip(c, c.cfg.Node.ID)
	if err != nil {
		return nil, err
	}
	c.gossip, c.tr = g, g
	bus := cfg.Node.BusPort
	if bus == 0 {
		bus = cfg.AdvertisePort
	}
	if bus == 0 {
		bus = g.port() // an automatic port: announce the one memberlist bound
	}
	if err := c.initNode(bus, saved); err != nil {
		if serr := g.shutdown(); serr != nil {
			c.logger.Printf("cluster: stop gossip: %v", serr)
		}
		return nil, err
	}
	c.start()
	return c, nil
}

// newCluster validates cfg, loads the saved state and settles the node's
// ID; the node itself is made by initNode once the bus port is known.
func newCluster(cfg ClusterConfig) (*Cluster, *State, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	var saved *State
	if cfg.Store != nil {
		st, ok, err := cfg.Store.Load()
		if err != nil {
			return nil, nil, err
		}
		if ok {
			saved = &st
			cfg.Node.ID = st.ID
		}
	}
	if cfg.Node.ID == "" {
		cfg.Node.ID = NewNodeID(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	}
	c := &Cluster{cfg: cfg, logger: logger, now: time.Now,
		inputs: make(chan input, inputsQueue), done: make(chan struct{})}
	return c, saved, nil
}

// initNode makes the node, restores the saved state and publishes the
// first routing snapshot.
func (c *Cluster) initNode(busPort int, saved *State) error {
	ncfg := c.cfg.Node
	ncfg.BusPort = busPort
	node, err := NewNode(ncfg)
	if err != nil {
		return err
	}
	if saved != nil {
		if err := node.Restore(*saved, c.now()); err != nil {
			return fmt.Errorf("saved cluster state: %w", err)
		}
		c.logger.Printf("cluster: loaded view of %d nodes", len(saved.Peers))
	}
	c.node = node
	c.routes.Store(buildRoutes(node, c.cfg.RequireFullCoverage))
	return nil
}

// start runs the owner goroutine, and the reconnects when gossiping.
func (c *Cluster) start() {
	c.goTracked(c.run)
	if c.gossip != nil {
		c.goTracked(c.gossip.reconnect)
	}
}

// goTracked runs fn on a goroutine that Close waits for; false (and fn
// not run) once the cluster is closing.
func (c *Cluster) goTracked(fn func()) bool {
	c.trackMu.Lock()
	defer c.trackMu.Unlock()
	select {
	case <-c.done:
		return false
	default:
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// Close stops the owner (which saves what is pending) and every other
// goroutine of the cluster layer, then leaves the gossip.
func (c *Cluster) Close() error {
	var err error
	c.closeOnce.Do(func() {
		// under trackMu, so no goroutine starts (wg.Add) once Wait may run
		c.trackMu.Lock()
		close(c.done)
		c.trackMu.Unlock()
		c.wg.Wait()
		if c.gossip != nil {
			err = c.gossip.shutdown()
		}
	})
	return err
}

// submit queues an input for the owner; false once the cluster is closed.
func (c *Cluster) submit(in input) bool {
	select {
	case c.inputs <- in:
		return true
	case <-c.done:
		return false
	}
}

// call submits in and waits for its answer.
func (c *Cluster) call(in input) (result, error) {
	ch := make(chan result, 1)
	in.reply = ch
	if !c.submit(in) {
		return result{}, ErrClosed
	}
	select {
	case r := <-ch:
		return r, nil
	case <-c.done:
		select {
		case r := <-ch:
			return r, nil
		default:
			return result{}, ErrClosed
		}
	}
}

// Do applies op (an operator command) on the owner goroutine and returns
// once the state it changed is durable and its messages are sent.
func (c *Cluster) Do(op Op) (OpResult, error) {
	r, err := c.call(input{op: &op})
	if err != nil {
		return OpResult{}, err
	}
	return r.res, r.err
}

// Status returns a copy of the node's view; callers in one batch share
// it, so it must not be modified.
func (c *Cluster) Status() (*Status, error) {
	r, err := c.call(input{query: queryStatus})
	if err != nil {
		return nil, err
	}
	return r.status, nil
}

// Members returns the membership part of Status only: a layer that reads
// it every few tens of milliseconds (the execution layer's tick) does not
// pay for Status's copies of every peer, slot range and failure report.
func (c *Cluster) Members() (*Members, error) {
	r, err := c.call(input{query: queryMembers})
	if err != nil {
		return nil, err
	}
	return r.members, nil
}

// State returns the node's persistent state (what push-pull sends).
func (c *Cluster) State() (*State, error) {
	r, err := c.call(input{query: queryState})
	if err != nil {
		return nil, err
	}
	return r.state, nil
}

// ID returns this node's ID (from the routing snapshot: no round trip).
func (c *Cluster) ID() NodeID { return c.routes.Load().id() }

// SlotOwner returns the owner of slot s in the current routing snapshot.
func (c *Cluster) SlotOwner(s uint16) NodeID { return c.routes.Load().ownerOf(s) }

// receive queues a message that arrived from the network.
func (c *Cluster) receive(b []byte) {
	if m, ok := c.decode(b); ok {
		c.submit(input{msg: &m.Message})
	}
}

// received is a decoded bus message, and whether it came binary.
type received struct {
	Message
	bin bool
}

// decode decodes a protocol message (binary or JSON); a bad one is
// logged and dropped.
func (c *Cluster) decode(b []byte) (received, bool) {
	m, bin, err := decodeMessage(b)
	if err != nil {
		c.logger.Printf("cluster: bad message: %v", err)
		return received{}, false
	}
	return received{m, bin}, true
}

// Join contacts peers by their gossip addresses (host:busport).
func (c *Cluster) Join(addrs []string) error {
	if c.gossip == nil {
		return errors.New("join: no gossip")
	}
	return c.gossip.join(addrs)
}

// Meet joins the peer whose client port is host:port (CLUSTER MEET), at
// its bus port (port + 10000, or busPort when not zero).
func (c *Cluster) Meet(host string, port, busPort int) error {
	if busPort == 0 {
		busPort = port + 10000
	}
	return c.Join([]string{net.JoinHostPort(host, fmt.Sprint(busPort))})
}

// BusPort returns the port memberlist listens on (useful with port 0).
func (c *Cluster) BusPort() int {
	if c.gossip == nil {
		return 0
	}
	return c.gossip.port()
}

// Reset runs CLUSTER RESET: the node forgets its view (a hard reset also
// takes a new ID and epoch 0) and saves it; then the gossip restarts under
// a new member name (ID.generation), so the old cluster's memberlists
// lose the old name (probes of it fail) instead of gossiping with the
// reset node, which ignores its old peers for ForgetTTL.
func (c *Cluster) Reset(hard bool) error {
	var newID NodeID
	if hard {
		newID = NewNodeID(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	}
	res, err := c.Do(Op{Kind: OpReset, Hard: hard, Node: newID})
	if err != nil {
		return err
	}
	if c.gossip != nil {
		if err := c.gossip.restart(res.ID); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	c.logger.Printf("cluster: reset (hard=%v), node %s", hard, res.ID)
	return nil
}
