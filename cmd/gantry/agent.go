package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/agent"
	"github.com/gantry-project/gantry/internal/driver/shim"
)

func init() {
	rootCmd.AddCommand(newAgentCmd(), newTaskShimCmd())
}

func newAgentCmd() *cobra.Command {
	var (
		labels    []string
		logLevel  string
		pprofAddr string
		cfg       = agent.DefaultConfig()
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent: register this machine and run the tasks the servers assign",
		Long: `Run a node agent. It fingerprints the machine (CPU, memory, OS), registers
with the servers, heartbeats, runs the allocations assigned to this node with
the exec, docker or mock driver, and reports their status. The docker driver
is available when a Docker daemon answers at --docker-endpoint; the node then
carries the attribute driver.docker = true (constrain jobs on
attr.driver.docker).

Stopping the agent (SIGINT/SIGTERM) leaves its tasks running; an agent started
again on the same --data-dir re-attaches to them.

With --ca-file, --cert-file and --key-file (an agent certificate from gantry
tls cert create --agent) the agent talks to the servers over mutual TLS and
serves task logs to servers only. SIGHUP reloads the files.`,
		Example: `  gantry agent --servers 127.0.0.1:4646 --data-dir /var/lib/gantry/agent \
    --label zone=a --label disk=ssd`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Logger, err = newLogger(logLevel, os.Stderr); err != nil {
				return err
			}
			agentRuntime(pprofAddr != "")
			var servers []string
			for _, s := range cfg.Servers {
				for _, part := range strings.Split(s, ",") {
					if part = strings.TrimSpace(part); part != "" {
						servers = append(servers, part)
					}
				}
			}
			cfg.Servers = servers
			cfg.Labels = map[string]string{}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return fmt.Errorf("--label %q: want key=value", l)
				}
				cfg.Labels[k] = v
			}
			a, err := agent.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			reloadOnHUP(ctx, cfg.Logger, a.ReloadTLS)
			if err := a.Start(ctx); err != nil {
				return err
			}
			if pprofAddr != "" {
				if err := servePprof(pprofAddr, func(err error) { cfg.Logger.Error("pprof stopped", "error", err) }); err != nil {
					return err
				}
			}
			scheme := "http"
			if cfg.TLS.Enabled() {
				scheme = "https"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gantry agent: node %s, API on %s://%s\n", a.NodeID(), scheme, a.HTTPAddr())
			<-ctx.Done()
			return a.Shutdown()
		},
	}
	f := cmd.Flags()
	agentFlags(f, &cfg, &labels)
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&pprofAddr, "pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6061; for profiling the agent's memory and CPU)")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// agentGOGC is the agent's GOGC unless the environment sets one. Its live
// heap is a few MiB (2.2-2.7 MiB with 50 checked containers) and the
// runtime lets the heap grow by GOGC percent of it (and of the goroutine
// stacks) before collecting: 50 instead of 100 took about 1.5 MiB off the
// agent's resident size with 50 containers, for twice as many small
// collections (docs/agent.md, "Memory, start-to-healthy and DNS figures").
const agentGOGC = 50

// agentRuntime sets the agent process's garbage collector (agentGOGC,
// unless GOGC is set) and, unless it serves profiles, turns allocation
// sampling off: the sampler's records (a hash table of 1.4 MB, touched
// wherever a sampled stack hashes) would otherwise grow over the agent's
// life with nothing to read them.
func agentRuntime(profiling bool) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(agentGOGC)
	}
	if !profiling {
		runtime.MemProfileRate = 0
	}
}

// newTaskShimCmd is the hidden supervisor the exec driver runs for each
// task (see internal/driver/shim). It reads its spec from the environment.
func newTaskShimCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "task-shim",
		Short:              "Supervise one exec task (started by the agent)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			if os.Getenv(shim.EnvSpec) == "" {
				return fmt.Errorf("task-shim is started by the agent's exec driver, not by hand (%s is not set)", shim.EnvSpec)
			}
			os.Exit(shim.Main())
			return nil
		},
	}
}

// agentFlags maps the agent's flags onto cfg, whose values (from
// agent.DefaultConfig) are the flags' defaults, and labels (key=value,
// parsed by the command); validation is agent.New's.
func agentFlags(f *pflag.FlagSet, cfg *agent.Config, labels *[]string) {
	f.StringSliceVar(&cfg.Servers, "servers", cfg.Servers, "server addresses host:port, comma-separated or repeated")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the node ID, allocation state and task logs (required)")
	f.StringVar(&cfg.Name, "name", cfg.Name, "node name (default: host name)")
	f.StringArrayVar(labels, "label", nil, "node label key=value (repeatable)")
	f.Int64Var(&cfg.CPU, "cpu", cfg.CPU, "CPU capacity in millicores (default: fingerprinted)")
	f.Int64Var(&cfg.MemoryMB, "memory", cfg.MemoryMB, "memory capacity in MiB (default: fingerprinted)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "address of the agent's own API (logs, metrics)")
	f.Int64Var(&cfg.DiskMinFreeMB, "disk-min-free-mb", cfg.DiskMinFreeMB, "the node refuses new placements while the data dir's disk has less free space than this (MiB; negative: never)")
	f.StringVar(&cfg.DockerEndpoint, "docker-endpoint", cfg.DockerEndpoint, "Docker daemon of the docker driver, e.g. unix:///var/run/docker.sock or tcp://host:2375 (default: $DOCKER_HOST, else the local socket)")
	f.BoolVar(&cfg.DockerHostBinds, "docker-allow-host-binds", cfg.DockerHostBinds, "let docker jobs bind-mount absolute host paths (default: named volumes and paths in the allocation directory only)")
	f.StringVar(&cfg.DynamicPorts, "dynamic-ports", cfg.DynamicPorts, "range MIN-MAX the scheduler picks this node's dynamic host ports from")
	f.Var(&hostVolumesFlag{cfg: cfg}, "host-volume", "a directory jobs may claim as a host volume, NAME=/PATH or NAME=/PATH:ro (repeatable)")
	f.StringVar(&cfg.PortIP, "port-ip", cfg.PortIP, "address tasks are told their ports are reachable at, GANTRY_IP_<LABEL> (default: the host of --http-addr, 127.0.0.1 for a wildcard)")
	f.StringVar(&cfg.DNSAddr, "dns-addr", cfg.DNSAddr, "host:port where the agent answers DNS for services, <service>.service.gantry (UDP and TCP; default: off)")
	tlsFlags(f, &cfg.TLS)
	f.StringVar(&cfg.Token, "token", os.Getenv("GANTRY_TOKEN"), "ACL token the agent presents to the servers; needs node write when ACLs are on (env GANTRY_TOKEN)")
}

// hostVolumesFlag reads repeated --host-volume NAME=/PATH[:ro] into the
// agent's config, refusing a name given twice.
type hostVolumesFlag struct {
	cfg  *agent.Config
	seen []string
}

func (h *hostVolumesFlag) String() string { return strings.Join(h.seen, ",") }
func (h *hostVolumesFlag) Type() string   { return "NAME=/PATH[:ro]" }

func (h *hostVolumesFlag) Set(s string) error {
	name, v, err := agent.ParseHostVolume(s)
	if err != nil {
		return err
	}
	if _, dup := h.cfg.HostVolumes[name]; dup {
		return fmt.Errorf("host volume %s is given twice", name)
	}
	if h.cfg.HostVolumes == nil {
		h.cfg.HostVolumes = map[string]agent.HostVolume{}
	}
	h.cfg.HostVolumes[name] = v
	h.seen = append(h.seen, s)
	return nil
}
