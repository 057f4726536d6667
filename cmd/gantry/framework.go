package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	fwCmd := &cobra.Command{
		Use:   "framework",
		Short: "Inspect the frameworks of two-level scheduling (--scheduler two-level)",
	}
	opts := cli.AddClientFlags(fwCmd)
	fwCmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List frameworks: built-in and external, their share, offers and tasks",
		Args:  cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.FrameworkList(ctx)
		}),
	}, &cobra.Command{
		Use:   "status <id|name>",
		Short: "Show a framework with its offers and tasks",
		Args:  cobra.ExactArgs(1),
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.FrameworkStatus(ctx, args[0])
		}),
	})
	rootCmd.AddCommand(fwCmd)
}
