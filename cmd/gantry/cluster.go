package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/peer"
)

func init() { rootCmd.AddCommand(newClusterCmd()) }

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Administer a cluster of gantry peers (create, check)",
	}
	var (
		wait     time.Duration
		replicas int
	)
	create := &cobra.Command{
		Use:   "create HOST:PORT HOST:PORT HOST:PORT...",
		Short: "Make a cluster of empty peers: split the slots evenly, distinct epochs, MEET, replicas",
		Args:  cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return peer.CreateWithReplicas(cmd.Context(), args, replicas, wait, os.Stdout)
		},
	}
	create.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for every node to agree")
	create.Flags().IntVar(&replicas, "replicas", 0, "replicas per primary: the first N/(replicas+1) peers are primaries, the others replicate them in turn")
	check := &cobra.Command{
		Use:   "check HOST:PORT",
		Short: "Check that every node has the same view and all slots are covered",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return peer.Check(cmd.Context(), args[0], os.Stdout)
		},
	}
	notYet := func(use, short string) *cobra.Command {
		return &cobra.Command{Use: use, Short: short + " (not supported yet)", RunE: func(*cobra.Command, []string) error {
			return errors.New("gantry cluster " + use + " is not supported yet: it needs slot migration (MIGRATE) or replication")
		}}
	}
	cmd.AddCommand(create, check,
		notYet("reshard", "Move slots between primaries"),
		notYet("add-node", "Add a peer as a primary or replica"),
		notYet("del-node", "Remove an empty peer"))
	cmd.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		if cmd.Context() == nil {
			cmd.SetContext(context.Background())
		}
	}
	return cmd
}
