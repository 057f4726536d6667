package peerexec

import (
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/peer"
	"github.com/gantry-project/gantry/internal/structs"
)

// ServiceConfig configures the execution layer of a running peer.
type ServiceConfig struct {
	// Node carries the peer's labels and capacity (ID and drivers are
	// filled in).
	Node structs.Node
	// HTTPAddr is the address this peer's API is reached at, announced to
	// the others (forwarding, logs).
	HTTPAddr string
	// DataDir keeps the tasks' directories (DataDir/allocs/<id>).
	DataDir string
	// Drivers run the tasks (exec, mock).
	Drivers []driver.Driver
	// Password is the peer's requirepass, for the store's own client.
	Password string
	// Engine overrides the protocol's timings (zero: DefaultConfig).
	Engine *Config
	// Stream is how this peer reaches the other peers' APIs: TLS (https)
	// and the credentials it presents. The persistent streams, forwarded
	// listings and log proxies use it. NoStreams keeps every execution
	// message on the cluster bus.
	Stream    StreamDialer
	NoStreams bool
	// Auth, when set, makes the job API require an ACL user of the
	// peer's store (HTTP basic) whenever the store requires AUTH.
	Auth Authenticator
	// Tick is how often the engine ticks and the cluster view is read.
	Tick   time.Duration
	Logger *log.Logger
}

// Service runs the engine on a peer: cluster view from the cluster
// layer, messages on the cluster bus, records in the peer's store, tasks
// through the drivers, and the HTTP API (http.go).
type Service struct {
	cfg     ServiceConfig
	p       *peer.Peer
	cluster *peer.Cluster
	store   *RESPStore
	runner  *DriverRunner
	streams *streams     // nil with NoStreams
	client  *http.Client // to other peers' APIs
	scheme  string       // of other peers' APIs: http or https
	logger  *log.Logger

	mu     sync.Mutex
	eng    *Engine               // guarded by mu
	cv     ClusterView           // guarded by mu: the view of the last tick
	owners []string              // guarded by mu: slot owners of cv
	routes any                   // guarded by mu: the routing snapshot owners were read from
	outbox map[string][]*Message // guarded by mu: messages of the current step, per peer
	// wire: the peers that read binary batches (they said so in a load,
	// or sent one); the others get JSON. Guarded by mu.
	wire     map[string]bool
	replicas atomic.Int32

	// busWaiting counts the bus messages waiting for the engine (each on
	// a goroutine of memberlist's); busDropped those dropped past the
	// bound, logged now and then
	busWaiting atomic.Int32
	busDropped atomic.Int64
	busLogged  atomic.Int64 // Unix ns of the last drop logged

	// busy and forwarded count the API requests refused busy and
	// forwarded to an owner (Stats)
	busy, forwarded atomic.Uint64
	// apiAddrs is every member's API address from its last load, copied
	// at each tick: requests are routed without the engine's lock
	apiAddrs atomic.Pointer[map[string]string]

	leaving atomic.Bool
	left    chan struct{} // closed when Leave finished

	reqs   chan struct{} // job API requests being served (MaxRequests)
	wakeup chan struct{} // an early tick (a job changed)
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// Start attaches the execution layer to a peer in cluster mode.
func Start(p *peer.Peer, cfg ServiceConfig) (*Service, error) {
	c := p.Cluster()
	if c == nil {
		return nil, errors.New("peerexec: running jobs needs cluster mode (--cluster)")
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 50 * time.Millisecond
	}
	logger := cfg.Logger
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	s := &Service{cfg: cfg, p: p, cluster: c, logger: logger, done: make(chan struct{}), left: make(chan struct{}), owners: make([]string, numSlots),
		wakeup: make(chan struct{}, 1), reqs: make(chan struct{}, MaxRequests),
		scheme: "http"}
	// a peer cut off by a partition must not hold a forwarded request for
	// the kernel's connect timeout (minutes): dials give up after 2 s
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16, ResponseHeaderTimeout: 30 * time.Second}
	if cfg.Stream.TLS != nil {
		s.scheme = "https"
		tr.TLSClientConfig = cfg.Stream.TLS.Clone()
	}
	s.client = &http.Client{Transport: tr}
	s.store = NewRESPStore(p.Addr().String(), cfg.Password, func() int { return int(s.replicas.Load()) })
	s.runner = NewDriverRunner(cfg.Drivers, filepath.Join(cfg.DataDir, "allocs"), s.taskUpdate)
	s.runner.setLogger(logger)
	ecfg := DefaultConfig(string(c.ID()))
	if cfg.Engine != nil {
		ecfg = *cfg.Engine
		ecfg.ID = string(c.ID())
	}
	ecfg.Node = *cfg.Node.Copy()
	if ecfg.Node.Attributes == nil {
		ecfg.Node.Attributes = map[string]string{}
	}
	for k, v := range s.runner.Drivers() {
		ecfg.Node.Attributes[k] = v
	}
	ecfg.HTTPAddr = cfg.HTTPAddr
	ecfg.Seed = uint64(time.Now().UnixNano())
	eng, err := New(ecfg, s.send, s.store, s.runner)
	if err != nil {
		return nil, err
	}
	s.eng = eng
	if !cfg.NoStreams {
		s.streams = newStreams(ecfg.ID, cfg.Stream, s.receive, s.linked, logger)
	}
	// tasks a crashed process of this peer left running: re-attach (under
	// mu: the tasks re-attached before run already, and report to the
	// engine through taskUpdate)
	adopt := func(a *structs.Allocation, _ *driver.Handle) {
		s.mu.Lock()
		defer s.unlock()
		eng.AdoptLocal(time.Now(), a)
	}
	for _, err := range s.runner.Recover(adopt) {
		logger.Printf("exec: %v", err)
	}
	s.refreshView()
	c.SetExtHandler(s.receiveBus)
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// Close stops the engine and every task this peer runs (their owners
// place them again), then the store's connections.
func (s *Service) Close() error {
	s.once.Do(func() {
		s.cluster.SetExtHandler(nil)
		close(s.done)
		s.wg.Wait()
		if s.streams != nil {
			s.streams.close()
		}
		s.runner.Close()
		_ = s.store.Close()
		s.client.CloseIdleConnections()
	})
	return nil
}

func (s *Service) loop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		case <-s.wakeup:
		}
		s.refreshView()
		s.mu.Lock()
		s.eng.Tick(time.Now(), s.cv)
		targets := s.streamTargets()
		s.copyAPIAddrs()
		s.unlock()
		if s.streams != nil {
			s.streams.ensure(targets)
		}
	}
}

// wake makes the loop tick now: a job registered or scaled is placed
// without waiting for the next tick.
func (s *Service) wake() {
	select {
	case s.wakeup <- struct{}{}:
	default:
	}
}

// streamTargets are the members this peer keeps a stream to, with the
// API address their loads announce (under mu).
func (s *Service) streamTargets() map[string]string {
	if s.streams == nil {
		return nil
	}
	out := map[string]string{}
	for _, id := range s.cv.Members {
		if l := s.eng.loads[id]; l != nil && id != s.eng.cfg.ID && l.load.HTTPAddr != "" {
			out[id] = l.load.HTTPAddr
		}
	}
	return out
}

// copyAPIAddrs keeps apiAddrs up to date with the loads (under mu); a
// new map only when an address changed.
func (s *Service) copyAPIAddrs() {
	cur := s.apiAddrs.Load()
	same := cur != nil && len(*cur) == len(s.eng.loads)
	for id, l := range s.eng.loads {
		if !same {
			break
		}
		same = (*cur)[id] == l.load.HTTPAddr
	}
	if same {
		return
	}
	m := make(map[string]string, len(s.eng.loads))
	for id, l := range s.eng.loads {
		m[id] = l.load.HTTPAddr
	}
	s.apiAddrs.Store(&m)
}

// linked tells the engine a stream came up or went down.
func (s *Service) linked(peer string, up bool) {
	s.mu.Lock()
	defer s.unlock()
	s.eng.Linked(peer, up)
}

// refreshView reads the cluster layer's view (Status and the routing
// snapshot); the owners' version moves when any slot's owner changed.
func (s *Service) refreshView() {
	st, err := s.cluster.Members()
	if err != nil {
		return
	}
	snap := s.cluster.RoutingSnapshot()
	s.mu.Lock()
	owners, same := s.owners, snap == s.routes
	s.mu.Unlock()
	if !same {
		owners = make([]string, numSlots)
		for i := range owners {
			owners[i] = string(s.cluster.SlotOwner(uint16(i)))
		}
	}
	cv := ClusterView{OK: st.OK, Failed: map[string]bool{}}
	replicas := 0
	for _, ps := range st.Peers {
		cv.Members = append(cv.Members, string(ps.ID))
		if ps.Fail {
			cv.Failed[string(ps.ID)] = true
		}
		if ps.Role == peer.RoleReplica && ps.Primary == st.ID && !ps.Fail {
			replicas++
		}
	}
	s.replicas.Store(int32(replicas))
	s.mu.Lock()
	defer s.mu.Unlock()
	ver := s.cv.Version
	for i := range owners {
		if same {
			break
		}
		if owners[i] != s.owners[i] {
			ver++
			break
		}
	}
	s.owners, s.routes = owners, snap
	cv.Owner = func(slot uint16) string { return owners[slot] }
	cv.Version = ver
	s.logViewChange(s.cv, cv)
	s.cv = cv
}

// logViewChange logs what changed in the cluster's judgement between two
// views (under mu): cluster_state, and peers judged failed or back. An
// owner places and stops nothing while the state is fail, and places
// again the copies of a failed peer: these lines explain both.
func (s *Service) logViewChange(old, cv ClusterView) {
	if old.Owner == nil {
		return // the first view
	}
	if old.OK != cv.OK {
		state := "ok"
		if !cv.OK {
			state = "fail (no majority of primaries reached, or a slot without a live owner): owners here place and stop nothing"
		}
		s.logger.Printf("exec: cluster state %s", state)
	}
	for _, id := range slices.Sorted(mapKeys(cv.Failed)) {
		if !old.Failed[id] {
			s.logger.Printf("exec: peer %s judged failed (FAIL): its copies are placed again by their owners", id)
		}
	}
	for _, id := range slices.Sorted(mapKeys(old.Failed)) {
		if !cv.Failed[id] {
			s.logger.Printf("exec: peer %s no longer failed", id)
		}
	}
}

// send queues a message of the current step (under mu); unlock sends
// each peer's queue as one packet.
func (s *Service) send(to string, m *Message) {
	if s.outbox == nil {
		s.outbox = map[string][]*Message{}
	}
	s.outbox[to] = append(s.outbox[to], m)
}

// packet is an encoded batch for one peer.
type packet struct {
	to string
	b  []byte
}

// unlock encodes the step's messages (under mu: they point into the
// engine's state), releases mu, then sends each peer's packets.
func (s *Service) unlock() {
	packets := s.packets()
	s.outbox = nil
	s.mu.Unlock()
	for _, p := range packets {
		if s.streams == nil || !s.streams.send(p.to, p.b) {
			s.cluster.SendExt(peer.NodeID(p.to), p.b)
		}
	}
}

// packets encodes the step's messages into each peer's packets (under
// mu): binary for the peers that read it, JSON for the others. A message
// sent to several peers (a load) is encoded once per encoding.
func (s *Service) packets() []packet {
	var packets []packet
	var bin, js map[*Message][]byte // encoded messages, by encoding
	binc, jsc := &bin, &js
	if len(s.outbox) < 2 {
		binc, jsc = nil, nil // one peer: nothing is shared
	}
	var entries [][]byte
	for to, ms := range s.outbox {
		binary := s.wire[to]
		for len(ms) > 0 {
			n := min(len(ms), 500) // packets well under MaxMessageSize
			entries = entries[:0]
			var err error
			for _, m := range ms[:n] {
				var e []byte
				if binary {
					e, err = encodeOnce(binc, m, func(m *Message) ([]byte, error) { return appendWireEntry(nil, m) })
				} else {
					e, err = encodeOnce(jsc, m, func(m *Message) ([]byte, error) { return json.Marshal(m) })
				}
				if err != nil {
					break
				}
				entries = append(entries, e)
			}
			ms = ms[n:]
			if err != nil {
				s.logger.Printf("exec: encode: %v", err)
				continue
			}
			if binary {
				packets = append(packets, packet{to, joinWire(entries)})
			} else {
				packets = append(packets, packet{to, joinJSON(entries)})
			}
		}
	}
	return packets
}

// encodeOnce returns m's encoding from *cache, encoding it (and keeping
// it) the first time; a nil cache keeps nothing.
func encodeOnce(cache *map[*Message][]byte, m *Message, enc func(*Message) ([]byte, error)) ([]byte, error) {
	if cache == nil {
		return enc(m)
	}
	if b, ok := (*cache)[m]; ok {
		return b, nil
	}
	b, err := enc(m)
	if err != nil {
		return nil, err
	}
	if *cache == nil {
		*cache = map[*Message][]byte{}
	}
	(*cache)[m] = b
	return b, nil
}

// maxWirePeers bounds the peers remembered as reading binary batches.
const maxWirePeers = 4096

// noteWire remembers which encoding a peer reads, from what it sent
// (under mu): a binary batch, or a JSON load announcing (or not) that it
// reads one. A peer restarted with an older version goes back to JSON.
func (s *Service) noteWire(ms []*Message, binary bool) {
	for _, m := range ms {
		reads := binary
		if !binary {
			if m.Type != MsgLoad {
				continue
			}
			reads = m.Load.Wire >= WireVersion
		}
		if s.wire[m.From] == reads {
			continue
		}
		if s.wire == nil {
			s.wire = map[string]bool{}
		}
		if !reads {
			delete(s.wire, m.From)
		} else if len(s.wire) < maxWirePeers {
			s.wire[m.From] = true
		}
	}
}

// maxBusWaiting bounds the execution messages from the cluster bus that
// wait for the engine at once. Memberlist hands each message arriving
// over TCP to a goroutine of its own: a saturated peer would otherwise
// pile up goroutines (each a message decoded and waiting for the lock)
// without bound. One past the bound is dropped: on the bus every message
// is one that is repeated (loads and reports are periodic and full
// there, admits and stops are sent again until answered or seen done).
// A stream is read by one goroutine, so its messages queue in TCP.
const maxBusWaiting = 64

// receiveBus takes an execution message from the cluster bus.
func (s *Service) receiveBus(b []byte) {
	if s.busWaiting.Add(1) > maxBusWaiting {
		s.busWaiting.Add(-1)
		n := s.busDropped.Add(1)
		now := time.Now().UnixNano()
		if last := s.busLogged.Load(); now-last >= int64(10*time.Second) && s.busLogged.CompareAndSwap(last, now) {
			s.logger.Printf("exec: %d messages from the cluster bus waiting for this peer's engine: dropped one (%d so far; all are repeated)", maxBusWaiting, n)
		}
		return
	}
	defer s.busWaiting.Add(-1)
	s.receive(b)
}

func (s *Service) receive(b []byte) {
	ms, binary, err := decodeBatch(b)
	if err != nil {
		s.logger.Printf("exec: %v", err)
		return
	}
	s.mu.Lock()
	s.noteWire(ms, binary)
	stale := s.cluster.RoutingSnapshot() != s.routes
	s.mu.Unlock()
	if stale {
		// slots changed hands since the last tick: a report may be about
		// slots this peer just gained, so act on the current view
		s.refreshView()
	}
	s.mu.Lock()
	defer s.unlock()
	for _, m := range ms {
		s.eng.Step(time.Now(), s.cv, m)
	}
}

func (s *Service) taskUpdate(allocID, status string, ts structs.TaskState) {
	s.mu.Lock()
	defer s.unlock()
	s.eng.TaskUpdate(time.Now(), allocID, status, ts)
}

// with runs fn on the engine under its lock, with the current view.
func (s *Service) with(fn func(e *Engine, cv ClusterView)) {
	s.mu.Lock()
	defer s.unlock()
	fn(s.eng, s.cv)
}

// stats returns the engine's counters with the service's (under mu).
func (s *Service) stats(e *Engine) Stats {
	st := e.Stats()
	st.Busy += s.busy.Load()
	st.Forwarded = s.forwarded.Load()
	return st
}

// SetState sets the member lifecycle state this peer announces.
func (s *Service) SetState(state string) {
	s.with(func(e *Engine, _ ClusterView) { e.SetState(state) })
}

// LiveTasks returns the allocations this peer runs now.
func (s *Service) LiveTasks() []*structs.Allocation {
	var out []*structs.Allocation
	s.with(func(e *Engine, _ ClusterView) { out = e.LiveTasks() })
	return out
}

// ID returns the peer's node ID.
func (s *Service) ID() string { return string(s.cluster.ID()) }

// Ready reports whether the cluster is ok here, this peer has the loads
// of n peers (itself included) with their API addresses, and it
// supervises the jobs of its slots (no takeover grace left).
func (s *Service) Ready(n int) bool {
	ok := false
	s.with(func(e *Engine, cv ClusterView) {
		if !cv.OK {
			return
		}
		c := 0
		for _, l := range e.Loads() {
			if l.HTTPAddr != "" {
				c++
			}
		}
		ok = c >= n && len(e.takeovers) == 0 // owners supervise (no grace left)
	})
	return ok
}
