// Package docker is gantry's docker task driver: it runs a task as a
// container through the Docker Engine API (github.com/moby/moby/client,
// with API version negotiation, so daemons from API 1.40 on are spoken to).
//
// A container is named gantry-<alloc-id> and labelled with the allocation
// and the node, so a restarted agent re-attaches to it from the saved
// handle and never creates a second one for the same task, and so the agent
// can remove the containers of allocations it no longer runs. The
// container's output is read from the daemon's log stream and written into
// the same rotated task logs (package tasklog) the exec driver's shim
// writes, so the agent serves both alike.
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// Options configure the docker driver.
type Options struct {
	// Endpoint is the daemon's address, e.g. unix:///var/run/docker.sock
	// or tcp://10.0.0.5:2375 ("" = $DOCKER_HOST, else the local socket).
	Endpoint string
	// NodeID labels every container; Cleanup only considers containers of
	// this node, so agents sharing a daemon leave each other's alone.
	NodeID string
	// AllowHostBinds lets jobs bind-mount absolute host paths. Off, only
	// named volumes and paths inside the allocation directory are allowed:
	// a job must not read the host's files unless the operator says so.
	AllowHostBinds bool
	// PullTimeout bounds an image pull (default 5m).
	PullTimeout time.Duration
	// CallTimeout bounds every other API call (default 30s).
	CallTimeout time.Duration
	// StopWait bounds the wait for a container to end after SIGKILL
	// (default 30s).
	StopWait time.Duration
	// LogCursorInterval is how often a task's position in the container's
	// log is saved while output flows (default 1s): after an agent crash,
	// at most this much output is written to the task's log twice.
	LogCursorInterval time.Duration
	Logger            *slog.Logger
}

// Driver runs tasks as Docker containers.
type Driver struct {
	opts Options
	cli  *client.Client
	log  *slog.Logger

	// watchers counts the tasks' log watchers, each holding one of the
	// client's connections while it follows a container.
	watchers sync.WaitGroup
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Fingerprinter = (*Driver)(nil)
	_ driver.Cleaner       = (*Driver)(nil)
)

// New returns the docker driver. It does not contact the daemon: a daemon
// that is down now may be up when a task arrives (Fingerprint tells).
func New(opts Options) (*Driver, error) {
	if opts.NodeID == "" {
		return nil, errors.New("docker driver: node ID is required (it labels the containers)")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PullTimeout <= 0 {
		opts.PullTimeout = 5 * time.Minute
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.StopWait <= 0 {
		opts.StopWait = 30 * time.Second
	}
	if opts.LogCursorInterval <= 0 {
		opts.LogCursorInterval = time.Second
	}
	// The client negotiates the API version on its first request (the
	// highest both sides speak); FromEnv honours DOCKER_HOST, DOCKER_API_VERSION
	// and the DOCKER_TLS settings.
	copts := []client.Opt{client.FromEnv}
	if opts.Endpoint != "" {
		copts = append(copts, client.WithHost(opts.Endpoint))
	}
	cli, err := client.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker driver: endpoint %q: %w", opts.Endpoint, err)
	}
	return &Driver{opts: opts, cli: cli, log: opts.Logger}, nil
}

// closeWait bounds how long Close waits for the tasks' watchers.
const closeWait = 5 * time.Second

// Close releases the client's connections. Call it once every task has
// ended or been detached: it waits (up to closeWait) for their watchers to
// give their connections back, so that none is returned to the pool, and
// kept open, after the pool was emptied.
func (d *Driver) Close() error {
	done := make(chan struct{})
	go func() { d.watchers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		d.log.Warn("docker driver: closing while tasks still follow their containers")
	}
	return d.cli.Close()
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return "docker" }

// Validate implements driver.Driver.
func (d *Driver) Validate(config map[string]any) []structs.FieldError { return schema.Validate(config) }

// Endpoint is the daemon address the client uses.
func (d *Driver) Endpoint() string { return d.cli.DaemonHost() }

// Fingerprint implements driver.Fingerprinter: driver.docker = true and
// the daemon's version when it answers, nothing when it does not.
func (d *Driver) Fingerprint(ctx context.Context) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, d.opts.CallTimeout)
	defer cancel()
	v, err := d.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		d.log.Info("docker driver: no Docker daemon answers; docker tasks will not be placed here",
			"endpoint", d.Endpoint(), "err", err)
		return nil
	}
	d.log.Info("docker driver: Docker found", "endpoint", d.Endpoint(), "version", v.Version,
		"api_version", d.cli.ClientVersion())
	return map[string]string{
		"driver.docker":             "true",
		"driver.docker.version":     v.Version,
		"driver.docker.api_version": d.cli.ClientVersion(),
	}
}

// Cleanup implements driver.Cleaner: it removes (force, with anonymous
// volumes) every container labelled with this node whose allocation owns
// does not report as live. Named volumes are kept: they hold data meant to
// outlive containers.
func (d *Driver) Cleanup(ctx context.Context, owns func(allocID string) bool) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.CallTimeout)
	defer cancel()
	list, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", LabelNode+"="+d.opts.NodeID)})
	if err != nil {
		return 0, fmt.Errorf("docker driver: listing containers of node %s: %w", d.opts.NodeID, err)
	}
	removed := 0
	var errs []error
	for _, c := range list.Items {
		alloc := c.Labels[LabelAlloc]
		if alloc != "" && owns(alloc) {
			continue
		}
		_, err := d.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %s of alloc %s: %w", short(c.ID), alloc, err))
			continue
		}
		removed++
		d.log.Info("docker driver: removed a container no allocation owns", "container", short(c.ID),
			"alloc", alloc, "state", c.State)
	}
	return removed, errors.Join(errs...)
}

// ContainerName is the name of an allocation's container.
func ContainerName(allocID string) string { return "gantry-" + allocID }

// taskContainerName is the container of one task of an allocation: the
// main task's is ContainerName (as before task groups, so running
// containers are found again), an extra task's adds its name.
func taskContainerName(cfg *driver.TaskConfig) string {
	if cfg.TaskName == "" {
		return ContainerName(cfg.AllocID)
	}
	return ContainerName(cfg.AllocID) + "-" + cfg.TaskName
}

// Files the driver keeps in the allocation directory.
const (
	exitFile   = "docker-exit.json" // the container's end, written before it is removed
	cursorFile = "docker-logs.pos"  // how far its log stream was copied
)

// callCtx bounds one API call.
func (d *Driver) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.opts.CallTimeout)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// taskEnv is the job's environment and the GANTRY_* variables. The
// agent's own environment is not passed: the image brings its own.
func taskEnv(cfg *driver.TaskConfig) []string {
	env := make([]string, 0, len(cfg.Env)+3)
	for _, k := range sortedKeys(cfg.Env) {
		env = append(env, k+"="+cfg.Env[k])
	}
	return append(env, "GANTRY_ALLOC_ID="+cfg.AllocID, "GANTRY_JOB="+cfg.JobID,
		"GANTRY_ALLOC_INDEX="+strconv.Itoa(cfg.AllocIndex))
}

// clearRun removes the records of a previous run in the allocation
// directory (a restart in place reuses it).
func clearRun(allocDir string) error {
	for _, f := range []string{exitFile, cursorFile} {
		if err := os.Remove(filepath.Join(allocDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clearing %s: %w", f, err)
		}
	}
	return nil
}
