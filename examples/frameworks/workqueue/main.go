// Command workqueue is an example gantry framework: it runs a list of
// shell commands on a cluster that schedules two-level (`gantry server
// --scheduler two-level`), each command as a task on an offered node,
// relaunching a command that fails up to --retries times, and exits once
// every command has finished or failed for good.
//
//	go run ./examples/frameworks/workqueue --address http://127.0.0.1:4646 \
//	    --commands examples/frameworks/workqueue/commands.txt --state /tmp/workqueue.id
//
// It is a real framework, built on the Go SDK (api/framework), and the
// tutorial in docs/frameworks.md walks through it. What it shows:
//   - offers are packed with as many pending commands as fit, and declined
//     (with a filter) when none is pending; the framework suppresses
//     offers once nothing is left to launch;
//   - its ID is kept in --state, so a restart within --failover-timeout
//     keeps its running tasks: on every subscription it first reconciles
//     every task it may have launched, and launches nothing until the
//     answers are in, so no command runs twice.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/api/framework"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "workqueue:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := os.Getenv("GANTRY_ADDR")
	if addr == "" {
		addr = api.DefaultAddress
	}
	var (
		address  = flag.String("address", addr, "server addresses, comma-separated (any server forwards to the leader)")
		name     = flag.String("name", "workqueue", "framework name (unique in the cluster)")
		role     = flag.String("role", "", "role whose weight and quota the framework counts under")
		cmdsPath = flag.String("commands", "", "file of shell commands, one per line ('-' = stdin; blank lines and # comments skipped)")
		cpu      = flag.Int64("cpu", 100, "millicores per task")
		mem      = flag.Int64("memory", 64, "MiB per task")
		retries  = flag.Int("retries", 2, "relaunches of a command that fails")
		failover = flag.Duration("failover-timeout", time.Minute, "how long tasks outlive this process while it is away")
		state    = flag.String("state", "", "file keeping the framework ID across restarts (empty: a new framework each run)")
		keep     = flag.Bool("keep-running", false, "stay subscribed once every command is done (by default: tear down and exit)")
		verbose  = flag.Bool("v", false, "log the SDK's reconnections")
	)
	flag.Parse()
	cmds, err := readCommands(*cmdsPath)
	if err != nil {
		return err
	}
	client, err := api.NewClient(api.Config{Address: *address})
	if err != nil {
		return err
	}
	id := ""
	if *state != "" {
		if b, err := os.ReadFile(*state); err == nil {
			id = strings.TrimSpace(string(b))
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading --state: %w", err)
		}
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelInfo
	}
	q := newQueue(cmds, api.Resources{CPU: *cpu, MemoryMB: *mem}, *retries, *state, *keep)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- framework.Run(ctx, framework.Config{
			Client: client, Name: *name, Role: *role, ID: id, FailoverTimeout: *failover,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		}, q)
	}()
	select {
	case <-q.done:
		cancel()
		if err := <-errc; err != nil {
			fmt.Fprintln(os.Stderr, "workqueue:", err)
		}
	case err := <-errc:
		if err != nil {
			return err
		}
		return errors.New("stopped before every command was done")
	}
	finished, failed := q.summary()
	fmt.Printf("done: %d finished, %d failed\n", finished, failed)
	if failed > 0 {
		return fmt.Errorf("%d commands failed", failed)
	}
	return nil
}

// readCommands reads the command list.
func readCommands(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("--commands is required")
	}
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading --commands: %w", err)
	}
	var cmds []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("%s holds no command", path)
	}
	return cmds, nil
}
