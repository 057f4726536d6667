package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/agent"
	"github.com/gantry-project/gantry/internal/cli"
	"github.com/gantry-project/gantry/internal/server"
)

func init() { rootCmd.AddCommand(newDevCmd()) }

type devOptions struct {
	servers    int
	agents     int
	dataDir    string
	httpAddr   string
	runExample string
	logLevel   string
	dnsAddr    string
}

func newDevCmd() *cobra.Command {
	o := &devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a dev cluster in one process: one or more servers and N agents",
		Long: `Run a server (or, with --servers 3, three servers forming one Raft cluster)
and N agents in one process, for trying gantry out.

Each agent gets an equal share of this machine's CPU and memory, a name
dev-1..dev-N and a label zone=a, zone=b, ... Tasks are real processes. With
no --data-dir the state lives in a temporary directory removed on exit;
Ctrl-C stops every job first. Tasks never outlive this process: if it dies
(kill -9, a crash), each task gets SIGTERM, then SIGKILL after 5 s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDev(cmd, o) },
	}
	f := cmd.Flags()
	f.IntVar(&o.servers, "servers", 1, "number of servers (1, 3 or 5; more than one forms a Raft cluster; the first listens on --http-addr, the others on free ports)")
	f.IntVar(&o.agents, "agents", 3, "number of agents")
	f.StringVar(&o.dataDir, "data-dir", "", "directory for state and task logs (default: a temporary directory, removed on exit)")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:4646", "address of the server's HTTP API")
	f.StringVar(&o.runExample, "run-example", "", "job file to submit once the cluster is up (followed until running)")
	f.StringVar(&o.dnsAddr, "dns-addr", "127.0.0.1:0", "where the first agent answers service DNS (the others take free loopback ports; each is printed; \"\" turns DNS off)")
	f.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	return cmd
}

func runDev(cmd *cobra.Command, o *devOptions) error {
	if o.agents < 1 || o.agents > 26 {
		return fmt.Errorf("--agents must be between 1 and 26 (got %d)", o.agents)
	}
	// `gantry dev | tee log` then Ctrl-C: tee dies first, and the next line
	// printed would kill this process with SIGPIPE before it stops its
	// jobs. Catching SIGPIPE (not ignoring it, which the task shims would
	// inherit) turns that into a failed write, so the shutdown goes on.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// The lifeline: every task shim holds the read end, only this process
	// the write end. However this process ends, even by SIGKILL, the kernel
	// closes it and each shim stops its task: the dev cluster never leaves
	// tasks behind. (A real agent has none: its tasks survive its restarts.)
	lifeline, lifelineW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("task lifeline pipe: %w", err)
	}
	defer runtime.KeepAlive(lifelineW)
	defer lifeline.Close()
	logger, err := newLogger(o.logLevel, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	dir, cleanup := o.dataDir, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "gantry-dev-"); err != nil {
			return err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	defer cleanup()

	srvs, err := startDevServers(o, dir, logger)
	defer stopDevServers(srvs)
	if err != nil {
		return err
	}
	var httpAddrs []string
	for _, srv := range srvs {
		httpAddrs = append(httpAddrs, srv.HTTPAddr())
	}
	addr := "http://" + strings.Join(httpAddrs, ",http://")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Agents run on their own context: on Ctrl-C they must keep working
	// until the jobs are stopped and their tasks killed (shutdownDev).
	agentCtx, stopAgents := context.WithCancel(context.Background())
	defer stopAgents()
	if err := waitLeader(ctx, srvs); err != nil {
		return err
	}
	cpuShare, memShare := machineShare(o.agents)
	var agents []*agent.Agent
	var names, dnsAddrs []string
	for i := 0; i < o.agents; i++ {
		name := fmt.Sprintf("dev-%d", i+1)
		zone := string(rune('a' + i))
		acfg := agent.DefaultConfig()
		acfg.Servers, acfg.DataDir, acfg.Name = httpAddrs, filepath.Join(dir, name), name
		acfg.Labels = map[string]string{"zone": zone}
		acfg.CPU, acfg.MemoryMB = cpuShare, memShare
		acfg.Logger = logger.With("component", "agent")
		acfg.TaskLifeline = lifeline
		if o.dnsAddr != "" {
			acfg.DNSAddr = "127.0.0.1:0"
			if i == 0 {
				acfg.DNSAddr = o.dnsAddr
			}
		}
		a, err := agent.New(acfg)
		if err != nil {
			return fmt.Errorf("agent %s: %w", name, err)
		}
		if err := a.Start(agentCtx); err != nil {
			return fmt.Errorf("starting agent %s: %w", name, err)
		}
		agents = append(agents, a)
		names = append(names, fmt.Sprintf("%s (zone=%s)", name, zone))
		if d := a.DNSAddr(); d != "" {
			dnsAddrs = append(dnsAddrs, name+" "+d)
		}
	}

	client, err := api.NewClient(api.Config{Address: addr})
	if err != nil {
		return err
	}
	defer shutdownDev(client, agents, cmd.ErrOrStderr())
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "gantry dev cluster\n  servers: %s (data in %s)\n  agents: %s, each cpu=%dm memory=%dMiB\n",
		strings.Join(httpAddrs, ", "), dir, strings.Join(names, ", "), cpuShare, memShare)
	if len(dnsAddrs) > 0 {
		fmt.Fprintf(out, "  service DNS (<service>.service.gantry, UDP and TCP): %s\n", strings.Join(dnsAddrs, ", "))
	}
	if err := waitNodesReady(ctx, client, o.agents); err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d nodes ready.\n\n", o.agents)

	if o.runExample != "" {
		data, err := cli.ReadJobFile(o.runExample, cmd.InOrStdin())
		if err != nil {
			return err
		}
		env := &cli.Env{Client: client, Out: out, Err: cmd.ErrOrStderr(), Format: cli.FormatTable, Now: time.Now}
		fmt.Fprintf(out, "$ gantry job run %s\n", o.runExample)
		if err := env.JobRun(ctx, o.runExample, data, cli.RunOptions{}); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "Try, in another terminal:\n  export GANTRY_ADDR=%s\n  gantry node list\n  gantry job status web\n  gantry job run examples/batch.yaml\n\nCtrl-C stops every job and the cluster.\n", addr)
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping jobs and the cluster...")
	return nil
}

// shutdownDev stops every job and waits (bounded) for the tasks to end, so
// Ctrl-C leaves no task processes behind, then stops the agents.
func shutdownDev(client *api.Client, agents []*agent.Agent, errw io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	jobs, _, err := client.ListJobs(ctx, nil)
	if err == nil {
		for _, j := range jobs {
			_, _ = client.StopJob(ctx, j.ID, false)
		}
		for ctx.Err() == nil {
			allocs, _, err := client.ListAllocations(ctx, nil)
			if err != nil {
				break
			}
			live := 0
			for _, a := range allocs {
				if a.ClientStatus == api.AllocClientRunning || a.ClientStatus == api.AllocClientPending && a.DesiredStatus == api.AllocDesiredRun {
					live++
				}
			}
			if live == 0 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, a := range agents {
		if err := a.Shutdown(); err != nil {
			fmt.Fprintln(errw, "agent shutdown:", err)
		}
	}
}

// stopDevServers stops the whole Raft cluster so that no server sees a
// peer vanish while it still needs it, which Raft logs as an error: the
// leader first (its followers are all alive while it stops heartbeating
// them), then the followers at once, well before any of them times out
// waiting for a leader and starts an election.
func stopDevServers(srvs []*server.Server) {
	var followers []*server.Server
	for _, srv := range srvs {
		if srv.Leader() {
			_ = srv.Shutdown()
		} else {
			followers = append(followers, srv)
		}
	}
	var wg sync.WaitGroup
	for _, srv := range followers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.Shutdown()
		}()
	}
	wg.Wait()
}

// startDevServers starts o.servers servers. Several find each other with
// --bootstrap-expect/--join over loopback, exactly as separate processes do.
func startDevServers(o *devOptions, dir string, logger *slog.Logger) ([]*server.Server, error) {
	switch o.servers {
	case 1, 3, 5:
	default:
		return nil, fmt.Errorf("--servers must be 1, 3 or 5 (got %d)", o.servers)
	}
	httpAddrs := []string{o.httpAddr}
	for len(httpAddrs) < o.servers {
		a, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		httpAddrs = append(httpAddrs, a)
	}
	var srvs []*server.Server
	for i := range o.servers {
		raftAddr, err := freeLoopbackAddr()
		if err != nil {
			return srvs, err
		}
		scfg := server.DefaultConfig()
		scfg.DataDir = filepath.Join(dir, "server")
		scfg.NodeName = "dev-server"
		if o.servers > 1 {
			scfg.DataDir = filepath.Join(dir, fmt.Sprintf("server-%d", i+1))
			scfg.NodeName = fmt.Sprintf("dev-server-%d", i+1)
			scfg.BootstrapExpect = o.servers
			for j, a := range httpAddrs {
				if j != i {
					scfg.Join = append(scfg.Join, a)
				}
			}
		}
		scfg.HTTPAddr = httpAddrs[i]
		scfg.RaftAddr = raftAddr
		// Distinct seeds: allocation IDs come from the scheduler's
		// generator, and each server may become the one scheduling.
		scfg.Scheduler.Seed = time.Now().UnixNano() + int64(i)
		scfg.Logger = logger.With("component", "server", "server", scfg.NodeName)
		srv, err := server.New(scfg)
		if err != nil {
			return srvs, err
		}
		if err := srv.Start(); err != nil {
			return srvs, fmt.Errorf("starting server %s: %w", scfg.NodeName, err)
		}
		srvs = append(srvs, srv)
	}
	return srvs, nil
}

// waitLeader waits until one of the servers leads.
func waitLeader(ctx context.Context, srvs []*server.Server) error {
	deadline := time.Now().Add(30 * time.Second)
	for !slices.ContainsFunc(srvs, (*server.Server).Leader) {
		if time.Now().After(deadline) {
			return fmt.Errorf("no server became leader within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func waitNodesReady(ctx context.Context, client *api.Client, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		nodes, _, err := client.ListNodes(ctx, nil)
		if err == nil {
			ready := 0
			for _, nd := range nodes {
				if nd.Status == api.NodeStatusReady {
					ready++
				}
			}
			if ready >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("agents did not register within 30s")
}

// machineShare divides this machine's CPU (millicores) and memory (MiB)
// evenly among n agents.
func machineShare(n int) (cpu, memMB int64) {
	cpu = int64(runtime.NumCPU()) * 1000 / int64(n)
	memMB = 1024
	if total := totalMemoryMB(); total > 0 {
		memMB = total / int64(n)
	}
	return cpu, memMB
}

// totalMemoryMB reads MemTotal from /proc/meminfo (0 if unknown).
func totalMemoryMB() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
