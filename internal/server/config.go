package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config configures a Server. Start from DefaultConfig; New validates it.
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
	// NodeName names this server in logs and the Raft configuration.
	NodeName string
	// HeartbeatTTL is the time within which agents must heartbeat.
	HeartbeatTTL time.Duration
	// HeartbeatGrace is added to every node's first TTL after this server
	// becomes leader, so a leader change never marks live nodes down.
	// 0 = HeartbeatTTL.
	HeartbeatGrace time.Duration
	// ReconcileInterval is how often the leader enqueues every job (a
	// safety net for missed triggers).
	ReconcileInterval time.Duration
	// SampleSize is passed to the scheduler (0 = its default).
	SampleSize int
	// Scheduler is the scheduling architecture: "monolithic" (default) or
	// "shared-state".
	Scheduler string
	// Schedulers is the number of parallel shared-state workers (of the
	// service scheduler when BatchSchedulers > 0); 0 = the default (4).
	Schedulers int
	// BatchSchedulers, when > 0, splits shared-state scheduling in two, as
	// Omega does: a service scheduler with Schedulers workers and a batch
	// scheduler with this many workers and cheaper placement.
	BatchSchedulers int
	// PlanBatch is the most plans the applier commits in one Raft entry
	// (0 = 64; 1 = one entry per plan).
	PlanBatch int
	// Seed seeds placement randomness (0 = time-based).
	Seed int64
	// Logger receives structured logs (nil = discard).
	Logger *slog.Logger
	// RaftTimeout is the Raft heartbeat and election timeout (0 = 1s).
	// Tests shorten it so a single server elects itself quickly.
	RaftTimeout time.Duration
	// ApplyTimeout bounds one Raft apply (0 = 30s).
	ApplyTimeout time.Duration
	// SnapshotThreshold is the number of Raft entries between snapshots
	// (0 = 8192).
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks whether to snapshot
	// (0 = 2m; Raft adds jitter).
	SnapshotInterval time.Duration
	// TrailingLogs is the number of log entries kept after a snapshot so
	// a slightly lagging follower catches up without a full snapshot
	// (0 = 10240).
	TrailingLogs uint64
	// SnapshotsRetain is the number of snapshots kept on disk (0 = 2).
	SnapshotsRetain int
	// RaftLogStore is the Raft log store of a new data dir: LogStoreWAL or
	// LogStoreBoltDB ("" = DefaultLogStore). A data dir that already
	// holds a log keeps its store; naming the other one is an error at
	// start (docs/operations.md, "Raft log store").
	RaftLogStore string
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

	// raftProtocol is the entry format this server advertises
	// (0 = structs.RaftProtocolCurrent). Tests set it lower to stand for a
	// server running an older build.
	raftProtocol int
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

// Scheduling architectures (Config.Scheduler, --scheduler).
const (
	SchedulerMonolithic  = "monolithic"
	SchedulerSharedState = "shared-state"
)

// DefaultPlanBatch is the most plans committed in one Raft entry.
const DefaultPlanBatch = 64

// DefaultConfig returns a config for a single local server.
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
		RaftTimeout:       time.Second,
		ApplyTimeout:      30 * time.Second,
		SnapshotThreshold: 8192,
		MaxSnapshotUpload: 4 << 30,
		DiskReserve:       1 << 30,
		BodyTimeout:       30 * time.Second,
	}
}

// validate fills zero optional fields and reports every bad field, one
// clear error each.
func (c *Config) validate() error {
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
	if c.SampleSize < 0 {
		bad("sample_size", "must be >= 0 (got %d)", c.SampleSize)
	}
	switch c.Scheduler {
	case "", SchedulerMonolithic, SchedulerSharedState:
	default:
		bad("scheduler", "must be %q or %q (got %q)", SchedulerMonolithic, SchedulerSharedState, c.Scheduler)
	}
	if c.Schedulers < 0 {
		bad("schedulers", "must be >= 0 (got %d)", c.Schedulers)
	}
	if c.BatchSchedulers < 0 {
		bad("batch_schedulers", "must be >= 0 (got %d)", c.BatchSchedulers)
	}
	if c.Scheduler != SchedulerSharedState && (c.Schedulers > 0 || c.BatchSchedulers > 0) {
		bad("schedulers", "parallel schedulers need scheduler %q (got %q)", SchedulerSharedState, c.Scheduler)
	}
	if c.PlanBatch < 0 {
		bad("plan_batch", "must be >= 0 (got %d)", c.PlanBatch)
	}
	if c.SnapshotInterval < 0 {
		bad("snapshot_interval", "must be >= 0 (got %s)", c.SnapshotInterval)
	}
	if c.SnapshotsRetain < 0 {
		bad("snapshots_retain", "must be >= 0 (got %d)", c.SnapshotsRetain)
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
	if c.RaftTimeout < 0 || c.ApplyTimeout < 0 {
		bad("raft_timeout", "timeouts must be >= 0")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid server config: %w", errors.Join(errs...))
	}
	if c.HeartbeatGrace == 0 {
		c.HeartbeatGrace = c.HeartbeatTTL
	}
	if c.RaftTimeout == 0 {
		c.RaftTimeout = time.Second
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 30 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SnapshotsRetain == 0 {
		c.SnapshotsRetain = 2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Scheduler == "" {
		c.Scheduler = SchedulerMonolithic
	}
	if c.PlanBatch == 0 {
		c.PlanBatch = DefaultPlanBatch
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
