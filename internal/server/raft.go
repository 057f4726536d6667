package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"

	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

const (
	raftDir      = "raft"
	serverIDFile = "server-id"
	// boltLogFile is the boltdb log and stable store in raftDir.
	boltLogFile = "raft.db"
	// walDir holds the raft-wal segment files and wal-meta.db (its
	// segment list and the stable store) in raftDir.
	walDir = "wal"
	// walMetaFile is raft-wal's metadata database in walDir; its presence
	// marks a data dir whose log is a WAL.
	walMetaFile = "wal-meta.db"
)

// raftStore is a Raft log and stable store in one (both raft-boltdb and
// raft-wal are).
type raftStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// walStore is a raft-wal log that closes its meta database too: v0.4.0's
// Close leaves it open (fixed upstream after that release, raft-wal#28),
// and with it bbolt's file lock, so reopening the data dir in the same
// process (a restarted Server, the tests) would wait forever.
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func (w *walStore) Close() error {
	return errors.Join(w.WAL.Close(), w.meta.Close())
}

// existingLogStore reports which log store dir (DataDir/raft) already
// holds: LogStoreBoltDB, LogStoreWAL or "" for none. Both at once is an
// error: gantry never writes both, so someone copied files in.
func existingLogStore(dir string) (string, error) {
	has := func(path string) (bool, error) {
		_, err := os.Stat(path)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("raft log store: %w", err)
	}
	bolt, err := has(filepath.Join(dir, boltLogFile))
	if err != nil {
		return "", err
	}
	w, err := has(filepath.Join(dir, walDir, walMetaFile))
	if err != nil {
		return "", err
	}
	switch {
	case bolt && w:
		return "", fmt.Errorf("%s holds both a boltdb log (%s) and a WAL (%s/); move the one not in use away",
			dir, boltLogFile, walDir)
	case bolt:
		return LogStoreBoltDB, nil
	case w:
		return LogStoreWAL, nil
	}
	return "", nil
}

// openLogStore opens the Raft log and stable store in dir (DataDir/raft):
// the one already there, else the configured one (want; "" = the
// default). An existing store other than a configured one is an error
// rather than a silent switch: the log cannot move between them in place
// (docs/operations.md, "Raft log store").
func openLogStore(dir, want string, hlog hclog.Logger) (raftStore, string, error) {
	have, err := existingLogStore(dir)
	if err != nil {
		return nil, "", err
	}
	kind := want
	switch {
	case have != "" && want != "" && have != want:
		return nil, "", fmt.Errorf("raft_log_store %s: %s already holds a %s log; start with raft_log_store %s "+
			"(or leave it unset), or move this server to %s as docs/operations.md describes", want, dir, have, have, want)
	case have != "":
		kind = have
	case kind == "":
		kind = DefaultLogStore
	}
	switch kind {
	case LogStoreWAL:
		// One append and one fsync per StoreLogs; its bbolt meta
		// database (also the stable store: term and vote, synced on
		// every Set) is written only when a segment is rotated or the
		// log truncated.
		wdir := filepath.Join(dir, walDir)
		if err := os.MkdirAll(wdir, 0o700); err != nil {
			return nil, "", fmt.Errorf("raft log in %s: %w", wdir, err)
		}
		meta := &metadb.BoltMetaDB{}
		w, err := wal.Open(wdir, wal.WithLogger(hlog.Named("wal")), wal.WithMetaStore(meta))
		if err != nil {
			return nil, "", errors.Join(fmt.Errorf("opening raft log (wal) in %s: %w", wdir, err), meta.Close())
		}
		return &walStore{WAL: w, meta: meta}, kind, nil
	default:
		// The free page list is rebuilt when the log is opened instead of
		// written with every commit: fewer pages per log write (each waits
		// for its fsync; docs/bench.md, latency). Entries and the meta page
		// are still synced before Raft counts them stored.
		b, err := raftboltdb.New(raftboltdb.Options{
			Path:        filepath.Join(dir, boltLogFile),
			BoltOptions: &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
		})
		if err != nil {
			return nil, "", fmt.Errorf("opening raft log (boltdb) in %s: %w", dir, err)
		}
		return b, kind, nil
	}
}

// setupRaft opens the log and snapshot stores under DataDir, starts the TCP
// transport and Raft, and bootstraps a one-voter cluster the first time when
// this server runs alone. With existing state Raft rejoins its stored
// configuration; a multi-server cluster is bootstrapped later by the
// cluster loop (cluster.go) once BootstrapExpect servers have met.
func (s *Server) setupRaft() error {
	dir := filepath.Join(s.cfg.DataDir, raftDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data_dir %s: %w", s.cfg.DataDir, err)
	}
	id, err := loadOrCreateServerID(s.cfg.DataDir)
	if err != nil {
		return err
	}
	s.id = id
	hlog := hclog.New(&hclog.LoggerOptions{
		Name:  "raft",
		Level: hclog.Info,
		// slog adds its own time stamp.
		DisableTime: true,
		Output:      &slogWriter{logger: s.logger.With("component", "raft")},
	})

	addr, err := net.ResolveTCPAddr("tcp", s.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("raft_addr %s: %w", s.cfg.RaftAddr, err)
	}
	var srvTLS, cliTLS *tls.Config
	if s.tls != nil {
		// Raft takes server certificates only.
		srvTLS, cliTLS = s.tls.ServerConfig(tlsutil.RoleServer), s.tls.ClientConfig(tlsutil.RoleServer)
	}
	stream, err := newTrackingStream(s.cfg.RaftAddr, addr, srvTLS, cliTLS)
	if err != nil {
		return fmt.Errorf("raft_addr %s: %w", s.cfg.RaftAddr, err)
	}
	s.stream = stream
	s.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})
	store, kind, err := openLogStore(dir, s.cfg.RaftLogStore, hlog)
	if err != nil {
		return err
	}
	s.logStore = store
	s.logger.Info("raft log store", "store", kind, "dir", dir)
	logs, err := raft.NewLogCache(512, s.logStore)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, s.cfg.SnapshotsRetain, hlog)
	if err != nil {
		return fmt.Errorf("raft snapshots in %s: %w", dir, err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.Logger = hlog
	rc.HeartbeatTimeout = s.cfg.RaftTimeout
	rc.ElectionTimeout = s.cfg.RaftTimeout
	rc.LeaderLeaseTimeout = s.cfg.RaftTimeout / 2
	rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	// Group commit: take every queued apply (up to MaxAppendEntries) into
	// one log write and fsync instead of one each (docs/bench.md).
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 512
	rc.SnapshotInterval = s.cfg.SnapshotInterval
	rc.TrailingLogs = s.cfg.TrailingLogs
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raft config: %w", err)
	}

	existing, err := raft.HasExistingState(logs, s.logStore, snaps)
	if err != nil {
		return fmt.Errorf("reading raft state: %w", err)
	}
	s.hadState = existing
	if !existing && s.singleBootstrap() {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: s.transport.LocalAddr(),
		}}}
		if err := raft.BootstrapCluster(rc, logs, s.logStore, snaps, s.transport, conf); err != nil {
			return fmt.Errorf("bootstrapping raft: %w", err)
		}
		s.logger.Info("bootstrapped a new single-server cluster", "id", id)
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, countingLogStore{LogStore: logs, writes: &s.logWrites}, s.logStore, snaps, s.transport)
	if err != nil {
		return fmt.Errorf("starting raft: %w", err)
	}
	return nil
}

// closeRaft stops Raft and closes its stores; safe on a partial setup.
func (s *Server) closeRaft() error {
	var errs []error
	if s.stream != nil {
		s.stream.RefuseInbound()
	}
	if s.raft != nil {
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
	}
	if s.transport != nil {
		if err := s.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft transport: %w", err))
		}
	}
	if s.logStore != nil {
		if err := s.logStore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// loadOrCreateServerID keeps the server's Raft ID in DataDir so it is the
// same server (same vote, same configuration entry) after a restart.
func loadOrCreateServerID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, serverIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" {
			return "", fmt.Errorf("%s is empty; delete it or restore it", path)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading server ID: %w", err)
	}
	id := structs.NewUUID()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing server ID: %w", err)
	}
	return id, nil
}

// raftApply proposes one entry and waits until it is applied on this
// server. It returns the entry's index and the FSM's non-error response.
func (s *Server) raftApply(t structs.MessageType, req any) (uint64, any, error) {
	return s.propose(t, req, s.cfg.ApplyTimeout, raft.Future.Error)()
}

// raftApplyStoppable is raftApply for the cluster loop's membership
// entries, whose wait also ends once the server and Raft have stopped
// (waitApplied): Shutdown waits for that loop.
func (s *Server) raftApplyStoppable(t structs.MessageType, req any) (uint64, any, error) {
	return s.propose(t, req, s.cfg.ApplyTimeout, s.waitApplied)()
}

// raftPropose proposes one entry and returns a wait for its outcome (as
// raftApply's). Entries proposed one after another from one goroutine are
// in the log in that order. With timeout 0 the proposal waits for Raft to
// take it rather than giving up (an entry that timed out waiting to be
// taken would be missing from the log while a later one is there).
func (s *Server) raftPropose(t structs.MessageType, req any, timeout time.Duration) func() (uint64, any, error) {
	return s.propose(t, req, timeout, raft.Future.Error)
}

// propose is raftPropose with the wait for the future given.
func (s *Server) propose(t structs.MessageType, req any, timeout time.Duration, wait func(raft.Future) error) func() (uint64, any, error) {
	if s.raft == nil {
		return func() (uint64, any, error) { return 0, nil, ErrNotLeader }
	}
	buf, err := s.encodeProposal(t, req)
	if err != nil {
		return func() (uint64, any, error) { return 0, nil, err }
	}
	start := time.Now()
	writes := s.logWrites.Load()
	f := s.raft.Apply(buf, timeout)
	return func() (uint64, any, error) {
		if err := wait(f); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
				errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrRaftShutdown) {
				return 0, nil, fmt.Errorf("%w (%w)", ErrNotLeader, err)
			}
			return 0, nil, fmt.Errorf("raft apply: %w", err)
		}
		s.metrics.raftApply.WithLabelValues(t.String()).Observe(time.Since(start).Seconds())
		s.metrics.raftWritesWaited.Observe(float64(s.logWrites.Load() - writes))
		if err, ok := f.Response().(error); ok {
			return f.Index(), nil, err
		}
		return f.Index(), f.Response(), nil
	}
}

// waitApplied waits for f's outcome. hashicorp/raft can leave a future
// unanswered when Raft stops while its entry is queued for the FSM
// (hashicorp/raft#498): the cluster loop waiting on one hung Shutdown,
// which waits for that loop. So once the server is stopping and Raft
// itself has stopped, an unanswered future is given up with
// ErrRaftShutdown; not before, since while Raft runs the entry may still
// commit. The waiting goroutine of a lost future is left; only a stopped
// server has one.
func (s *Server) waitApplied(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-s.shutdownCh:
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if s.raft.State() != raft.Shutdown {
				continue
			}
			select {
			case err := <-done:
				return err
			default:
				return raft.ErrRaftShutdown
			}
		}
	}
}

// countingLogStore counts the log writes (each synced to disk) for
// gantry_raft_log_writes_waited: how many an entry saw start between its
// proposal and its local apply. On a busy one-voter leader the least is
// about two (its own, and the next, started while the FSM applies it);
// more mean the leader wrote further batches before applying a committed
// one (docs/bench.md, latency).
type countingLogStore struct {
	raft.LogStore
	writes *atomic.Uint64
}

func (s countingLogStore) StoreLog(l *raft.Log) error {
	s.writes.Add(1)
	return s.LogStore.StoreLog(l)
}

func (s countingLogStore) StoreLogs(logs []*raft.Log) error {
	s.writes.Add(1)
	return s.LogStore.StoreLogs(logs)
}

// IsMonotonic passes raft.MonotonicLogStore through: raft-wal takes no
// gaps in the log, so after installing a snapshot Raft must delete the old
// log rather than continue after a gap.
func (s countingLogStore) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// slogWriter turns hclog's text lines into slog records.
type slogWriter struct{ logger *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		msg := string(line)
		level := slog.LevelInfo
		switch {
		case strings.Contains(msg, "[ERROR]"):
			level = slog.LevelError
		case strings.Contains(msg, "[WARN]"):
			level = slog.LevelWarn
		case strings.Contains(msg, "[DEBUG]"), strings.Contains(msg, "[TRACE]"):
			level = slog.LevelDebug
		}
		w.logger.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

var _ io.Writer = (*slogWriter)(nil)
