package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/peer"
)

func init() { rootCmd.AddCommand(newClusterCmd()) }

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Administer a cluster of gantry peers (create, check, reshard, rebalance, add-node, del-node)",
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
	var mo peer.MoveOptions
	var from, to string
	var nslots int
	var yes bool
	reshard := &cobra.Command{
		Use:   "reshard HOST:PORT --to ID --slots N [--from ID,ID|all] [--yes]",
		Short: "Move slots and their keys live between primaries (SETSLOT, MIGRATE), with progress",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" || nslots <= 0 {
				return errors.New("reshard: --to ID and --slots N (> 0) are required")
			}
			confirm := func() bool {
				fmt.Print("Do you want to proceed with the proposed reshard plan (yes/no)? ")
				line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				return strings.TrimSpace(line) == "yes"
			}
			if yes {
				confirm = nil
			}
			return peer.Reshard(cmd.Context(), args[0], peer.ParseIDList(from), to, nslots, confirm, mo, os.Stdout)
		},
	}
	reshard.Flags().StringVar(&from, "from", "all", "source node IDs, comma-separated, or all")
	reshard.Flags().StringVar(&to, "to", "", "destination node ID")
	reshard.Flags().IntVar(&nslots, "slots", 0, "number of slots to move")
	reshard.Flags().BoolVar(&yes, "yes", false, "move without asking (else the plan is printed and \"yes\" on stdin confirms it)")
	var useEmpty bool
	var threshold float64
	rebalance := &cobra.Command{
		Use:   "rebalance HOST:PORT",
		Short: "Move slots so that every primary owns about as many",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return peer.Rebalance(cmd.Context(), args[0], useEmpty, threshold, mo, os.Stdout)
		},
	}
	rebalance.Flags().BoolVar(&useEmpty, "use-empty-masters", false, "also give slots to primaries that own none")
	rebalance.Flags().Float64Var(&threshold, "threshold", 2, "leave primaries off by less than this percentage alone")
	for _, c := range []*cobra.Command{reshard, rebalance} {
		c.Flags().IntVar(&mo.Batch, "pipeline", 10, "keys per MIGRATE")
		c.Flags().DurationVar(&mo.Timeout, "timeout", 60*time.Second, "MIGRATE timeout")
	}
	addNode := &cobra.Command{
		Use:   "add-node NEW_HOST:PORT EXISTING_HOST:PORT",
		Short: "Make an empty peer join a cluster as a primary without slots",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return peer.AddNode(cmd.Context(), args[0], args[1], wait, os.Stdout)
		},
	}
	addNode.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the cluster to know the node")
	delNode := &cobra.Command{
		Use:   "del-node HOST:PORT NODE_ID",
		Short: "Remove a peer without slots: every node forgets it, then it is reset",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return peer.DelNode(cmd.Context(), args[0], args[1], os.Stdout)
		},
	}
	cmd.AddCommand(create, check, reshard, rebalance, addNode, delNode)
	cmd.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		if cmd.Context() == nil {
			cmd.SetContext(context.Background())
		}
	}
	return cmd
}
