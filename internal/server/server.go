// Package server is gantry's control plane: a Raft-replicated state store,
// the HTTP API, and the leader's duties (heartbeat monitoring, the plan
// applier, the scheduler loop and periodic reconciliation).
//
// Goroutines: Raft's own (the FSM runs on one of them); the HTTP server;
// monitorLeadership, the only reader of raft.LeaderCh, which starts
// leaderLoop on gaining leadership and cancels and waits for it on losing
// it; leaderLoop runs the scheduler (the architecture --scheduler picks) and the reconcile
// ticker; heartbeat timers fire on their own goroutines. Every state change
// is a Raft entry proposed through raftApply; handlers and leader duties
// read the store through snapshots.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/scheduler/twolevel"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/stream"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// ErrNotLeader means this server cannot do what was asked because it is not
// (or no longer, or not yet fully) the Raft leader; the API answers 503.
// Requests that reach a follower are forwarded to the leader instead.
var ErrNotLeader = errors.New("this server is not the cluster leader")

// ErrOutcomeUnknown marks a write whose entry Raft had taken when this
// server lost its leadership (or stopped): it may still commit. The
// answer is 503 with api.OutcomeHeader set, so a client does not send
// the write again elsewhere, where it could apply twice.
var ErrOutcomeUnknown = errors.New("the write's outcome is unknown (leadership lost while committing it)")

// Server is one gantry server. Create it with New, then Start; Shutdown
// stops it. All methods are safe for concurrent use.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	state   *state.Store
	fsm     *fsm
	now     func() time.Time
	metrics *metrics
	sched   scheduler.Architecture
	// blocked tracks the jobs waiting for room, to enqueue them when
	// room grows (blocked.go).
	blocked *blockedJobs
	hb      *heartbeats
	updates *updateBatcher // coalesces agents' status reports
	// periodic launches periodic jobs' children on the leader (periodic.go).
	periodic *periodicLauncher
	// deployWatch follows deployments on the leader (deployment.go).
	deployWatch deploymentWatcher
	// acls resolves tokens to permissions, cached (acl_resolve.go).
	acls *aclResolver
	// peerRole, when set, returns the role ("server", "agent", "client")
	// a request's verified TLS certificate names, "" for none
	// (acl_check.go). Set before Start.
	peerRole func(*http.Request) string
	// aclRand is where token IDs and secrets come from (nil:
	// crypto/rand).
	aclRand io.Reader
	// events fans committed changes out to GET /v1/event/stream (events.go).
	events *stream.Broker
	// catalog remembers the service catalog's change indexes (http_services.go).
	catalog catalogMemo

	// forwarder proxies requests to the leader; peerHTTP makes
	// server-to-server calls (discovery, join, probes).
	forwarder *httputil.ReverseProxy
	peerHTTP  *http.Client
	// leaderReady is true while this server leads and its barrier has
	// completed (its state holds every committed entry).
	leaderReady atomic.Bool
	// format is the Raft entry format the leader proposes in, kept by
	// entryFormatLoop (entry_format.go).
	format *entryFormat
	// diverged is the index of the first entry of a type this build does
	// not know (0: none); divergedCh closes then.
	diverged   atomic.Uint64
	divergedCh chan struct{}

	// Set by Start.
	id        string // Raft server ID (persisted in DataDir)
	hadState  bool   // Raft found existing state at start
	raft      *raft.Raft
	transport *raft.NetworkTransport
	stream    *trackingStream // the transport's stream layer
	logStore  raftStore       // raft log and stable store (raft.go)
	logWrites atomic.Uint64   // log writes started (raft.go, countingLogStore)
	httpLn    net.Listener
	httpSrv   *http.Server
	// logClient proxies task logs from agents.
	logClient *http.Client
	// execRelays counts the alloc exec sessions relayed (http_alloc_ops.go).
	execRelays atomic.Int64
	// diskFree, if set, replaces statfs for the spool's free-space checks
	// (tests).
	diskFree func(dir string) (uint64, error)
	// tls holds the CA and this server's keypair when TLS is on (nil:
	// off); Reload swaps them (tls.go).
	tls *tlsutil.Store

	// plans is the plan applier: it checks plans one at a time against
	// the state plus the plans checked before (never over-commit) and
	// commits them in order, in batches (plan_pipeline.go).
	plans planPipeline
	// jobs group-commits job writes, versioning each against the state
	// plus the writes queued before it (job_batch.go).
	jobs jobWriter
	// gcMu serializes garbage collection runs (gc.go).
	gcMu sync.Mutex

	mu           sync.Mutex
	started      bool
	shutdown     bool
	leaderCancel context.CancelFunc // guarded by mu; non-nil while leading
	leaderDone   chan struct{}      // guarded by mu
	shutdownCh   chan struct{}
	discovered   map[string]*structs.ServerMember // guarded by mu; by discovery
	wg           sync.WaitGroup
	// baseCtx is the context of every HTTP request; Shutdown cancels it so
	// blocking queries and log streams end at once.
	baseCtx    context.Context
	baseCancel context.CancelFunc
}

// New validates cfg (Config.Validate) and builds a server without starting
// anything.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := state.New()
	if err == nil {
		st.SetJobVersionsKept(cfg.JobVersionsKept)
	}
	if err != nil {
		return nil, err
	}
	var certs *tlsutil.Store
	if cfg.TLS.Enabled() {
		if certs, err = tlsutil.Load(cfg.TLS, tlsutil.RoleServer); err != nil {
			return nil, fmt.Errorf("invalid server config: %w", err)
		}
	}
	s := &Server{
		cfg:        cfg,
		logger:     cfg.Logger,
		state:      st,
		now:        time.Now,
		shutdownCh: make(chan struct{}),
		format:     newEntryFormat(),
		divergedCh: make(chan struct{}),
		tls:        certs,
		periodic:   newPeriodicLauncher(),
	}
	if certs != nil {
		// A verified server certificate may call operator routes without
		// a token (servers joining each other; acl_check.go).
		s.peerRole = func(r *http.Request) string {
			role, _ := tlsutil.RoleFromContext(r.Context())
			return string(role)
		}
	}
	s.logClient = newLogClient(s.tlsClient(tlsutil.RoleAgent))
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
	s.plans.s, s.plans.max = s, cfg.PlanBatch
	s.jobs.s = s
	s.forwarder = s.newForwarder()
	s.peerHTTP = newPeerHTTP(s.tlsClient(tlsutil.RoleServer))
	s.fsm = &fsm{state: st, logger: cfg.Logger.With("component", "fsm")}
	s.acls = newACLResolver(st, cfg.Logger.With("component", "acl"))
	s.metrics = newMetrics()
	s.fsm.onMembers, s.fsm.onUnknown = s.format.changed, s.unknownEntry
	bcfg := cfg.Events.Broker
	bcfg.Logger = cfg.Logger.With("component", "events")
	if s.events, err = stream.New(bcfg); err != nil {
		return nil, fmt.Errorf("invalid server config: %w", err)
	}
	s.fsm.events = s.events
	s.blocked = newBlockedJobs(st.Snapshot, func(jobID string, priority int) { s.sched.Enqueue(jobID, priority) })
	var evaluated func(scheduler.Evaluation)
	if cfg.Scheduler.Architecture != architecture.TwoLevel {
		evaluated = s.blocked.evaluated
	}
	if s.sched, err = newScheduler(cfg, s.metrics.registry, func() (scheduler.State, error) { return s.plans.snapshot(), nil }, s, evaluated); err != nil {
		return nil, err
	}
	s.metrics.registerBlocked(s.blocked)
	if tl, ok := s.sched.(*twolevel.Scheduler); ok {
		tl.SetLauncher(taskLauncher{s})
	}
	s.hb = newHeartbeats(s.heartbeatExpired)
	s.updates = &updateBatcher{s: s}
	return s, nil
}

// newScheduler builds the architecture cfg.Scheduler picks over the given
// views and planner; evaluated (may be nil) hears of every evaluation.
func newScheduler(cfg Config, reg prometheus.Registerer, snapshot func() (scheduler.State, error), planner scheduler.Planner,
	evaluated func(scheduler.Evaluation)) (scheduler.Architecture, error) {
	sched, err := architecture.New(cfg.Scheduler, scheduler.Env{
		Snapshot:   snapshot,
		Planner:    planner,
		Logger:     cfg.Logger,
		Registerer: reg,
		Evaluated:  evaluated,
	})
	if err != nil {
		return nil, fmt.Errorf("invalid server config: %w", err)
	}
	return sched, nil
}

// Registry returns the server's Prometheus registry (served at /metrics).
func (s *Server) Registry() *prometheus.Registry { return s.metrics.registry }

// State returns the server's state store (read it; never write to it:
// writes go through Raft).
func (s *Server) State() *state.Store { return s.state }

// Start opens the data directory, starts Raft and the HTTP API.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.started || s.shutdown {
		s.mu.Unlock()
		return errors.New("server already started or shut down; create a new one")
	}
	s.started = true
	s.mu.Unlock()

	if err := s.setupRaft(); err != nil {
		_ = s.closeRaft() // the setup error is the one to report
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		_ = s.closeRaft() // the listen error is the one to report
		return fmt.Errorf("http_addr %s: %w", s.cfg.HTTPAddr, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls.ServerConfig())
	}
	s.httpLn = ln
	s.httpSrv = &http.Server{
		Handler:           s.identify(s.handler()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		// Refused TLS handshakes are logged here, with the reason.
		ErrorLog: slog.NewLogLogger(s.logger.With("component", "http").Handler(), slog.LevelWarn),
	}
	s.wg.Add(4)
	go func() {
		defer s.wg.Done()
		s.entryFormatLoop()
	}()
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", "error", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.monitorLeadership()
	}()
	go func() {
		defer s.wg.Done()
		s.clusterLoop()
	}()
	s.logger.Info("server started", "http", ln.Addr().String(), "raft", s.transport.LocalAddr(), "data_dir", s.cfg.DataDir,
		"tls", s.tls != nil)
	for _, w := range securityWarnings(s.cfg) {
		s.logger.Warn(w)
	}
	return nil
}

// HTTPAddr returns the address the API listens on (after Start).
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Leader reports whether this server is the Raft leader.
func (s *Server) Leader() bool {
	return s.raft != nil && s.raft.State() == raft.Leader
}

// Shutdown stops the API, the leader duties and Raft. It is idempotent.
func (s *Server) Shutdown() error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return nil
	}
	s.shutdown = true
	close(s.shutdownCh)
	s.mu.Unlock()

	var errs []error
	s.baseCancel()
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// Blocking queries and log streams end with their request context.
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			_ = s.httpSrv.Close()
		}
		cancel()
	}
	s.revokeLeadership()
	s.wg.Wait()
	errs = append(errs, s.closeRaft())
	s.events.Close()
	s.logClient.CloseIdleConnections()
	s.peerHTTP.CloseIdleConnections()
	if t, ok := s.forwarder.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	return errors.Join(errs...)
}
