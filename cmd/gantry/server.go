package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/cli"
	"github.com/gantry-project/gantry/internal/server"
)

func init() {
	cmd := newServerCmd()
	cmd.AddCommand(newServerMembersCmd())
	rootCmd.AddCommand(cmd)
}

// newServerMembersCmd is `gantry server members`: a client command under
// the server noun, with the client flags on itself only (the server's own
// flags stay separate).
func newServerMembersCmd() *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the control-plane servers, their addresses, status and the leader",
		Args:  cobra.NoArgs,
	}
	opts := cli.AddClientFlags(cmd)
	cmd.RunE = clientRun(opts, func(ctx context.Context, e *cli.Env, _ []string) error {
		return e.ServerMembers(ctx, stale)
	})
	cmd.Flags().BoolVar(&stale, "stale", false, "answer from the contacted server's own view (works without a leader)")
	return cmd
}

func newServerCmd() *cobra.Command {
	cfg := server.DefaultConfig()
	var logLevel, pprofAddr string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a control-plane server (Raft-replicated state, HTTP API, scheduler)",
		Long: `server runs gantry's control plane: cluster state replicated through Raft
and kept in --data-dir, the HTTP API agents and the CLI talk to, heartbeat
monitoring of nodes and the scheduler. Alone (no --join), the first start
bootstraps a single-server cluster. With --bootstrap-expect N and --join,
servers find each other over their HTTP APIs and bootstrap one cluster of N
voters once N have met; --join alone joins an existing cluster. Later starts
with the same --data-dir rejoin with every job, node and allocation.

With --ca-file, --cert-file and --key-file (a server certificate from gantry
tls cert create --server) every connection is mutual TLS: the API, Raft,
forwarding and reading task logs from agents. SIGHUP reloads the files.`,
		Example: `  gantry server --data-dir /var/lib/gantry --http-addr 10.0.0.1:4646 --raft-addr 10.0.0.1:4647 \
      --bootstrap-expect 3 --join 10.0.0.2:4646,10.0.0.3:4646`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := archFlagsNeedIt(cmd.Flags(), cfg.Scheduler.Architecture); err != nil {
				return err
			}
			var err error
			if cfg.Logger, err = newLogger(logLevel, os.Stderr); err != nil {
				return err
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// Before Start: a SIGHUP from then on reloads, never kills.
			reloadOnHUP(ctx, cfg.Logger, srv.ReloadTLS)
			if err := srv.Start(); err != nil {
				return err
			}
			if pprofAddr != "" {
				if err := servePprof(pprofAddr, func(err error) { cfg.Logger.Error("pprof stopped", "error", err) }); err != nil {
					return err
				}
			}
			cfg.Logger.Info("gantry server running", "http", srv.HTTPAddr())
			<-ctx.Done()
			cfg.Logger.Info("shutting down")
			return srv.Shutdown()
		},
	}
	f := cmd.Flags()
	serverFlags(f, &cfg)
	f.StringVar(&pprofAddr, "pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060; for profiling, e.g. by gantry bench)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// serverFlags maps the server's flags onto cfg, whose values (from
// server.DefaultConfig) are the flags' defaults; validation is
// server.New's.
func serverFlags(f *pflag.FlagSet, cfg *server.Config) {
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the Raft log and snapshots")
	f.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "address of the HTTP API (host:port)")
	f.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "address of Raft traffic between servers (host:port, reachable by them)")
	f.StringVar(&cfg.NodeName, "name", cfg.NodeName, "name of this server")
	f.StringVar(&cfg.AdvertiseHTTPAddr, "advertise-http", cfg.AdvertiseHTTPAddr, "API address other servers use to reach this one (default: --http-addr)")
	f.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", cfg.BootstrapExpect, "number of servers to wait for before bootstrapping a new cluster (3 or 5; 0 or 1 = single server)")
	f.StringSliceVar(&cfg.Join, "join", cfg.Join, "API addresses (host:port) of other servers, comma-separated")
	f.DurationVar(&cfg.RaftTimeout, "raft-timeout", cfg.RaftTimeout, "Raft heartbeat and election timeout: how soon followers notice a dead leader (lower fails over faster, and risks needless elections on a busy machine)")
	f.Uint64Var(&cfg.SnapshotThreshold, "raft-snapshot-threshold", cfg.SnapshotThreshold, "Raft log entries between snapshots (log compaction)")
	f.DurationVar(&cfg.SnapshotInterval, "raft-snapshot-interval", cfg.SnapshotInterval, "how often Raft checks whether a snapshot is due")
	f.Uint64Var(&cfg.TrailingLogs, "raft-trailing-logs", cfg.TrailingLogs, "log entries kept after a snapshot for lagging followers")
	f.IntVar(&cfg.SnapshotsRetain, "raft-snapshots-retain", cfg.SnapshotsRetain, "snapshots kept on disk")
	f.StringVar(&cfg.RaftLogStore, "raft-log-store", cfg.RaftLogStore, "Raft log store of a new --data-dir: wal or boltdb (default "+server.DefaultLogStore+"); an existing data dir keeps its own")
	f.DurationVar(&cfg.HeartbeatTTL, "heartbeat-ttl", cfg.HeartbeatTTL, "time within which agents must heartbeat before their node is marked down")
	f.DurationVar(&cfg.ReconcileInterval, "reconcile-interval", cfg.ReconcileInterval, "how often the leader reconciles every job")
	schedulerFlags(f, &cfg.Scheduler)
	f.IntVar(&cfg.PlanBatch, "plan-batch", cfg.PlanBatch, "most plans the applier commits in one Raft entry (1 = no batching)")
	f.StringVar(&cfg.SpoolDir, "spool-dir", cfg.SpoolDir, "directory an uploaded snapshot is written to while it is checked (default <data-dir>/spool; not inside <data-dir>/raft)")
	f.Int64Var(&cfg.MaxSnapshotUpload, "max-snapshot-upload", cfg.MaxSnapshotUpload, "largest snapshot upload accepted, in bytes")
	f.Int64Var(&cfg.DiskReserve, "disk-reserve", cfg.DiskReserve, "free space, in bytes, a snapshot upload must leave on the spool's and the data dir's file systems")
	f.DurationVar(&cfg.BodyTimeout, "body-timeout", cfg.BodyTimeout, "time a client has to send each MiB of a request body (or a shorter body whole), and to accept each MiB of a snapshot download")
	f.IntVar(&cfg.JobVersionsKept, "job-versions-kept", cfg.JobVersionsKept, "versions of each job kept for job history and revert (1-100)")
	f.DurationVar(&cfg.GCInterval, "gc-interval", cfg.GCInterval, "how often the leader deletes terminal allocations and finished jobs")
	f.DurationVar(&cfg.GCAllocThreshold, "gc-alloc-threshold", cfg.GCAllocThreshold, "age (since its last change) past which a terminal allocation is deleted")
	f.DurationVar(&cfg.GCJobThreshold, "gc-job-threshold", cfg.GCJobThreshold, "how long a stopped or finished batch job, all its allocations terminal, is kept")
	f.IntVar(&cfg.GCMaxTerminalAllocsPerJob, "gc-max-terminal-allocs-per-job", cfg.GCMaxTerminalAllocsPerJob, "terminal allocations kept per job whatever their age, besides those the scheduler still reads")
	f.IntVar(&cfg.GCBatchSize, "gc-batch-size", cfg.GCBatchSize, "most allocations and jobs deleted by one Raft entry")
	tlsFlags(f, &cfg.TLS)
	f.BoolVar(&cfg.ACL.Enabled, "acl-enabled", cfg.ACL.Enabled, "refuse API calls their ACL token does not allow (acl.enabled; every server must agree); `gantry acl bootstrap` makes the first token")
	f.StringVar(&cfg.ACL.Token, "acl-token", os.Getenv("GANTRY_ACL_TOKEN"), "ACL token this server presents when it joins other servers; needs operator write (acl.token; env GANTRY_ACL_TOKEN)")
}
