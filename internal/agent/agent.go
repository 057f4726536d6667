// Package agent is the node agent: it fingerprints the machine, registers
// it with the servers, heartbeats, learns its allocations through a
// blocking query, runs them through the task drivers, reports every
// transition back, and serves task logs and metrics on its own HTTP API.
//
// The agent survives its own restart: the node ID and the allocation state
// (with each task's driver handle) live in the data dir, and a restarted
// agent re-attaches to running tasks instead of starting them again.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// Agent runs one node.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	client  *api.Client
	tls     *tlsutil.Store // nil: TLS off
	ownHTTP *http.Client   // the client New built for TLS, closed at Shutdown
	nodeID  string
	node    *structs.Node // fingerprinted template; HTTPAddr set at Start
	drivers map[string]driver.Driver
	closers []io.Closer // drivers New made, closed at Shutdown
	metrics *metrics
	health  *agentHealth // health.go
	dns     *dnsServer   // nil unless DNSAddr is set (dns.go)
	gather  prometheus.Gatherer
	store   *stateStore
	updates *updater

	mu      sync.Mutex
	runners map[string]*runner // guarded by mu
	// execSessions counts the alloc exec sessions served (alloc_ops.go).
	execSessions atomic.Int64
	started      bool
	stopped      bool

	ln         net.Listener
	httpServer *http.Server
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	registered     chan struct{} // closed after the first registration
	registeredOnce sync.Once
	reregister     chan struct{} // the server does not know this node
}

// New validates cfg, loads (or creates) the node identity and fingerprints
// the machine. Nothing runs until Start.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	certs, ownHTTP, err := agentTLS(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = ownHTTP
	}
	client, err := api.NewClient(api.Config{Address: strings.Join(serverURLs(cfg.Servers, certs != nil), ","), HTTPClient: hc, Token: cfg.Token})
	if err != nil {
		return nil, fmt.Errorf("agent config: servers: %w", err)
	}
	// Task processes run in their alloc dirs: every path handed to them
	// must be absolute.
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("agent data dir %q: %w", cfg.DataDir, err)
	}
	cfg.DataDir = dataDir
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, allocsDir), 0o755); err != nil {
		return nil, fmt.Errorf("agent data dir: %w", err)
	}
	id, err := loadNodeID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	res, attrs, err := defaultFingerprinter().fingerprint()
	if err != nil {
		return nil, err
	}
	if cfg.CPU > 0 {
		res.CPU = cfg.CPU
	}
	if cfg.MemoryMB > 0 {
		res.MemoryMB = cfg.MemoryMB
	}
	name := cfg.Name
	if name == "" {
		if name, err = os.Hostname(); err != nil || name == "" {
			name = "node-" + id[:8]
		}
	}
	a := &Agent{
		cfg: cfg, log: cfg.Logger.With("node", name), client: client, nodeID: id, tls: certs, ownHTTP: ownHTTP,
		node: &structs.Node{
			ID: id, Name: name, Labels: cfg.Labels, Attributes: attrs, Capacity: res,
			Status: structs.NodeStatusReady,
		},
		drivers:    map[string]driver.Driver{},
		runners:    map[string]*runner{},
		registered: make(chan struct{}),
		reregister: make(chan struct{}, 1),
	}
	reg := cfg.Registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, a.gather = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		a.gather = g
	} else {
		a.gather = prometheus.DefaultGatherer
	}
	// The node label lets several agents (gantry dev, the simulator) share
	// one registry.
	nodeReg := prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, reg)
	if a.metrics, err = newMetrics(nodeReg); err != nil {
		return nil, fmt.Errorf("agent metrics: %w", err)
	}
	if a.health, err = newAgentHealth(nodeReg); err != nil {
		return nil, fmt.Errorf("agent metrics: %w", err)
	}
	drivers := cfg.Drivers
	if drivers == nil {
		if drivers, a.closers, err = builtinDrivers(cfg, a); err != nil {
			return nil, err
		}
	}
	fingerprintDrivers(drivers, a.node.Attributes)
	a.node.Attributes[structs.NodeAttrDynamicPorts] = cfg.DynamicPorts
	advertiseHostVolumes(cfg.HostVolumes, a.node.Attributes)
	for _, d := range drivers {
		a.drivers[d.Name()] = d
	}
	a.updates = newUpdater(cfg.UpdateWindow, cfg.Now, a.sendUpdates,
		func(d time.Duration) { a.metrics.updateLatency.Observe(d.Seconds()) })
	a.updates.permanent = refused
	return a, nil
}

// NodeID is the node's persistent ID.
func (a *Agent) NodeID() string { return a.nodeID }

// HTTPAddr is the address the agent's API listens on (after Start).
func (a *Agent) HTTPAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.node.HTTPAddr
}

// Node returns a copy of the node as the agent registers it.
func (a *Agent) Node() *structs.Node {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.node.Copy()
}

// Start opens the HTTP API, re-attaches to the tasks a previous agent
// process left running, and starts registering, heartbeating and watching
// for allocations in the background. It returns once the API listens; the
// agent runs until ctx is done or Shutdown is called.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("agent already started")
	}
	a.started = true
	a.mu.Unlock()

	fail := func(err error) error {
		// Nothing runs yet: the agent may be started again.
		a.mu.Lock()
		a.started = false
		a.mu.Unlock()
		return err
	}
	store, err := openState(a.cfg.DataDir)
	if err != nil {
		return fail(err)
	}
	a.store = store
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fail(fmt.Errorf("agent http_addr %s: %w", a.cfg.HTTPAddr, err))
	}
	a.mu.Lock()
	a.node.HTTPAddr = advertiseAddr(ln.Addr().(*net.TCPAddr))
	a.mu.Unlock()
	if a.tls != nil {
		ln = tls.NewListener(ln, a.tls.ServerConfig())
	}
	a.ln = ln
	a.node.Attributes[structs.NodeAttrNetworkIP] = a.portIP() // where the catalog says tasks are
	a.httpServer = &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second,
		// Refused TLS handshakes are logged here, with the reason.
		ErrorLog: slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelWarn)}

	ctx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	if err := a.startDNS(ctx); err != nil { // dns.go
		cancel()
		_ = ln.Close()
		return fail(err)
	}
	// Before the first registration, so a node starting on a full disk
	// never looks eligible.
	a.checkDisk()
	a.restore()
	a.goFunc(func() { a.cleanupLoop(ctx) })
	a.goFunc(func() {
		if err := a.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("agent http server", "err", err)
		}
	})
	a.goFunc(func() { a.heartbeatLoop(ctx) })
	a.goFunc(func() { a.watchLoop(ctx) })
	a.goFunc(func() { a.diskLoop(ctx) })
	a.goFunc(func() {
		a.updates.run(ctx, a.registered, func(err error) {
			a.log.Warn("reporting allocation status", "err", err)
			if api.IsNotFound(err) {
				a.triggerReregister()
			}
		})
	})
	a.log.Info("agent started", "node_id", a.nodeID, "http", a.node.HTTPAddr, "tls", a.tls != nil,
		"cpu", a.node.Capacity.CPU, "memory_mb", a.node.Capacity.MemoryMB)
	return nil
}

// Shutdown stops the agent without stopping its tasks: they keep running
// and a new agent on the same data dir re-attaches to them.
func (a *Agent) Shutdown() error {
	a.mu.Lock()
	if !a.started || a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	runners := make([]*runner, 0, len(a.runners))
	for _, r := range a.runners {
		runners = append(runners, r)
	}
	a.mu.Unlock()

	a.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.httpServer.Shutdown(ctx)
	if err != nil {
		// Log followers may hold connections; cut them.
		err = a.httpServer.Close()
	}
	for _, r := range runners {
		r.detach()
	}
	for _, r := range runners {
		<-r.done
	}
	a.wg.Wait()
	for _, c := range a.closers {
		_ = c.Close()
	}
	if a.ownHTTP != nil {
		a.ownHTTP.CloseIdleConnections()
	}
	a.log.Info("agent stopped; tasks left running")
	return err
}

func (a *Agent) goFunc(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// advertiseAddr turns a listen address into one the servers can reach.
func advertiseAddr(addr *net.TCPAddr) string {
	ip := addr.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if ifs, err := net.InterfaceAddrs(); err == nil {
			for _, ia := range ifs {
				if n, ok := ia.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
					ip = n.IP
					break
				}
			}
		}
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(addr.Port))
}

// restore brings back the allocations of the local state: running tasks
// are re-attached at once (so their exits are seen), finished ones are
// kept to be reported; the rest wait for the server to list them.
func (a *Agent) restore() {
	for _, rec := range a.store.all() {
		switch rec.Phase {
		case phaseRunning, phaseStarting:
			a.startRunner(rec)
		case phaseDone:
			// Kept for its logs and re-reported after registration: the
			// server may have missed the final state.
			a.startRunner(rec)
		}
	}
}

// startRunner creates and starts the runner of rec.
func (a *Agent) startRunner(rec *allocRecord) *runner {
	r := newRunner(a, rec)
	a.mu.Lock()
	a.runners[rec.Alloc.ID] = r
	a.mu.Unlock()
	go r.run()
	return r
}

// register registers the node, retrying with backoff across the servers
// until it succeeds or ctx ends; it returns the heartbeat TTL.
func (a *Agent) register(ctx context.Context) (time.Duration, bool) {
	b := newBackoff(250*time.Millisecond, 10*time.Second)
	for {
		resp, err := a.client.RegisterNode(ctx, a.Node())
		if err == nil {
			if resp.NodeID != "" && resp.NodeID != a.nodeID {
				a.log.Warn("server answered with another node ID; keeping ours", "ours", a.nodeID, "theirs", resp.NodeID)
			}
			a.registeredOnce.Do(func() { close(a.registered) })
			a.log.Info("node registered", "ttl", resp.HeartbeatTTL.D())
			// Send every allocation's current state: reports queued while
			// the server did not know us may have been dropped.
			a.resendAll()
			return resp.HeartbeatTTL.D(), true
		}
		if ctx.Err() != nil {
			return 0, false
		}
		var ae *api.APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest {
			a.log.Error("server refused the node registration", "err", err)
		} else {
			a.log.Warn("registering node", "err", err)
		}
		if !sleepCtx(ctx, b.next()) {
			return 0, false
		}
	}
}

func (a *Agent) resendAll() {
	a.mu.Lock()
	runners := make([]*runner, 0, len(a.runners))
	for _, r := range a.runners {
		runners = append(runners, r)
	}
	a.mu.Unlock()
	for _, r := range runners {
		rec := r.snapshot()
		a.updates.push(rec.report())
	}
}

func (a *Agent) triggerReregister() {
	select {
	case a.reregister <- struct{}{}:
	default:
	}
}

// heartbeatLoop registers, then heartbeats at about a third of the TTL
// (with jitter), and registers again whenever a server answers 404.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	for {
		ttl, ok := a.register(ctx)
		if !ok {
			return
		}
		// A re-register request raised before this registration is moot.
		select {
		case <-a.reregister:
		default:
		}
		a.heartbeat(ctx, ttl)
		if ctx.Err() != nil {
			return
		}
	}
}

// heartbeat returns when the node must register again or ctx ends.
func (a *Agent) heartbeat(ctx context.Context, ttl time.Duration) {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	wait := jitter(ttl/3, 0.2)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-a.reregister:
			t.Stop()
			return
		case <-t.C:
		}
		resp, err := a.client.Heartbeat(ctx, a.nodeID)
		switch {
		case err == nil:
			if d := resp.HeartbeatTTL.D(); d > 0 {
				ttl = d
			}
			wait = jitter(ttl/3, 0.2)
		case ctx.Err() != nil:
			return
		case api.IsNotFound(err):
			a.log.Warn("server does not know this node; registering again")
			return
		default:
			a.metrics.hbFailures.Inc()
			a.log.Warn("heartbeat failed", "err", err)
			// Retry sooner than usual so one lost request does not cost
			// the TTL.
			wait = min(jitter(ttl/3, 0.2), time.Second)
		}
	}
}

// sendUpdates reports allocation states to the servers.
func (a *Agent) sendUpdates(ctx context.Context, ups []*structs.AllocClientUpdate) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := a.client.UpdateAllocations(rctx, a.nodeID, ups)
	if err != nil {
		return fmt.Errorf("node %s: updating %d allocations: %w", a.nodeID, len(ups), err)
	}
	return nil
}

// refused reports a server answer that says the request itself is wrong
// (4xx other than 404, 408 and 429), which no retry can fix.
func refused(err error) bool {
	var ae *api.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.StatusCode {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return ae.StatusCode >= 400 && ae.StatusCode < 500
}
