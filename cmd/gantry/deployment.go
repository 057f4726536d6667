package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	depCmd := &cobra.Command{
		Use:   "deployment",
		Short: "Follow and steer rolling updates: list, status, pause, resume, fail, promote",
	}
	opts := cli.AddClientFlags(depCmd)

	listCmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List deployments, newest first",
		Args:    cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.DeploymentList(ctx)
		}),
	}
	statusCmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a deployment (by ID or unique ID prefix)",
		Args:  cobra.ExactArgs(1),
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.DeploymentStatus(ctx, args[0])
		}),
	}
	depCmd.AddCommand(listCmd, statusCmd)
	for _, a := range []struct{ name, short string }{
		{"pause", "Pause a running deployment: no new wave starts until it is resumed"},
		{"resume", "Resume a paused deployment"},
		{"fail", "Fail a deployment (with auto_revert, the last stable version is registered again)"},
		{"promote", "Promote a deployment's healthy canaries: the rest of the copies roll"},
	} {
		action := a.name
		depCmd.AddCommand(&cobra.Command{
			Use:   action + " ID",
			Short: a.short,
			Args:  cobra.ExactArgs(1),
			RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
				return e.DeploymentAction(ctx, args[0], action)
			}),
		})
	}
	rootCmd.AddCommand(depCmd)
}
