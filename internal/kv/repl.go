package kv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// Replication (docs/kv.md, "Replication").
//
// Every committed write is appended to the replication stream while its
// command still holds its shard locks, in the same order as the
// append-only log, so the stream order agrees with the order of
// conflicting commands. The stream is addressed by byte offsets; the last
// ReplBacklogSize bytes stay in a ring (the backlog) from which replicas
// continue after a short disconnect (PSYNC replid offset). A full sync
// locks every shard, notes the stream offset, serialises the keyspace
// (gantry's own format: the RESP commands of a snapshot file) and
// unlocks: the snapshot holds exactly the writes before the offset and
// the stream from the offset holds exactly the others.

const (
	errReadOnlyReplica = "READONLY You can't write against a read only replica."
	errLoading         = "LOADING Gantry is loading the dataset in memory"
	noReplID           = "0000000000000000000000000000000000000000"
)

var errStaleLink = errors.New("replication link replaced")

// replState is the replication state of a server: its stream and backlog,
// the replicas attached to it and, on a replica, its link to the primary.
type replState struct {
	s *Server

	mu        sync.Mutex // guards the fields below
	bl        backlog
	replid    string
	replid2   string
	secondOff int64 // replid2 is valid for offsets up to this; -1 none
	links     map[*replLink]struct{}
	waiters   map[chan struct{}]struct{}
	// replica side
	masterAddr string   // "" on a primary
	masterConn net.Conn // the current link's connection
	linkUp     bool     // handshake done, streaming
	syncing    bool     // a full sync is being received
	lastIO     time.Time
	syncs      int64 // full syncs served
	lastAfter  int   // stream bytes recorded during the last snapshot (tests)
	partials   int64 // partial resyncs served

	// active: the stream is kept (since the first replica attached, or
	// since this server was a replica); before, writes skip it and the
	// offset stays 0, as in Redis
	active atomic.Bool
	// snap is the snapshot of a full sync being taken (also in snapPtr
	// for the lock-free check of prepare); snapMu allows one at a time
	snap    *snapState
	snapPtr atomic.Pointer[snapState]
	snapMu  sync.Mutex

	gen     atomic.Int64 // changes at every REPLICAOF; a link of an older gen stops
	applyMu sync.Mutex   // held while the link applies a command, and by REPLICAOF

	replica     atomic.Bool
	loading     atomic.Bool
	pausedUntil atomic.Int64 // Unix ns; writes wait until then (CLIENT PAUSE WRITE)
}

// replLink is a replica attached to this server.
type replLink struct {
	c       *Client
	ip      string
	port    string
	notify  chan struct{}
	online  atomic.Bool
	ack     atomic.Int64
	ackTime atomic.Int64 // Unix seconds of the last ACK
}

func newReplID() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("kv: no randomness for a replication id: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

func newReplState(s *Server, size int) *replState {
	return &replState{
		s: s, bl: newBacklog(size), replid: newReplID(), replid2: noReplID, secondOff: -1,
		links: make(map[*replLink]struct{}), waiters: make(map[chan struct{}]struct{}),
	}
}

// feed appends records to the stream and wakes the replica links; it
// returns the offset after them. shards are the shards the caller holds
// locked (the command's): while a snapshot is taken, records of commands
// on shards already in it are kept for after it too.
func (r *replState) feed(rec []byte, shards []int) int64 {
	r.mu.Lock()
	r.bl.write(rec)
	end := r.bl.end
	if sn := r.snap; sn != nil {
		after := len(shards) == 0
		for _, i := range shards {
			if sn.done[i] {
				after = true
				break
			}
		}
		if after {
			sn.after = append(sn.after, rec...)
		}
	}
	for l := range r.links {
		select {
		case l.notify <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
	return end
}

// Offset returns the replication offset: the end of this server's stream
// (master_repl_offset; on a replica, what it has applied).
func (s *Server) ReplOffset() int64 {
	s.repl.mu.Lock()
	defer s.repl.mu.Unlock()
	return s.repl.bl.end
}

// IsReplica reports whether the server replicates from a primary.
func (s *Server) IsReplica() bool { return s.repl.replica.Load() }

// expired is the keyspace's hook for keys it deletes because they expired
// (on access or by the active expirer): replicas do not expire keys, they
// receive a DEL in the stream, as in Redis. Called with the key's shard
// locked.
func (r *replState) expired(key []byte) {
	if r.active.Load() {
		r.feed(resp.AppendCommand(nil, bDEL, key), []int{shardOf(key)})
	}
}

// pausedNow reports whether client writes are paused (CLIENT PAUSE WRITE,
// CLUSTER FAILOVER).
func (r *replState) pausedNow() bool {
	u := r.pausedUntil.Load()
	return u != 0 && time.Now().UnixNano() < u
}

// PauseWrites makes client writes wait for d (or until UnpauseWrites) and
// returns the stream offset once every write already executing has
// committed: the writes acknowledged before the pause are all below it.
func (s *Server) PauseWrites(d time.Duration) int64 {
	s.repl.pausedUntil.Store(time.Now().Add(d).UnixNano())
	// barrier: a command checks the pause after locking its shards, so
	// once every shard was free once, later writes see the pause
	for i := range s.ks.shards {
		s.ks.shards[i].mu.Lock()
		s.ks.shards[i].mu.Unlock() //nolint:staticcheck // an empty critical section is the point
	}
	return s.ReplOffset()
}

// UnpauseWrites ends a pause.
func (s *Server) UnpauseWrites() { s.repl.pausedUntil.Store(0) }

// waitUnpaused waits until writes are no longer paused; false when the
// server is closing.
func (r *replState) waitUnpaused() bool {
	for r.pausedNow() {
		select {
		case <-r.s.done:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// pauseHit reports whether a command that just locked its shards must
// wait for the end of a pause instead of running.
func (c *Client) pauseHit(cmd *Command) bool {
	return cmd.flags&flagWrite != 0 && !c.master && !c.inExec && c.srv.repl != nil && c.srv.repl.pausedNow()
}

// replicaCheck refuses client writes on a replica and every command with
// keys while a full sync loads; "" lets the command run.
func (s *Server) replicaCheck(c *Client, cmd *Command) string {
	if c.master || !s.repl.replica.Load() {
		return ""
	}
	if cmd.flags&flagWrite != 0 {
		return errReadOnlyReplica
	}
	if s.repl.loading.Load() && (cmd.First != 0 || cmd.KeysFn != nil || cmd.flags&flagAllShards != 0) {
		return errLoading
	}
	return ""
}

// replicaAdmits is the replica check of cluster mode, run by call once the
// command was routed (standalone servers check in dispatch); false means
// the error reply is written.
func (c *Client) replicaAdmits(cmd *Command) bool {
	s := c.srv
	if s.cfg.Cluster == nil || s.repl == nil {
		return true
	}
	if msg := s.replicaCheck(c, cmd); msg != "" {
		c.w.Error(msg)
		return false
	}
	return true
}

func replSpecs() []cmdSpec {
	const adm = "admin noscript loading stale"
	return []cmdSpec{
		{"psync", -3, adm + " no-multi", 0, 0, 0, "server", cmdPSync, nil},
		{"sync", 1, adm + " no-multi", 0, 0, 0, "server", cmdPSync, nil},
		{"replconf", -1, adm + " allow-busy", 0, 0, 0, "server", cmdReplConf, nil},
		{"replicaof", 3, adm + " no-async-loading", 0, 0, 0, "server", cmdReplicaOf, nil},
		{"slaveof", 3, adm + " no-async-loading", 0, 0, 0, "server", cmdReplicaOf, nil},
		{"wait", 3, "noscript", 0, 0, 0, "generic", cmdWait, nil},
		{"role", 1, "noscript loading stale fast", 0, 0, 0, "server", cmdRole, nil},
	}
}

// cmdReplConf records what a replica tells about itself; ACK and GETACK
// are handled on the replication link.
func cmdReplConf(c *Client) {
	if (len(c.args)-1)%2 != 0 {
		c.w.Error(errSyntax)
		return
	}
	for i := 1; i < len(c.args); i += 2 {
		opt := string(lowerInto(nil, c.args[i]))
		val := string(c.args[i+1])
		switch opt {
		case "listening-port":
			if p, err := strconv.Atoi(val); err != nil || p <= 0 || p > 65535 {
				c.w.Error("ERR Invalid listening-port " + val)
				return
			}
			c.replPort = val
		case "ip-address":
			c.replIP = val
		case "capa", "rdb-only", "rdb-filter-only":
		case "ack", "getack":
			return // no reply, as in Redis
		default:
			c.w.Error("ERR Unrecognized REPLCONF option: " + trunc(c.args[i], 64))
			return
		}
	}
	c.w.OK()
}

// cmdReplicaOf is REPLICAOF host port | REPLICAOF NO ONE (and SLAVEOF).
func cmdReplicaOf(c *Client) {
	s := c.srv
	if s.cfg.Cluster != nil {
		c.w.Error("ERR REPLICAOF not allowed in cluster mode.")
		return
	}
	if equalFold(c.args[1], "no") && equalFold(c.args[2], "one") {
		s.ReplicaOf("")
		c.w.OK()
		return
	}
	p, err := strconv.Atoi(string(c.args[2]))
	if err != nil || p <= 0 || p > 65535 {
		c.w.Error("ERR Invalid master port")
		return
	}
	addr := net.JoinHostPort(string(c.args[1]), strconv.Itoa(p))
	s.repl.mu.Lock()
	same := s.repl.masterAddr == addr
	s.repl.mu.Unlock()
	if same {
		c.w.Simple("OK Already connected to specified master")
		return
	}
	s.ReplicaOf(addr)
	c.w.OK()
}

// cmdRole is ROLE.
func cmdRole(c *Client) {
	r := c.srv.repl
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.masterAddr != "" {
		host, port, _ := net.SplitHostPort(r.masterAddr)
		pn, _ := strconv.Atoi(port)
		state := "connect"
		switch {
		case r.syncing:
			state = "sync"
		case r.linkUp:
			state = "connected"
		case r.masterConn != nil:
			state = "connecting"
		}
		c.w.Array(5)
		c.w.BulkString("slave")
		c.w.BulkString(host)
		c.w.Int(int64(pn))
		c.w.BulkString(state)
		c.w.Int(r.bl.end)
		return
	}
	c.w.Array(3)
	c.w.BulkString("master")
	c.w.Int(r.bl.end)
	var online []*replLink
	for l := range r.links {
		if l.online.Load() {
			online = append(online, l)
		}
	}
	c.w.Array(len(online))
	for _, l := range online {
		c.w.Array(3)
		c.w.BulkString(l.ip)
		c.w.BulkString(l.port)
		c.w.BulkString(strconv.FormatInt(l.ack.Load(), 10))
	}
}

// countAcked returns how many online replicas acknowledged off.
func (r *replState) countAcked(off int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for l := range r.links {
		if l.online.Load() && l.ack.Load() >= off {
			n++
		}
	}
	return n
}

var (
	bREPLCONF = []byte("REPLCONF")
	bGETACK   = []byte("GETACK")
	bStar     = []byte("*")
	bPING     = []byte("PING")
)

// cmdWait is WAIT numreplicas timeout: it returns once numreplicas
// replicas acknowledged the client's last write, or at the timeout, with
// the number that did. A client served by an event loop moves to a
// goroutine of its own to wait, so no loop blocks.
func cmdWait(c *Client) {
	s := c.srv
	if s.repl.replica.Load() {
		c.w.Error("ERR WAIT cannot be used with replica instances.")
		return
	}
	want, ok := c.argInt(1)
	if !ok {
		return
	}
	ms, ok := parseInt(c.args[2])
	if !ok || ms < 0 {
		c.w.Error("ERR timeout is negative")
		return
	}
	target := c.replOff
	n := s.repl.countAcked(target)
	if int64(n) >= want || c.inExec {
		c.w.Int(int64(n))
		return
	}
	if c.inLoop {
		c.detach = true
		return
	}
	// ask the replicas for an ACK now instead of within a second
	if s.repl.active.Load() {
		s.repl.feed(resp.AppendCommand(nil, bREPLCONF, bGETACK, bStar), nil)
	}
	var deadline <-chan time.Time
	if ms > 0 {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		deadline = t.C
	}
	wake := make(chan struct{}, 1)
	s.repl.mu.Lock()
	s.repl.waiters[wake] = struct{}{}
	s.repl.mu.Unlock()
	defer func() {
		s.repl.mu.Lock()
		delete(s.repl.waiters, wake)
		s.repl.mu.Unlock()
	}()
	for {
		switch c.waitBlocked(wake, deadline) {
		case waitGone:
			c.closing = true
			return
		case waitTimeout:
			c.w.Int(int64(s.repl.countAcked(target)))
			return
		}
		if n := s.repl.countAcked(target); int64(n) >= want {
			c.w.Int(int64(n))
			return
		}
	}
}

// wakeWaiters tells WAITing clients an ACK arrived; the caller holds r.mu.
func (r *replState) wakeWaitersLocked() {
	for ch := range r.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// replInfo returns the lines of INFO's Replication section.
func (s *Server) replInfo() []string {
	r := s.repl
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var lines []string
	if r.masterAddr != "" {
		host, port, _ := net.SplitHostPort(r.masterAddr)
		status, io := "down", int64(-1)
		if r.linkUp {
			status = "up"
		}
		if !r.lastIO.IsZero() {
			io = int64(now.Sub(r.lastIO).Seconds())
		}
		lines = append(lines, "role:slave", "master_host:"+host, "master_port:"+port,
			"master_link_status:"+status,
			"master_last_io_seconds_ago:"+strconv.FormatInt(io, 10),
			"master_sync_in_progress:"+strconv.Itoa(int(b2i(r.syncing))),
			"slave_read_repl_offset:"+strconv.FormatInt(r.bl.end, 10),
			"slave_repl_offset:"+strconv.FormatInt(r.bl.end, 10),
			"slave_priority:100", "slave_read_only:1", "replica_announced:1")
	} else {
		lines = append(lines, "role:master")
	}
	var online []*replLink
	for l := range r.links {
		if l.online.Load() {
			online = append(online, l)
		}
	}
	lines = append(lines, "connected_slaves:"+strconv.Itoa(len(online)))
	for i, l := range online {
		lag := now.Unix() - l.ackTime.Load()
		lines = append(lines, "slave"+strconv.Itoa(i)+":ip="+l.ip+",port="+l.port+
			",state=online,offset="+strconv.FormatInt(l.ack.Load(), 10)+",lag="+strconv.FormatInt(lag, 10))
	}
	first := r.bl.start + 1
	if r.bl.end == r.bl.start {
		first = r.bl.end + 1
	}
	lines = append(lines, "master_failover_state:no-failover",
		"master_replid:"+r.replid, "master_replid2:"+r.replid2,
		"master_repl_offset:"+strconv.FormatInt(r.bl.end, 10),
		"second_repl_offset:"+strconv.FormatInt(r.secondOff, 10),
		"repl_backlog_active:"+strconv.Itoa(int(b2i(r.active.Load()))),
		"repl_backlog_size:"+strconv.Itoa(len(r.bl.buf)),
		"repl_backlog_first_byte_offset:"+strconv.FormatInt(first, 10),
		"repl_backlog_histlen:"+strconv.FormatInt(r.bl.end-r.bl.start, 10),
		"gantry_full_syncs:"+strconv.FormatInt(r.syncs, 10),
		"gantry_partial_syncs:"+strconv.FormatInt(r.partials, 10))
	return lines
}

// ReplInfo is INFO's Replication section as field -> value (tests, the
// cluster layer).
func (s *Server) ReplInfo() map[string]string {
	m := map[string]string{}
	for _, l := range s.replInfo() {
		k, v, _ := strings.Cut(l, ":")
		m[k] = v
	}
	return m
}

// close ends the replica's link (the server is closing).
func (r *replState) close() {
	r.gen.Add(1)
	r.mu.Lock()
	nc := r.masterConn
	r.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

// clientPause is CLIENT PAUSE timeout [WRITE|ALL] and CLIENT UNPAUSE.
// gantry pauses writes only (ALL is taken as WRITE): reads go on.
func clientPause(c *Client, sub string) {
	if sub == "unpause" {
		if len(c.args) != 2 {
			c.wrongArgs()
			return
		}
		c.srv.UnpauseWrites()
		c.w.OK()
		return
	}
	if len(c.args) < 3 || len(c.args) > 4 {
		c.w.Error("ERR wrong number of arguments for 'client|pause' command")
		return
	}
	ms, ok := parseInt(c.args[2])
	if !ok || ms < 0 {
		c.w.Error("ERR timeout is not an integer or out of range")
		return
	}
	if len(c.args) == 4 && !equalFold(c.args[3], "write") && !equalFold(c.args[3], "all") {
		c.w.Error(errSyntax)
		return
	}
	c.srv.PauseWrites(time.Duration(ms) * time.Millisecond)
	c.w.OK()
}
