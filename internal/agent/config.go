package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantry-project/gantry/internal/driver"
)

// Config configures an Agent. Zero values take the defaults noted.
type Config struct {
	// Servers are the servers' HTTP addresses (host:port or URLs); the
	// agent fails over between them.
	Servers []string
	// DataDir holds the node ID, the local allocation state and the
	// allocation directories (task logs). Required.
	DataDir string
	// Name is the node's name (default: the host name).
	Name string
	// Labels are user-defined node labels for job constraints.
	Labels map[string]string
	// CPU (millicores) and MemoryMB override the fingerprinted capacity;
	// 0 means fingerprint.
	CPU      int64
	MemoryMB int64
	// HTTPAddr is where the agent's own API listens (default
	// 127.0.0.1:0, an ephemeral port).
	HTTPAddr   string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// ShimCommand overrides the argv of the exec driver's task shim
	// (default: this binary as "gantry task-shim").
	ShimCommand []string
	// TaskLifeline makes exec tasks die with this process (gantry dev):
	// see driver.ExecOptions.Lifeline. Nil (a real agent) lets tasks
	// survive the agent's restarts.
	TaskLifeline *os.File

	// DiskMinFreeMB: while the file system of DataDir has less free space
	// than this, the node reports itself ineligible for new placements
	// (default 100 MiB; negative turns the check off).
	DiskMinFreeMB int64
	// DiskCheckInterval is how often free space is checked (default 30s).
	DiskCheckInterval time.Duration
	// DiskFree returns the bytes the agent may still use on the file
	// system holding path (default: statfs); tests inject a full disk.
	DiskFree func(path string) (uint64, error)

	// Drivers replaces the built-in drivers (exec and mock); tests and the
	// simulator use it.
	Drivers []driver.Driver
	// KillTimeout is the grace between SIGTERM and SIGKILL when a task is
	// stopped (default 5s).
	KillTimeout time.Duration
	// UpdateWindow coalesces allocation status updates (default 50ms).
	UpdateWindow time.Duration
	// WatchWait is how long one allocation watch stream stays open before
	// the agent opens the next (default 30s).
	WatchWait time.Duration
	// HTTPClient talks to the servers (default: no global timeout, since
	// blocking queries are long).
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

var labelKeyRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_./-]*$`)

// validate checks every field and reports each bad one.
func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Servers) == 0 {
		bad("servers", "at least one server address is required")
	}
	for i, s := range c.Servers {
		if strings.TrimSpace(s) == "" {
			bad(fmt.Sprintf("servers[%d]", i), "empty address")
		} else if strings.Contains(s, ",") {
			bad(fmt.Sprintf("servers[%d]", i), "%q holds a comma; pass each server as its own entry", s)
		}
	}
	if c.DataDir == "" {
		bad("data_dir", "is required (node ID, allocation state and task logs live there)")
	}
	if c.Name != "" && !labelKeyRE.MatchString(c.Name) {
		bad("name", "%q must start with a letter or digit and contain only letters, digits, '_', '.', '/' and '-'", c.Name)
	}
	for k, v := range c.Labels {
		if !labelKeyRE.MatchString(k) {
			bad("labels", "key %q must start with a letter or digit and contain only letters, digits, '_', '.', '/' and '-'", k)
		}
		if strings.ContainsAny(v, "\x00\n") {
			bad("labels", "value of %q must not contain NUL or newline", k)
		}
	}
	if c.CPU < 0 {
		bad("cpu", "must be >= 0 millicores (got %d)", c.CPU)
	}
	if c.MemoryMB < 0 {
		bad("memory_mb", "must be >= 0 MiB (got %d)", c.MemoryMB)
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("http_addr", "%q is not host:port: %v", c.HTTPAddr, err)
		}
	}
	if c.KillTimeout < 0 || c.UpdateWindow < 0 || c.WatchWait < 0 || c.DiskCheckInterval < 0 {
		bad("timeouts", "kill_timeout, update_window, watch_wait and disk_check_interval must be >= 0")
	}
	seen := map[string]bool{}
	for i, d := range c.Drivers {
		if d == nil {
			bad(fmt.Sprintf("drivers[%d]", i), "is nil")
			continue
		}
		if seen[d.Name()] {
			bad(fmt.Sprintf("drivers[%d]", i), "duplicate driver %q", d.Name())
		}
		seen[d.Name()] = true
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:0"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.KillTimeout == 0 {
		c.KillTimeout = 5 * time.Second
	}
	if c.UpdateWindow == 0 {
		c.UpdateWindow = 50 * time.Millisecond
	}
	if c.WatchWait == 0 {
		c.WatchWait = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DiskMinFreeMB == 0 {
		c.DiskMinFreeMB = DefaultDiskMinFreeMB
	}
	if c.DiskCheckInterval == 0 {
		c.DiskCheckInterval = 30 * time.Second
	}
	if c.DiskFree == nil {
		c.DiskFree = statfsFree
	}
}
