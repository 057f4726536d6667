package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

// addJobVersionCommands adds plan, validate, history, revert and dispatch
// to the job command.
func addJobVersionCommands(jobCmd *cobra.Command, opts *cli.Options, jobNames func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)) {
	fileArgs := func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml", "json"}, cobra.ShellCompDirectiveFilterFileExt
	}
	validateCmd := &cobra.Command{
		Use:               "validate FILE",
		Short:             "Check a job document (YAML or JSON; - for stdin) without submitting it",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: fileArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := opts.Env(cmd)
			if err != nil {
				return err
			}
			data, err := cli.ReadJobFile(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			return e.JobValidate(args[0], data)
		},
	}
	planCmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show what running a job document would change, without changing anything",
		Long: `Ask the leader for a dry run: the job's diff against the registered one and
what the scheduler would do now (copies placed, replaced, updated in place,
stopped, and those that would not fit, with why). Nothing is committed. The
output ends with the job's modify index: ` + "`gantry job run --check-index N FILE`" + `
then registers only if the job has not changed since.
Exits 0 when no copy would be placed or stopped, 1 when some would (as
Nomad's job plan), and 255 on errors.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: fileArgs,
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
			err = e.JobPlan(ctx, args[0], data)
			switch {
			case errors.Is(err, cli.ErrPlanChanges):
				os.Exit(1)
			case err != nil:
				fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
				os.Exit(255)
			}
			return nil
		},
	}
	planCmd.SilenceErrors = true

	var diffs bool
	historyCmd := &cobra.Command{
		Use:               "history NAME",
		Short:             "List a job's kept versions, newest first",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: jobNames,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.JobHistory(ctx, args[0], diffs)
		}),
	}
	historyCmd.Flags().BoolVarP(&diffs, "diff", "p", false, "show what changed in each version")

	revertCmd := &cobra.Command{
		Use:               "revert NAME VERSION",
		Short:             "Register a kept version of a job again (a new version with its spec)",
		Example:           "  gantry job history web\n  gantry job revert web 3",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: jobNames,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.JobRevert(ctx, args[0], args[1])
		}),
	}

	var meta []string
	dispatchCmd := &cobra.Command{
		Use:   "dispatch NAME [PAYLOAD_FILE|-]",
		Short: "Start a child of a parameterized job, with a payload and metadata",
		Example: "  gantry job dispatch resize --meta size=small image.png\n" +
			"  echo hello | gantry job dispatch echo -",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: jobNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := opts.Env(cmd)
			if err != nil {
				return err
			}
			m, err := cli.ParseMeta(meta)
			if err != nil {
				return err
			}
			var payload []byte
			if len(args) == 2 {
				if payload, err = cli.ReadPayload(args[1], cmd.InOrStdin()); err != nil {
					return err
				}
			}
			ctx, cancel := cli.Context(cmd)
			defer cancel()
			return e.JobDispatch(ctx, args[0], payload, m)
		},
	}
	dispatchCmd.Flags().StringArrayVar(&meta, "meta", nil, "metadata KEY=VALUE for the child (repeatable)")

	jobCmd.AddCommand(validateCmd, planCmd, historyCmd, revertCmd, dispatchCmd)
}
