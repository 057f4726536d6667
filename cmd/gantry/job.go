package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	jobCmd := &cobra.Command{
		Use:   "job",
		Short: "Run, inspect, scale and stop jobs",
	}
	opts := cli.AddClientFlags(jobCmd)
	cli.AddNamespaceFlag(jobCmd, opts)
	jobNames := opts.Complete(func(e *cli.Env, ctx context.Context) []string { return e.JobNames(ctx) })

	var run cli.RunOptions
	runCmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Submit a job document (YAML or JSON; - for stdin) and follow it until it runs",
		Long: `Check a job document locally, register it, and follow the deployment until
every copy is running (service) or has finished (batch), showing progress and
why copies are pending. Exits 0 on success, 1 on errors (bad file, server
unreachable or refusing), and 2 when the job was registered but did not
converge within --timeout or a batch copy failed.`,
		Example: "  gantry job run examples/web.yaml\n  gantry job run --detach examples/batch.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := opts.Env(cmd)
			if err != nil {
				return err
			}
			data, err := cli.ReadJobFile(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			ctx, cancel := cli.Context(cmd)
			defer cancel()
			err = e.JobRun(ctx, args[0], data, run)
			if errors.Is(err, cli.ErrNotConverged) {
				// Registered but not deployed: a distinct exit code so
				// scripts can tell it from a command that could not run.
				fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
				os.Exit(2)
			}
			return err
		},
	}
	runCmd.Flags().BoolVarP(&run.Detach, "detach", "d", false, "return after registering, without following the deployment")
	runCmd.Flags().DurationVar(&run.Timeout, "timeout", cli.DefaultRunTimeout, "how long to follow before giving up (exit code 2)")
	runCmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml", "json"}, cobra.ShellCompDirectiveFilterFileExt
	}

	statusCmd := &cobra.Command{
		Use:               "status NAME",
		Short:             "Show a job, its allocations and why copies are pending",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: jobNames,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.JobStatus(ctx, args[0])
		}),
	}

	listCmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List jobs",
		Args:    cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.JobList(ctx)
		}),
	}

	var purge bool
	stopCmd := &cobra.Command{
		Use:               "stop NAME",
		Short:             "Stop a job's allocations (keep the job), or remove it with --purge",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: jobNames,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.JobStop(ctx, args[0], purge)
		}),
	}
	stopCmd.Flags().BoolVar(&purge, "purge", false, "also remove the job and its allocations from the cluster state")

	scaleCmd := &cobra.Command{
		Use:               "scale NAME [GROUP] COUNT",
		Short:             "Change how many copies of a job (or of one of its task groups) run",
		Long:              "Change how many copies of a job run. A job with several task groups scales one group at a time: name it; for a job with one group the group may be left out.",
		Example:           "  gantry job scale web 8\n  gantry job scale shop cache 2",
		Args:              cobra.RangeArgs(2, 3),
		ValidArgsFunction: jobNames,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			if len(args) == 3 {
				return e.JobScaleGroup(ctx, args[0], args[1], args[2])
			}
			return e.JobScale(ctx, args[0], args[1])
		}),
	}

	var checkIndex uint64
	runCmd.Flags().Uint64Var(&checkIndex, "check-index", 0, "register only if the job's modify index is still this one, as job plan printed it (0: only if the job does not exist)")
	runCmd.PreRun = func(cmd *cobra.Command, _ []string) {
		if cmd.Flags().Changed("check-index") {
			run.CheckIndex = &checkIndex
		}
	}

	jobCmd.AddCommand(runCmd, statusCmd, listCmd, stopCmd, scaleCmd)
	addJobVersionCommands(jobCmd, opts, jobNames) // job_versions.go
	rootCmd.AddCommand(jobCmd)
}
