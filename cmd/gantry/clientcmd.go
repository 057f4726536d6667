package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

// clientRun adapts a client action to cobra: it builds the Env from the
// noun's --address/-o flags and a context cancelled on Ctrl-C, so each verb
// is only the call it makes.
func clientRun(opts *cli.Options, action func(ctx context.Context, e *cli.Env, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e, err := opts.Env(cmd)
		if err != nil {
			return err
		}
		ctx, cancel := cli.Context(cmd)
		defer cancel()
		return action(ctx, e, args)
	}
}
