package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"

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
}

func (f *execFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.run, "run-tasks", false, "run jobs on the peer cluster: store and own jobs, place and run tasks (needs --cluster and --http-addr)")
	fs.StringSliceVar(&f.drivers, "drivers", []string{"exec", "mock"}, "task drivers this peer runs (exec, mock)")
	fs.Int64Var(&f.cpu, "cpu", 4000, "CPU (MHz) this peer offers to tasks")
	fs.Int64Var(&f.memoryMB, "memory-mb", 4096, "memory (MiB) this peer offers to tasks")
	fs.StringSliceVar(&f.labels, "label", nil, "node label key=value for job constraints (repeatable)")
}

// start attaches the execution layer to p, or returns nil when off. The
// returned lifeline keeps exec tasks alive while this process lives.
func (f *execFlags) start(p *peer.Peer, httpAddr, dataDir, password string, logger *log.Logger) (*peerexec.Service, error) {
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
	if host, err := os.Hostname(); err == nil {
		node.Name = host
	}
	var drivers []driver.Driver
	for _, name := range f.drivers {
		switch name {
		case "mock":
			drivers = append(drivers, driver.NewMock(nil))
		case "exec":
			// a peer does not re-attach to tasks after a restart: its
			// tasks die with it (the lifeline) and owners place them again
			lifeline, w, err := os.Pipe()
			if err != nil {
				return nil, fmt.Errorf("task lifeline: %w", err)
			}
			keepLifeline = append(keepLifeline, w)
			d, err := driver.NewExec(driver.ExecOptions{Lifeline: lifeline})
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
		Drivers: drivers, Password: password, Logger: logger})
}

// keepLifeline holds the write ends of the exec tasks' lifelines for the
// life of the process.
var keepLifeline []*os.File
