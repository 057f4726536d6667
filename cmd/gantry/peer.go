package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/peer"
)

func init() {
	pc := newPeerCmd()
	pc.AddCommand(newPeerMembersCmd(), newPeerLeaveCmd())
	rootCmd.AddCommand(pc)
}

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
		ioURing     bool
		cl          clusterFlags
		configFile  string
		backlog     int
		masterAuth  string
		pubsubDef   string
		httpAddr    string
		limits      storeLimits
		sec         peerSecurity
		admin       storeAdmin
		ex          execFlags
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
			cfg := peer.DefaultConfig()
			cfg.Bind, cfg.Port = bind, port
			cfg.Store.DataDir = dataDir
			cfg.Store.RequirePass = requirePass
			cfg.Store.AppendOnly = appendOnly
			cfg.Store.AppendFsync = appendFsync
			cfg.Store.ReplBacklogSize = backlog
			if configFile != "" {
				fs := cmd.Flags()
				var mu sync.Mutex
				cfg.Store.ConfigRewrite = func(get func(string) (string, bool)) error {
					mu.Lock()
					defer mu.Unlock()
					return rewriteConfigFile(fs, configFile, get)
				}
			}
			cfg.Store.MasterAuth = masterAuth
			cfg.Store.ACLPubsubDefault = pubsubDef
			admin.apply(&cfg.Store)
			if err := limits.apply(&cfg.Store); err != nil {
				return err
			}
			if err := sec.apply(&cfg); err != nil {
				return err
			}
			if cpus > 0 {
				// one event loop per CPU used; see docs/kv.md for why the
				// default is one
				runtime.GOMAXPROCS(cpus)
				cfg.Store.EventLoops = cpus
				cfg.Store.NoIOURing = !ioURing
			} else {
				cfg.Store.EventLoops = -1
			}
			logger := log.New(os.Stderr, "peer: ", log.LstdFlags|log.Lmicroseconds)
			cfg.Store.Logger, cfg.Logger = logger, logger
			if err := cl.apply(&cfg); err != nil {
				return err
			}
			p, err := peer.New(cfg)
			if err != nil {
				return err
			}
			ex.masterUser, ex.masterAuth = sec.masterUser, masterAuth
			svc, err := ex.start(p, httpAddr, dataDir, requirePass, logger)
			if err != nil {
				_ = p.Close()
				return err
			}
			if svc != nil {
				defer func() { _ = svc.Close() }()
			}
			if httpAddr != "" {
				h := p.HTTPHandler()
				if svc != nil {
					h = svc.Handler(h)
				}
				var tlsCfg *tls.Config
				if f := p.TLSFiles(); f != nil {
					tlsCfg = f.ServerConfig() // the peer's TLS: the API is served with it too
				}
				hs, err := servePeerHTTP(httpAddr, h, tlsCfg, logger)
				if err != nil {
					_ = p.Close()
					return err
				}
				defer func() { _ = hs.Close() }()
			}
			if pprofAddr != "" {
				if err := servePprof(pprofAddr, func(err error) { logger.Printf("pprof: %v", err) }); err != nil {
					return err
				}
			}
			logger.Printf("ready to accept connections on %s", p.Addr())
			leaveSig, _ := ex.signal() // checked by ex.start
			var stopSigs []os.Signal
			for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
				if svc == nil || sig != leaveSig {
					stopSigs = append(stopSigs, sig)
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), stopSigs...)
			defer stop()
			leaveNow := make(chan os.Signal, 1)
			if svc != nil && leaveSig != nil {
				signal.Notify(leaveNow, leaveSig)
				defer signal.Stop(leaveNow)
			}
			reloadOnHUP(ctx, slog.New(slog.DiscardHandler), peerReload(p, logger))
			errc := make(chan error, 1)
			go func() { errc <- p.Serve() }()
			var left <-chan struct{}
			if svc != nil {
				left = svc.Left()
			}
			select {
			case <-left:
				logger.Printf("left the cluster; shutting down")
				_ = svc.Close()
				if err := p.Close(); err != nil {
					return err
				}
				return <-errc
			case <-leaveNow:
				ex.leave(svc, leaveNow, ctx.Done(), logger)
				logger.Printf("shutting down")
				_ = svc.Close()
				if err := p.Close(); err != nil {
					return err
				}
				return <-errc
			case <-ctx.Done():
				logger.Printf("shutting down")
				if err := p.Close(); err != nil {
					return err
				}
				return <-errc
			case <-p.StopRequested():
				logger.Printf("SHUTDOWN: shutting down") // as after SIGTERM
				if err := p.Close(); err != nil {
					return err
				}
				return <-errc
			case err := <-errc:
				if cerr := p.Close(); cerr != nil {
					logger.Printf("close: %v", cerr)
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
	f.BoolVar(&ioURing, "io-uring", true, "event loops read and write their clients' sockets in batches through io_uring where the kernel allows it (false: one read and one write system call per client)")
	f.StringVar(&httpAddr, "http-addr", "", "serve the web UI's Peers page and GET /v1/peer/status on this address (e.g. 127.0.0.1:6380; empty: off)")
	f.StringVar(&pprofAddr, "pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	f.IntVar(&backlog, "repl-backlog-size", 1<<20, "bytes of the replication stream kept for partial resyncs of replicas")
	f.StringVar(&masterAuth, "masterauth", "", "password this peer AUTHs with at its primary when it is a replica")
	f.StringVar(&pubsubDef, "acl-pubsub-default", "resetchannels", "channels of ACL users created from then on (and of ACL SETUSER reset): resetchannels (none) or allchannels")
	limits.register(f)
	admin.register(f)
	cl.register(f)
	sec.register(f)
	cmd.AddCommand(newPeerKeyringCmd()) // peer_keyring.go
	ex.register(f)
	f.StringVar(&configFile, "config", "", "YAML file of flag values (keys are flag names without --; flags on the command line win)")
	return cmd
}

// servePeerHTTP serves the peer's HTTP side (the UI's Peers page) on addr
// until the returned server is closed.
func servePeerHTTP(addr string, h http.Handler, tlsCfg *tls.Config, logger *log.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http-addr %s: %w", addr, err)
	}
	scheme := "http"
	if tlsCfg != nil {
		// HTTP/1.1 only: the peers' streams take their connection over
		cfg := tlsCfg.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		ln, scheme = tls.NewListener(ln, cfg), "https"
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Printf("http: %v", err)
		}
	}()
	logger.Printf("web UI on %s://%s/ui/", scheme, ln.Addr())
	return hs, nil
}
