package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/cli"
)

func init() {
	evCmd := &cobra.Command{
		Use:   "event",
		Short: "Follow the cluster's changes",
	}
	opts := cli.AddClientFlags(evCmd)
	var o cli.EventStreamOptions
	streamCmd := &cobra.Command{
		Use:   "stream",
		Short: "Print the event stream: every committed change to jobs, allocations, nodes, plans and servers",
		Long: `stream follows GET /v1/event/stream on the server it talks to and prints
one line per event (index, topic, type, key) until interrupted, or with -o json
each event as a JSON line with its payload (the object as changed).

Topics: Job, Allocation, Node, Deployment, Plan (also "Evaluation"), Server.
--key matches an event's object ID, and for allocations their job and node.
--index N starts after the entry at index N, so a client that saw N loses
nothing; the server keeps a bounded window of recent events and records them
only while someone subscribes (and a minute after), and says so when N is
older than what it keeps.`,
		Example: `  gantry event stream --topic Allocation --key web
  gantry event stream --topic Job,Deployment -o json
  gantry event stream --index 1234`,
		Args: cobra.NoArgs,
		RunE: clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
			return e.EventStream(ctx, o)
		}),
	}
	f := streamCmd.Flags()
	f.StringSliceVar(&o.Topics, "topic", nil, "topics to follow (repeat or comma-separate; default all)")
	f.StringSliceVar(&o.Keys, "key", nil, "object IDs to follow: job, allocation, node or server IDs")
	f.StringSliceVar(&o.Namespaces, "namespace", nil, "namespaces to follow (events of nodes and servers always pass)")
	f.BoolVar(&o.Full, "full", false, "whole allocations as payloads (with -o json) instead of the summary")
	f.Uint64Var(&o.Index, "index", 0, "start after the entry at this index instead of with the next change")
	streamCmd.PreRun = func(cmd *cobra.Command, _ []string) { o.Resume = cmd.Flags().Changed("index") }
	evCmd.AddCommand(streamCmd)
	rootCmd.AddCommand(evCmd)
}
