package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	nsCmd := &cobra.Command{
		Use:     "namespace",
		Aliases: []string{"ns"},
		Short:   "Create, list and delete namespaces and their quotas",
		Long: `Jobs live in namespaces ("default" unless a job or -n names another). A
namespace's quota caps the CPU and memory its live allocations hold
together; the scheduler leaves copies over it pending and says why.`,
	}
	opts := cli.AddClientFlags(nsCmd)

	var o cli.NamespaceOptions
	applyCmd := &cobra.Command{
		Use:   "apply NAME",
		Short: "Create a namespace, or change the description or quota the flags name",
		Example: "  gantry namespace apply team-a --quota-cpu 4000 --quota-memory-mb 4096\n" +
			"  gantry namespace apply team-a --quota-memory-mb 0   # remove the memory cap",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			o.DescriptionSet, o.QuotaCPUSet, o.QuotaMemoryMBSet = f.Changed("description"), f.Changed("quota-cpu"), f.Changed("quota-memory-mb")
			return clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
				return e.NamespaceApply(ctx, args[0], o)
			})(cmd, args)
		},
	}
	applyCmd.Flags().StringVar(&o.Description, "description", "", "what the namespace is for")
	applyCmd.Flags().Int64Var(&o.QuotaCPU, "quota-cpu", 0, "most CPU, in millicores, the namespace's live allocations may hold (0: no cap)")
	applyCmd.Flags().Int64Var(&o.QuotaMemoryMB, "quota-memory-mb", 0, "most memory, in MiB, the namespace's live allocations may hold (0: no cap)")

	listCmd := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List namespaces with their jobs, use and quotas", Args: cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error { return e.NamespaceList(ctx) }),
	}
	deleteCmd := &cobra.Command{
		Use: "delete NAME", Short: "Delete a namespace (refused while it holds jobs: stop and purge them first)", Args: cobra.ExactArgs(1),
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error { return e.NamespaceDelete(ctx, args[0]) }),
	}
	nsCmd.AddCommand(applyCmd, listCmd, deleteCmd)
	rootCmd.AddCommand(nsCmd)
}
