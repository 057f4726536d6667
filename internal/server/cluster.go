package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// How servers find each other (HTTP join, no gossip):
//
//   - Every server answers GET /v1/status/self with its Raft ID, Raft and
//     API addresses, the servers it has discovered and whether it already
//     belongs to a bootstrapped cluster.
//   - A new server with BootstrapExpect N > 1 polls its Join addresses (and,
//     transitively, what they discovered). Once it knows exactly N servers
//     and none is bootstrapped, it bootstraps Raft with those N as voters.
//     Every one of the N does the same with the identical configuration,
//     which hashicorp/raft accepts (the same entry at index 1 everywhere),
//     so there is never a split bootstrap. A server that finds a
//     bootstrapped one joins through it instead.
//   - Once in a cluster, each server makes sure the replicated servers table
//     holds its current addresses (and Raft lists it as a voter), by asking
//     the leader through POST /v1/operator/raft/join. This is also how a
//     restarted server with new addresses, or a new server, joins.
//
// Followers find the leader's API address in the servers table to forward
// requests to it (forward.go).

// ErrNoLeader means no leader is known (an election is under way or this
// server is cut off from the majority); the API answers 503.
var ErrNoLeader = errors.New("no cluster leader is known")

const (
	clusterRetryMin = 200 * time.Millisecond
	clusterRetryMax = 2 * time.Second
	peerTimeout     = 2 * time.Second
	// maxDiscover bounds the addresses one discovery round asks (a cluster
	// has 3 or 5 servers; a bad answer must not make us crawl forever).
	maxDiscover = 32
)

// singleBootstrap reports whether this server bootstraps a one-server
// cluster on its first start.
func (s *Server) singleBootstrap() bool {
	return s.cfg.BootstrapExpect == 1 || (s.cfg.BootstrapExpect == 0 && len(s.cfg.Join) == 0)
}

// advertiseHTTP is the API address other servers use for this one.
func (s *Server) advertiseHTTP() string {
	if s.cfg.AdvertiseHTTPAddr != "" {
		return s.cfg.AdvertiseHTTPAddr
	}
	return s.HTTPAddr()
}

// self describes this server.
func (s *Server) self() *structs.ServerMember {
	return &structs.ServerMember{
		ID: s.id, Name: s.cfg.NodeName,
		RaftAddr: string(s.transport.LocalAddr()), HTTPAddr: s.advertiseHTTP(),
		RaftProtocol: s.advertisedProtocol(),
	}
}

// raftConfig returns the latest Raft configuration (possibly uncommitted).
func (s *Server) raftConfig() (raft.Configuration, uint64, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, 0, fmt.Errorf("raft configuration: %w", err)
	}
	return f.Configuration(), f.Index(), nil
}

// bootstrapped reports whether this server belongs to a Raft cluster.
func (s *Server) bootstrapped() bool {
	c, _, err := s.raftConfig()
	return err == nil && len(c.Servers) > 0
}

// clusterLoop runs until this server is in a cluster with its addresses
// recorded, or until shutdown.
func (s *Server) clusterLoop() {
	wait := clusterRetryMin
	var lastErr string
	for {
		ctx, cancel := context.WithTimeout(s.baseCtx, 3*peerTimeout)
		done, err := s.clusterStep(ctx)
		cancel()
		if done {
			s.logger.Info("cluster membership up to date", "id", s.id)
			return
		}
		if err != nil && err.Error() != lastErr {
			lastErr = err.Error()
			s.logger.Info("waiting to join the cluster", "reason", err)
		}
		select {
		case <-s.shutdownCh:
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, clusterRetryMax)
	}
}

// clusterStep makes one attempt to discover, bootstrap or join, and
// reports whether nothing is left to do.
func (s *Server) clusterStep(ctx context.Context) (bool, error) {
	if s.bootstrapped() {
		return s.ensureMember(ctx)
	}
	known, existing := s.discover(ctx)
	if existing != "" {
		if err := s.joinThrough(ctx, existing, s.self()); err != nil {
			return false, fmt.Errorf("joining through %s: %w", existing, err)
		}
		return false, nil // the leader replicates the configuration to us
	}
	expect := s.cfg.BootstrapExpect
	switch {
	case expect <= 1:
		return false, fmt.Errorf("no bootstrapped server found through %v", s.cfg.Join)
	case len(known) < expect:
		return false, fmt.Errorf("found %d of %d servers (bootstrap_expect)", len(known), expect)
	case len(known) > expect:
		return false, fmt.Errorf("found %d servers but bootstrap_expect is %d; refusing to bootstrap", len(known), expect)
	}
	conf := raft.Configuration{}
	for _, m := range known {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr),
		})
	}
	slices.SortFunc(conf.Servers, func(a, b raft.Server) int { return cmpString(string(a.ID), string(b.ID)) })
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return false, fmt.Errorf("bootstrapping raft: %w", err)
	}
	s.logger.Info("bootstrapped a cluster", "servers", len(conf.Servers))
	return false, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// discover asks the Join addresses, and transitively what they know, who
// they are. It returns every server found (this one included) and the API
// address of a bootstrapped one, if any.
func (s *Server) discover(ctx context.Context) (map[string]*structs.ServerMember, string) {
	me := s.self()
	known := map[string]*structs.ServerMember{me.ID: me}
	queue := slices.Clone(s.cfg.Join)
	asked := map[string]bool{me.HTTPAddr: true}
	existing := ""
	for len(queue) > 0 {
		addr := queue[0]
		queue = queue[1:]
		if asked[addr] {
			continue
		}
		if len(asked) > maxDiscover {
			s.logger.Warn("discovery found too many server addresses; ignoring the rest", "limit", maxDiscover)
			break
		}
		asked[addr] = true
		c, err := s.peerClient(addr)
		if err != nil {
			continue
		}
		info, err := c.ServerSelf(ctx)
		if err != nil {
			s.logger.Debug("server not reachable yet", "addr", addr, "error", err)
			continue
		}
		m := info.Member
		if m.ID == me.ID {
			continue
		}
		known[m.ID] = &m
		if info.Bootstrapped && existing == "" {
			existing = addr
		}
		for _, k := range info.Known {
			if k != nil && !asked[k.HTTPAddr] {
				queue = append(queue, k.HTTPAddr)
			}
		}
	}
	s.mu.Lock()
	s.discovered = known
	s.mu.Unlock()
	return known, existing
}

// knownMembers returns what discovery found (for /v1/status/self).
func (s *Server) knownMembers() []*structs.ServerMember {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*structs.ServerMember, 0, len(s.discovered))
	for _, m := range s.discovered {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *structs.ServerMember) int { return cmpString(a.ID, b.ID) })
	return out
}

// ensureMember asks the leader to record this server's current addresses
// (and keep it a voter). It reports true once both are in place.
func (s *Server) ensureMember(ctx context.Context) (bool, error) {
	me := s.self()
	if s.memberCurrent(me) {
		return true, nil
	}
	if s.Leader() {
		return false, s.joinMember(me)
	}
	addr, err := s.leaderHTTPAddr()
	if err != nil {
		// The servers table may not name the leader yet: go through the
		// Join addresses, which forward.
		for _, j := range s.cfg.Join {
			if j == me.HTTPAddr {
				continue
			}
			if err = s.joinThrough(ctx, j, me); err == nil {
				return false, nil
			}
		}
		return false, fmt.Errorf("asking the leader to record this server: %w", err)
	}
	if err := s.joinThrough(ctx, addr, me); err != nil {
		return false, fmt.Errorf("asking the leader at %s to record this server: %w", addr, err)
	}
	return false, nil
}

// memberCurrent reports whether Raft lists m as a voter at its address and
// the servers table holds its current addresses.
func (s *Server) memberCurrent(m *structs.ServerMember) bool {
	conf, _, err := s.raftConfig()
	if err != nil {
		return false
	}
	inConf := slices.ContainsFunc(conf.Servers, func(sv raft.Server) bool {
		return string(sv.ID) == m.ID && string(sv.Address) == m.RaftAddr && sv.Suffrage == raft.Voter
	})
	rec := s.state.Snapshot().ServerMember(m.ID)
	return inConf && rec != nil && sameMember(rec, m)
}

// sameMember compares what a server advertises; a record written by an
// older build (no protocol) differs from the same server's after an upgrade,
// so the upgraded server registers again and the leader learns its format.
func sameMember(a, b *structs.ServerMember) bool {
	return a.ID == b.ID && a.Name == b.Name && a.RaftAddr == b.RaftAddr && a.HTTPAddr == b.HTTPAddr &&
		a.Protocol() == b.Protocol()
}

// joinMember runs on the leader: make m a voter at its Raft address and
// record its addresses.
func (s *Server) joinMember(m *structs.ServerMember) error {
	if err := m.Validate(); err != nil {
		return badRequest("%v", err)
	}
	if !s.Leader() {
		return ErrNotLeader
	}
	conf, _, err := s.raftConfig()
	if err != nil {
		return err
	}
	present := false
	for _, sv := range conf.Servers {
		switch {
		case string(sv.ID) == m.ID:
			present = string(sv.Address) == m.RaftAddr && sv.Suffrage == raft.Voter
		case string(sv.Address) == m.RaftAddr:
			// The same address under another ID: that server's data dir
			// was wiped. Remove the stale entry, or it would count towards
			// the quorum without ever voting.
			s.logger.Warn("removing stale raft peer with the joining server's address", "old_id", sv.ID, "new_id", m.ID)
			if err := s.raft.RemoveServer(sv.ID, 0, s.cfg.ApplyTimeout).Error(); err != nil {
				return raftErr("removing stale peer", err)
			}
			_, _, _ = s.raftApplyStoppable(structs.ServerMemberDeleteRequestType, &structs.ServerMemberDeleteRequest{ID: string(sv.ID)})
		}
	}
	if !present {
		s.logger.Info("adding server as a raft voter", "id", m.ID, "name", m.Name, "raft", m.RaftAddr)
		if err := s.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, s.cfg.ApplyTimeout).Error(); err != nil {
			return raftErr("adding voter", err)
		}
	}
	if rec := s.state.Snapshot().ServerMember(m.ID); rec != nil && sameMember(rec, m) {
		return nil
	}
	c := *m
	c.CreateIndex, c.ModifyIndex = 0, 0
	_, _, err = s.raftApplyStoppable(structs.ServerMemberUpsertRequestType, &structs.ServerMemberUpsertRequest{Member: &c})
	return err
}

// removePeer runs on the leader: drop a server from Raft and the servers
// table, by ID or Raft address.
func (s *Server) removePeer(id, addr string) (string, error) {
	conf, _, err := s.raftConfig()
	if err != nil {
		return "", err
	}
	for _, sv := range conf.Servers {
		if (id != "" && string(sv.ID) == id) || (addr != "" && string(sv.Address) == addr) {
			if err := s.raft.RemoveServer(sv.ID, 0, s.cfg.ApplyTimeout).Error(); err != nil {
				return "", raftErr("removing peer", err)
			}
			// The old leader may have removed itself: the delete is then
			// retried by nobody, and a stale row only shows in listings.
			_, _, err := s.raftApplyStoppable(structs.ServerMemberDeleteRequestType, &structs.ServerMemberDeleteRequest{ID: string(sv.ID)})
			if err != nil && !errors.Is(err, ErrNotLeader) {
				return string(sv.ID), err
			}
			return string(sv.ID), nil
		}
	}
	return "", notFound("no raft peer with id %q or address %q", id, addr)
}

// raftErr maps Raft's leadership errors to ErrNotLeader (503).
func raftErr(what string, err error) error {
	if errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
		// the entry may have been appended and may still commit
		return fmt.Errorf("%s: %w: %w (%w)", what, ErrNotLeader, ErrOutcomeUnknown, err)
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return fmt.Errorf("%s: %w (%w)", what, ErrNotLeader, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// leaderHTTPAddr returns the leader's API address from the servers table
// (or from discovery, before the table names it).
func (s *Server) leaderHTTPAddr() (string, error) {
	_, id := s.raft.LeaderWithID()
	if id == "" {
		return "", ErrNoLeader
	}
	if string(id) == s.id {
		return "", fmt.Errorf("%w: this server was leader and is not any more", ErrNoLeader)
	}
	if m := s.state.Snapshot().ServerMember(string(id)); m != nil {
		return m.HTTPAddr, nil
	}
	s.mu.Lock()
	m := s.discovered[string(id)]
	s.mu.Unlock()
	if m != nil {
		return m.HTTPAddr, nil
	}
	return "", fmt.Errorf("%w: the API address of leader %s is not known yet", ErrNoLeader, id)
}

// peerClient returns an API client for another server.
func (s *Server) peerClient(addr string) (*api.Client, error) {
	if !strings.Contains(addr, "://") {
		addr = s.scheme() + "://" + addr
	}
	c, err := api.NewClient(api.Config{Address: addr, HTTPClient: s.peerHTTP, Token: s.cfg.ACL.Token})
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", addr, err)
	}
	return c, nil
}

// joinThrough asks the server at addr (which forwards to the leader) to
// add and record m.
func (s *Server) joinThrough(ctx context.Context, addr string, m *structs.ServerMember) error {
	c, err := s.peerClient(addr)
	if err != nil {
		return err
	}
	err = c.JoinServer(ctx, m)
	var ae *api.APIError
	if m.RaftProtocol != 0 && errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest &&
		strings.Contains(ae.Message, "raft_protocol") {
		// A build from before the field refuses it (unknown field): join
		// without it. The record then says RaftProtocolJSON, so this
		// server keeps asking (memberCurrent) and the field is recorded
		// once a newer build leads (docs/operations.md, upgrades).
		old := *m
		old.RaftProtocol = 0
		err = c.JoinServer(ctx, &old)
	}
	return err
}

// newPeerHTTP is the client for server-to-server calls: short timeouts,
// these are small requests. tlsCfg is nil without TLS. It follows no
// redirects: a server answers other servers directly, and a 3xx would send
// the call elsewhere.
func newPeerHTTP(tlsCfg *tls.Config) *http.Client {
	return &http.Client{Timeout: peerTimeout, Transport: &http.Transport{
		MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, TLSClientConfig: tlsCfg,
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
