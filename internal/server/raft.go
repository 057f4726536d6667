package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"go.etcd.io/bbolt"

	"github.com/gantry-project/gantry/internal/structs"
)

const (
	raftDir      = "raft"
	serverIDFile = "server-id"
)

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
	stream, err := newTrackingStream(s.cfg.RaftAddr, addr)
	if err != nil {
		return fmt.Errorf("raft_addr %s: %w", s.cfg.RaftAddr, err)
	}
	s.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})
	// The free page list is rebuilt when the log is opened instead of
	// written with every commit: fewer pages per log write (each waits
	// for its fsync; docs/bench.md, latency). Entries and the meta page
	// are still synced before Raft counts them stored.
	s.boltStore, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
	})
	if err != nil {
		return fmt.Errorf("opening raft log in %s: %w", dir, err)
	}
	logs, err := raft.NewLogCache(512, s.boltStore)
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

	existing, err := raft.HasExistingState(logs, s.boltStore, snaps)
	if err != nil {
		return fmt.Errorf("reading raft state: %w", err)
	}
	s.hadState = existing
	if !existing && s.singleBootstrap() {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: s.transport.LocalAddr(),
		}}}
		if err := raft.BootstrapCluster(rc, logs, s.boltStore, snaps, s.transport, conf); err != nil {
			return fmt.Errorf("bootstrapping raft: %w", err)
		}
		s.logger.Info("bootstrapped a new single-server cluster", "id", id)
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, countingLogStore{LogStore: logs, writes: &s.logWrites}, s.boltStore, snaps, s.transport)
	if err != nil {
		return fmt.Errorf("starting raft: %w", err)
	}
	return nil
}

// closeRaft stops Raft and closes its stores; safe on a partial setup.
func (s *Server) closeRaft() error {
	var errs []error
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
	if s.boltStore != nil {
		if err := s.boltStore.Close(); err != nil {
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
	id := newID()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing server ID: %w", err)
	}
	return id, nil
}

// newID returns a random UUID-shaped ID.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// raftApply proposes one entry and waits until it is applied on this
// server. It returns the entry's index and the FSM's non-error response.
func (s *Server) raftApply(t structs.MessageType, req any) (uint64, any, error) {
	return s.raftPropose(t, req, s.cfg.ApplyTimeout)()
}

// raftPropose proposes one entry and returns a wait for its outcome (as
// raftApply's). Entries proposed one after another from one goroutine are
// in the log in that order. With timeout 0 the proposal waits for Raft to
// take it rather than giving up (an entry that timed out waiting to be
// taken would be missing from the log while a later one is there).
func (s *Server) raftPropose(t structs.MessageType, req any, timeout time.Duration) func() (uint64, any, error) {
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
		if err := f.Error(); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
				errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrRaftShutdown) {
				return 0, nil, fmt.Errorf("%w (%w)", ErrNotLeader, err)
			}
			return 0, nil, fmt.Errorf("raft apply: %w", err)
		}
		s.metrics.raftApply.WithLabelValues(messageName(t)).Observe(time.Since(start).Seconds())
		s.metrics.raftWritesWaited.Observe(float64(s.logWrites.Load() - writes))
		if err, ok := f.Response().(error); ok {
			return f.Index(), nil, err
		}
		return f.Index(), f.Response(), nil
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

func messageName(t structs.MessageType) string {
	switch t {
	case structs.NodeRegisterRequestType:
		return "node_register"
	case structs.NodeUpdateStatusRequestType:
		return "node_status"
	case structs.NodeUpdateDrainRequestType:
		return "node_drain"
	case structs.JobRegisterRequestType:
		return "job_register"
	case structs.JobDeregisterRequestType:
		return "job_deregister"
	case structs.AllocClientUpdateRequestType:
		return "alloc_client_update"
	case structs.JobBatchRequestType:
		return "job_batch"
	case structs.ApplyPlanRequestType:
		return "apply_plan"
	case structs.ApplyPlanBatchRequestType:
		return "apply_plan_batch"
	case structs.AllocClientUpdateBatchRequestType:
		return "alloc_client_update_batch"
	case structs.ServerMemberUpsertRequestType:
		return "server_upsert"
	case structs.ServerMemberDeleteRequestType:
		return "server_delete"
	}
	return fmt.Sprintf("type_%d", t)
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
