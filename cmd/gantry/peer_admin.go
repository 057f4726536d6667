package main

import (
	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/kv"
)

// storeAdmin are the flags of the data store's introspection (docs/kv.md,
// "Introspection and admin"), named as Redis's directives.
type storeAdmin struct {
	enableDebug  string
	enableModule string
	slowerThan   int64
	slowMaxLen   int
	latency      int64
}

func (a *storeAdmin) register(f *pflag.FlagSet) {
	f.StringVar(&a.enableDebug, "enable-debug-command", "no", `allow DEBUG: "no", "yes", or "local" (clients on loopback only)`)
	f.StringVar(&a.enableModule, "enable-module-command", "no", `allow MODULE LOAD, LOADEX and UNLOAD (no modules load): "no", "yes", or "local"`)
	f.Int64Var(&a.slowerThan, "slowlog-log-slower-than", 10000, "log commands slower than this many microseconds in SLOWLOG (-1: off, 0: all)")
	f.IntVar(&a.slowMaxLen, "slowlog-max-len", 128, "entries kept by SLOWLOG")
	f.Int64Var(&a.latency, "latency-monitor-threshold", 0, "record LATENCY events of commands taking at least this many milliseconds (0: off)")
}

func (a *storeAdmin) apply(cfg *kv.Config) {
	cfg.EnableDebugCommand = a.enableDebug
	cfg.EnableModuleCommand = a.enableModule
	cfg.SlowlogLogSlowerThan, cfg.SlowlogMaxLen = a.slowerThan, a.slowMaxLen
	cfg.LatencyMonitorThreshold = a.latency
}
