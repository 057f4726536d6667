package server

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/internal/structs"
)

// Raft entry formats across builds (a rolling upgrade).
//
// Every server advertises the highest entry format its build applies in its
// ServerMember record (RaftProtocol), which it has the leader upsert through
// Raft when it joins or restarts (cluster.go: ensureMember, joinMember).
// The leader proposes plans and agents' reports in the binary types only
// while every server in the Raft configuration has a record at
// RaftProtocolBinary or above; otherwise in the JSON types, which every
// build applies. It proposes garbage collection (GCRequestType, which has
// no older equivalent) only while every server is at RaftProtocolGC;
// until then it collects nothing. A server without a record (it is joining) or with a record
// written by an older build (no field) counts as RaftProtocolJSON until it
// registers again.
//
// The decision is cached in an atomic flag that raftPropose reads per
// entry. One goroutine (entryFormatLoop) recomputes it from the latest Raft
// configuration and the servers table whenever either may have changed: the
// FSM applied a server record or a snapshot (fsm.onMembers), the leader
// started or stopped replicating to a peer (a configuration change, and
// every gain of leadership: raft.PeerObservation), or the leader changed.
// Until the first computation the flag is off (JSON: always safe).
//
// A server that nevertheless receives an entry type it does not know (the
// guard was bypassed: an older build added to a cluster that already
// switched, or a downgrade) cannot refuse it: hashicorp/raft has committed
// it. Skipping it would leave this server's state silently behind the
// others', and as leader it would schedule from that state (over-commit). So
// the server records the entry (log at error, gantry_raft_unknown_entries_total,
// /v1/status/self, `gantry server members` shows it "diverged") and stops
// its Raft: it leaves the quorum as a crashed server would and can never
// lead, while its API stays up to say why. Restarting it with the current
// build replays the entry and it catches up.

// entryFormat is the leader's cached choice of entry format.
type entryFormat struct {
	// binary is read per proposed entry: propose the binary types.
	binary atomic.Bool
	// gc allows garbage collection entries (GCRequestType): every server
	// applies them (RaftProtocolGC). Before, the leader collects nothing.
	gc atomic.Bool
	// status is the last computation, for the operator API.
	status atomic.Pointer[formatStatus]
	// kick asks entryFormatLoop to recompute (capacity 1: one pending
	// request covers any number of changes before it runs).
	kick chan struct{}
}

// formatStatus is one computation of the cluster's entry format.
type formatStatus struct {
	// protocol is the lowest entry format every server applies.
	protocol int
	// behind names the servers below structs.RaftProtocolCurrent.
	behind []string
}

func newEntryFormat() *entryFormat {
	return &entryFormat{kick: make(chan struct{}, 1)}
}

// changed asks for a recomputation; it never blocks (the FSM calls it).
func (f *entryFormat) changed() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// clusterProtocol returns the lowest entry format every server in servers
// applies, and the servers (name or ID) below structs.RaftProtocolCurrent.
// self applies selfProtocol whatever its record says (it is this build).
// A server without a record counts as structs.RaftProtocolJSON.
func clusterProtocol(servers []raft.Server, self string, selfProtocol int, member func(id string) *structs.ServerMember) (int, []string) {
	if len(servers) == 0 {
		return structs.RaftProtocolJSON, nil
	}
	lowest := structs.RaftProtocolCurrent
	var behind []string
	for _, sv := range servers {
		id := string(sv.ID)
		p, name := structs.RaftProtocolJSON, id+" (no record)"
		if m := member(id); m != nil {
			p, name = m.Protocol(), cmp.Or(m.Name, id)
		}
		if id == self {
			p = selfProtocol
		}
		lowest = min(lowest, p)
		if p < structs.RaftProtocolCurrent {
			behind = append(behind, fmt.Sprintf("%s: protocol %d", name, p))
		}
	}
	slices.Sort(behind)
	return lowest, behind
}

// advertisedProtocol is the entry format this server applies.
func (s *Server) advertisedProtocol() int {
	if s.cfg.raftProtocol > 0 {
		return s.cfg.raftProtocol
	}
	return structs.RaftProtocolCurrent
}

// entryFormatLoop recomputes the entry format whenever the servers or the
// Raft configuration may have changed, until shutdown; it stops Raft if the
// FSM met an entry type it does not know.
func (s *Server) entryFormatLoop() {
	obsCh := make(chan raft.Observation, 1)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.PeerObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	s.raft.RegisterObserver(obs)
	defer s.raft.DeregisterObserver(obs)
	for {
		s.refreshEntryFormat()
		select {
		case <-s.shutdownCh:
			return
		case <-s.divergedCh:
			s.stopDivergedRaft()
			return
		case <-obsCh:
		case <-s.format.kick:
		}
	}
}

// refreshEntryFormat recomputes the flag from the latest Raft configuration
// and the servers table, and logs when the format changes.
func (s *Server) refreshEntryFormat() {
	conf, _, err := s.raftConfig()
	if err != nil {
		return // Raft is shutting down: nothing is proposed any more
	}
	proto, behind := clusterProtocol(conf.Servers, s.id, s.advertisedProtocol(), s.state.Snapshot().ServerMember)
	prev := s.format.status.Swap(&formatStatus{protocol: proto, behind: behind})
	binary := proto >= structs.RaftProtocolBinary
	s.format.binary.Store(binary)
	if gc := proto >= structs.RaftProtocolGC; s.format.gc.Swap(gc) != gc && !gc && len(conf.Servers) > 0 {
		s.logger.Info("garbage collection waits until every server applies its entries", "protocol", proto, "behind", strings.Join(behind, ", "))
	}
	if prev != nil && (prev.protocol >= structs.RaftProtocolBinary) == binary {
		return
	}
	if binary {
		s.logger.Info("every server applies binary entries: proposing plans and reports in them", "protocol", proto)
	} else if len(conf.Servers) > 0 {
		s.logger.Info("proposing JSON entries until every server applies binary ones", "protocol", proto, "behind", strings.Join(behind, ", "))
	}
}

// entryFormatName describes the format this server proposes in.
func (s *Server) entryFormatName() string {
	st := s.format.status.Load()
	switch {
	case st == nil:
		return "json (not computed yet)"
	case st.protocol >= structs.RaftProtocolBinary:
		return fmt.Sprintf("binary (protocol %d)", st.protocol)
	}
	return fmt.Sprintf("json (protocol %d; waiting for %s)", st.protocol, strings.Join(st.behind, ", "))
}

// unknownEntry runs on the FSM goroutine when a committed entry has a type
// this build does not know: record it loudly and have entryFormatLoop stop
// this server's Raft (see the comment at the top of this file). It may run
// while Start is still setting up Raft (replaying the log), so it touches
// nothing but atomics, the metric and the log.
func (s *Server) unknownEntry(index uint64, t structs.MessageType) {
	s.metrics.unknownEntries.Inc()
	s.logger.Error("raft entry of a type this build does not know: this server's state is behind the cluster's; stopping its raft. Upgrade it to the leader's build and restart it",
		"index", index, "type", int(t), "protocol", s.advertisedProtocol())
	if s.diverged.CompareAndSwap(0, index) {
		close(s.divergedCh)
	}
}

// stopDivergedRaft stops Raft after an unknown entry. raft.Shutdown waits
// for the FSM goroutine, so the FSM cannot call it itself. The format goes
// back to JSON first, so no one sees Raft stopped and binary still chosen.
func (s *Server) stopDivergedRaft() {
	s.format.binary.Store(false)
	s.format.gc.Store(false)
	if err := s.raft.Shutdown().Error(); err != nil {
		s.logger.Error("stopping raft after an unknown entry", "error", err)
	}
}
