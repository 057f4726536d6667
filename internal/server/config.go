package server

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// Config configures a Server. Start from DefaultConfig and change what you
// need: New validates the config (Validate) and uses it as it is, so a zero
// field is a zero value, never a request for a default.
type Config struct {
	// DataDir holds the Raft log, stable store and snapshots.
	DataDir string
	// HTTPAddr is where the API listens (host:port; port 0 picks one, see
	// Server.HTTPAddr).
	HTTPAddr string
	// RaftAddr is where Raft listens for other servers; it must be an
	// address other servers can reach (not 0.0.0.0).
	RaftAddr string
	// AdvertiseHTTPAddr is the API address other servers use to forward
	// to this one (host:port). Empty = the address the API listens on,
	// which must then not be 0.0.0.0 in a multi-server cluster.
	AdvertiseHTTPAddr string
	// BootstrapExpect is the number of servers to wait for before
	// bootstrapping a new cluster: 0 or 1 bootstraps a single server at
	// once (unless Join is set and BootstrapExpect is 0: then this server
	// only joins an existing cluster). All N servers bootstrap with the
	// identical configuration once each has seen the same N.
	BootstrapExpect int
	// Join lists API addresses (host:port) of other servers to discover
	// before bootstrap, or to join an existing cluster through.
	Join []string
	// NodeName names this server in logs and the Raft configuration
	// (default: the host name).
	NodeName string
	// HeartbeatTTL is the time within which agents must heartbeat
	// (default 10s).
	HeartbeatTTL time.Duration
	// HeartbeatGrace is added to every node's first TTL after this server
	// becomes leader, so a leader change never marks live nodes down.
	// 0 = HeartbeatTTL (the default).
	HeartbeatGrace time.Duration
	// ReconcileInterval is how often the leader enqueues every job (a
	// safety net for missed triggers; default 30s).
	ReconcileInterval time.Duration
	// Scheduler picks the scheduling architecture the leader runs and
	// holds its settings, each under the part that owns it: the
	// evaluation loop's (sample size, seed) and the architecture's own
	// (shared-state workers).
	Scheduler architecture.Config
	// PlanBatch is the most plans the applier commits in one Raft entry
	// (default DefaultPlanBatch; 1 = one entry per plan).
	PlanBatch int
	// Logger receives structured logs (default: discarded).
	Logger *slog.Logger
	// RaftTimeout is the Raft heartbeat and election timeout (default 1s,
	// at least 10ms). Tests shorten it so a single server elects itself
	// quickly.
	RaftTimeout time.Duration
	// ApplyTimeout bounds one Raft apply (default 30s).
	ApplyTimeout time.Duration
	// SnapshotThreshold is the number of Raft entries between snapshots
	// (default 8192).
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks whether to snapshot
	// (default 2m, at least 5ms; Raft adds jitter).
	SnapshotInterval time.Duration
	// TrailingLogs is the number of log entries kept after a snapshot so
	// a slightly lagging follower catches up without a full snapshot
	// (default 10240).
	TrailingLogs uint64
	// SnapshotsRetain is the number of snapshots kept on disk (default 2,
	// at least 1).
	SnapshotsRetain int
	// RaftLogStore is the Raft log store of a new data dir: LogStoreWAL or
	// LogStoreBoltDB; "" (the default) = DefaultLogStore. A data dir that
	// already holds a log keeps its store; naming the other one is an
	// error at start (docs/operations.md, "Raft log store").
	RaftLogStore string

	// Garbage collection (gc.go). Every GCInterval, and on
	// POST /v1/system/gc, the leader deletes through Raft the terminal
	// allocations (those holding no resources whose task no longer runs)
	// and the finished jobs (stopped, or batch jobs whose copies all
	// completed) that the rules below select. The allocations the
	// scheduler still reads (the latest failed copy of each index, a
	// batch job's completed copies) stay while their job lives.

	// GCInterval is how often the leader collects (default 5m).
	GCInterval time.Duration
	// GCAllocThreshold is the age (since its last change) past which a
	// terminal allocation is collected (default 1h; 0 collects each at
	// the next run).
	GCAllocThreshold time.Duration
	// GCJobThreshold is how long a finished job whose allocations are all
	// terminal is kept (counted from its stop or its last allocation
	// change; default 4h; 0 collects at the next run).
	GCJobThreshold time.Duration
	// GCMaxTerminalAllocsPerJob is the most terminal allocations kept per
	// job, besides those the scheduler still reads, whatever their age:
	// the newest stay, older ones are collected at the next run
	// (default 20; 0 keeps none).
	GCMaxTerminalAllocsPerJob int
	// JobVersionsKept is how many versions of each job the history keeps
	// (`gantry job history`, `revert`; default 6, Nomad's
	// job_tracked_versions; 1-100). Give every server the same value.
	JobVersionsKept int
	// GCBatchSize is the most allocations and jobs deleted by one Raft
	// entry: a large collection is several entries (default 1024, at
	// most MaxGCBatchSize).
	GCBatchSize int

	// Drivers knows the task drivers jobs may name and checks their
	// config blocks (default: driverschema.Default, which the drivers
	// linked into the program fill; a server needs at least one).
	Drivers structs.DriverRules
	// SpoolDir is where an uploaded backup (PUT /v1/operator/snapshot) is
	// written while it is checked, before Raft installs it ("" =
	// <DataDir>/spool). It must not be inside <DataDir>/raft.
	SpoolDir string
	// MaxSnapshotUpload bounds an uploaded backup, in bytes (413 above).
	MaxSnapshotUpload int64
	// DiskReserve is the free space, in bytes, an upload must leave on the
	// file systems of SpoolDir and DataDir (507 otherwise), so that a
	// backup being spooled never starves Raft's log of space.
	DiskReserve int64
	// BodyTimeout is how long a request body may take to deliver each MiB
	// (a shorter body: to arrive whole), and a backup download
	// (GET /v1/operator/snapshot) to be accepted, each MiB: a slower client
	// is answered 408, or cut off. Other responses have no write timeout:
	// blocking queries and log streams stay open as long as they need.
	BodyTimeout time.Duration
	// TLS turns on mutual TLS for the API, Raft, forwarding and reading
	// task logs from agents once its files are set (default off; see
	// tls.go and docs/operations.md, "TLS"). The certificate must name
	// server.<region>.gantry.
	TLS tlsutil.Config
	// ACL turns access control on and holds its settings (acl.enabled,
	// acl.token).
	ACL ACLConfig
	// Events sizes the event stream (events.go).
	Events EventsConfig

	// raftProtocol is the entry format this server advertises
	// (0 = structs.RaftProtocolCurrent). Tests set it lower to stand for a
	// server running an older build.
	raftProtocol int
}

// ACLConfig is the access control part of a server's Config
// (docs/operations.md, "Access control").
type ACLConfig struct {
	// Enabled makes the API refuse requests their token (or, without one,
	// the anonymous policy) does not allow. Every server of a cluster
	// must agree. Off by default, and in `gantry dev`.
	Enabled bool
	// Token is the secret this server presents on its calls to other
	// servers (joining the cluster, recording its addresses); with ACLs
	// on it needs operator write. Empty: none.
	Token string
}

// Validate reports every bad field, named relative to the block.
func (c ACLConfig) Validate() error {
	if strings.TrimSpace(c.Token) != c.Token || strings.ContainsAny(c.Token, "\r\n") {
		return structs.FieldError{Field: "token", Rule: "must not hold white space at its ends or line breaks"}
	}
	return nil
}

// Raft log stores (Config.RaftLogStore, --raft-log-store).
const (
	// LogStoreWAL is hashicorp/raft-wal: segment files, one append and
	// one fsync per log write.
	LogStoreWAL = "wal"
	// LogStoreBoltDB is hashicorp/raft-boltdb: a bbolt B+tree, two
	// fsyncs per log write (data pages, then the meta page).
	LogStoreBoltDB = "boltdb"
)

// DefaultLogStore is the log store of a new data dir. raft-boltdb stays
// the default: raft-wal is faster (one sync per write instead of two) but
// its authors still call it experimental, and losing an acknowledged write
// costs more than the milliseconds it saves (docs/operations.md).
const DefaultLogStore = LogStoreBoltDB

// Defaults and bounds of Config fields.
const (
	// DefaultPlanBatch is the most plans committed in one Raft entry.
	DefaultPlanBatch = 64
	// MinRaftTimeout is the shortest RaftTimeout: Raft's leader lease is
	// half of it, and Raft refuses one below 5ms.
	MinRaftTimeout = 10 * time.Millisecond
	// MinSnapshotInterval is the shortest SnapshotInterval Raft takes.
	MinSnapshotInterval = 5 * time.Millisecond
	// MaxGCBatchSize bounds GCBatchSize: an entry of that many IDs is
	// ~50 KB of JSON.
	MaxGCBatchSize = 8192
)

// DefaultConfig returns a config for a single local server: every field
// that has a default holds it.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "server"
	}
	return Config{
		DataDir:           "gantry-data/server",
		HTTPAddr:          "127.0.0.1:4646",
		RaftAddr:          "127.0.0.1:4647",
		NodeName:          host,
		HeartbeatTTL:      10 * time.Second,
		ReconcileInterval: 30 * time.Second,
		PlanBatch:         DefaultPlanBatch,
		Logger:            slog.New(slog.DiscardHandler),
		RaftTimeout:       time.Second,
		ApplyTimeout:      30 * time.Second,
		SnapshotThreshold: 8192,
		SnapshotInterval:  2 * time.Minute,
		TrailingLogs:      10240,
		SnapshotsRetain:   2,
		// Nomad's defaults: collect every 5 minutes, terminal
		// allocations after an hour, finished jobs after 4 hours.
		GCInterval:                5 * time.Minute,
		JobVersionsKept:           6,
		GCAllocThreshold:          time.Hour,
		GCJobThreshold:            4 * time.Hour,
		GCMaxTerminalAllocsPerJob: 20,
		GCBatchSize:               1024,
		Drivers:                   driverschema.Default,
		Scheduler:                 architecture.DefaultConfig(),
		MaxSnapshotUpload:         4 << 30,
		DiskReserve:               1 << 30,
		BodyTimeout:               30 * time.Second,
		TLS:                       tlsutil.DefaultConfig(),
		Events:                    DefaultEventsConfig(),
	}
}

// heartbeatGrace is HeartbeatGrace, or HeartbeatTTL when it is 0.
func (c Config) heartbeatGrace() time.Duration {
	return cmp.Or(c.HeartbeatGrace, c.HeartbeatTTL)
}

// Validate reports every bad field, one clear error each, naming the field
// in snake case. It changes nothing: defaults come from DefaultConfig only.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "is required")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http_addr", "must be host:port (got %q): %v", c.HTTPAddr, err)
	}
	if host, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		bad("raft_addr", "must be host:port (got %q): %v", c.RaftAddr, err)
	} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		bad("raft_addr", "must name an address other servers can reach, not %q", c.RaftAddr)
	}
	if c.BootstrapExpect < 0 {
		bad("bootstrap_expect", "must be >= 0 (got %d)", c.BootstrapExpect)
	}
	if c.BootstrapExpect > 1 && len(c.Join) == 0 {
		bad("join", "is required with bootstrap_expect %d (the addresses of the other servers)", c.BootstrapExpect)
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad("join", "%q must be host:port: %v", j, err)
		}
	}
	if c.AdvertiseHTTPAddr != "" {
		if host, _, err := net.SplitHostPort(c.AdvertiseHTTPAddr); err != nil {
			bad("advertise_http_addr", "must be host:port (got %q): %v", c.AdvertiseHTTPAddr, err)
		} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			bad("advertise_http_addr", "must name an address other servers can reach, not %q", c.AdvertiseHTTPAddr)
		}
	}
	if c.NodeName == "" {
		bad("name", "is required")
	}
	if c.HeartbeatTTL <= 0 {
		bad("heartbeat_ttl", "must be > 0 (got %s)", c.HeartbeatTTL)
	}
	if c.HeartbeatGrace < 0 {
		bad("heartbeat_grace", "must be >= 0 (got %s)", c.HeartbeatGrace)
	}
	if c.ReconcileInterval <= 0 {
		bad("reconcile_interval", "must be > 0 (got %s)", c.ReconcileInterval)
	}
	if err := scheduler.NestErrors("scheduler", c.Scheduler.Validate()); err != nil {
		errs = append(errs, err)
	}
	if err := c.Events.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.PlanBatch < 1 {
		bad("plan_batch", "must be >= 1 (got %d; 1 commits each plan in its own entry)", c.PlanBatch)
	}
	if c.Logger == nil {
		bad("logger", "is required (DefaultConfig's discards)")
	}
	if c.RaftTimeout < MinRaftTimeout {
		bad("raft_timeout", "must be >= %s (got %s)", MinRaftTimeout, c.RaftTimeout)
	}
	if c.ApplyTimeout <= 0 {
		bad("apply_timeout", "must be > 0 (got %s)", c.ApplyTimeout)
	}
	if c.SnapshotThreshold == 0 {
		bad("snapshot_threshold", "must be > 0")
	}
	if c.SnapshotInterval < MinSnapshotInterval {
		bad("snapshot_interval", "must be >= %s (got %s)", MinSnapshotInterval, c.SnapshotInterval)
	}
	if c.SnapshotsRetain < 1 {
		bad("snapshots_retain", "must be >= 1 (got %d)", c.SnapshotsRetain)
	}
	if c.JobVersionsKept < 1 || c.JobVersionsKept > state.MaxJobVersionsKept {
		bad("job_versions_kept", "must be between 1 and %d (got %d)", state.MaxJobVersionsKept, c.JobVersionsKept)
	}
	if c.GCInterval <= 0 {
		bad("gc_interval", "must be > 0 (got %s)", c.GCInterval)
	}
	if c.GCAllocThreshold < 0 {
		bad("gc_alloc_threshold", "must be >= 0 (got %s)", c.GCAllocThreshold)
	}
	if c.GCJobThreshold < 0 {
		bad("gc_job_threshold", "must be >= 0 (got %s)", c.GCJobThreshold)
	}
	if c.GCMaxTerminalAllocsPerJob < 0 {
		bad("gc_max_terminal_allocs_per_job", "must be >= 0 (got %d)", c.GCMaxTerminalAllocsPerJob)
	}
	if c.GCBatchSize < 1 || c.GCBatchSize > MaxGCBatchSize {
		bad("gc_batch_size", "must be between 1 and %d (got %d)", MaxGCBatchSize, c.GCBatchSize)
	}
	switch c.RaftLogStore {
	case "", LogStoreWAL, LogStoreBoltDB:
	default:
		bad("raft_log_store", "must be %q or %q (got %q)", LogStoreWAL, LogStoreBoltDB, c.RaftLogStore)
	}
	if c.SpoolDir != "" && c.DataDir != "" && within(c.SpoolDir, filepath.Join(c.DataDir, raftDir)) {
		bad("spool_dir", "must not be inside the Raft directory %s (got %q)", filepath.Join(c.DataDir, raftDir), c.SpoolDir)
	}
	if c.MaxSnapshotUpload <= 0 {
		bad("max_snapshot_upload", "must be > 0 bytes (got %d)", c.MaxSnapshotUpload)
	}
	if c.DiskReserve < 0 {
		bad("disk_reserve", "must be >= 0 bytes (got %d)", c.DiskReserve)
	}
	if c.BodyTimeout <= 0 {
		bad("body_timeout", "must be > 0 (got %s)", c.BodyTimeout)
	}
	if err := scheduler.NestErrors("acl", c.ACL.Validate()); err != nil {
		errs = append(errs, err)
	}
	if c.Drivers == nil {
		bad("drivers", "is required (DefaultConfig's is driverschema.Default)")
	} else if len(c.Drivers.Names()) == 0 {
		bad("drivers", "no task driver is registered, so every job would be refused: link internal/driver, which registers exec and mock")
	}
	if err := c.TLS.Validate(true); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid server config: %w", errors.Join(errs...))
	}
	return nil
}

// within reports whether path is dir or inside it (by name: symbolic
// links are not followed).
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
