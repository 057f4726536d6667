package main

import (
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := opts.Env(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := cli.Context(cmd)
			defer cancel()
			return e.SchedulerStatus(ctx)
		},
	}
	schedCmd.AddCommand(statusCmd)
	rootCmd.AddCommand(schedCmd)
}
