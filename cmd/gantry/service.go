package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	svcCmd := &cobra.Command{
		Use:   "service",
		Short: "List services and their instances (service discovery)",
		Long: `Jobs declare services (name, port label, tags, health checks); the servers
list each running copy as an instance of its services, at its node's address
and host port, with its health. Agents started with --dns-addr answer
<service>.service.gantry with the healthy ones.`,
	}
	opts := cli.AddClientFlags(svcCmd)
	listCmd := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List services with their instance counts", Args: cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error { return e.ServiceList(ctx) }),
	}
	var o cli.ServiceInfoOptions
	infoCmd := &cobra.Command{
		Use: "info NAME", Short: "List a service's instances: address, port, health and checks", Args: cobra.ExactArgs(1),
		Example: "  gantry service info web\n  gantry service info web --all --tag v1",
		RunE:    clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error { return e.ServiceInfo(ctx, args[0], o) }),
	}
	infoCmd.Flags().BoolVar(&o.All, "all", false, "include instances that are not healthy")
	infoCmd.Flags().StringVar(&o.Tag, "tag", "", "only instances with this tag")
	svcCmd.AddCommand(listCmd, infoCmd)
	rootCmd.AddCommand(svcCmd)
}
