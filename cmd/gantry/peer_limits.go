package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/kv"
)

// storeLimits are the flags of the data store's limits (docs/kv.md,
// "Limits" and "Memory limit and eviction"), named as Redis's directives.
type storeLimits struct {
	maxClients      int
	timeout         int
	protoMaxBulk    string
	queryLimit      string
	outputLimit     string
	maxMemory       string
	policy          string
	samples         int
	lfuLogFactor    int
	lfuDecayMinutes int
	databases       int
}

func (l *storeLimits) register(f *pflag.FlagSet) {
	f.IntVar(&l.maxClients, "maxclients", 0, "most clients served at once (0: 10000, at most the descriptor limit less 32)")
	f.IntVar(&l.timeout, "timeout", 0, "close clients idle this many seconds (0: never)")
	f.StringVar(&l.protoMaxBulk, "proto-max-bulk-len", "512mb", "longest bulk string a client may send (1mb..512mb)")
	f.StringVar(&l.queryLimit, "client-query-buffer-limit", "1gb", "most input one client may have the server hold")
	f.StringVar(&l.outputLimit, "client-output-buffer-limit", "", `reply limits by class: "normal|replica|pubsub hard soft seconds ..." (default: Redis's)`)
	f.StringVar(&l.maxMemory, "maxmemory", "0", "estimated bytes of keys and values over which keys are evicted or writes refused (0: no limit)")
	f.StringVar(&l.policy, "maxmemory-policy", "noeviction", "noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random or volatile-ttl")
	f.IntVar(&l.samples, "maxmemory-samples", 5, "keys sampled per eviction (1..64)")
	f.IntVar(&l.lfuLogFactor, "lfu-log-factor", 10, "LFU counter's logarithm factor")
	f.IntVar(&l.lfuDecayMinutes, "lfu-decay-time", 1, "minutes per decrement of an unused key's LFU counter (0: never)")
	f.IntVar(&l.databases, "databases", 0, "numbered databases, 1..1024 (0: 16 standalone; a cluster node has 1)")
}

func (l *storeLimits) apply(cfg *kv.Config) error {
	var err error
	mem := func(name, v string) int64 {
		n, perr := kv.ParseMemory(v)
		if perr != nil && err == nil {
			err = fmt.Errorf("--%s: %w", name, perr)
		}
		return n
	}
	cfg.MaxClients = l.maxClients
	cfg.Timeout = time.Duration(l.timeout) * time.Second
	cfg.ProtoMaxBulkLen = mem("proto-max-bulk-len", l.protoMaxBulk)
	cfg.ClientQueryBufferLimit = mem("client-query-buffer-limit", l.queryLimit)
	cfg.ClientOutputBufferLimit = l.outputLimit
	cfg.MaxMemory = mem("maxmemory", l.maxMemory)
	cfg.MaxMemoryPolicy = l.policy
	cfg.MaxMemorySamples = l.samples
	cfg.LFULogFactor, cfg.LFUDecayTime = l.lfuLogFactor, l.lfuDecayMinutes
	cfg.Databases = l.databases
	return err
}
