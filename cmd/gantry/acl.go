package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	aclCmd := &cobra.Command{
		Use:   "acl",
		Short: "Bootstrap access control, manage ACL policies and tokens",
		Long: `acl manages the access control of a cluster whose servers run with
--acl-enabled: bootstrap makes the first management token (once), policies
say what may be done per namespace and on nodes and operator endpoints, and
tokens carry policies. Requests present a token's secret with --token or
GANTRY_TOKEN (docs/operations.md, "Access control").`,
	}
	opts := cli.AddClientFlags(aclCmd)

	bootstrapCmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Make the cluster's first management token (works once; docs explain the reset)",
		Args:  cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.ACLBootstrap(ctx)
		}),
	}

	policyCmd := &cobra.Command{Use: "policy", Short: "Create, list, show and delete ACL policies"}
	var description string
	applyCmd := &cobra.Command{
		Use:     "apply NAME FILE",
		Short:   "Create or replace a policy from a policy document (- for stdin)",
		Example: "  gantry acl policy apply team-a team-a.policy\n  echo 'node { policy = \"write\" }' | gantry acl policy apply agents -",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rules, err := cli.ReadPolicyFile(args[1], cmd.InOrStdin())
			if err != nil {
				return err
			}
			return clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
				return e.ACLPolicyApply(ctx, args[0], description, rules)
			})(cmd, args)
		},
	}
	applyCmd.Flags().StringVar(&description, "description", "", "what the policy is for")
	policyList := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List policies", Args: cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error { return e.ACLPolicyList(ctx) }),
	}
	policyInfo := &cobra.Command{
		Use: "info NAME", Short: "Show a policy and its rules", Args: cobra.ExactArgs(1),
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error { return e.ACLPolicyInfo(ctx, args[0]) }),
	}
	policyDelete := &cobra.Command{
		Use: "delete NAME", Short: "Delete a policy (tokens naming it lose what it granted)", Args: cobra.ExactArgs(1),
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error { return e.ACLPolicyDelete(ctx, args[0]) }),
	}
	policyCmd.AddCommand(applyCmd, policyList, policyInfo, policyDelete)

	tokenCmd := &cobra.Command{Use: "token", Short: "Create, list, show and delete ACL tokens"}
	var create cli.TokenCreateOptions
	createCmd := &cobra.Command{
		Use:     "create",
		Short:   "Make a token; its secret is printed this once",
		Example: "  gantry acl token create --name agents --policy agents\n  gantry acl token create --name ops --type management",
		Args:    cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.ACLTokenCreate(ctx, create)
		}),
	}
	createCmd.Flags().StringVar(&create.Name, "name", "", "a name for people")
	createCmd.Flags().StringVar(&create.Type, "type", "client", "client (allowed what its policies allow) or management (allowed everything)")
	createCmd.Flags().StringSliceVar(&create.Policies, "policy", nil, "a policy of the token (repeat or comma-separate for several)")
	tokenList := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List tokens (accessor IDs, never secrets)", Args: cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error { return e.ACLTokenList(ctx) }),
	}
	tokenInfo := &cobra.Command{
		Use: "info ACCESSOR_ID", Short: "Show a token", Args: cobra.ExactArgs(1),
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error { return e.ACLTokenInfo(ctx, args[0]) }),
	}
	tokenSelf := &cobra.Command{
		Use: "self", Short: "Show the token this command presents (--token or GANTRY_TOKEN)", Args: cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error { return e.ACLTokenSelf(ctx) }),
	}
	tokenDelete := &cobra.Command{
		Use: "delete ACCESSOR_ID", Short: "Delete a token: its secret stops working at once", Args: cobra.ExactArgs(1),
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error { return e.ACLTokenDelete(ctx, args[0]) }),
	}
	tokenCmd.AddCommand(createCmd, tokenList, tokenInfo, tokenSelf, tokenDelete)

	aclCmd.AddCommand(bootstrapCmd, policyCmd, tokenCmd)
	rootCmd.AddCommand(aclCmd)
}
