package main

import (
	"context"
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

// allocOpCmds are `alloc exec|restart|signal|stop`.
func allocOpCmds(opts *cli.Options, allocIDs func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)) []*cobra.Command {
	var ex cli.ExecOptions
	execCmd := &cobra.Command{
		Use:   "exec ID [--task T] [-t] -- COMMAND [ARG...]",
		Short: "Run a command in an allocation's task, attached to this terminal; exits with its exit code",
		Example: "  gantry alloc exec 3f2a -- ls -l\n" +
			"  gantry alloc exec -t 3f2a -- /bin/sh\n" +
			"  echo hello | gantry alloc exec 3f2a -- cat",
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: allocIDs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			err := e.AllocExec(ctx, args[0], args[1:], ex, os.Stdin)
			var ee *cli.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.Code)
			}
			return err
		}),
	}
	execCmd.Flags().StringVar(&ex.Task, "task", "", "the task to run in (default: the allocation's task)")
	execCmd.Flags().StringVarP(&ex.TTY, "tty", "t", "auto", "run on a terminal: auto (when this one is), true or false")
	execCmd.Flags().Lookup("tty").NoOptDefVal = "true"
	execCmd.Flags().BoolVarP(&ex.Stdin, "stdin", "i", true, "send this process's input to the command")

	var restartTask string
	restartCmd := &cobra.Command{
		Use:               "restart ID",
		Short:             "Restart an allocation's task in place (not counted by the restart policy)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: allocIDs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.AllocRestart(ctx, args[0], restartTask)
		}),
	}
	restartCmd.Flags().StringVar(&restartTask, "task", "", "the task to restart (default: the allocation's task)")

	var sig, sigTask string
	signalCmd := &cobra.Command{
		Use:               "signal ID",
		Short:             "Send a signal to an allocation's task (default SIGHUP)",
		Example:           "  gantry alloc signal -s SIGUSR1 3f2a",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: allocIDs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.AllocSignal(ctx, args[0], sig, sigTask)
		}),
	}
	signalCmd.Flags().StringVarP(&sig, "signal", "s", "SIGHUP", "the signal: a name (SIGHUP, USR1) or a number")
	signalCmd.Flags().StringVar(&sigTask, "task", "", "the task to signal (default: the allocation's task)")

	stopCmd := &cobra.Command{
		Use:               "stop ID",
		Short:             "Stop an allocation; the scheduler places a replacement (possibly elsewhere)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: allocIDs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.AllocStop(ctx, args[0])
		}),
	}
	return []*cobra.Command{execCmd, restartCmd, signalCmd, stopCmd}
}
