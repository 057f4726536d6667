package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	allocCmd := &cobra.Command{
		Use:     "alloc",
		Aliases: []string{"allocation"},
		Short:   "Inspect allocations (copies of a job placed on nodes), read their logs, exec into, restart, signal or stop them",
	}
	opts := cli.AddClientFlags(allocCmd)
	cli.AddNamespaceFlag(allocCmd, opts)
	allocIDs := opts.Complete(func(e *cli.Env, ctx context.Context) []string { return e.AllocIDs(ctx) })

	statusCmd := &cobra.Command{
		Use:               "status ID",
		Short:             "Show an allocation (ID or unique prefix): task state and events",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: allocIDs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.AllocStatus(ctx, args[0])
		}),
	}

	var logs cli.LogOptions
	logsCmd := &cobra.Command{
		Use:               "logs ID",
		Short:             "Print a task's stdout (or --stderr); -f keeps streaming",
		Example:           "  gantry alloc logs 3f2a9c1e\n  gantry alloc logs -f --stderr 3f2a",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: allocIDs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.AllocLogs(ctx, args[0], logs)
		}),
	}
	logsCmd.Flags().BoolVar(&logs.Stderr, "stderr", false, "show stderr instead of stdout")
	logsCmd.Flags().BoolVarP(&logs.Follow, "follow", "f", false, "keep streaming new output until interrupted")
	logsCmd.Flags().StringVar(&logs.Task, "task", "", "the task of a group whose log to show (default: the main task, named after the job)")

	allocCmd.AddCommand(statusCmd, logsCmd)
	allocCmd.AddCommand(allocOpCmds(opts, allocIDs)...)
	rootCmd.AddCommand(allocCmd)
}
