package peer

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/kv"
)

// Config configures a peer: the data store (internal/kv) and, in cluster
// mode, the cluster layer around it (gossip, protocol, router,
// replication). gantry peer fills it from its flags.
type Config struct {
	// Bind and Port are where clients connect. Port 0 takes any free port
	// (and then any free bus port too).
	Bind string
	Port int
	// Store configures the data store; New sets Store.Cluster. In cluster
	// mode Store.DataDir also keeps the node's view (nodes.json).
	Store kv.Config
	// Cluster turns on cluster mode; the settings below apply only then.
	Cluster bool
	// Announce is the host:port announced to peers and clients (NAT,
	// containers); its host must be an IP address (gossip advertises it).
	// Empty announces Bind:Port, and Bind must then be one address.
	Announce string
	// BusPort is the gossip port (TCP and UDP); 0 means Port + 10000, as
	// in Redis, which CLUSTER MEET relies on.
	BusPort int
	// Join are gossip addresses (host:busport) of peers to join at start;
	// peers can also MEET this node later.
	Join []string
	// NodeTimeout is how long a peer may stay silent before it is
	// suspected; the protocol's other timers scale with it
	// (NodeConfig.WithNodeTimeout).
	NodeTimeout time.Duration
	// RequireFullCoverage refuses commands while any slot is unassigned or
	// its owner failed (Redis's cluster-require-full-coverage).
	RequireFullCoverage bool
	// GossipKey, when set (16, 24 or 32 bytes), encrypts the gossip.
	GossipKey []byte
	// KeyringFile is the gossip keyring (keyring.go); empty is
	// gossip.keyring in Store.DataDir. When it exists it encrypts the
	// gossip (over GossipKey); GossipKey without it starts it.
	KeyringFile string
	// TLS configures the TLS port and TLS between peers (tls.go).
	TLS TLSConfig
	// Logger receives the cluster layer's messages (Store.Logger gets the
	// store's); nil discards them.
	Logger *log.Logger
}

// DefaultConfig returns gantry peer's defaults: Redis's port on loopback,
// kv's defaults, and for cluster mode a node timeout of 1 s with full
// coverage required.
func DefaultConfig() Config {
	return Config{
		Bind:                "127.0.0.1",
		Port:                6379,
		Store:               kv.DefaultConfig(),
		NodeTimeout:         time.Second,
		RequireFullCoverage: true,
	}
}

// Validate reports the first setting that is out of range; it changes
// nothing. The store's settings are checked by kv.New.
func (c Config) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return badConfig("port %d: want 0..65535", c.Port)
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if !c.Cluster {
		return nil
	}
	if c.BusPort < 0 || c.BusPort > 65535 || c.BusPort == 0 && c.Port > 65535-10000 {
		return badConfig("bus port %d (port %d + 10000 when 0): want 1..65535", c.BusPort, c.Port)
	}
	if c.Announce == "" {
		if ip := net.ParseIP(c.Bind); ip == nil || ip.IsUnspecified() {
			// MOVED replies and CLUSTER NODES would send clients to 0.0.0.0
			return badConfig("bind address %q is not one address: set an announce address (host:port) for clients and peers", c.Bind)
		}
	} else {
		host, _, err := net.SplitHostPort(c.Announce)
		if err != nil {
			return badConfig("announce address %q: %v", c.Announce, err)
		}
		if net.ParseIP(host) == nil {
			return badConfig("announce address %q: the host must be an IP address (gossip advertises it)", c.Announce)
		}
	}
	if l := len(c.GossipKey); l != 0 && l != 16 && l != 24 && l != 32 {
		return badConfig("gossip key of %d bytes: want 16, 24 or 32", l)
	}
	return DefaultNodeConfig("", "").WithNodeTimeout(c.NodeTimeout).validateTimers()
}

// Peer is a running peer: the store serving clients and, in cluster
// mode, the cluster layer routing them.
type Peer struct {
	cfg     Config
	logger  *log.Logger
	ln      net.Listener
	srv     *kv.Server
	cluster *Cluster // nil when standalone
	router  *Router

	tls   *TLSFiles    // nil without TLS (tls.go)
	tlsLn net.Listener // the TLS port, nil without one
	tlsWG sync.WaitGroup

	stop     chan struct{} // closed by a client's SHUTDOWN
	stopOnce sync.Once
}

// StopRequested is closed when a client asked the peer to stop (SHUTDOWN);
// its owner then stops it as after SIGTERM.
func (p *Peer) StopRequested() <-chan struct{} { return p.stop }

// New listens on Bind:Port, starts the cluster layer in cluster mode
// (loading nodes.json from the data dir), then the store (loading its
// snapshot and log), connects the two and joins the peers of Join. Serve
// then serves clients; Close stops everything.
func New(cfg Config) (*Peer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	// listen first: a taken port fails before any data is loaded
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	p := &Peer{cfg: cfg, logger: logger, ln: ln, stop: make(chan struct{})}
	if err := p.startTLS(); err != nil {
		ln.Close()
		return nil, err
	}
	if err := p.start(); err != nil {
		p.abort()
		return nil, err
	}
	return p, nil
}

func (p *Peer) start() error {
	kcfg := p.cfg.Store
	p.storeTLS(&kcfg)
	if kcfg.Shutdown == nil {
		kcfg.Shutdown = func() { p.stopOnce.Do(func() { close(p.stop) }) }
	}
	if p.cfg.Cluster {
		if err := p.startCluster(); err != nil {
			return err
		}
		kcfg.Cluster = p.router
	}
	srv, err := kv.New(kcfg)
	if err != nil {
		return err
	}
	p.srv = srv
	if p.cluster == nil {
		return nil
	}
	p.router.SetKeyspace(srv.Keyspace())
	if err := p.cluster.SetReplicator(srv); err != nil {
		return err
	}
	if len(p.cfg.Join) > 0 {
		if err := p.cluster.Join(p.cfg.Join); err != nil {
			p.logger.Printf("cluster: %v (peers can still MEET this node)", err)
		}
	}
	return nil
}

// startCluster starts the cluster layer for the address listened on.
func (p *Peer) startCluster() error {
	cfg := p.cfg
	port := p.ln.Addr().(*net.TCPAddr).Port
	addr := net.JoinHostPort(cfg.Bind, strconv.Itoa(port))
	if cfg.Announce != "" {
		addr = cfg.Announce
	}
	bus := cfg.BusPort
	if bus == 0 && cfg.Port != 0 {
		bus = cfg.Port + 10000
	}
	ccfg := DefaultClusterConfig()
	ccfg.Node = DefaultNodeConfig("", addr).WithNodeTimeout(cfg.NodeTimeout)
	ccfg.BindAddr, ccfg.BusPort = cfg.Bind, bus
	ccfg.SecretKey = cfg.GossipKey
	ccfg.PeerClient = p.peerClient
	ccfg.RequireFullCoverage = cfg.RequireFullCoverage
	ccfg.Logger = p.logger
	if cfg.Announce != "" {
		host, _, _ := net.SplitHostPort(cfg.Announce)
		ccfg.AdvertiseAddr, ccfg.AdvertisePort = host, bus
	}
	if dir := cfg.Store.DataDir; dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		ccfg.Store = NewFileStore(dir)
	}
	kr, err := p.loadKeyring() // keyring.go
	if err != nil {
		return err
	}
	ccfg.Keyring = kr
	c, err := NewCluster(ccfg)
	if err != nil {
		return err
	}
	p.cluster, p.router = c, NewRouter(c)
	p.logger.Printf("cluster: node %s, gossip on %s:%d", c.ID(), cfg.Bind, c.BusPort())
	return nil
}

// abort undoes a failed New.
func (p *Peer) abort() {
	if p.srv != nil {
		if err := p.srv.Close(); err != nil {
			p.logger.Printf("close the store: %v", err)
		}
	}
	if p.cluster != nil {
		if err := p.cluster.Close(); err != nil {
			p.logger.Printf("cluster: close: %v", err)
		}
	}
	p.ln.Close()
	if p.tlsLn != nil {
		p.tlsLn.Close()
	}
}

// Addr returns the address clients connect to.
func (p *Peer) Addr() net.Addr { return p.ln.Addr() }

// Store returns the data store.
func (p *Peer) Store() *kv.Server { return p.srv }

// Cluster returns the cluster layer; nil when standalone.
func (p *Peer) Cluster() *Cluster { return p.cluster }

// Serve serves clients until Close, after which it returns nil.
func (p *Peer) Serve() error {
	p.serveTLS()
	if err := p.srv.Serve(p.ln); !errors.Is(err, kv.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the store (so no command reaches the cluster layer
// afterwards), then the cluster layer, which saves its view.
func (p *Peer) Close() error {
	err := p.srv.Close()
	p.ln.Close() // in case Serve never ran
	if p.tlsLn != nil {
		p.tlsLn.Close()
	}
	p.tlsWG.Wait()
	if p.cluster != nil {
		if cerr := p.cluster.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cluster: %w", cerr))
		}
	}
	return err
}
