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
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// Config configures an Agent. Start from DefaultConfig and change what you
// need: New validates the config (Validate) and uses it as it is, so a zero
// field means what its comment says, never "the default".
type Config struct {
	// Servers are the servers' HTTP addresses (host:port or URLs); the
	// agent fails over between them (default: 127.0.0.1:4646).
	Servers []string
	// DataDir holds the node ID, the local allocation state and the
	// allocation directories (task logs). Required.
	DataDir string
	// Name is the node's name ("" = the host name).
	Name string
	// Labels are user-defined node labels for job constraints.
	Labels map[string]string
	// CPU (millicores) and MemoryMB override the fingerprinted capacity;
	// 0 means fingerprint.
	CPU      int64
	MemoryMB int64
	// HTTPAddr is where the agent's own API listens (default
	// 127.0.0.1:0, an ephemeral port).
	HTTPAddr string
	// Logger receives structured logs (default: discarded).
	Logger *slog.Logger
	// Registerer receives the agent's metrics (nil = a registry of its
	// own, served by the agent's API).
	Registerer prometheus.Registerer
	// ShimCommand overrides the argv of the exec driver's task shim
	// (nil = this binary as "gantry task-shim").
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

	// Drivers replaces the built-in drivers, exec, mock and docker (nil =
	// those); tests and the simulator use it.
	Drivers []driver.Driver
	// DockerEndpoint is the Docker daemon of the docker driver ("" =
	// $DOCKER_HOST, else unix:///var/run/docker.sock).
	DockerEndpoint string
	// DockerHostBinds lets docker jobs bind-mount absolute host paths
	// (default off: named volumes and paths in the allocation directory).
	DockerHostBinds bool
	// DynamicPorts is the range the scheduler picks this node's dynamic
	// host ports from, "MIN-MAX" (default 20000-32000, Nomad's); it is
	// advertised as the node attribute network.dynamic_ports.
	DynamicPorts string
	// HostVolumes are directories of this node that jobs may claim by
	// name (volumes.go); advertised as node attributes host_volume.<name>.
	HostVolumes map[string]HostVolume
	// PortIP is the address tasks are told their ports are reachable at
	// (GANTRY_IP_<LABEL>; "" = the host of HTTPAddr, or 127.0.0.1 when
	// that is a wildcard address).
	PortIP string
	// DNSAddr is where the agent answers DNS for service discovery
	// (host:port, UDP and TCP; "" = off, the default). Tasks get it as
	// GANTRY_DNS_ADDR (dns.go).
	DNSAddr string
	// DriverCleanupInterval is how often drivers remove what no allocation
	// of this agent owns, e.g. containers left by a crash (default 1m; a
	// pass also runs at start).
	DriverCleanupInterval time.Duration
	// KillTimeout is the grace between SIGTERM and SIGKILL when a task is
	// stopped (default 5s; 0 kills at once).
	KillTimeout time.Duration
	// UpdateWindow coalesces allocation status updates (default 50ms; 0
	// sends each at once).
	UpdateWindow time.Duration
	// WatchWait is how long one allocation watch stream stays open before
	// the agent opens the next (default 30s; 0 = the server's limit).
	WatchWait time.Duration
	// HTTPClient talks to the servers (nil = a client without a global
	// timeout, since blocking queries are long, with TLS when TLS is on;
	// a client set here is used as it is).
	HTTPClient *http.Client
	// TLS turns on mutual TLS once its files are set (default off): the
	// agent dials the servers over https checking their certificates,
	// and serves its own API over TLS, task logs to servers only. The
	// certificate must name agent.<region>.gantry (tls.go).
	TLS tlsutil.Config
	// Token is the ACL token secret the agent presents to the servers;
	// with ACLs on it needs node write (docs/operations.md). Empty: none.
	Token string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultConfig returns a config for an agent of a local server: every
// field that has a default holds it. DataDir is left to the caller.
func DefaultConfig() Config {
	return Config{
		Servers:      []string{"127.0.0.1:4646"},
		HTTPAddr:     "127.0.0.1:0",
		Logger:       slog.New(slog.DiscardHandler),
		KillTimeout:  5 * time.Second,
		UpdateWindow: 50 * time.Millisecond,
		WatchWait:    30 * time.Second,
		Now:          time.Now,

		DriverCleanupInterval: time.Minute,
		DynamicPorts:          structs.PortRange{Min: structs.DefaultMinDynamicPort, Max: structs.DefaultMaxDynamicPort}.String(),

		DiskMinFreeMB:     DefaultDiskMinFreeMB,
		DiskCheckInterval: 30 * time.Second,
		DiskFree:          statfsFree,
		TLS:               tlsutil.DefaultConfig(),
	}
}

var labelKeyRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_./-]*$`)

// Validate reports every bad field, one clear error each, naming the field
// in snake case. It changes nothing: defaults come from DefaultConfig only.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Servers) == 0 {
		bad("servers", "at least one server address is required")
	}
	if strings.TrimSpace(c.Token) != c.Token || strings.ContainsAny(c.Token, "\r\n") {
		bad("token", "must not hold white space at its ends or line breaks")
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
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http_addr", "%q is not host:port: %v", c.HTTPAddr, err)
	}
	if c.Logger == nil {
		bad("logger", "is required (DefaultConfig's discards)")
	}
	if c.KillTimeout < 0 {
		bad("kill_timeout", "must be >= 0 (got %s)", c.KillTimeout)
	}
	if c.UpdateWindow < 0 {
		bad("update_window", "must be >= 0 (got %s)", c.UpdateWindow)
	}
	if c.WatchWait < 0 {
		bad("watch_wait", "must be >= 0 (got %s)", c.WatchWait)
	}
	if _, err := structs.ParsePortRange(c.DynamicPorts); err != nil {
		bad("dynamic_ports", "%v", err)
	}
	errs = append(errs, checkHostVolumes(c.HostVolumes)...)
	if _, _, err := net.SplitHostPort(c.DNSAddr); c.DNSAddr != "" && err != nil {
		bad("dns_addr", "%q is not host:port: %v", c.DNSAddr, err)
	}
	if c.PortIP != "" && net.ParseIP(c.PortIP) == nil {
		bad("port_ip", "%q is not an IP address", c.PortIP)
	}
	if c.DriverCleanupInterval <= 0 {
		bad("driver_cleanup_interval", "must be > 0 (got %s)", c.DriverCleanupInterval)
	}
	if c.Now == nil {
		bad("now", "is required (DefaultConfig's is time.Now)")
	}
	if c.DiskCheckInterval <= 0 && c.DiskMinFreeMB >= 0 {
		bad("disk_check_interval", "must be > 0 while the disk check is on (got %s)", c.DiskCheckInterval)
	}
	if c.DiskFree == nil {
		bad("disk_free", "is required (DefaultConfig's reads statfs)")
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
	if err := c.TLS.Validate(true); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
