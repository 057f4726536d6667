package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/scheduler/architecture"
)

// schedulerFlags maps the server's scheduler flags onto c, each into the
// settings of the part that owns it; c's values (from DefaultConfig) are
// the flags' defaults.
func schedulerFlags(f *pflag.FlagSet, c *architecture.Config) {
	f.StringVar(&c.Architecture, "scheduler", c.Architecture, "scheduling architecture: "+architecture.Monolithic+" or "+architecture.SharedState)
	f.IntVar(&c.SampleSize, "sample-size", c.SampleSize, "feasible nodes ranked per placement")
	f.IntVar(&c.SharedState.Workers, "schedulers", c.SharedState.Workers, "shared-state: parallel scheduler workers (of the service scheduler with --batch-schedulers)")
	f.IntVar(&c.SharedState.BatchWorkers, "batch-schedulers", c.SharedState.BatchWorkers, "shared-state: run a separate batch scheduler with this many workers (0 = one scheduler for every job type)")
}

// sharedStateFlagsNeedIt refuses shared-state settings given with another
// architecture, which would ignore them.
func sharedStateFlagsNeedIt(f *pflag.FlagSet, arch string) error {
	if arch == architecture.SharedState {
		return nil
	}
	for _, name := range []string{"schedulers", "batch-schedulers"} {
		if f.Changed(name) {
			return fmt.Errorf("--%s: needs --scheduler %s (got %q)", name, architecture.SharedState, arch)
		}
	}
	return nil
}
