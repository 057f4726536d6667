package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/peer"
	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

// execFlags turn on the peer's execution layer (docs/peer.md, "Running
// work on peers"): the peer stores jobs, owns those of its slots, and runs
// tasks.
type execFlags struct {
	run      bool
	drivers  []string
	cpu      int64
	memoryMB int64
	labels   []string
	// leaveSignal makes the peer leave the cluster (as gantry peer leave)
	// before it exits, bounded by leaveTimeout.
	leaveSignal  string
	leaveTimeout time.Duration
	// masterUser and masterAuth (set from --masteruser, --masterauth) are
	// also what the peer presents to the other peers' APIs.
	masterUser, masterAuth string
}

func (f *execFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.run, "run-tasks", false, "run jobs on the peer cluster: store and own jobs, place and run tasks (needs --cluster and --http-addr)")
	fs.StringSliceVar(&f.drivers, "drivers", []string{"exec", "mock"}, "task drivers this peer runs (exec, mock)")
	fs.Int64Var(&f.cpu, "cpu", 4000, "CPU (MHz) this peer offers to tasks")
	fs.Int64Var(&f.memoryMB, "memory-mb", 4096, "memory (MiB) this peer offers to tasks")
	fs.StringSliceVar(&f.labels, "label", nil, "node label key=value for job constraints (repeatable)")
	fs.StringVar(&f.leaveSignal, "leave-on-signal", "SIGTERM", "with --run-tasks: on this signal (SIGTERM, SIGINT, SIGUSR1, SIGUSR2 or none) the peer leaves the cluster (hands off its copies and slots, as gantry peer leave) before it exits")
	fs.DurationVar(&f.leaveTimeout, "leave-timeout", 2*time.Minute, "how long a leave on --leave-on-signal may take before the peer exits anyway")
}

// leaveSignals are the signals --leave-on-signal accepts.
var leaveSignals = map[string]os.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": os.Interrupt, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2}

// signal returns the leave signal; nil for none.
func (f *execFlags) signal() (os.Signal, error) {
	name := strings.ToUpper(f.leaveSignal)
	if name == "" || name == "NONE" || !f.run {
		return nil, nil
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig, ok := leaveSignals[name]
	if !ok {
		return nil, fmt.Errorf("--leave-on-signal %q: want SIGTERM, SIGINT, SIGUSR1, SIGUSR2 or none", f.leaveSignal)
	}
	if f.leaveTimeout <= 0 {
		return nil, fmt.Errorf("--leave-timeout %s: must be positive", f.leaveTimeout)
	}
	return sig, nil
}

// leave runs a leave on the signal, bounded by the timeout; the peer
// exits after it whether it finished or not.
// A second signal (abort) ends the leave at once.
func (f *execFlags) leave(svc *peerexec.Service, abort <-chan os.Signal, stopped <-chan struct{}, logger *log.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), f.leaveTimeout)
	defer cancel()
	go func() {
		select {
		case <-abort:
			logger.Printf("second signal: giving the leave up")
		case <-stopped:
		case <-ctx.Done():
		}
		cancel()
	}()
	logger.Printf("leaving the cluster (signal; at most %s; signal again to exit at once)", f.leaveTimeout)
	if err := svc.Leave(ctx, logWriter{logger}); err != nil {
		logger.Printf("leave: %v; exiting anyway", err)
		return
	}
	logger.Printf("left the cluster")
}

// logWriter writes each line of a leave's progress to the log.
type logWriter struct{ l *log.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Printf("leave: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start attaches the execution layer to p, or returns nil when off.
func (f *execFlags) start(p *peer.Peer, httpAddr, dataDir, password string, logger *log.Logger) (*peerexec.Service, error) {
	if _, err := f.signal(); err != nil {
		return nil, err
	}
	if !f.run {
		return nil, nil
	}
	if p.Cluster() == nil || httpAddr == "" {
		return nil, fmt.Errorf("--run-tasks needs --cluster and --http-addr")
	}
	node := structs.Node{Capacity: structs.Resources{CPU: f.cpu, MemoryMB: f.memoryMB}, Labels: map[string]string{},
		Attributes: map[string]string{"os": runtime.GOOS, "arch": runtime.GOARCH}}
	for _, l := range f.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want key=value", l)
		}
		node.Labels[k] = v
	}
	node.Name = p.Addr().String() // several peers may share a host
	var drivers []driver.Driver
	for _, name := range f.drivers {
		switch name {
		case "mock":
			drivers = append(drivers, driver.NewMock(nil))
		case "exec":
			// no lifeline: a task outlives a crash of its peer, which
			// re-attaches to it when it starts again on its data directory
			// (a peer that stops cleanly stops its tasks first)
			d, err := driver.NewExec(driver.ExecOptions{})
			if err != nil {
				return nil, err
			}
			drivers = append(drivers, d)
		default:
			return nil, fmt.Errorf("--drivers: %q: peers run exec and mock", name)
		}
	}
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "gantry-peer-tasks-")
		if err != nil {
			return nil, err
		}
		dataDir = dir
	}
	return peerexec.Start(p, peerexec.ServiceConfig{Node: node, HTTPAddr: httpAddr, DataDir: filepath.Clean(dataDir),
		Drivers: drivers, Password: password, Logger: logger, Auth: p.Store(), Stream: peerStreamDialer(p, f.masterUser, f.masterAuth, password)})
}

// peerStreamDialer is how a peer reaches the other peers' APIs: TLS when
// it has TLS files, as masteruser/masterauth when set (the credentials it
// uses at its primary), else as the default user with requirepass.
func peerStreamDialer(p *peer.Peer, user, auth, requirePass string) peerexec.StreamDialer {
	var d peerexec.StreamDialer
	if f := p.TLSFiles(); f != nil {
		d.TLS = f.ClientConfig()
	}
	d.User, d.Password = user, auth
	if d.Password == "" {
		d.User, d.Password = "", requirePass
	}
	return d
}

// peerAPI returns the base URL of a peer's HTTP side.
func peerAPI(addr string) string {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

func newPeerMembersCmd() *cobra.Command {
	var addr, output string
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the peers with their lifecycle state, role, capacity, usage and task count",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerAPI(addr)+"/v1/peer/members", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			if output == "json" {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var ms []peerexec.MemberInfo
			if err := json.Unmarshal(body, &ms); err != nil {
				return fmt.Errorf("decoding the members: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tADDRESS\tSTATE\tROLE\tCPU USED\tMEMORY USED\tTASKS")
			for _, m := range ms {
				id := m.ID
				if len(id) > 8 {
					id = id[:8]
				}
				if m.Self {
					id += "*"
				}
				role := m.Role
				if m.Primary != "" && len(m.Primary) >= 8 {
					role += " of " + m.Primary[:8]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%d/%d MiB\t%d\n", id, m.Addr, m.State, role,
					m.Used.CPU, m.Capacity.CPU, m.Used.MemoryMB, m.Capacity.MemoryMB, m.Tasks)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&addr, "address", "http://127.0.0.1:6380", "HTTP address (--http-addr) of any peer")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newPeerLeaveCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "leave",
		Short: "Make a peer leave the cluster: its copies and slots move to others, then it exits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, peerAPI(addr)+"/v1/peer/leave", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var last string
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				last = sc.Text()
				fmt.Fprintln(cmd.OutOrStdout(), last)
			}
			if err := sc.Err(); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK || last != "left" {
				return fmt.Errorf("the peer did not leave (%s)", resp.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "address", "http://127.0.0.1:6380", "HTTP address (--http-addr) of the peer that leaves")
	return cmd
}
