// Package repl is the replication of the data store (docs/kv.md,
// "Replication"): the stream of committed writes and its backlog, the
// primary's side of PSYNC (full and partial resyncs, the replicas' ACKs,
// WAIT), the replica's link to its primary, write pauses (CLIENT PAUSE,
// failover) and the replication ID and offset kept across restarts. The
// server feeds it the records of committed commands and gives it a way to
// apply the primary's commands through its own command path.
package repl

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

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

const noReplID = "0000000000000000000000000000000000000000"

var errStaleLink = errors.New("replication link replaced")

// Config configures the replication of a server.
type Config struct {
	// KS is the keyspace: snapshots of full syncs read it, write pauses
	// pass through its shard locks, and a replica hides expired keys.
	KS *keyspace.Keyspace
	// DBs, when set, are every numbered database's keyspace (KS is then
	// database 0); snapshots select each with SELECT, as the stream does.
	DBs []*keyspace.Keyspace
	// BacklogSize is the size of the backlog in bytes: how much of the
	// stream a replica can miss and still continue with a partial resync.
	BacklogSize int
	// MasterAuth is the password a replica AUTHs with at its primary.
	MasterAuth string
	// MasterUser is the user it AUTHs as (masteruser); empty: default.
	MasterUser string
	// TLS, when set, is how a replica dials its primary (tls-replication).
	TLS *tls.Config
	// Timeout is how long a link may stay silent before the replica
	// reconnects.
	Timeout time.Duration
	Logger  *log.Logger
	// NewApplier returns the function a replica's link applies the
	// primary's commands with, through the server's command path (so its
	// own log records them and WATCHes and blocked clients hear of them);
	// it returns the error reply, "" for success. One per link: a
	// transaction's MULTI ... EXEC go through one applier.
	NewApplier func() func(args [][]byte) string
	// ListenPort returns the port clients reach this server on (a replica
	// tells its primary with REPLCONF listening-port).
	ListenPort func() string
	// Now, when set, is the clock of ACK times in Unix seconds (tests).
	Now func() int64
	// Preamble, when set, returns records a full sync's snapshot starts
	// with: state other than keys (the function libraries).
	Preamble func() []byte
}

// State is the replication state of a server: its stream and backlog,
// the replicas attached to it and, on a replica, its link to the primary.
type State struct {
	cfg  Config
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	closed    bool
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
	// partialErrs counts PSYNCs with a replid (not "?") answered with a
	// full resync
	partialErrs int64
	// streamDB is the database of the stream's last record; -1 (after a
	// full sync was served, or raw records from a primary) makes the next
	// record start with SELECT, as Redis's stream does
	streamDB int

	// netIn and netOut are the replication bytes read from the primary
	// and written to replicas (INFO's total_net_repl_input_bytes and
	// total_net_repl_output_bytes): a full sync's bulk payload and the
	// stream, not the +FULLRESYNC or +CONTINUE line, as Redis counts them
	netIn, netOut atomic.Int64

	// active: the stream is kept (since the first replica attached, or
	// since this server was a replica); before, writes skip it and the
	// offset stays 0, as in Redis
	active atomic.Bool
	// snap is the snapshot of a full sync being taken (also in snapPtr
	// for the lock-free check of Prepare); snapMu allows one at a time
	snap          *snapState
	snapPtr       atomic.Pointer[snapState]
	snapMu        sync.Mutex
	snapshotDelay atomic.Int64 // see SetSnapshotDelay

	gen     atomic.Int64 // changes at every ReplicaOf; a link of an older gen stops
	applyMu sync.Mutex   // held while the link applies a command, and by ReplicaOf

	replica     atomic.Bool
	loading     atomic.Bool
	pausedUntil atomic.Int64 // Unix ns; writes wait until then (CLIENT PAUSE WRITE)

	// good is the number of good replicas (online, last ACK at most
	// goodLag seconds old), refreshed every second and as replicas attach
	// and detach, as Redis's repl_good_slaves_count
	good    atomic.Int64
	goodLag atomic.Int64
	// pingPeriod is how often, in seconds, the primary PINGs its replicas
	// (repl-ping-replica-period)
	pingPeriod atomic.Int64
	now        func() int64 // Unix seconds (tests set it)
}

// replLink is a replica attached to this server.
type replLink struct {
	nc      net.Conn
	ip      string
	port    string
	notify  chan struct{}
	online  atomic.Bool
	ack     atomic.Int64
	ackTime atomic.Int64 // Unix seconds of the last ACK
	// drainTo, when not -1, is the stream offset the link sends up to
	// before it ends: this server became a replica, and its replicas get
	// the writes it acknowledged before that (ReplicaOf)
	drainTo atomic.Int64
	done    chan struct{} // closed when ServeReplica is done with the link
}

func newReplID() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("repl: no randomness for a replication id: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// New returns the replication state of a primary with a new replication
// ID at offset 0, and starts pinging replicas once a second.
func New(cfg Config) *State {
	if len(cfg.DBs) == 0 {
		cfg.DBs = []*keyspace.Keyspace{cfg.KS}
	}
	r := &State{
		cfg: cfg, done: make(chan struct{}),
		bl: newBacklog(cfg.BacklogSize), replid: newReplID(), replid2: noReplID, secondOff: -1,
		links: make(map[*replLink]struct{}), waiters: make(map[chan struct{}]struct{}),
		now: cfg.Now,
	}
	if r.now == nil {
		r.now = func() int64 { return time.Now().Unix() }
	}
	r.goodLag.Store(10)
	r.pingPeriod.Store(DefaultPingPeriod)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.cron()
	}()
	return r
}

// BacklogSize is the size of the backlog in bytes (repl-backlog-size).
func (r *State) BacklogSize() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bl.buf)
}

// SetBacklogSize resizes the backlog (CONFIG SET repl-backlog-size),
// keeping its newest bytes that fit.
func (r *State) SetBacklogSize(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bl.resize(n)
}

// Active reports whether the stream is kept: writes must be fed.
func (r *State) Active() bool { return r.active.Load() }

// IsReplica reports whether the server replicates from a primary.
func (r *State) IsReplica() bool { return r.replica.Load() }

// Loading reports whether a replica is loading a full sync.
func (r *State) Loading() bool { return r.loading.Load() }

// Feed appends records to the stream and wakes the replica links; it
// returns the offset after them. shards are the shards the caller holds
// locked (the command's): while a snapshot is taken, records of commands
// on shards already in it are kept for after it too.
func (r *State) Feed(rec []byte, shards []int) int64 { return r.FeedDB(0, rec, shards) }

// FeedDB is Feed for a record of database db, shards global
// (command.GlobalShard): a SELECT goes first when the stream was in
// another database.
func (r *State) FeedDB(db int, rec []byte, shards []int) int64 {
	return r.FeedSpan(db, db, rec, shards)
}

// FeedSpan is FeedDB for records that start in database db and end in
// endDB: a transaction whose commands SELECT, as Redis streams it.
func (r *State) FeedSpan(db, endDB int, rec []byte, shards []int) int64 {
	r.mu.Lock()
	if db != r.streamDB {
		rec = append(command.AppendSelect(nil, db), rec...)
	}
	r.streamDB = endDB
	r.feedLocked(db, endDB, rec, shards)
	end := r.bl.end
	r.mu.Unlock()
	return end
}

// FeedRaw appends records that select no database (pings, GETACK).
func (r *State) FeedRaw(rec []byte) int64 {
	r.mu.Lock()
	r.feedLocked(-1, -1, rec, nil)
	end := r.bl.end
	r.mu.Unlock()
	return end
}

// feedPrimary appends a replica's copy of its primary's stream as it came,
// in whatever database it selects: the next record of its own (once
// promoted) starts with SELECT.
func (r *State) feedPrimary(rec []byte) int64 {
	r.mu.Lock()
	r.streamDB = -1
	r.feedLocked(-1, -1, rec, nil)
	end := r.bl.end
	r.mu.Unlock()
	return end
}

func (r *State) feedLocked(db, endDB int, rec []byte, shards []int) {
	r.bl.write(rec)
	if sn := r.snap; sn != nil {
		after := len(shards) == 0
		for _, i := range shards {
			if sn.done[i] {
				after = true
				break
			}
		}
		if after {
			if db >= 0 && db != sn.afterDB {
				// after follows the snapshot, whose last database is
				// not known yet: its first record selects its own (rec
				// may select it too: twice is harmless)
				sn.after = command.AppendSelect(sn.after, db)
			}
			sn.after = append(sn.after, rec...)
			if db >= 0 {
				sn.afterDB = endDB
			}
		}
	}
	for l := range r.links {
		select {
		case l.notify <- struct{}{}:
		default:
		}
	}
}

// Offset returns the replication offset: the end of this server's stream
// (master_repl_offset; on a replica, what it has applied).
func (r *State) Offset() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bl.end
}

var bDEL = []byte("DEL")

// Expired is the keyspace's hook for keys it deletes because they expired
// (on access or by the active expirer): replicas do not expire keys, they
// receive a DEL in the stream, as in Redis. Called with the key's shard
// locked.
func (r *State) Expired(db int, key []byte) {
	if r.active.Load() {
		r.FeedDB(db, resp.AppendCommand(nil, bDEL, key), []int{command.GlobalShard(db, keyspace.ShardOf(key))})
	}
}

// Paused reports whether client writes are paused (CLIENT PAUSE WRITE,
// CLUSTER FAILOVER).
func (r *State) Paused() bool {
	u := r.pausedUntil.Load()
	return u != 0 && time.Now().UnixNano() < u
}

// PauseWrites makes client writes wait for d (or until UnpauseWrites) and
// returns the stream offset once every write already executing has
// committed: the writes acknowledged before the pause are all below it.
// The caller must hold no shard: the barrier takes each in turn (a
// command run by EXEC or a script calls StartPause instead).
func (r *State) PauseWrites(d time.Duration) int64 {
	r.StartPause(d)
	// barrier: a command checks the pause after locking its shards, so
	// once every shard was free once, later writes see the pause
	for _, ks := range r.cfg.DBs {
		for i := 0; i < keyspace.NumShards; i++ {
			ks.LockShard(i)
			ks.UnlockShard(i) //nolint:staticcheck // an empty critical section is the point
		}
	}
	return r.Offset()
}

// StartPause makes client writes wait for d (or until UnpauseWrites)
// without the barrier of PauseWrites: for a caller that holds shards (a
// CLIENT PAUSE run by EXEC or a script, which would wait for itself).
// The writes that hold shards now commit after it, as the rest of the
// transaction does in Redis, whose pause starts at the end of EXEC.
func (r *State) StartPause(d time.Duration) {
	r.pausedUntil.Store(time.Now().Add(d).UnixNano())
}

// UnpauseWrites ends a pause.
func (r *State) UnpauseWrites() { r.pausedUntil.Store(0) }

// WaitUnpaused waits until writes are no longer paused; false when the
// server is closing.
func (r *State) WaitUnpaused() bool {
	for r.Paused() {
		select {
		case <-r.done:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// DefaultPingPeriod is gantry's repl-ping-replica-period: a second (Redis
// has 10), well within a replica's link timeout (--repl-timeout).
const DefaultPingPeriod = 1

// PingPeriod returns how often, in seconds, the replicas are PINGed.
func (r *State) PingPeriod() int64 { return r.pingPeriod.Load() }

// SetPingPeriod sets how often, in seconds (at least 1), the replicas
// are PINGed; it must stay under their link timeout.
func (r *State) SetPingPeriod(sec int64) { r.pingPeriod.Store(max(sec, 1)) }

// SetGoodLag sets how old, in seconds, a replica's last ACK may be for it
// to count as good (min-replicas-max-lag) and counts them again.
func (r *State) SetGoodLag(sec int64) {
	r.goodLag.Store(sec)
	r.refreshGood()
}

// GoodReplicas returns the number of good replicas: online, with a
// REPLCONF ACK at most the good lag old. It is counted once a second and
// as replicas attach and detach (one atomic load here).
func (r *State) GoodReplicas() int { return int(r.good.Load()) }

// refreshGood counts the good replicas.
func (r *State) refreshGood() {
	now, lag := r.now(), r.goodLag.Load()
	n := 0
	r.mu.Lock()
	for l := range r.links {
		if l.online.Load() && now-l.ackTime.Load() <= lag {
			n++
		}
	}
	r.mu.Unlock()
	r.good.Store(int64(n))
}

// CountAcked returns how many online replicas acknowledged off.
func (r *State) CountAcked(off int64) int {
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

// RequestAcks asks the replicas for an ACK now instead of within a second
// (WAIT).
func (r *State) RequestAcks() {
	if r.active.Load() {
		r.FeedRaw(resp.AppendCommand(nil, bREPLCONF, bGETACK, bStar))
	}
}

// AddWaiter makes ch receive (without blocking) whenever a replica
// acknowledges, until RemoveWaiter.
func (r *State) AddWaiter(ch chan struct{}) {
	r.mu.Lock()
	r.waiters[ch] = struct{}{}
	r.mu.Unlock()
}

// RemoveWaiter undoes AddWaiter.
func (r *State) RemoveWaiter(ch chan struct{}) {
	r.mu.Lock()
	delete(r.waiters, ch)
	r.mu.Unlock()
}

// wakeWaitersLocked tells WAITing clients an ACK arrived; the caller
// holds r.mu.
func (r *State) wakeWaitersLocked() {
	for ch := range r.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Close ends the replica's link and every replica's, stops the
// background work and waits for it.
func (r *State) Close() {
	r.gen.Add(1)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.done)
	nc := r.masterConn
	r.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
	r.wg.Wait()
}

// SetSnapshotDelay makes full-sync snapshots pause d after each shard, so
// tests can interleave writes with a snapshot.
func (r *State) SetSnapshotDelay(d time.Duration) { r.snapshotDelay.Store(int64(d)) }

// LastSnapshotTail returns how many stream bytes were recorded during the
// last full-sync snapshot (tests).
func (r *State) LastSnapshotTail() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastAfter
}

// DropLink closes a replica's connection to its primary; the link
// reconnects (tests).
func (r *State) DropLink() {
	r.mu.Lock()
	nc := r.masterConn
	r.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}
