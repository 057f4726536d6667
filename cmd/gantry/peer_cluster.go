package main

import (
	"encoding/base64"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/peer"
)

// clusterFlags are the --cluster options of gantry peer.
type clusterFlags struct {
	enabled      bool
	busPort      int
	announce     string
	join         []string
	nodeTimeout  time.Duration
	requireFull  bool
	gossipKeyB64 string
}

func (c *clusterFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&c.enabled, "cluster", false, "run as a Redis Cluster node (gossip, hash slots, redirections)")
	f.IntVar(&c.busPort, "cluster-port", 0, "gossip (cluster bus) port; 0 means --port + 10000, as Redis")
	f.StringVar(&c.announce, "announce-addr", "", "host:port announced to peers and clients (NAT, containers); default --bind:--port")
	f.StringSliceVar(&c.join, "join", nil, "gossip addresses (host:busport) of peers to join at start")
	f.DurationVar(&c.nodeTimeout, "cluster-node-timeout", time.Second, "silence after which a peer is suspected; failover follows within about twice this")
	f.BoolVar(&c.requireFull, "cluster-require-full-coverage", true, "refuse commands while any slot is unassigned or its owner failed")
	f.StringVar(&c.gossipKeyB64, "gossip-key", "", "base64 key (16, 24 or 32 bytes) encrypting the gossip")
}

func (c *clusterFlags) start(bind string, port int, dataDir string, logger *log.Logger) (*peer.Cluster, *peer.Router, error) {
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	if ip := net.ParseIP(bind); c.announce == "" && (ip == nil || ip.IsUnspecified()) {
		// MOVED replies and CLUSTER NODES would send clients to 0.0.0.0
		return nil, nil, fmt.Errorf("--bind %q is not one address: set --announce-addr host:port for clients and peers", bind)
	}
	if c.announce != "" {
		if _, _, err := net.SplitHostPort(c.announce); err != nil {
			return nil, nil, fmt.Errorf("--announce-addr %q: %w", c.announce, err)
		}
		addr = c.announce
	}
	bus := c.busPort
	if bus == 0 {
		bus = port + 10000
	}
	var key []byte
	if c.gossipKeyB64 != "" {
		k, err := base64.StdEncoding.DecodeString(c.gossipKeyB64)
		if err != nil {
			return nil, nil, fmt.Errorf("--gossip-key: %w", err)
		}
		if l := len(k); l != 16 && l != 24 && l != 32 {
			return nil, nil, fmt.Errorf("--gossip-key: %d bytes, want 16, 24 or 32", l)
		}
		key = k
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("data dir: %w", err)
		}
	}
	ncfg := peer.DefaultConfig("", addr)
	ncfg.NodeTimeout = c.nodeTimeout
	ncfg.FailReportValidity = 2 * c.nodeTimeout
	ncfg.HeartbeatInterval = c.nodeTimeout / 10
	ncfg.ElectionTimeout = c.nodeTimeout
	ccfg := peer.ClusterConfig{
		Node: ncfg, BindAddr: bind, BusPort: bus, DataDir: dataDir, SecretKey: key, Logger: logger,
	}
	if c.announce != "" {
		host, _, _ := net.SplitHostPort(c.announce)
		if net.ParseIP(host) == nil {
			return nil, nil, fmt.Errorf("--announce-addr %q: the host must be an IP address (gossip advertises it)", c.announce)
		}
		ccfg.AdvertiseAddr = host
		ccfg.AdvertisePort = bus
	}
	clu, err := peer.StartCluster(ccfg)
	if err != nil {
		return nil, nil, err
	}
	logger.Printf("cluster: node %s, gossip on %s:%d", clu.ID(), bind, bus)
	return clu, peer.NewRouter(clu, c.requireFull), nil
}
