package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	opCmd := &cobra.Command{
		Use:   "operator",
		Short: "Repair Raft membership and back up or restore the cluster state",
	}
	opts := cli.AddClientFlags(opCmd)

	raftCmd := &cobra.Command{Use: "raft", Short: "Show and repair the servers' Raft membership"}
	var stale bool
	listCmd := &cobra.Command{
		Use:   "list-peers",
		Short: "List the Raft peers, their addresses and which one leads",
		Args:  cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.RaftListPeers(ctx, stale)
		}),
	}
	listCmd.Flags().BoolVar(&stale, "stale", false, "answer from the contacted server's own view (works without a leader)")
	var id, address string
	removeCmd := &cobra.Command{
		Use:     "remove-peer",
		Short:   "Remove a failed server from the Raft configuration (stop it first)",
		Example: "  gantry operator raft remove-peer --id 4f0c...\n  gantry operator raft remove-peer --address 10.0.0.3:4647",
		Args:    cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.RaftRemovePeer(ctx, id, address)
		}),
	}
	removeCmd.Flags().StringVar(&id, "id", "", "Raft ID of the server to remove")
	removeCmd.Flags().StringVar(&address, "address", "", "Raft address (host:port) of the server to remove")
	raftCmd.AddCommand(listCmd, removeCmd)

	snapCmd := &cobra.Command{Use: "snapshot", Short: "Back up and restore the cluster state"}
	saveCmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Save a point-in-time copy of the cluster state (taken on the leader) to FILE",
		Args:  cobra.ExactArgs(1),
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.SnapshotSave(ctx, args[0])
		}),
	}
	restoreCmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the whole cluster state with a saved snapshot (disaster recovery)",
		Args:  cobra.ExactArgs(1),
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, args []string) error {
			return e.SnapshotRestore(ctx, args[0])
		}),
	}
	snapCmd.AddCommand(saveCmd, restoreCmd)

	opCmd.AddCommand(raftCmd, snapCmd)
	rootCmd.AddCommand(opCmd)
}
