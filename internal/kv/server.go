package kv

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/internal/kv/acl"
	"github.com/gantry-project/gantry/internal/kv/aof"
	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/kv/repl"
	"github.com/gantry-project/gantry/internal/resp"
)

// Clock tells the time; tests inject a fake one to make expiry deterministic.
type Clock interface {
	Now() time.Time
}

// clockSleeper is a Clock that makes its time pass itself: DEBUG SLEEP
// sleeps on it (a test's fake clock advances) instead of on the real one.
type clockSleeper interface {
	Sleep(d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config configures a Server.
type Config struct {
	// DataDir holds the snapshot and the append-only log; empty keeps the
	// data in memory only.
	DataDir string
	// AppendOnly enables the append-only log (needs DataDir).
	AppendOnly bool
	// AppendFsync is "always", "everysec" or "no".
	AppendFsync string
	// LogFS opens the files the append-only log writes; nil is the
	// operating system's (tests inject a full disk with aof.FaultFS).
	LogFS aof.FS
	// RequirePass, when set, makes clients AUTH before other commands.
	RequirePass string
	// EventLoops is the number of epoll event loops serving connections
	// (Linux); 0 means one per CPU (GOMAXPROCS), a negative number serves
	// each connection from its own goroutine instead.
	EventLoops int
	// NoIOURing makes the event loops read and write each client with
	// read(2) and write(2); by default they batch the reads and the
	// writes of an iteration through io_uring where the kernel allows it
	// (docs/kv.md, "Batched socket I/O with io_uring").
	NoIOURing bool
	// ActiveExpireHz is how many times a second the expirer samples keys
	// with an expiry; 0 disables the active expirer (keys still expire
	// lazily on access).
	ActiveExpireHz int
	// Clock tells the time (Unix milliseconds are used for expiry).
	Clock Clock
	// Cluster, when set, routes commands with keys and serves CLUSTER
	// (cluster mode); nil is a standalone server.
	Cluster ClusterHook
	// Logger receives operational messages (loading, truncation, rewrites).
	Logger *log.Logger
	// ReplBacklogSize is the size of the replication backlog in bytes
	// (default 1 MiB): how much of the stream a replica can miss and still
	// continue with a partial resync.
	ReplBacklogSize int
	// MasterAuth is the password a replica AUTHs with at its primary.
	MasterAuth string
	// ConfigRewrite writes the current parameters (get returns one that
	// CONFIG SET can change, by its CONFIG name) to the configuration file
	// the server was started with (CONFIG REWRITE); nil without one.
	ConfigRewrite func(get func(name string) (string, bool)) error
	// MasterUser is the user a replica AUTHs as (masteruser); empty is
	// the default user.
	MasterUser string
	// ACLFile is the file of ACL users (aclfile) that ACL LOAD reads and
	// ACL SAVE writes; empty keeps users in memory only.
	ACLFile string
	// ACLPubsubDefault is acl-pubsub-default: the channels of users
	// created from then on, "resetchannels" (none, also for "") or
	// "allchannels".
	ACLPubsubDefault string
	// ProtectedMode refuses clients from other hosts while the default
	// user has no password (protected-mode, as Redis 7).
	ProtectedMode bool
	// ReplTLS, when set, is the TLS configuration a replica dials its
	// primary with (tls-replication).
	ReplTLS *tls.Config
	// MigrateTLS, when set, is the TLS configuration MIGRATE dials other
	// peers with (tls-cluster).
	MigrateTLS *tls.Config
	// ReplTimeout is how long a replication link may stay silent (the
	// primary pings every repl-ping-replica-period, a second by default)
	// before the replica reconnects; default 5 s.
	ReplTimeout time.Duration
	// Shutdown, when set, asks the process to stop as after SIGTERM
	// (SHUTDOWN); it must not wait for the stop. Without it SHUTDOWN is
	// refused.
	Shutdown func()

	// MaxClients is the most connections served at once (maxclients);
	// more are answered "-ERR max number of clients reached" and closed.
	// 0 means 10000; either way at most the descriptor limit
	// (RLIMIT_NOFILE) less 32, as Redis.
	MaxClients int
	// Timeout closes a client idle this long (timeout); 0 never does.
	Timeout time.Duration
	// ProtoMaxBulkLen is the longest bulk string a client may send
	// (proto-max-bulk-len); 0 means 512 MB, which is also the most.
	ProtoMaxBulkLen int64
	// ClientQueryBufferLimit is the most input a client may have the
	// server hold: unparsed bytes and a transaction's queued commands
	// (client-query-buffer-limit); 0 means 1 GB.
	ClientQueryBufferLimit int64
	// ClientOutputBufferLimit is client-output-buffer-limit: groups of
	// "class hard soft seconds" (classes normal, replica, pubsub);
	// classes not named keep Redis's defaults.
	ClientOutputBufferLimit string

	// MaxMemory is maxmemory, the bytes of used_memory over which keys
	// are evicted or writes refused (memory.go); 0: no limit.
	MaxMemory int64
	// BaseMemory is the memory the server uses without data, counted in
	// used_memory beside the keys' estimate, as Redis's used_memory counts
	// its start-up allocations (INFO used_memory_startup): -1 (the
	// default) measures it in New from the Go runtime, 0 counts none (the
	// tests of exact estimates).
	BaseMemory int64
	// MaxMemoryPolicy is maxmemory-policy: noeviction (default),
	// allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru,
	// volatile-lfu, volatile-random or volatile-ttl.
	MaxMemoryPolicy string
	// MaxMemorySamples is the keys sampled per eviction (1..64; 0: 5).
	MaxMemorySamples int
	// LFULogFactor and LFUDecayTime (minutes) tune the LFU counters
	// (Redis's lfu-log-factor 10 and lfu-decay-time 1 by default).
	LFULogFactor int
	LFUDecayTime int

	// EnableDebugCommand is enable-debug-command: "no" (default), "yes",
	// or "local" (loopback clients only).
	EnableDebugCommand string
	// EnableModuleCommand is enable-module-command, the same for MODULE
	// LOAD, LOADEX and UNLOAD (gantry loads no modules).
	EnableModuleCommand string
	// SlowlogLogSlowerThan (µs; negative: off) and SlowlogMaxLen configure
	// the slow log; both 0 means Redis's defaults, 10000 and 128.
	SlowlogLogSlowerThan int64
	SlowlogMaxLen        int
	// LatencyMonitorThreshold (ms) records latency events; 0 is off.
	LatencyMonitorThreshold int64

	// Databases is the number of numbered databases (databases): 0
	// means 16 standalone; a cluster node has one, as in Redis Cluster.
	Databases int

	// cronEvery replaces cronPeriod when set: a test that must not be
	// rescued by the cron's wake-ups sets it to hours.
	cronEvery time.Duration
}

// DefaultConfig returns the defaults: in memory, appendfsync everysec when
// persistence is on, active expiry 10 times a second, the real clock.
func DefaultConfig() Config {
	return Config{
		AppendOnly:     true,
		AppendFsync:    "everysec",
		ActiveExpireHz: 10,
		LFULogFactor:   10,
		LFUDecayTime:   1,
		BaseMemory:     -1,
		Clock:          realClock{},
		Logger:         log.New(os.Stderr, "kv: ", log.LstdFlags),
	}
}

func (c *Config) validate() error {
	switch c.AppendFsync {
	case "always", "everysec", "no":
	default:
		return fmt.Errorf("appendfsync %q: want always, everysec or no", c.AppendFsync)
	}
	if c.ActiveExpireHz < 0 || c.ActiveExpireHz > 500 {
		return fmt.Errorf("active expire hz %d: want 0..500", c.ActiveExpireHz)
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Logger == nil {
		c.Logger = log.New(io.Discard, "", 0)
	}
	if c.ReplBacklogSize == 0 {
		c.ReplBacklogSize = 1 << 20
	}
	if c.ReplBacklogSize < 16*1024 || c.ReplBacklogSize > 1<<30 {
		return fmt.Errorf("repl backlog size %d: want 16 KiB..1 GiB", c.ReplBacklogSize)
	}
	if c.ReplTimeout <= 0 {
		c.ReplTimeout = 5 * time.Second
	}
	if c.MaxClients < 0 {
		return fmt.Errorf("maxclients %d: want >= 1 (0 for the default)", c.MaxClients)
	}
	want := c.MaxClients
	c.MaxClients = maxClientsFor(fileLimit(), want)
	if want > c.MaxClients {
		c.Logger.Printf("maxclients %d is over the descriptor limit less %d reserved: serving at most %d clients (raise ulimit -n)",
			want, reservedFDs, c.MaxClients)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %v: want >= 0", c.Timeout)
	}
	if c.ProtoMaxBulkLen == 0 {
		c.ProtoMaxBulkLen = resp.MaxBulk
	}
	if c.ProtoMaxBulkLen < 1<<20 || c.ProtoMaxBulkLen > resp.MaxBulk {
		return fmt.Errorf("proto-max-bulk-len %d: want 1mb..512mb", c.ProtoMaxBulkLen)
	}
	if c.ClientQueryBufferLimit == 0 {
		c.ClientQueryBufferLimit = 1 << 30
	}
	if c.ClientQueryBufferLimit < 1<<20 {
		return fmt.Errorf("client-query-buffer-limit %d: want at least 1mb", c.ClientQueryBufferLimit)
	}
	if c.MaxMemory < 0 {
		return fmt.Errorf("maxmemory %d: want >= 0", c.MaxMemory)
	}
	if c.BaseMemory < -1 {
		return fmt.Errorf("base memory %d: want -1 (measure) or >= 0", c.BaseMemory)
	}
	if c.MaxMemoryPolicy == "" {
		c.MaxMemoryPolicy = "noeviction"
	}
	if _, ok := keyspace.ParsePolicy(c.MaxMemoryPolicy); !ok {
		return fmt.Errorf("maxmemory-policy %q: want noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random or volatile-ttl", c.MaxMemoryPolicy)
	}
	if c.MaxMemorySamples == 0 {
		c.MaxMemorySamples = 5
	}
	if c.MaxMemorySamples < 1 || c.MaxMemorySamples > 64 {
		return fmt.Errorf("maxmemory-samples %d: want 1..64", c.MaxMemorySamples)
	}
	if err := c.validateAdmin(); err != nil {
		return err
	}
	switch {
	case c.Databases < 0 || c.Databases > maxDatabases:
		return fmt.Errorf("databases %d: want 1..%d", c.Databases, maxDatabases)
	case c.Cluster != nil && c.Databases > 1:
		return fmt.Errorf("databases %d: a cluster node has one database", c.Databases)
	case c.Cluster != nil:
		c.Databases = 1
	case c.Databases == 0:
		c.Databases = 16
	}
	if c.LFULogFactor < 0 || c.LFUDecayTime < 0 {
		return fmt.Errorf("lfu-log-factor %d, lfu-decay-time %d: want >= 0", c.LFULogFactor, c.LFUDecayTime)
	}
	return nil
}

// Server serves one keyspace over the Redis protocol.
type Server struct {
	cfg   Config
	ks    *keyspace.Keyspace
	track command.Tracker // WATCHes, blocked clients and migrating keys, beside ks
	// dbs are the numbered databases (db.go), dbs[0] being ks and track;
	// dbKS their keyspaces
	dbs  []command.DB
	dbKS []*keyspace.Keyspace
	// replDB is the database a replica's primary stream is in, kept
	// across links (a partial resync goes on where it stopped)
	replDB atomic.Int64
	ct     tracker  // client-side caching (tracking.go)
	view   Keyspace // what Keyspace returns to the cluster layer
	clock  Clock
	logger *log.Logger
	cmds   *command.Table
	aof    *aof.Log // nil without a data directory
	repl   *repl.State

	lim    limits                 // settable limits on clients
	config map[string]configParam // CONFIG GET and SET

	mu      sync.Mutex // guards clients, clientList, ln, lns, closed and the settable config
	clients map[int64]*Client
	// clientList holds the clients of clients in a slice (Client.listIdx),
	// so a scan can copy them a chunk at a time (biggestBuffers)
	clientList []*Client
	// peakChunk (0: peakScanChunk) and peakScanHook, called after each
	// chunk with mu not held: tests of biggestBuffers
	peakChunk    int
	peakScanHook func()
	ln           net.Listener   // the first listener (its port is the replica's listening-port)
	lns          []net.Listener // every listener (plain and TLS)
	closed       bool
	requirepass  string

	users  *acl.Users // ACL users (cmd_acl.go)
	aclLog *acl.Log

	protectedMode      atomic.Bool // security.go
	protectedRefused   atomic.Int64
	tlsHandshakeErrors atomic.Int64

	done    chan struct{}
	wg      sync.WaitGroup
	nextID  atomic.Int64
	started time.Time

	// statistics for INFO
	totalConns    atomic.Int64
	totalCommands atomic.Int64
	dirty         atomic.Int64 // changes since the last snapshot
	lastSave      atomic.Int64 // Unix seconds
	expiredKeys   atomic.Int64
	evictedKeys   atomic.Int64
	cev           clientEviction // maxmemory-clients (client_evict.go)
	oomRejected   atomic.Int64   // commands refused with -OOM
	rbufs         replyBufs      // reply buffer resizing (replybuf.go)
	maxmemory     atomic.Int64   // 0: no limit
	// replGuards (replguard.go) is not 0 while min-replicas-to-write or
	// replica-serve-stale-data no may refuse commands: the dispatcher's
	// one load when neither is set
	replGuards     atomic.Uint32
	minReplicas    atomic.Int64 // min-replicas-to-write
	minReplicasLag atomic.Int64 // min-replicas-max-lag, seconds
	serveStaleData atomic.Bool  // replica-serve-stale-data
	// clients refused or closed by a limit
	rejectedConns     atomic.Int64 // maxclients
	queryLimitCloses  atomic.Int64 // client-query-buffer-limit
	outputLimitCloses atomic.Int64 // client-output-buffer-limit
	timeoutCloses     atomic.Int64 // timeout
	// released counts the bytes of big client buffers dropped since the
	// cron last gave memory back to the OS
	released atomic.Int64
	blocked  atomic.Int64 // clients waiting in a blocking command
	// lazy frees big values deleted by UNLINK, FLUSH... ASYNC and the
	// lazyfree-lazy-* paths in the background (lazyfree.go)
	lazy *keyspace.LazyFree

	// baseMem is the memory used without data, part of used_memory
	// (Config.BaseMemory)
	baseMem int64

	adm adminState // introspection: stats, slow log, latency, MONITOR (admin.go)

	loops    []*eventLoop
	nextLoop int

	migrations migrateConns // MIGRATE's cached connections

	ps     pubsub       // subscriptions and keyspace notifications (pubsub.go)
	script scriptEngine // EVAL and FUNCTION (cmd_script.go)

	// detached, when set (tests), runs on the goroutine of a client that
	// left its event loop before it serves the client
	detached atomic.Pointer[func(*Client)]
	// retrying, when set (tests), runs on the goroutine of a woken
	// blocked client before it takes its keys to try again
	retrying atomic.Pointer[func(*Client)]
}

// New creates a server and loads the snapshot and log of cfg.DataDir.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:         cfg,
		ks:          keyspace.New(),
		clock:       cfg.Clock,
		logger:      cfg.Logger,
		clients:     make(map[int64]*Client),
		requirepass: cfg.RequirePass,
		done:        make(chan struct{}),
		started:     cfg.Clock.Now(),
	}
	s.initDBs(cfg.Databases) // before any client (the scripts' too) takes its Ctx
	s.initLazyFree()
	if err := s.lim.init(&cfg); err != nil {
		return nil, err
	}
	s.config = configTable()
	s.cmds = commandTable()
	s.registerFunction()
	if err := s.initACL(); err != nil {
		return nil, err
	}
	s.initSecurity()
	s.initAdmin()
	s.initPubsubScripting()
	s.initTracking()
	s.track.Settings.SetCluster(cfg.Cluster != nil)
	s.view.s = s
	s.lastSave.Store(s.started.Unix())
	s.baseMem = cfg.BaseMemory
	if s.baseMem < 0 { // before the data is loaded
		s.baseMem = processBaseMemory()
	}
	if cfg.DataDir != "" {
		a, err := aof.Open(aof.Config{
			Dir: cfg.DataDir, On: cfg.AppendOnly, Fsync: cfg.AppendFsync,
			KS: s.ks, Table: s.cmds, Track: &s.track, DBs: s.dbs, Clock: cfg.Clock, Logger: cfg.Logger,
			Dirty: &s.dirty, LastSave: &s.lastSave, FS: cfg.LogFS, Preamble: s.functionsPreamble,
		})
		if err != nil {
			return nil, err
		}
		s.aof = a
	}
	// replication starts after loading: the loaded data is the state at
	// offset 0 of a new replication ID
	s.repl = repl.New(repl.Config{
		KS: s.ks, DBs: s.dbKS, BacklogSize: cfg.ReplBacklogSize, MasterAuth: cfg.MasterAuth, MasterUser: cfg.MasterUser, TLS: cfg.ReplTLS,
		Timeout: cfg.ReplTimeout, Logger: cfg.Logger,
		NewApplier: s.newApplier, ListenPort: s.port, Preamble: s.functionsPreamble,
	})
	if s.aof != nil && s.aof.Enabled() {
		if err := s.repl.LoadState(cfg.DataDir); err != nil {
			s.repl.Close()
			if cerr := s.aof.Close(); cerr != nil {
				s.logger.Printf("closing the log: %v", cerr)
			}
			return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
		}
	}
	s.setDBHooks()
	policy, _ := keyspace.ParsePolicy(cfg.MaxMemoryPolicy)
	s.eachKS(func(ks *keyspace.Keyspace) {
		ks.SetPolicy(policy)
		ks.SetSamples(cfg.MaxMemorySamples)
		ks.SetLFU(cfg.LFULogFactor, cfg.LFUDecayTime)
	})
	s.maxmemory.Store(cfg.MaxMemory)
	s.cev.pct.Store(-1) // maxmemory-clients 0: no limit
	s.minReplicasLag.Store(defaultMinReplicasLag)
	s.serveStaleData.Store(true)
	if cfg.ActiveExpireHz > 0 {
		s.goTracked(s.activeExpireLoop)
	}
	s.goTracked(s.migrateCacheLoop)
	if cfg.EventLoops >= 0 {
		n := cfg.EventLoops
		if n == 0 {
			n = runtime.GOMAXPROCS(0)
		}
		s.startLoops(n)
	}
	s.goTracked(s.cronLoop) // after the loops: it reads s.loops
	s.goTracked(func() { s.lazy.Run(s.done) })
	s.goTracked(s.scriptWatchdog)
	return s, nil
}

// goTracked runs fn on a goroutine that Close waits for.
func (s *Server) goTracked(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

func (s *Server) nowMs() int64 { return s.clock.Now().UnixMilli() }

// Keyspace returns the view of the store the cluster layer uses.
func (s *Server) Keyspace() *Keyspace { return &s.view }

// ListenAndServe listens on addr (host:port) and serves until Close.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("kv: server closed")

// Serve accepts connections on ln until Close. An accept that fails for
// want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) is
// retried after a pause that doubles from 5 ms to 1 s, as net/http does,
// so running out of descriptors delays new clients but never stops the
// server; maxclients keeps the clients below the descriptor limit.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.ln == nil {
		s.ln = ln
	}
	s.lns = append(s.lns, ln)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			if !temporaryAccept(err) {
				return fmt.Errorf("accept: %w", err)
			}
			if delay == 0 {
				delay = 5 * time.Millisecond
				s.logger.Printf("accept: %v; retrying (maxclients %d, %d clients)", err, s.lim.maxClients.Load(), s.numClients())
			} else {
				delay = min(2*delay, time.Second)
			}
			t := time.NewTimer(delay)
			select {
			case <-s.done:
				t.Stop()
				return ErrServerClosed
			case <-t.C:
			}
			continue
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		if !s.admitPlain(nc) { // protected mode (security.go)
			continue
		}
		c := newClient(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		if int64(len(s.clients)) >= s.lim.maxClients.Load() {
			s.mu.Unlock()
			s.rejectedConns.Add(1)
			refuseMaxClients(nc) // security.go
			nc.Close()
			continue
		}
		s.clients[c.id] = c
		c.listIdx = len(s.clientList)
		s.clientList = append(s.clientList, c)
		s.totalConns.Add(1)
		if len(s.loops) > 0 {
			if fd, ok := connFD(nc); ok {
				c.fd, c.inLoop = fd, true
				l := s.loops[s.nextLoop%len(s.loops)]
				s.nextLoop++
				s.mu.Unlock()
				l.add(c)
				continue
			}
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			if c.admitTLS() { // a TLS handshake (security.go)
				c.serve()
			} else {
				c.nc.Close()
			}
			s.dropClient(c)
		}()
	}
}

// temporaryAccept reports whether an accept error is a shortage that
// passes (descriptors, buffers, memory, a connection aborted before it was
// taken) rather than a broken listener.
func temporaryAccept(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) numClients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// Close stops the listener, disconnects every client, stops background
// work, flushes and closes the log, and waits for all goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for _, ln := range s.lns {
		ln.Close()
	}
	for _, c := range s.clients {
		if !c.inLoop { // loops close their own clients
			c.nc.Close()
		}
	}
	s.mu.Unlock()
	s.repl.Close()
	s.wakeLoops()
	s.wg.Wait()
	if s.aof != nil {
		err := s.aof.Close()
		if err == nil {
			if err := s.repl.SaveState(s.cfg.DataDir, s.aof.Enabled()); err != nil {
				s.logger.Printf("replication state: %v (a restart full-syncs)", err)
			}
		}
		return err
	}
	return nil
}

// procResult says what a connection does after processing its input.
type procResult int

const (
	procMore   procResult = iota // read more input
	procClose                    // send the replies, then close
	procDetach                   // hand the connection to its own goroutine (a blocking command)
	procOut                      // send the replies, then run the rest of the input (output backpressure)
)

func (s *Server) dropClient(c *Client) {
	c.forgetMem()
	c.pubsubDrop()
	s.ct.disable(c)
	s.mu.Lock()
	if s.clients[c.id] == c {
		delete(s.clients, c.id)
		// the last client takes its place
		last := len(s.clientList) - 1
		s.clientList[c.listIdx] = s.clientList[last]
		s.clientList[c.listIdx].listIdx = c.listIdx
		s.clientList[last] = nil
		s.clientList = s.clientList[:last]
	}
	s.mu.Unlock()
}

// process executes every complete command in the read buffer, appending
// the replies to c.W. It stops early when the replies pile up
// (checkOutput): procOut asks the caller to send them and call it again.
func (c *Client) process() procResult {
	// the commands of one batch share one reading of the clock, as the
	// commands of one event loop iteration do in Redis
	c.batchNow = c.srv.nowMs()
	c.lastIO = c.batchNow
	c.mark = monoNow()
	c.tally.on = true
	defer func() {
		c.batchNow, c.mark = 0, 0
		c.tally.on = false
		c.flushTally() // before any reply of the batch is sent
	}()
	res := procMore
	lim := c.parseLimits()
	for c.rstart < c.rend {
		buf := c.rbuf[c.rstart:c.rend]
		lim.Unauthenticated = !c.authed // AUTH changes it between commands
		if c.partial.Active() {
			// a big command is arriving: scan only the new bytes
			if len(buf) < c.partial.Need() {
				break
			}
			complete, err := c.partial.Scan(buf, lim)
			if err != nil {
				c.W.Error("ERR " + err.Error())
				return procClose
			}
			if !complete {
				break
			}
			// all its bytes are here: room for exactly its arguments
			if n := c.partial.Count(); n > cap(c.Args) {
				c.Args = make([][]byte, 0, n)
			}
		}
		args, n, err := resp.ParseCommandLimits(buf, c.Args, lim)
		if err != nil {
			c.W.Error("ERR " + err.Error())
			return procClose
		}
		if n == 0 {
			if len(buf) >= partialScanMin && !c.partial.Active() {
				if _, err := c.partial.Scan(buf, lim); err != nil {
					c.W.Error("ERR " + err.Error())
					return procClose
				}
			}
			break
		}
		c.partial.Reset()
		c.rstart += n
		c.Args = args
		if len(args) == 0 {
			continue
		}
		start, prev := len(c.W.B), c.aofWait
		c.pushEnd = 0
		c.srv.dispatch(c)
		c.srv.noteReply(c, start)
		if c.replyMode != replyOn {
			c.applyReplyMode(start)
		}
		c.noteAck(start, prev)
		if c.detach {
			c.rstart -= n // the goroutine runs the command again
			return procDetach
		}
		if c.closing {
			return procClose
		}
		if out := len(c.W.B) - c.wpos; out > outputPause {
			if res = c.checkOutput(out, c.batchNow); res != procMore {
				break
			}
		}
	}
	if cap(c.Args) > keptArgs { // after a command with many arguments
		c.srv.released.Add(int64(cap(c.Args)) * 24)
		c.Args = make([][]byte, 0, 8)
	}
	return res
}

// prepareRead compacts and grows the read buffer before a read; false
// means the client holds more input than client-query-buffer-limit.
// The buffer grows by doubling only when what the client sent fills it,
// never to a length a command announces but has not sent, and for a
// command whose end is known (resp.Partial) to little more than that end.
func (c *Client) prepareRead() bool {
	if c.rbuf == nil {
		c.rbuf = getReadBuf()
	}
	if c.rstart == c.rend {
		c.rstart, c.rend = 0, 0
		if len(c.rbuf) > keptBufSize { // give a big request's memory back
			c.srv.released.Add(int64(len(c.rbuf)))
			c.rbuf = getReadBuf()
		}
	} else if c.rstart > 0 {
		c.rend = copy(c.rbuf, c.rbuf[c.rstart:c.rend])
		c.rstart = 0
	}
	if c.rend == len(c.rbuf) {
		if c.queryOver(1) {
			return false
		}
		size := max(2*len(c.rbuf), readBufSize) // a buffer the cron trimmed to its input
		if need := c.partial.Size(); need > len(c.rbuf) && need < size {
			size = min(need+need/8, size)
		}
		size = int(min(int64(size), c.srv.lim.queryLimit.Load()+1))
		nb := make([]byte, size)
		copy(nb, c.rbuf[:c.rend])
		c.rbuf = nb
	}
	return true
}

// serve runs the connection on its own goroutine: read what is available,
// execute every complete command, flush all the replies at once, repeat.
func (c *Client) serve() {
	defer c.nc.Close()
	defer c.unwatchAll()
	c.detach = false
	for {
		res := c.process()
		if c.blockCancel != nil { // the blocking command was refused on its second run
			c.blockCancel()
			c.blockWake, c.blockCancel = nil, nil
		}
		// what the batch's replies hold counts before they are written: a
		// client that asked for more than maxmemory-clients is evicted
		// here, and, as Redis frees it, its replies (as a killed
		// client's) are dropped
		c.noteMem()
		if c.shared.killed.Load() {
			return
		}
		if res == procClose {
			_ = c.flush() // best effort: the connection is closing anyway
			return
		}
		if err := c.flush(); err != nil {
			return
		}
		if res == procOut { // the rest of the input, now the replies are out
			continue
		}
		if !c.prepareRead() {
			return
		}
		// for CLIENT LIST while this goroutine waits
		c.noteQuery()
		if len(c.pending) > 0 { // bytes read while blocked
			c.feed()
			continue
		}
		if t := c.srv.lim.timeoutMs.Load(); t > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(time.Duration(t) * time.Millisecond))
			c.deadline = true
		} else if c.deadline {
			_ = c.nc.SetReadDeadline(time.Time{})
			c.deadline = false
		}
		if c.shared.killed.Load() { // CLIENT KILL
			return
		}
		if c.subs != nil || c.pushTarget.Load() { // after setting the deadline: a publisher may reset it
			if more, ok := c.serveMail(); !ok {
				return
			} else if more {
				continue
			}
		}
		n, err := c.nc.Read(c.rbuf[c.rend:])
		c.rend += n
		c.srv.adm.io.noteRead(n)
		if err != nil && n == 0 {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if (c.subs != nil || c.pushTarget.Load()) && !c.idleTooLong() { // woken by a publisher
					c.deadline = true
					continue
				}
				c.srv.timeoutCloses.Add(1)
			}
			return
		}
	}
}

// feed moves bytes read during a blocking wait into the read buffer.
func (c *Client) feed() {
	need := c.rend + len(c.pending)
	if need > len(c.rbuf) {
		nb := make([]byte, need+16*1024)
		copy(nb, c.rbuf[:c.rend])
		c.rbuf = nb
	}
	c.rend += copy(c.rbuf[c.rend:], c.pending)
	c.pending = c.pending[:0]
}

// flush waits until the log holds the writes the replies acknowledge (and
// has fsynced them with appendfsync always), then sends the replies; a
// reply to a write the log failed to hold becomes an error.
func (c *Client) flush() error {
	if c.aofWait > 0 {
		c.settleAcks(c.srv.waitLog(c.aofWait))
		c.aofWait = 0
	}
	if len(c.W.B) == 0 {
		return nil
	}
	c.reply.notePeak(len(c.W.B))
	if t := c.srv.lim.timeoutMs.Load(); t > 0 { // a client that never reads is idle too
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Duration(t) * time.Millisecond))
		c.wdeadline = true
	} else if c.wdeadline {
		_ = c.nc.SetWriteDeadline(time.Time{})
		c.wdeadline = false
	}
	n, err := c.nc.Write(c.W.B[c.wpos:])
	c.srv.adm.io.noteWrite(n)
	c.wpos = 0
	if cap(c.W.B) > keptBufSize {
		c.srv.released.Add(int64(cap(c.W.B)))
		c.W.B = nil
	} else {
		c.W.B = c.W.B[:0]
	}
	c.sentAll()
	return err
}

// readBufs holds the read buffers of idle clients for the next reads.
var readBufs = sync.Pool{New: func() any { return new([readBufSize]byte) }}

func getReadBuf() []byte { return readBufs.Get().(*[readBufSize]byte)[:] }

// releaseBuffers gives an idle client's buffers back: the read buffer to
// the pool (when it holds no input) and an empty reply buffer to the heap.
func (c *Client) releaseBuffers() {
	if c.rbuf != nil && c.rstart == c.rend && !c.partial.Active() {
		if len(c.rbuf) == readBufSize {
			readBufs.Put((*[readBufSize]byte)(c.rbuf))
		}
		c.rbuf, c.rstart, c.rend = nil, 0, 0
	}
	if len(c.W.B) == 0 && c.wpos == 0 {
		c.W.B = nil
	}
}
