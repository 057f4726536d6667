package peer

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// TestClusterConfigValidate: one error per bad field, and Validate
// changes nothing (no defaults filled in).
func TestClusterConfigValidate(t *testing.T) {
	good := DefaultClusterConfig()
	good.Node.Addr = "127.0.0.1:7000"
	tests := []struct {
		name string
		mod  func(*ClusterConfig)
	}{
		{"bad id", func(c *ClusterConfig) { c.Node.ID = "xyz" }},
		{"no address", func(c *ClusterConfig) { c.Node.Addr = "" }},
		{"zero node timeout", func(c *ClusterConfig) { c.Node.NodeTimeout = 0 }},
		{"bus port", func(c *ClusterConfig) { c.BusPort = 70000 }},
		{"advertise a name", func(c *ClusterConfig) { c.AdvertiseAddr = "peer-1" }},
		{"gossip key", func(c *ClusterConfig) { c.SecretKey = []byte("short") }},
		{"zero tick", func(c *ClusterConfig) { c.TickInterval = 0 }},
		{"tick above heartbeats", func(c *ClusterConfig) { c.TickInterval = time.Second }},
		{"longest tick below tick", func(c *ClusterConfig) { c.MaxTickInterval = c.TickInterval - 1 }},
		{"zero reconnect", func(c *ClusterConfig) { c.ReconnectInterval = 0 }},
	}
	for _, tt := range tests {
		c := good
		tt.mod(&c)
		before := c
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", tt.name, err)
		}
		if !reflect.DeepEqual(c, before) {
			t.Errorf("%s: Validate changed the config", tt.name)
		}
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Cluster = true
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"port", func(c *Config) { c.Port = -1 }},
		{"bus port", func(c *Config) { c.BusPort = 65536 }},
		{"derived bus port", func(c *Config) { c.Port = 60000 }},
		{"unspecified bind without announce", func(c *Config) { c.Bind = "0.0.0.0" }},
		{"host name bind without announce", func(c *Config) { c.Bind = "localhost" }},
		{"announce without port", func(c *Config) { c.Announce = "10.0.0.1" }},
		{"announce a name", func(c *Config) { c.Announce = "peer-1:7000" }},
		{"gossip key", func(c *Config) { c.GossipKey = make([]byte, 20) }},
		{"node timeout", func(c *Config) { c.NodeTimeout = 0 }},
	}
	for _, tt := range tests {
		c := good
		tt.mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", tt.name, err)
		}
	}
	for _, c := range []Config{good, func() Config { c := good; c.Bind, c.Announce = "0.0.0.0", "10.0.0.1:7000"; return c }()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	standalone := DefaultConfig()
	standalone.Bind = "0.0.0.0" // any bind address is fine without the cluster
	if err := standalone.Validate(); err != nil {
		t.Errorf("standalone: %v", err)
	}
}

// TestNewStandalone: without Cluster the front door serves the store
// alone, and CLUSTER is refused.
func TestNewStandalone(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := DefaultConfig()
	cfg.Port = 0
	cfg.Store.EventLoops = 1
	cfg.Store.Logger = nil
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve() }()
	cl := redis.NewClient(&redis.Options{Addr: p.Addr().String(), MaxRetries: -1, DisableIdentity: true})
	ctx := context.Background()
	if err := cl.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := cl.Get(ctx, "k").Val(); got != "v" {
		t.Errorf("GET k = %q", got)
	}
	if err := cl.Do(ctx, "cluster", "myid").Err(); err == nil {
		t.Error("CLUSTER MYID answered without the cluster layer")
	}
	if p.Cluster() != nil {
		t.Error("a cluster layer without Cluster")
	}
	cl.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
}
