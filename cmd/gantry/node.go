package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/cli"
	"github.com/gantry-project/gantry/internal/structs"
)

func init() {
	nodeCmd := &cobra.Command{
		Use:   "node",
		Short: "List and inspect worker nodes, drain them",
	}
	opts := cli.AddClientFlags(nodeCmd)
	nodeNames := opts.Complete(func(e *cli.Env, ctx context.Context) []string { return e.NodeNames(ctx) })

	listCmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List nodes with their CPU and memory use",
		Args:    cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.NodeList(ctx)
		}),
	}

	statusCmd := &cobra.Command{
		Use:               "status ID|NAME",
		Short:             "Show a node (by ID, unique ID prefix or name) and its allocations",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: nodeNames,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.NodeStatus(ctx, args[0])
		}),
	}

	var disable, force, noDeadline bool
	var deadline time.Duration
	drainCmd := &cobra.Command{
		Use:               "drain ID|NAME",
		Short:             "Stop placing work on a node and move its allocations away (--disable to undo)",
		Example:           "  gantry node drain dev-2\n  gantry node drain --disable dev-2",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: nodeNames,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.NodeDrainWith(ctx, args[0], &api.NodeDrainRequest{Enable: !disable,
				Deadline: structs.Duration(deadline), Force: force, NoDeadline: noDeadline})
		}),
	}
	drainCmd.Flags().BoolVar(&disable, "disable", false, "end draining: the node receives placements again")
	drainCmd.Flags().DurationVar(&deadline, "deadline", 0, "how long copies of jobs with a migrate or update block may take to move in waves before the rest are stopped (default 1h)")
	drainCmd.Flags().BoolVar(&force, "force", false, "stop every copy at once, without waves")
	drainCmd.Flags().BoolVar(&noDeadline, "no-deadline", false, "let the waves take as long as they need")

	nodeCmd.AddCommand(listCmd, statusCmd, drainCmd)
	rootCmd.AddCommand(nodeCmd)
}
