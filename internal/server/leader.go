package server

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/structs"
)

// monitorLeadership starts the leader duties when this server gains
// leadership and stops them when it loses it. It is the only reader of
// raft.LeaderCh: another reader would steal the notifications.
func (s *Server) monitorLeadership() {
	for {
		select {
		case <-s.shutdownCh:
			return
		case isLeader := <-s.raft.LeaderCh():
			// Two "true" in a row mean leadership was lost and regained
			// while we were busy: restart the duties either way.
			s.revokeLeadership()
			if isLeader {
				s.establishLeadership()
			}
		}
	}
}

// establishLeadership starts the leader duties in their own goroutine.
func (s *Server) establishLeadership() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return
	}
	ctx, cancel := context.WithCancel(s.baseCtx)
	done := make(chan struct{})
	s.leaderCancel, s.leaderDone = cancel, done
	go func() {
		defer close(done)
		s.leaderLoop(ctx)
	}()
}

// revokeLeadership stops the leader duties and waits for them to end.
func (s *Server) revokeLeadership() {
	s.mu.Lock()
	cancel, done := s.leaderCancel, s.leaderDone
	s.leaderCancel, s.leaderDone = nil, nil
	s.mu.Unlock()
	s.leaderReady.Store(false)
	if cancel == nil {
		return
	}
	cancel()
	<-done
	// Again: the loop may have set it between the store above and cancel.
	s.leaderReady.Store(false)
	s.hb.stop()
	s.logger.Info("leader duties stopped", "id", s.id, "name", s.cfg.NodeName)
}

// leaderLoop runs while this server leads: a barrier so the local state has
// every committed entry, then heartbeat timers, the scheduler, garbage
// collection (gc.go) and the periodic reconciliation.
func (s *Server) leaderLoop(ctx context.Context) {
	for {
		err := s.raft.Barrier(s.cfg.ApplyTimeout).Error()
		if err == nil {
			break
		}
		s.logger.Warn("leader barrier failed; retrying", "error", err)
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrRaftShutdown) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.RaftTimeout):
		}
	}
	s.leaderReady.Store(true)
	s.logger.Info("leader duties started", "id", s.id, "name", s.cfg.NodeName)

	// Activate the timers before reading the nodes, so a node registering
	// meanwhile gets its timer either from its own register or from here.
	s.hb.start(nil, 0)
	snap := s.state.Snapshot()
	var ready []string
	for _, n := range snap.Nodes() {
		if n.Status == structs.NodeStatusReady {
			ready = append(ready, n.ID)
		}
	}
	s.hb.start(ready, s.cfg.HeartbeatTTL+s.cfg.heartbeatGrace())

	// The blocked set tracks from here, before any evaluation ends.
	blockedDone := make(chan struct{})
	if s.cfg.Scheduler.Architecture != architecture.TwoLevel {
		s.blocked.start(snap.Index())
		go func() {
			defer close(blockedDone)
			s.blocked.run(ctx)
		}()
	} else {
		close(blockedDone)
	}
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		s.sched.Run(ctx)
	}()
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		s.gcLoop(ctx)
	}()
	periodicDone := make(chan struct{})
	go func() {
		defer close(periodicDone)
		s.periodicLoop(ctx)
	}()
	deployDone := make(chan struct{})
	go func() {
		defer close(deployDone)
		s.deploymentLoop(ctx)
	}()
	s.enqueueAllJobs()

	tick := time.NewTicker(s.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			<-schedDone
			<-blockedDone
			<-gcDone
			<-periodicDone
			<-deployDone
			return
		case <-tick.C:
			s.enqueueAllJobs()
		}
	}
}

// enqueueAllJobs asks the scheduler to reconcile every job.
func (s *Server) enqueueAllJobs() {
	for _, j := range s.state.Snapshot().Jobs() {
		s.sched.Enqueue(j.ID, j.Priority)
	}
}

// enqueueJob asks the scheduler to reconcile one job, if it still exists
// (a purged job has nothing left to reconcile).
func (s *Server) enqueueJob(jobID string) {
	if j := s.state.Snapshot().JobByID(jobID); j != nil {
		s.sched.Enqueue(j.ID, j.Priority)
	}
}

// enqueueNodeJobs enqueues the jobs with allocations on a node (it went
// down or is draining).
func (s *Server) enqueueNodeJobs(nodeID string) {
	snap := s.state.Snapshot()
	seen := map[string]bool{}
	for _, a := range snap.AllocsByNode(nodeID) {
		if seen[a.JobID] {
			continue
		}
		seen[a.JobID] = true
		if j := snap.JobByID(a.JobID); j != nil {
			s.sched.Enqueue(j.ID, j.Priority)
		}
	}
}

// enqueueBlockedJobs is told that nodes became available at index
// (registered, back, no longer draining): it enqueues every system and
// sysbatch job (a node may be one they must run on) and the blocked jobs
// those nodes admit (blocked.go). When the blocked set does not cover
// every waiting job (two-level, or the set overflowed) it enqueues every
// job with a stored placement failure instead.
func (s *Server) enqueueBlockedJobs(index uint64, nodeIDs ...string) {
	snap := s.state.Snapshot()
	s.enqueuePerNodeJobs(snap)
	if s.blocked.roomGrew(index, nodeIDs...) {
		return
	}
	for _, f := range snap.PlacementFailures() {
		if j := snap.JobByID(f.JobID); j != nil {
			s.sched.Enqueue(j.ID, j.Priority)
		}
	}
}

// heartbeatExpired runs on a timer goroutine when a node missed its TTL:
// propose it down (its allocations become lost) and reschedule its jobs.
func (s *Server) heartbeatExpired(nodeID string) {
	select {
	case <-s.shutdownCh:
		return
	default:
	}
	n := s.state.Snapshot().NodeByID(nodeID)
	if n == nil || n.Status == structs.NodeStatusDown {
		return
	}
	s.metrics.heartbeatMisses.Inc()
	s.logger.Warn("node missed its heartbeat; marking it down", "node", nodeID, "name", n.Name, "ttl", s.cfg.HeartbeatTTL)
	_, _, err := s.raftApply(structs.NodeUpdateStatusRequestType, &structs.NodeUpdateStatusRequest{
		NodeID: nodeID, Status: structs.NodeStatusDown, Time: s.now().UnixNano(),
	})
	if err != nil {
		s.logger.Error("marking node down; will retry after another TTL", "node", nodeID, "error", err)
		s.hb.reset(nodeID, s.cfg.HeartbeatTTL)
		return
	}
	s.enqueueNodeJobs(nodeID)
}
