package main

import (
	"encoding/base64"
	"fmt"
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
	d := peer.DefaultConfig()
	f.BoolVar(&c.enabled, "cluster", false, "run as a Redis Cluster node (gossip, hash slots, redirections)")
	f.IntVar(&c.busPort, "cluster-port", 0, "gossip (cluster bus) port; 0 means --port + 10000, as Redis")
	f.StringVar(&c.announce, "announce-addr", "", "host:port announced to peers and clients (NAT, containers); default --bind:--port")
	f.StringSliceVar(&c.join, "join", nil, "gossip addresses (host:busport) of peers to join at start")
	f.DurationVar(&c.nodeTimeout, "cluster-node-timeout", d.NodeTimeout, "silence after which a peer is suspected; failover follows within about twice this")
	f.BoolVar(&c.requireFull, "cluster-require-full-coverage", d.RequireFullCoverage, "refuse commands while any slot is unassigned or its owner failed")
	f.StringVar(&c.gossipKeyB64, "gossip-key", "", "base64 key (16, 24 or 32 bytes) encrypting the gossip")
}

// apply copies the flags into cfg.
func (c *clusterFlags) apply(cfg *peer.Config) error {
	cfg.Cluster = c.enabled
	cfg.BusPort = c.busPort
	cfg.Announce = c.announce
	cfg.Join = c.join
	cfg.NodeTimeout = c.nodeTimeout
	cfg.RequireFullCoverage = c.requireFull
	if c.gossipKeyB64 != "" {
		k, err := base64.StdEncoding.DecodeString(c.gossipKeyB64)
		if err != nil {
			return fmt.Errorf("--gossip-key: %w", err)
		}
		cfg.GossipKey = k
	}
	return nil
}
