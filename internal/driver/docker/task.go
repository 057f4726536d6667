package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/durable"
)

// handleState is the docker driver's part of a driver.Handle.
type handleState struct {
	ContainerID string `json:"container_id"`
	Name        string `json:"name"`
	Image       string `json:"image"`
	// Ports are the bindings Docker made, read back after the start.
	Ports []driver.PortMapping `json:"ports,omitempty"`
}

// exitRecord is the container's end, saved in the allocation directory
// before the container is removed, so an agent restarted in between still
// learns it.
type exitRecord struct {
	ContainerID string    `json:"container_id"`
	ExitCode    int       `json:"exit_code"`
	OOMKilled   bool      `json:"oom_killed,omitempty"`
	Error       string    `json:"error,omitempty"`
	FinishedAt  time.Time `json:"finished_at"`
}

// Start implements driver.Driver: it makes sure the image is there,
// creates the allocation's container and starts it.
func (d *Driver) Start(cfg *driver.TaskConfig) (driver.Task, error) {
	s, errs := parseSpec(cfg.Config)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: invalid docker config: %w", driver.ErrStartFailed, errs[0])
	}
	if err := clearRun(cfg.AllocDir); err != nil {
		return nil, fmt.Errorf("alloc %s: %w", cfg.AllocID, err)
	}
	if err := d.ensureImage(s); err != nil {
		return nil, err
	}
	if err := d.removeStale(cfg.AllocID, taskContainerName(cfg)); err != nil {
		return nil, err
	}
	opts, err := d.createOptions(cfg, s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", driver.ErrStartFailed, err)
	}
	ctx, cancel := d.callCtx()
	defer cancel()
	created, err := d.cli.ContainerCreate(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: creating container for image %q: %w", driver.ErrStartFailed, s.Image, err)
	}
	for _, w := range created.Warnings {
		d.log.Warn("docker driver: daemon warning", "alloc", cfg.AllocID, "warning", w)
	}
	id := created.ID
	logs, err := openLogs(d.cli, cfg, id, d.opts.LogCursorInterval, d.log)
	if err != nil {
		d.remove(id)
		return nil, fmt.Errorf("alloc %s: %w", cfg.AllocID, err)
	}
	if _, err := d.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		logs.close()
		d.remove(id)
		// The daemon's error says what the task got wrong, e.g.
		// `exec: "nosuch": executable file not found in $PATH`.
		return nil, fmt.Errorf("%w: starting container of image %q: %w", driver.ErrStartFailed, s.Image, err)
	}
	st := handleState{ContainerID: id, Name: opts.Name, Image: s.Image}
	h := &driver.Handle{Driver: d.Name(), AllocID: cfg.AllocID, AllocDir: cfg.AllocDir, StartedAt: time.Now().UnixNano()}
	if insp, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err == nil {
		h.PID = insp.Container.State.Pid
		if t, err := time.Parse(time.RFC3339Nano, insp.Container.State.StartedAt); err == nil {
			h.StartedAt = t.UnixNano()
		}
		st.Ports = boundPorts(insp.Container.NetworkSettings)
	}
	h.State, _ = json.Marshal(st)
	t := d.newTask(h, st, s, logs)
	d.watchers.Add(1)
	go func() { defer d.watchers.Done(); t.watch() }()
	return t, nil
}

// removeStale removes a container an earlier run of the allocation left
// (its exit was recorded but the removal did not happen). A running one is
// never touched: starting a second container for a task is refused.
func (d *Driver) removeStale(allocID, name string) error {
	ctx, cancel := d.callCtx()
	defer cancel()
	insp, err := d.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("docker daemon at %s: inspecting %s: %w", d.Endpoint(), name, err)
	case insp.Container.State != nil && (insp.Container.State.Running || insp.Container.State.Restarting):
		return fmt.Errorf("container %s (%s) already runs for alloc %s; not starting a second one", name, short(insp.Container.ID), allocID)
	}
	d.remove(insp.Container.ID)
	return nil
}

// remove removes a container and its anonymous volumes.
func (d *Driver) remove(id string) {
	ctx, cancel := d.callCtx()
	defer cancel()
	_, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		d.log.Warn("docker driver: removing container; the next cleanup retries", "container", short(id), "err", err)
	}
}

// Recover implements driver.Driver: it re-attaches to the container of the
// saved handle. It never creates one: a container that is gone reports the
// exit it recorded, or a loss.
func (d *Driver) Recover(h *driver.Handle, cfg *driver.TaskConfig) (driver.Task, error) {
	if h == nil || h.Driver != d.Name() {
		drv := ""
		if h != nil {
			drv = h.Driver
		}
		return nil, fmt.Errorf("docker driver: cannot recover a handle of driver %q", drv)
	}
	var st handleState
	if err := json.Unmarshal(h.State, &st); err != nil || st.ContainerID == "" {
		return nil, fmt.Errorf("alloc %s: docker handle has no container ID (state %s)", h.AllocID, string(h.State))
	}
	s, errs := parseSpec(cfg.Config)
	if len(errs) > 0 {
		// The job was accepted when the task started; read what can be
		// read and stop it with the defaults.
		s = &spec{KillSignal: "SIGTERM"}
	}
	ctx, cancel := d.callCtx()
	defer cancel()
	insp, err := d.cli.ContainerInspect(ctx, st.ContainerID, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		t := d.newTask(h, st, s, nil)
		t.finish(recordedExit(cfg.AllocDir, st.ContainerID))
		return t, nil
	case err != nil:
		// The daemon is down or slow: watch anyway; the watcher retries
		// until it answers, and the task is not declared lost for it.
		d.log.Warn("docker driver: re-attaching while the daemon does not answer; retrying", "alloc", h.AllocID, "err", err)
	case insp.Container.Config != nil && insp.Container.Config.Labels[LabelAlloc] != h.AllocID:
		return nil, fmt.Errorf("alloc %s: container %s belongs to alloc %q", h.AllocID, short(st.ContainerID), insp.Container.Config.Labels[LabelAlloc])
	}
	logs, err := openLogs(d.cli, cfg, st.ContainerID, d.opts.LogCursorInterval, d.log)
	if err != nil {
		return nil, fmt.Errorf("alloc %s: %w", h.AllocID, err)
	}
	t := d.newTask(h, st, s, logs)
	d.watchers.Add(1)
	go func() { defer d.watchers.Done(); t.watch() }()
	return t, nil
}

// recordedExit reads the exit a watcher saved before removing the
// container; without one the task is lost.
func recordedExit(allocDir, containerID string) driver.ExitResult {
	b, err := os.ReadFile(filepath.Join(allocDir, exitFile))
	var rec exitRecord
	if err == nil && json.Unmarshal(b, &rec) == nil && rec.ContainerID == containerID {
		return rec.result()
	}
	return driver.ExitResult{ExitCode: -1, FinishedAt: time.Now(),
		Err: fmt.Errorf("task lost: container %s is gone and left no exit code (removed outside gantry?)", short(containerID))}
}

func (r exitRecord) result() driver.ExitResult {
	res := driver.ExitResult{ExitCode: r.ExitCode, OOMKilled: r.OOMKilled, FinishedAt: r.FinishedAt}
	if r.Error != "" {
		res.Err = errors.New(r.Error)
	}
	return res
}

// task watches one container.
type task struct {
	d      *Driver
	h      *driver.Handle
	st     handleState
	spec   *spec
	logs   *logCopier // nil once the task ended
	exited chan struct{}
	ctx    context.Context // cancelled by Detach
	cancel context.CancelFunc
	wg     sync.WaitGroup // the watcher

	mu     sync.Mutex
	result driver.ExitResult // guarded by mu
	done   bool              // guarded by mu
}

var _ driver.Task = (*task)(nil)

func (d *Driver) newTask(h *driver.Handle, st handleState, s *spec, logs *logCopier) *task {
	ctx, cancel := context.WithCancel(context.Background())
	t := &task{d: d, h: h, st: st, spec: s, logs: logs, exited: make(chan struct{}), ctx: ctx, cancel: cancel}
	if logs != nil {
		t.wg.Add(1)
	}
	return t
}

func (t *task) Handle() *driver.Handle  { return t.h }
func (t *task) Exited() <-chan struct{} { return t.exited }

// Ports are the host ports Docker bound for the container.
func (t *task) Ports() []driver.PortMapping { return t.st.Ports }

func (t *task) Result() driver.ExitResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result
}

// Detach implements driver.Task: the watcher stops (saving its log
// position) and the container runs on. It returns once the watcher is
// gone, so a new agent may open the same logs at once.
func (t *task) Detach() {
	t.cancel()
	t.wg.Wait()
}

// Stop implements driver.Task: kill_signal, then SIGKILL after the job's
// kill_timeout (or grace, the agent's, when the job sets none).
func (t *task) Stop(grace time.Duration) error {
	if t.spec.KillTimeout > 0 {
		grace = t.spec.KillTimeout
	}
	select {
	case <-t.exited:
		return nil
	default:
	}
	if err := t.kill(t.spec.KillSignal); err != nil {
		t.d.log.Warn("docker driver: stop signal not delivered; killing", "container", short(t.st.ContainerID), "err", err)
		grace = 0
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-t.exited:
		return nil
	case <-timer.C:
	}
	if err := t.kill("SIGKILL"); err != nil {
		return err
	}
	wait := time.NewTimer(t.d.opts.StopWait)
	defer wait.Stop()
	select {
	case <-t.exited:
		return nil
	case <-wait.C:
		return fmt.Errorf("container %s did not end within %s of SIGKILL", short(t.st.ContainerID), t.d.opts.StopWait)
	}
}

// kill signals the container; one that is not running is not an error
// (it is ending, and the watcher will see it).
func (t *task) kill(sig string) error {
	ctx, cancel := t.d.callCtx()
	defer cancel()
	_, err := t.d.cli.ContainerKill(ctx, t.st.ContainerID, client.ContainerKillOptions{Signal: sig})
	if err == nil || cerrdefs.IsConflict(err) || cerrdefs.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("sending %s to container %s: %w", sig, short(t.st.ContainerID), err)
}

// watch follows the container's log until the container stops, then
// records its end. A broken stream while the container still runs (the
// daemon restarted) is resumed from the cursor.
func (t *task) watch() {
	defer t.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		err := t.logs.copyStream(t.ctx, true)
		if t.ctx.Err() != nil {
			t.logs.close()
			return
		}
		ctx, cancel := t.d.callCtx()
		insp, ierr := t.d.cli.ContainerInspect(ctx, t.st.ContainerID, client.ContainerInspectOptions{})
		cancel()
		switch {
		case cerrdefs.IsNotFound(ierr):
			t.logs.close()
			t.finish(driver.ExitResult{ExitCode: -1, FinishedAt: time.Now(),
				Err: fmt.Errorf("task lost: container %s was removed outside gantry before its exit was seen", short(t.st.ContainerID))})
			return
		case ierr == nil && !running(insp.Container.State):
			// Whatever the follower had not read when the stream ended.
			if err := t.logs.copyStream(t.ctx, false); err != nil && t.ctx.Err() == nil {
				t.d.log.Warn("docker driver: draining the container's log", "container", short(t.st.ContainerID), "err", err)
			}
			if t.ctx.Err() != nil {
				t.logs.close()
				return
			}
			t.logs.close()
			t.exit(insp.Container.State)
			return
		}
		if err == nil {
			err = ierr
		}
		t.d.log.Warn("docker driver: lost the container's log stream; resuming", "container", short(t.st.ContainerID), "err", err, "retry_in", backoff)
		select {
		case <-t.ctx.Done():
			t.logs.close()
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func running(s *container.State) bool {
	return s != nil && (s.Running || s.Restarting || s.Paused)
}

// exit records a stopped container's end, removes the container and ends
// the task. The record is written first: an agent that dies before the
// removal re-attaches and finds the container; one that dies after finds
// the record.
func (t *task) exit(s *container.State) {
	rec := exitRecord{ContainerID: t.st.ContainerID, FinishedAt: time.Now()}
	if s != nil {
		rec.ExitCode, rec.OOMKilled, rec.Error = s.ExitCode, s.OOMKilled, s.Error
		if ft, err := time.Parse(time.RFC3339Nano, s.FinishedAt); err == nil && ft.Year() > 1 {
			rec.FinishedAt = ft
		}
	}
	b, _ := json.Marshal(rec)
	if err := durable.WriteFile(filepath.Join(t.h.AllocDir, exitFile), b, 0o644); err != nil {
		t.d.log.Warn("docker driver: saving the container's exit; keeping the container", "container", short(t.st.ContainerID), "err", err)
	} else {
		t.d.remove(t.st.ContainerID)
	}
	res := rec.result()
	if rec.Error != "" {
		// The daemon's error (e.g. a mount that vanished) is the reason,
		// but the exit code is real: not a loss.
		res.Err = nil
		t.d.log.Warn("docker driver: container ended with a daemon error", "container", short(t.st.ContainerID), "error", rec.Error)
	}
	t.finish(res)
}

func (t *task) finish(res driver.ExitResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	t.done, t.result = true, res
	close(t.exited)
}

// boundPorts reads the host bindings Docker made.
func boundPorts(ns *container.NetworkSettings) []driver.PortMapping {
	if ns == nil {
		return nil
	}
	var out []driver.PortMapping
	for port, binds := range ns.Ports {
		for _, b := range binds {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil {
				continue
			}
			m := driver.PortMapping{HostPort: hp, ContainerPort: int(port.Num()), Protocol: string(port.Proto())}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				m.HostIP = b.HostIP.String()
			}
			out = append(out, m)
		}
	}
	return out
}
