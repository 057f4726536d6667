package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/kv"
)

// TestPeerLimitFlags: with no flags the store's limits are those of
// kv.DefaultConfig (their defaults applied by kv.New), and each flag sets
// its field.
func TestPeerLimitFlags(t *testing.T) {
	parse := func(args ...string) (kv.Config, error) {
		t.Helper()
		var l storeLimits
		f := pflag.NewFlagSet("peer", pflag.ContinueOnError)
		l.register(f)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg := kv.DefaultConfig()
		return cfg, l.apply(&cfg)
	}
	got, err := parse()
	want := kv.DefaultConfig()
	want.ProtoMaxBulkLen, want.ClientQueryBufferLimit = 512<<20, 1<<30
	want.MaxMemoryPolicy, want.MaxMemorySamples = "noeviction", 5
	got.Logger, want.Logger = nil, nil
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults: %v\n got %+v\nwant %+v", err, got, want)
	}
	got, err = parse("--maxclients", "100", "--timeout", "30", "--proto-max-bulk-len", "1mb",
		"--client-query-buffer-limit", "2mb", "--client-output-buffer-limit", "normal 1mb 512kb 10",
		"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lfu", "--maxmemory-samples", "10",
		"--lfu-log-factor", "20", "--lfu-decay-time", "5")
	if err != nil || got.MaxClients != 100 || got.Timeout != 30*time.Second || got.ProtoMaxBulkLen != 1<<20 ||
		got.ClientQueryBufferLimit != 2<<20 || got.ClientOutputBufferLimit != "normal 1mb 512kb 10" ||
		got.MaxMemory != 100<<20 || got.MaxMemoryPolicy != "allkeys-lfu" || got.MaxMemorySamples != 10 ||
		got.LFULogFactor != 20 || got.LFUDecayTime != 5 {
		t.Fatalf("flags not mapped: %v %+v", err, got)
	}
	if _, err := parse("--maxmemory", "lots"); err == nil {
		t.Fatal("--maxmemory lots accepted")
	}
}
