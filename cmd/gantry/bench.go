package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/bench"
	"github.com/gantry-project/gantry/internal/server"
	"github.com/gantry-project/gantry/internal/structs"
)

func init() { rootCmd.AddCommand(newBenchCmd()) }

func newBenchCmd() *cobra.Command {
	var (
		output     string
		serverMode string
		profileDir string
		profileSec int
		eventSubs  int
		dataDir    string
		logStore   string
		seed       int64
		quiet      bool
		useTLS     bool
		timeout    time.Duration
		schedArch  []string
		schedN     []int
		primaries  []int
		machineCPU float64
	)
	cmd := &cobra.Command{
		Use:   "bench WORKLOAD.yaml",
		Short: "Run a workload against a real control plane with simulated nodes and report placement figures",
		Long: `bench starts a gantry server (a child process by default, so its CPU and
memory are measured apart), registers the workload's simulated nodes, which
speak the agent protocol over HTTP (register, heartbeat, blocking query on
their allocations, status reports) and run tasks with the mock driver, then
submits the workload's jobs and measures placements/s, time to place all,
submit-to-placed and submit-to-running latency, scheduler busyness and the
server's CPU and peak memory. Afterwards it checks the final state: no node
over-committed and every task placed exactly once.

Exit codes: 0 success, 1 error, 2 the final-state check failed or the run
timed out (the report is still printed).`,
		Example: `  gantry bench bench/workloads/c1m-like.yaml
  gantry bench -o json bench/workloads/latency.yaml > latency.json
  gantry bench --profile-dir prof bench/workloads/c1m-like.yaml
  gantry bench --tls bench/workloads/latency.yaml
  gantry bench compare old.json new.json
  gantry bench --scheduler monolithic,shared-state,two-level bench/workloads/mixed.yaml
  gantry bench --scheduler shared-state --schedulers 1,2,4,8 bench/workloads/small.yaml
  gantry bench --scheduler peer,shared-state --primaries 3,6,12 --machine-cpus 0.15 bench/workloads/peer-10k.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o: must be table or json (got %q)", output)
			}
			w, err := bench.LoadWorkload(args[0])
			if err != nil {
				return err
			}
			if eventSubs < 0 || eventSubs > 1000 {
				return fmt.Errorf("--event-subscribers: must be between 0 and 1000 (got %d)", eventSubs)
			}
			if timeout < 0 {
				return fmt.Errorf("--timeout: must be >= 0 (got %s)", timeout)
			}
			if timeout > 0 {
				w.Timeout = structs.Duration(timeout)
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the gantry binary: %w", err)
			}
			if dataDir == "" {
				if dataDir, err = os.MkdirTemp("", "gantry-bench-"); err != nil {
					return err
				}
				defer os.RemoveAll(dataDir)
			} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
				return err
			}
			if profileDir != "" {
				if err := os.MkdirAll(profileDir, 0o755); err != nil {
					return err
				}
			}
			runs, err := benchRuns(schedArch, schedN)
			if err != nil {
				return err
			}
			runs = expandPeerRuns(runs, primaries)
			switch logStore {
			case "", server.LogStoreWAL, server.LogStoreBoltDB:
			default:
				return fmt.Errorf("--raft-log-store: must be %s or %s (got %q)", server.LogStoreWAL, server.LogStoreBoltDB, logStore)
			}
			if machineCPU < 0 || machineCPU > float64(runtime.NumCPU()) || (machineCPU > 0 && machineCPU < 0.01) {
				return fmt.Errorf("--machine-cpus: must be 0 (off) or between 0.01 and %d, this host's CPUs (got %g)", runtime.NumCPU(), machineCPU)
			}
			if machineCPU > 0 && serverMode != bench.ServerProcess {
				return fmt.Errorf("--machine-cpus: needs --server process (each machine is a child process)")
			}
			opts := bench.Options{Workload: w, Server: serverMode, Exe: exe, DataDir: dataDir, RaftLogStore: logStore, MachineCPUs: machineCPU,
				ProfileDir: profileDir, ProfileSeconds: profileSec, Seed: seed, TLS: useTLS,
				EventSubscribers: eventSubs,
				Logger:           slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
			if !quiet {
				opts.Progress = cmd.ErrOrStderr()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if len(runs) > 1 {
				return runSideBySide(ctx, cmd, opts, runs, output)
			}
			if len(runs) == 1 {
				opts.Scheduler, opts.Schedulers = runs[0].arch, runs[0].workers
			}
			rep, runErr := runBench(ctx, opts, benchRun{arch: opts.Scheduler, workers: opts.Schedulers})
			if rep == nil {
				return runErr
			}
			if output == "json" {
				err = rep.WriteJSON(cmd.OutOrStdout())
			} else {
				err = rep.WriteTable(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if runErr != nil && !errors.Is(runErr, bench.ErrTimeout) {
				return runErr
			}
			if runErr != nil || !rep.Check.OK {
				if runErr != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error:", runErr)
				} else {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error: final-state check failed")
				}
				os.Exit(2)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.StringVar(&serverMode, "server", bench.ServerProcess, "where the server runs: process (a child gantry server) or inproc")
	f.StringVar(&profileDir, "profile-dir", "", "save CPU profiles of the server (cpu.pprof) and of the simulated nodes (bench-cpu.pprof) during placement, and the server's allocation profile, here")
	f.IntVar(&profileSec, "profile-seconds", 20, "length of the CPU profile")
	f.IntVar(&eventSubs, "event-subscribers", 0, "follow the event stream (every topic) with this many subscribers during placement and report what they received")
	f.StringVar(&logStore, "raft-log-store", "", "the server's Raft log store: wal or boltdb (default: the server's, "+server.DefaultLogStore+")")
	f.StringVar(&dataDir, "data-dir", "", "directory for the server's data and log (default: a temporary directory, removed afterwards)")
	f.Int64Var(&seed, "seed", 1, "seed of the simulated nodes' jitter (and the in-process scheduler)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	f.BoolVar(&useTLS, "tls", false, "run the control plane with mutual TLS (a throwaway CA and certificates in the data directory; nodes present an agent certificate, submitters a client one)")
	f.DurationVar(&timeout, "timeout", 0, "bound the run (overrides the workload's timeout; the report of a timed-out run is still printed)")
	f.StringSliceVar(&schedArch, "scheduler", nil, "server scheduling architecture(s), comma-separated (monolithic, shared-state, two-level); several run one after another and print side by side")
	f.IntSliceVar(&schedN, "schedulers", nil, "shared-state worker counts, comma-separated (one run each)")
	f.IntSliceVar(&primaries, "primaries", []int{3}, "with --scheduler peer: peer cluster sizes (primaries; in-process unless --machine-cpus), comma-separated (one run each)")
	f.Float64Var(&machineCPU, "machine-cpus", 0, "emulate machines of this many CPUs (e.g. 0.15): the server, or with --scheduler peer each peer, runs as a child process in a CPU cgroup of its own with that quota (cgroup v2 or v1; needs a writable one); the simulated nodes and submitters stay in the bench, unlimited; 0: off")
	cmd.AddCommand(newBenchCompareCmd())
	return cmd
}

func newBenchCompareCmd() *cobra.Command {
	var (
		tolerance float64
		failWorse bool
		output    string
	)
	cmd := &cobra.Command{
		Use:   "compare OLD.json NEW.json",
		Short: "Compare two bench JSON reports and print new/old ratios",
		Long: `compare reads two reports written by "gantry bench -o json" and prints each
figure with its ratio new/old and whether it got better or worse (changes
within --tolerance count as the same). With --fail-on-worse it exits 2 when a
figure got worse: a regression guard that does not depend on a timed test.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tolerance < 0 {
				return fmt.Errorf("--tolerance: must be >= 0 (got %g)", tolerance)
			}
			old, err := bench.ReadReport(args[0])
			if err != nil {
				return err
			}
			cur, err := bench.ReadReport(args[1])
			if err != nil {
				return err
			}
			cs := bench.Compare(old, cur, tolerance)
			switch output {
			case "table":
				err = bench.WriteComparison(cmd.OutOrStdout(), old, cur, cs)
			case "json":
				err = writeComparisonJSON(cmd, cs)
			default:
				return fmt.Errorf("-o: must be table or json (got %q)", output)
			}
			if err != nil {
				return err
			}
			if failWorse {
				for _, c := range cs {
					if c.Change == "worse" {
						fmt.Fprintf(cmd.ErrOrStderr(), "Error: %s got worse (%.3f -> %.3f)\n", c.Metric, c.Old, c.New)
						os.Exit(2)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&tolerance, "tolerance", 0.05, "relative change counted as the same (0.05 = 5%)")
	cmd.Flags().BoolVar(&failWorse, "fail-on-worse", false, "exit 2 if any figure got worse beyond the tolerance")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func writeComparisonJSON(cmd *cobra.Command, cs []bench.Comparison) error {
	// NaN ratios (old figure 0) are not valid JSON numbers: write null.
	type row struct {
		bench.Comparison
		Ratio *float64 `json:"ratio"`
	}
	rows := make([]row, len(cs))
	for i, c := range cs {
		rows[i].Comparison = c
		if c.Ratio == c.Ratio {
			r := c.Ratio
			rows[i].Ratio = &r
		}
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// benchRun is one server configuration of a side-by-side bench.
type benchRun struct {
	arch    string
	workers int
}

// benchRuns expands --scheduler and --schedulers into runs: monolithic
// once, shared-state once per worker count.
func benchRuns(archs []string, workers []int) ([]benchRun, error) {
	for _, n := range workers {
		if n < 1 {
			return nil, fmt.Errorf("--schedulers: worker counts must be >= 1 (got %d)", n)
		}
	}
	if len(workers) > 0 && !slices.Contains(archs, "shared-state") {
		if len(archs) > 0 {
			return nil, errors.New("--schedulers: needs --scheduler shared-state")
		}
		archs = []string{"shared-state"}
	}
	var runs []benchRun
	for _, a := range archs {
		switch a {
		case "monolithic", "two-level", bench.ArchitecturePeer:
			runs = append(runs, benchRun{arch: a})
		case "shared-state":
			if len(workers) == 0 {
				runs = append(runs, benchRun{arch: a})
			}
			for _, n := range workers {
				runs = append(runs, benchRun{arch: a, workers: n})
			}
		default:
			return nil, fmt.Errorf("--scheduler: must be monolithic, shared-state, two-level or peer (got %q)", a)
		}
	}
	return runs, nil
}

// runSideBySide runs the workload once per configuration, each on its own
// server and data directory, and prints the reports as columns (or a JSON
// array). It exits 2 if any run timed out or failed its final-state check.
func runSideBySide(ctx context.Context, cmd *cobra.Command, opts bench.Options, runs []benchRun, output string) error {
	var reps []*bench.Report
	failed := false
	for i, r := range runs {
		o := opts
		o.Scheduler, o.Schedulers = r.arch, r.workers
		o.DataDir = filepath.Join(opts.DataDir, fmt.Sprintf("run-%d-%s", i+1, r.arch))
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			return err
		}
		if o.ProfileDir != "" {
			o.ProfileDir = filepath.Join(opts.ProfileDir, fmt.Sprintf("run-%d-%s", i+1, r.arch))
			if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
				return err
			}
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "run %d of %d: %s (workers %d)\n", i+1, len(runs), r.arch, r.workers)
		}
		rep, err := runBench(ctx, o, r)
		if rep == nil {
			return fmt.Errorf("run %d (%s): %w", i+1, r.arch, err)
		}
		if err != nil {
			if !errors.Is(err, bench.ErrTimeout) {
				return fmt.Errorf("run %d (%s): %w", i+1, r.arch, err)
			}
			failed = true
		}
		failed = failed || !rep.Check.OK
		reps = append(reps, rep)
	}
	var err error
	if output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		err = enc.Encode(reps)
	} else {
		err = bench.WriteSideBySide(cmd.OutOrStdout(), reps)
	}
	if err != nil {
		return err
	}
	if failed {
		fmt.Fprintln(cmd.ErrOrStderr(), "Error: a run timed out or failed its final-state check")
		os.Exit(2)
	}
	return nil
}

// expandPeerRuns makes one peer run per --primaries size.
func expandPeerRuns(runs []benchRun, primaries []int) []benchRun {
	var out []benchRun
	for _, r := range runs {
		if r.arch != bench.ArchitecturePeer {
			out = append(out, r)
			continue
		}
		for _, n := range primaries {
			out = append(out, benchRun{arch: r.arch, workers: n})
		}
	}
	return out
}

// runBench runs one configuration: a server architecture, or a peer
// cluster of r.workers primaries (bench.RunPeers).
func runBench(ctx context.Context, o bench.Options, r benchRun) (*bench.Report, error) {
	if r.arch == bench.ArchitecturePeer {
		return bench.RunPeers(ctx, o, r.workers)
	}
	return bench.Run(ctx, o)
}
