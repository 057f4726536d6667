package agent

import (
	"context"
	"io"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/docker"
	"github.com/gantry-project/gantry/internal/structs"
)

// builtinDrivers are the drivers an agent runs when Config.Drivers is nil:
// exec, mock and docker. The returned closers are the agent's to close at
// Shutdown.
func builtinDrivers(cfg Config, a *Agent) ([]driver.Driver, []io.Closer, error) {
	exec, err := driver.NewExec(driver.ExecOptions{ShimCommand: cfg.ShimCommand, Logger: a.log,
		Lifeline: cfg.TaskLifeline, KillTimeout: cfg.KillTimeout})
	if err != nil {
		return nil, nil, err
	}
	dock, err := docker.New(docker.Options{Endpoint: cfg.DockerEndpoint, NodeID: a.nodeID,
		AllowHostBinds: cfg.DockerHostBinds, Logger: a.log})
	if err != nil {
		return nil, nil, err
	}
	return []driver.Driver{exec, driver.NewMock(nil), dock}, []io.Closer{dock}, nil
}

// fingerprintTimeout bounds each driver's fingerprint at start.
const fingerprintTimeout = 10 * time.Second

// fingerprintDrivers adds each driver's attributes to attrs: those of the
// drivers that fingerprint the machine (docker: driver.docker when the
// daemon answers, driver.docker.version), and driver.<name> = true for the
// others, which always work. The scheduler places a job only on nodes with
// its driver's attribute (structs.Node.HasDriver).
func fingerprintDrivers(drivers []driver.Driver, attrs map[string]string) {
	for _, d := range drivers {
		f, ok := d.(driver.Fingerprinter)
		if !ok {
			attrs[structs.DriverAttrPrefix+d.Name()] = "true"
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), fingerprintTimeout)
		for k, v := range f.Fingerprint(ctx) {
			attrs[k] = v
		}
		cancel()
	}
}

// cleanupLoop has the drivers remove what they made for allocations this
// agent no longer runs (docker: containers labelled with this node). The
// first pass runs after restore, so re-attached tasks are owned by then.
func (a *Agent) cleanupLoop(ctx context.Context) {
	var cleaners []driver.Cleaner
	for _, d := range a.drivers {
		if c, ok := d.(driver.Cleaner); ok {
			cleaners = append(cleaners, c)
		}
	}
	if len(cleaners) == 0 {
		return
	}
	t := time.NewTicker(a.cfg.DriverCleanupInterval)
	defer t.Stop()
	for {
		for _, c := range cleaners {
			if n, err := c.Cleanup(ctx, a.ownsAlloc); err != nil && ctx.Err() == nil {
				a.log.Warn("driver cleanup", "err", err)
			} else if n > 0 {
				a.log.Info("driver cleanup removed resources no allocation owns", "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ownsAlloc reports whether a runner of this agent still runs (or may
// restart) the allocation's task.
func (a *Agent) ownsAlloc(allocID string) bool {
	a.mu.Lock()
	r, ok := a.runners[allocID]
	a.mu.Unlock()
	return ok && !r.finished()
}
