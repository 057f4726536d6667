package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	schedCmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Inspect the scheduler",
	}
	opts := cli.AddClientFlags(schedCmd)
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Show the scheduling architecture, queue depth, throughput and latency",
		Args:  cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.SchedulerStatus(ctx)
		}),
	}
	schedCmd.AddCommand(statusCmd)
	rootCmd.AddCommand(schedCmd)
}
