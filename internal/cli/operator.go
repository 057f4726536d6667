package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/backup"
	"github.com/gantry-project/gantry/internal/durable"
)

// ServerMembers prints the control-plane servers: Raft membership as the
// leader sees it (or, with stale, as the answering server sees it), each
// server's addresses and whether its API answered just now.
func (e *Env) ServerMembers(ctx context.Context, stale bool) error {
	conf, err := e.Client.RaftConfiguration(ctx, &api.QueryOptions{Stale: stale})
	if err != nil {
		return fmt.Errorf("server members: %w", e.Humanize(err))
	}
	if ok, err := e.printData(conf.Peers); ok {
		return err
	}
	t := newTable("NAME", "ID", "RAFT ADDRESS", "HTTP ADDRESS", "STATUS", "VOTER", "LEADER", "PROTOCOL")
	for _, p := range conf.Peers {
		t.row(orDash(p.Name), p.ID, p.RaftAddr, orDash(p.HTTPAddr), orDash(p.Status), p.Voter, p.Leader, orDash(protocolString(p.RaftProtocol)))
	}
	if err := t.write(e.Out); err != nil {
		return err
	}
	if conf.EntryFormat != "" {
		_, err = fmt.Fprintf(e.Out, "\nRaft entry format: %s\n", conf.EntryFormat)
	}
	return err
}

// protocolString shows a peer's advertised entry format ("" without a
// record).
func protocolString(p int) string {
	if p == 0 {
		return ""
	}
	return strconv.Itoa(p)
}

// RaftListPeers prints the Raft configuration (the same view as
// ServerMembers, in Raft's terms).
func (e *Env) RaftListPeers(ctx context.Context, stale bool) error {
	conf, err := e.Client.RaftConfiguration(ctx, &api.QueryOptions{Stale: stale})
	if err != nil {
		return fmt.Errorf("raft list-peers: %w", e.Humanize(err))
	}
	if ok, err := e.printData(conf); ok {
		return err
	}
	t := newTable("NODE", "ID", "ADDRESS", "STATE", "VOTER", "PROTOCOL")
	for _, p := range conf.Peers {
		state := "follower"
		switch {
		case p.Status == "diverged":
			state = "diverged"
		case p.Leader:
			state = "leader"
		}
		t.row(orDash(p.Name), p.ID, p.RaftAddr, state, p.Voter, orDash(protocolString(p.RaftProtocol)))
	}
	if err := t.write(e.Out); err != nil {
		return err
	}
	if conf.EntryFormat != "" {
		_, err = fmt.Fprintf(e.Out, "\nRaft entry format: %s\n", conf.EntryFormat)
	}
	return err
}

// RaftRemovePeer removes a server from the Raft configuration.
func (e *Env) RaftRemovePeer(ctx context.Context, id, address string) error {
	if (id == "") == (address == "") {
		return errors.New("raft remove-peer: give exactly one of --id or --address")
	}
	if err := e.Client.RemoveRaftPeer(ctx, id, address); err != nil {
		return fmt.Errorf("raft remove-peer: %w", e.Humanize(err))
	}
	_, err := fmt.Fprintf(e.Out, "Removed peer %s%s\n", id, address)
	return err
}

// SnapshotSave writes a backup of the cluster state to path. It writes to
// a temporary file first so a failed save never leaves a truncated backup
// under the final name.
func (e *Env) SnapshotSave(ctx context.Context, path string) error {
	var n int64
	err := durable.WriteFileFrom(path, 0o600, func(w io.Writer) error {
		var err error
		n, err = e.Client.SnapshotSave(ctx, w)
		if err != nil {
			return e.Humanize(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	_, err = fmt.Fprintf(e.Out, "Saved snapshot to %s (%d bytes)\n", path, n)
	return err
}

// SnapshotRestore replaces the cluster state with the backup at path. The
// file is checked here first (the server checks it again), so a damaged
// or cut-short backup is named before anything is sent.
func (e *Env) SnapshotRestore(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	defer f.Close()
	if _, err := backup.Verify(bufio.NewReader(f)); err != nil {
		return fmt.Errorf("snapshot restore: %s: %w; nothing was sent", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	res, err := e.Client.SnapshotRestore(ctx, f)
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", e.Humanize(err))
	}
	_, err = fmt.Fprintf(e.Out, "Restored snapshot %s (cluster index now %d)\n", path, res.Index)
	return err
}
