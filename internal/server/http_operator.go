package server

import (
	"bufio"
	"context"
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
	"github.com/gantry-project/gantry/internal/backup"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
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

// snapshotSave streams a point-in-time backup of the state store: a
// header, the records, a trailer with their count and checksum (package
// backup).
func (s *Server) snapshotSave(w http.ResponseWriter, r *http.Request) (any, error) {
	snap := s.state.Snapshot()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="gantry.snap"`)
	w.Header().Set(api.IndexHeader, strconv.FormatUint(snap.Index(), 10))
	dw := newDeadlineWriter(w, s.cfg.BodyTimeout)
	if err := snap.PersistBackup(dw, s.now().UnixNano()); err != nil && r.Context().Err() == nil {
		// Headers are sent: all we can do is cut the stream short. The
		// trailer is then missing, which the client and restore refuse.
		s.logger.Error("snapshot save failed mid-stream", "error", err)
	}
	return nil, nil
}

// snapshotRestore replaces the cluster state with an uploaded backup. The
// upload is spooled to SpoolDir, within the size and free-space limits
// (spool.go), and loaded into a scratch store first, so a file that is
// not a whole, intact backup is refused (400) before anything changes.
// Raft then installs the records, which every server takes.
func (s *Server) snapshotRestore(w http.ResponseWriter, r *http.Request) (any, error) {
	limit := s.cfg.MaxSnapshotUpload
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body := bufio.NewReaderSize(http.MaxBytesReader(w, r.Body, limit), 64<<10)
	// Refuse what is not a backup before spooling anything.
	if err := checkBackupHeader(body); err != nil {
		return nil, err
	}
	f, size, err := s.spoolUpload(body, r.ContentLength)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	scratch, err := state.New()
	if err != nil {
		return nil, err
	}
	info, err := scratch.RestoreBackup(io.NewSectionReader(f, 0, size))
	if err != nil {
		if errors.Is(err, backup.ErrInvalid) {
			return nil, badRequest("snapshot: %v", err)
		}
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	// Raft writes the records into a snapshot of its own under the data
	// dir before installing them.
	if err := s.checkSpace(filepath.Join(s.cfg.DataDir, raftDir), info.Length, "installing the snapshot"); err != nil {
		return nil, err
	}
	hdr := info.Header
	// The backup may come from another cluster: keep this cluster's
	// servers table, which followers need to find the leader.
	members := s.state.Snapshot().ServerMembers()
	// Raft installs the bare record stream, the form of its own
	// snapshots, which servers of the previous build read too.
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: hdr.Index, Size: info.Length}
	if err := s.raft.Restore(meta, io.NewSectionReader(f, info.Offset, info.Length), s.cfg.ApplyTimeout); err != nil {
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
	s.logger.Info("restored state from a snapshot", "snapshot_index", hdr.Index, "records", info.Records, "bytes", size, "file", filepath.Base(f.Name()))
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
