package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// snapshotHeader is the first line of a backup made by
// GET /v1/operator/snapshot; the state store's records follow.
type snapshotHeader struct {
	Format int    `json:"gantry_snapshot"`
	Index  uint64 `json:"index"`
	Time   int64  `json:"time"`
}

const (
	snapshotFormat = 1
	// maxSnapshotBytes bounds an uploaded backup (spooled to disk).
	maxSnapshotBytes = 4 << 30
)

func (s *Server) statusSelf(w http.ResponseWriter, r *http.Request) (any, error) {
	_, leaderID := s.raft.LeaderWithID()
	return &api.ServerSelf{
		Member:       *s.self(),
		Known:        s.knownMembers(),
		Bootstrapped: s.bootstrapped(),
		LeaderID:     string(leaderID),
		EntryFormat:  s.entryFormatName(),
		DivergedAt:   s.diverged.Load(),
	}, nil
}

func (s *Server) raftConfiguration(w http.ResponseWriter, r *http.Request) (any, error) {
	conf, index, err := s.raftConfig()
	if err != nil {
		return nil, err
	}
	_, leaderID := s.raft.LeaderWithID()
	snap := s.state.Snapshot()
	out := &api.RaftConfiguration{Index: index, EntryFormat: s.entryFormatName()}
	for _, sv := range conf.Servers {
		p := &api.RaftPeer{
			ID: string(sv.ID), RaftAddr: string(sv.Address),
			Voter: sv.Suffrage == raft.Voter, Leader: sv.ID == leaderID,
		}
		if m := snap.ServerMember(p.ID); m != nil {
			p.Name, p.HTTPAddr, p.RaftProtocol = m.Name, m.HTTPAddr, m.Protocol()
		}
		out.Peers = append(out.Peers, p)
	}
	s.probePeers(r.Context(), out.Peers)
	return out, nil
}

// probePeers sets Status by asking each peer's API who it is, in parallel.
func (s *Server) probePeers(ctx context.Context, peers []*api.RaftPeer) {
	var wg sync.WaitGroup
	for _, p := range peers {
		if p.ID == s.id {
			p.Status = "alive"
			if s.diverged.Load() != 0 {
				p.Status = "diverged"
			}
			continue
		}
		if p.HTTPAddr == "" {
			p.Status = "unknown"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Status = "unreachable"
			c, err := s.peerClient(p.HTTPAddr)
			if err != nil {
				return
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if info, err := c.ServerSelf(pctx); err == nil && info.Member.ID == p.ID {
				p.Status = "alive"
				if info.DivergedAt != 0 {
					p.Status = "diverged"
				}
			}
		}()
	}
	wg.Wait()
}

func (s *Server) raftRemovePeer(w http.ResponseWriter, r *http.Request) (any, error) {
	id, addr := r.URL.Query().Get("id"), r.URL.Query().Get("address")
	if (id == "") == (addr == "") {
		return nil, badRequest("exactly one of id or address is required")
	}
	removed, err := s.removePeer(id, addr)
	if err != nil {
		return nil, err
	}
	s.logger.Info("removed raft peer", "id", removed)
	return map[string]string{"removed": removed}, nil
}

func (s *Server) raftJoin(w http.ResponseWriter, r *http.Request) (any, error) {
	var m structs.ServerMember
	if err := decodeBody(w, r, &m); err != nil {
		return nil, err
	}
	if err := s.joinMember(&m); err != nil {
		return nil, err
	}
	return map[string]string{"joined": m.ID}, nil
}

// snapshotSave streams a point-in-time copy of the state store: the header
// line, then the records (the same stream Raft snapshots hold).
func (s *Server) snapshotSave(w http.ResponseWriter, r *http.Request) (any, error) {
	snap := s.state.Snapshot()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="gantry.snap"`)
	w.Header().Set(api.IndexHeader, strconv.FormatUint(snap.Index(), 10))
	hdr, _ := json.Marshal(snapshotHeader{Format: snapshotFormat, Index: snap.Index(), Time: s.now().UnixNano()})
	if _, err := w.Write(append(hdr, '\n')); err != nil {
		return nil, nil //nolint:nilerr // the client went away; there is no one to answer
	}
	if err := snap.Persist(w); err != nil {
		// Headers are sent: all we can do is cut the stream short, which
		// restore rejects (the records do not parse).
		s.logger.Error("snapshot save failed mid-stream", "error", err)
	}
	return nil, nil
}

// snapshotRestore replaces the cluster state with an uploaded backup. The
// upload is spooled to disk and loaded into a scratch store first, so a bad
// file is refused before anything changes.
func (s *Server) snapshotRestore(w http.ResponseWriter, r *http.Request) (any, error) {
	body := bufio.NewReaderSize(http.MaxBytesReader(w, r.Body, maxSnapshotBytes), 64<<10)
	line, err := body.ReadSlice('\n')
	if err != nil {
		return nil, badRequest("snapshot: missing header line: %v", err)
	}
	var hdr snapshotHeader
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Format != snapshotFormat {
		return nil, badRequest("snapshot: not a gantry snapshot (format %d; want %d)", hdr.Format, snapshotFormat)
	}
	f, err := os.CreateTemp(s.cfg.DataDir, "restore-*.snap")
	if err != nil {
		return nil, fmt.Errorf("snapshot: spooling upload: %w", err)
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	size, err := io.Copy(f, body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpError{code: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("snapshot is larger than %d bytes", int64(maxSnapshotBytes))}
		}
		return nil, badRequest("snapshot: reading upload: %v", err)
	}
	scratch, err := state.New()
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if err := scratch.Restore(bufio.NewReader(f)); err != nil {
		return nil, badRequest("snapshot: %v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	// The backup may come from another cluster: keep this cluster's
	// servers table, which followers need to find the leader.
	members := s.state.Snapshot().ServerMembers()
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: hdr.Index, Size: size}
	if err := s.raft.Restore(meta, f, s.cfg.ApplyTimeout); err != nil {
		return nil, raftErr("restoring snapshot", err)
	}
	restored := s.state.Snapshot()
	for _, id := range restored.ServerMembers() {
		if !slices.ContainsFunc(members, func(m *structs.ServerMember) bool { return m.ID == id.ID }) {
			_, _, _ = s.raftApply(structs.ServerMemberDeleteRequestType, &structs.ServerMemberDeleteRequest{ID: id.ID})
		}
	}
	for _, m := range members {
		if cur := restored.ServerMember(m.ID); cur == nil || !sameMember(cur, m) {
			c := *m
			if _, _, err := s.raftApply(structs.ServerMemberUpsertRequestType, &structs.ServerMemberUpsertRequest{Member: &c}); err != nil {
				s.logger.Warn("re-recording server after restore", "id", m.ID, "error", err)
			}
		}
	}
	s.logger.Info("restored state from a snapshot", "snapshot_index", hdr.Index, "bytes", size, "file", filepath.Base(f.Name()))
	// Restored nodes get a fresh TTL with grace, like after an election,
	// and every job is reconciled against the restored state.
	var ready []string
	for _, n := range s.state.Snapshot().Nodes() {
		if n.Status == structs.NodeStatusReady {
			ready = append(ready, n.ID)
		}
	}
	s.hb.start(ready, s.cfg.HeartbeatTTL+s.cfg.heartbeatGrace())
	s.enqueueAllJobs()
	return &api.SnapshotRestoreResponse{Index: s.raft.AppliedIndex()}, nil
}
