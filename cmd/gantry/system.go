package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	sysCmd := &cobra.Command{
		Use:   "system",
		Short: "Cluster-wide maintenance",
	}
	opts := cli.AddClientFlags(sysCmd)
	gcCmd := &cobra.Command{
		Use:   "gc",
		Short: "Collect garbage now: delete terminal allocations and finished jobs, whatever their age",
		Long: `gc asks the leader to run garbage collection at once, ignoring the age
thresholds (--gc-alloc-threshold, --gc-job-threshold): every terminal
allocation whose task no longer runs and every finished job (stopped, or a
batch job whose copies all completed) with only such allocations are deleted
from the cluster state. The allocations the scheduler still reads stay: the
latest failed copy of each index of a live job (it carries the reschedule
count and the time the next replacement is due) and a live batch job's
completed copies. Agents then drop the deleted allocations' directories.`,
		Args: cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.SystemGC(ctx)
		}),
	}
	sysCmd.AddCommand(gcCmd)
	rootCmd.AddCommand(sysCmd)
}
