package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/kv"
	"github.com/gantry-project/gantry/internal/peer"
)

func init() { rootCmd.AddCommand(newPeerCmd()) }

func newPeerCmd() *cobra.Command {
	var (
		port        int
		bind        string
		dataDir     string
		requirePass string
		appendOnly  bool
		appendFsync string
		pprofAddr   string
		cpus        int
		cl          clusterFlags
		configFile  string
		backlog     int
		masterAuth  string
	)
	cmd := &cobra.Command{
		Use:   "peer",
		Short: "Run a data store peer that speaks the Redis protocol (alone or in a cluster)",
		Long: `peer runs gantry's data store: strings, lists, sets, hashes and sorted sets
with expiry, transactions and blocking pops, served over RESP2/RESP3 so
redis-cli and Redis clients work unchanged. With --data-dir it keeps an
append-only log and snapshots there (see docs/kv.md). With --cluster it is a
Redis Cluster node: gossip with hashicorp/memberlist on --cluster-port, 16384
hash slots, MOVED/CROSSSLOT/CLUSTERDOWN and the CLUSTER commands that
redis-cli --cluster create and cluster clients use (see docs/peer.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfigFile(cmd.Flags(), configFile); err != nil {
				return err
			}
			cfg := kv.DefaultConfig()
			cfg.DataDir = dataDir
			cfg.RequirePass = requirePass
			cfg.AppendOnly = appendOnly
			cfg.AppendFsync = appendFsync
			cfg.ReplBacklogSize = backlog
			cfg.MasterAuth = masterAuth
			if cpus > 0 {
				// one event loop per CPU used; see docs/kv.md for why the
				// default is one
				runtime.GOMAXPROCS(cpus)
				cfg.EventLoops = cpus
			} else {
				cfg.EventLoops = -1
			}
			cfg.Logger = log.New(os.Stderr, "peer: ", log.LstdFlags|log.Lmicroseconds)
			// listen first: a taken port fails before any data is loaded
			ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(port)))
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			var (
				clu    *peer.Cluster
				router *peer.Router
			)
			if cl.enabled {
				clu, router, err = cl.start(bind, port, dataDir, cfg.Logger)
				if err != nil {
					ln.Close()
					return err
				}
				defer func() {
					if err := clu.Close(); err != nil {
						cfg.Logger.Printf("cluster: close: %v", err)
					}
				}()
				cfg.Cluster = router
			}
			srv, err := kv.New(cfg)
			if err != nil {
				ln.Close()
				return err
			}
			if router != nil {
				router.SetKeyspace(srv.Keyspace())
				clu.SetReplicator(srv)
				if len(cl.join) > 0 {
					if err := clu.Join(cl.join); err != nil {
						cfg.Logger.Printf("cluster: %v (peers can still MEET this node)", err)
					}
				}
			}
			if pprofAddr != "" {
				// net/http/pprof registers on the default mux
				go func() { cfg.Logger.Printf("pprof: %v", http.ListenAndServe(pprofAddr, nil)) }()
			}
			cfg.Logger.Printf("ready to accept connections on %s", ln.Addr())
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case <-ctx.Done():
				cfg.Logger.Printf("shutting down")
				if err := srv.Close(); err != nil {
					return err
				}
				if err := <-errc; err != nil && !errors.Is(err, kv.ErrServerClosed) {
					return err
				}
				return nil
			case err := <-errc:
				if cerr := srv.Close(); cerr != nil {
					cfg.Logger.Printf("close: %v", cerr)
				}
				return err
			}
		},
	}
	f := cmd.Flags()
	f.IntVar(&port, "port", 6379, "TCP port to serve the Redis protocol on")
	f.StringVar(&bind, "bind", "127.0.0.1", "address to listen on")
	f.StringVar(&dataDir, "data-dir", "", "directory for the snapshot and append-only log (empty: memory only)")
	f.StringVar(&requirePass, "requirepass", "", "password clients must AUTH with")
	f.BoolVar(&appendOnly, "appendonly", true, "keep an append-only log in --data-dir")
	f.StringVar(&appendFsync, "appendfsync", "everysec", "fsync policy of the log: always, everysec or no")
	f.IntVar(&cpus, "cpus", 1, "CPUs (and epoll event loops) serving clients; 0 serves each connection from a goroutine on all CPUs")
	f.StringVar(&pprofAddr, "pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	f.IntVar(&backlog, "repl-backlog-size", 1<<20, "bytes of the replication stream kept for partial resyncs of replicas")
	f.StringVar(&masterAuth, "masterauth", "", "password this peer AUTHs with at its primary when it is a replica")
	cl.register(f)
	f.StringVar(&configFile, "config", "", "YAML file of flag values (keys are flag names without --; flags on the command line win)")
	return cmd
}
