package repl

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

// linkWriteTimeout bounds a write to a replica that stopped reading.
const linkWriteTimeout = 10 * time.Second

// errChained refuses PSYNC on a replica.
const errChained = "ERR gantry replicas do not serve replicas (no chained replication); PSYNC the primary"

// PSync is a replica's PSYNC replid offset (or SYNC, Legacy) on Conn.
type PSync struct {
	ID     string
	Offset int64 // -1 when unknown
	Legacy bool  // SYNC: a full sync without a +FULLRESYNC line
	// IP and Port are where the replica serves clients (REPLCONF).
	IP, Port string
	Conn     net.Conn
	// Flush sends the replies to the commands the replica sent before
	// PSYNC; Buffered returns the bytes it sent after PSYNC that the
	// server has read already.
	Flush    func() error
	Buffered func() []byte
}

// ServeReplica serves PSYNC: the connection becomes a replication link.
// It answers +CONTINUE when the replica's history is in the backlog (its
// replid is ours, or our previous one up to the offset where it changed),
// else +FULLRESYNC replid offset followed by a snapshot as a bulk payload;
// then it streams the writes from the offset and reads the replica's
// REPLCONF ACKs, until either side goes away or Close. It returns the
// error reply when it refuses (this server is a replica) before sending
// anything; otherwise the connection is done with when it returns.
func (r *State) ServeReplica(p PSync) (refusal string) {
	if r.replica.Load() {
		return errChained
	}
	l := &replLink{nc: p.Conn, ip: p.IP, port: p.Port, notify: make(chan struct{}, 1), done: make(chan struct{})}
	l.drainTo.Store(-1)
	l.ackTime.Store(r.now())

	var head, payload []byte
	var pos int64
	// a server that became a replica meanwhile serves no replica (its
	// stream would be another primary's)
	r.mu.Lock()
	if r.masterAddr != "" {
		r.mu.Unlock()
		return errChained
	}
	partial := !p.Legacy && r.active.Load() && p.Offset >= 0 && r.bl.holds(p.Offset) &&
		(p.ID == r.replid || p.ID == r.replid2 && p.Offset <= r.secondOff)
	if partial {
		pos = p.Offset
		r.links[l] = struct{}{}
		r.partials++
		head = []byte("+CONTINUE " + r.replid + "\r\n")
		r.mu.Unlock()
	} else {
		if !p.Legacy && p.ID != "?" { // a replica that asked to continue (Redis's sync_partial_err)
			r.partialErrs++
		}
		r.mu.Unlock()
		var id string
		refused := false
		payload, pos, id = r.snapshot(func() {
			if refused = r.masterAddr != ""; !refused {
				r.links[l] = struct{}{}
			}
		})
		if refused {
			return errChained
		}
		if !p.Legacy {
			head = []byte("+FULLRESYNC " + id + " " + strconv.FormatInt(pos, 10) + "\r\n")
		}
		head = append(head, '$')
		head = strconv.AppendInt(head, int64(len(payload)), 10)
		head = append(head, '\r', '\n')
	}
	defer func() {
		r.mu.Lock()
		delete(r.links, l)
		r.wakeWaitersLocked()
		r.mu.Unlock()
		r.refreshGood()
		close(l.done)
	}()
	// replies to commands before PSYNC go first
	if err := p.Flush(); err != nil {
		return ""
	}
	nc := p.Conn
	_ = nc.SetWriteDeadline(time.Now().Add(linkWriteTimeout))
	// the +FULLRESYNC or +CONTINUE line is not replication traffic in
	// Redis's count (it writes it apart from the replica's output)
	reply := int64(0)
	if head[0] == '+' {
		reply = int64(bytes.IndexByte(head, '\n') + 1)
	}
	if n, err := nc.Write(head); err != nil {
		r.netOut.Add(max(int64(n)-reply, 0))
		return ""
	}
	r.netOut.Add(int64(len(head)) - reply)
	for len(payload) > 0 { // chunks, so a slow replica gets a fresh deadline
		n := min(len(payload), 1<<20)
		_ = nc.SetWriteDeadline(time.Now().Add(linkWriteTimeout))
		w, err := nc.Write(payload[:n])
		r.netOut.Add(int64(w))
		if err != nil {
			return ""
		}
		payload = payload[n:]
	}
	payload = nil
	l.online.Store(true)
	r.refreshGood()
	r.cfg.Logger.Printf("replica %s:%s attached (partial=%v) at offset %d", l.ip, l.port, partial, pos)

	// what the replica sends: ACKs (bytes already read come first)
	readerDone := make(chan struct{})
	first := p.Buffered()
	go func() {
		defer close(readerDone)
		r.readAcks(l, first)
	}()
	defer func() {
		nc.Close()
		<-readerDone
	}()
	var buf []byte
	for {
		limit := int64(1 << 20)
		if d := l.drainTo.Load(); d >= 0 { // ReplicaOf: up to d, then end
			if pos >= d {
				return ""
			}
			limit = min(limit, d-pos)
		}
		r.mu.Lock()
		var ok bool
		buf, ok = r.bl.readFrom(pos, buf[:0], int(limit))
		r.mu.Unlock()
		if !ok {
			r.cfg.Logger.Printf("replica %s:%s fell behind the backlog at offset %d: disconnecting it (it will full-sync)", l.ip, l.port, pos)
			return ""
		}
		if len(buf) > 0 {
			_ = nc.SetWriteDeadline(time.Now().Add(linkWriteTimeout))
			w, err := nc.Write(buf)
			r.netOut.Add(int64(w))
			if err != nil {
				return ""
			}
			pos += int64(len(buf))
			if cap(buf) > 4<<20 {
				buf = nil
			}
			continue
		}
		select {
		case <-l.notify:
		case <-readerDone:
			return ""
		case <-r.done:
			return ""
		}
	}
}

// readAcks reads REPLCONF ACK offset from a replica until the connection
// fails.
func (r *State) readAcks(l *replLink, buf []byte) {
	tmp := make([]byte, 4096)
	var args [][]byte
	for {
		for len(buf) > 0 {
			var n int
			var err error
			args, n, err = resp.ParseCommand(buf, args)
			if err != nil {
				return
			}
			if n == 0 {
				break
			}
			buf = buf[n:]
			if len(args) == 3 && command.EqualFold(args[0], "replconf") && command.EqualFold(args[1], "ack") {
				if off, ok := command.ParseInt(args[2]); ok {
					l.ack.Store(off)
					l.ackTime.Store(r.now())
					r.mu.Lock()
					r.wakeWaitersLocked()
					r.mu.Unlock()
				}
			}
		}
		buf = append([]byte(nil), buf...)
		n, err := l.nc.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			return
		}
	}
}

// snapState is a snapshot being taken for a full sync.
type snapState struct {
	// done[i] is set once shard i is in the snapshot; guarded by the
	// shard's lock
	done []bool // by global shard (command.GlobalShard)
	db   int    // the database of data's last record; guarded by mu
	// afterDB is the database of after's last record (-1: none yet);
	// guarded by State.mu
	afterDB int
	mu      sync.Mutex // guards data
	data    []byte
	// after are the stream records of commands on shards already in the
	// snapshot (guarded by State.mu): snapshot + after is the state at
	// the offset where the snapshot ends
	after []byte
}

// snapshot takes a snapshot for a full sync and returns it with the
// stream offset it corresponds to exactly, and the replication ID; attach
// runs with r.mu held at that offset (the link registers, so it misses
// nothing of the stream).
//
// The shards are written one at a time under their own lock, so writes
// stall only on the shard being written, as in an append-only log
// rewrite: a command on shards all written already goes to the stream
// and to after; one on shards none written yet is in the snapshot when
// they are written; Prepare puts every shard of a command on the same side
// before it runs. Keys that expired but were not deleted yet are included:
// the replica hides them and the DEL that deletes them follows in the
// stream.
func (r *State) snapshot(attach func()) (payload []byte, off int64, id string) {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	sn := &snapState{done: make([]bool, len(r.cfg.DBs)*keyspace.NumShards), afterDB: -1}
	if r.cfg.Preamble != nil {
		sn.data = append(sn.data, r.cfg.Preamble()...)
	}
	r.mu.Lock()
	r.snap = sn
	r.snapPtr.Store(sn)
	r.mu.Unlock()
	r.active.Store(true)
	for g := range sn.done {
		ks, i := r.cfg.DBs[g/keyspace.NumShards], g%keyspace.NumShards
		ks.LockShard(i)
		keys := ks.ShardLenLocked(i)
		if !sn.done[g] {
			sn.shardLocked(ks, g)
		}
		ks.UnlockShard(i)
		if d := time.Duration(r.snapshotDelay.Load()); d > 0 && keys > 0 { // (tests) after shards with keys
			time.Sleep(d)
		}
	}
	r.mu.Lock()
	off, id = r.bl.end, r.replid
	r.snap = nil
	r.snapPtr.Store(nil)
	r.syncs++
	r.lastAfter = len(sn.after)
	r.streamDB = -1
	attach()
	r.mu.Unlock()
	return append(sn.data, sn.after...), off, id
}

// shardLocked writes global shard g (of ks) into the snapshot, after a
// SELECT when the snapshot was in another database; the caller holds its
// lock.
func (sn *snapState) shardLocked(ks *keyspace.Keyspace, g int) {
	var buf []byte
	ks.ForEachInShardLocked(g%keyspace.NumShards, func(k string, e *keyspace.Entry) {
		buf = command.AppendEntry(buf, k, e)
	})
	sn.mu.Lock()
	if db := g / keyspace.NumShards; len(buf) > 0 && db != sn.db {
		sn.data = command.AppendSelect(sn.data, db)
		sn.db = db
	}
	sn.data = append(sn.data, buf...)
	sn.mu.Unlock()
	sn.done[g] = true
}

// Prepare runs after a command locked its shards: while a snapshot is
// taken, a command whose shards are partly in it gets the others written
// first, so it is wholly after the snapshot.
func (r *State) Prepare(shards []int) {
	sn := r.snapPtr.Load()
	if sn == nil || len(shards) < 2 {
		return
	}
	done, notDone := false, false
	for _, i := range shards {
		if sn.done[i] {
			done = true
		} else {
			notDone = true
		}
	}
	if done && notDone {
		for _, i := range shards {
			if !sn.done[i] {
				sn.shardLocked(r.cfg.DBs[i/keyspace.NumShards], i)
			}
		}
	}
}

// cron pings the replicas every repl-ping-replica-period seconds, so a
// replica notices a silent primary, and counts the good replicas every
// second.
func (r *State) cron() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	ping := resp.AppendCommand(nil, bPING)
	var sincePing int64
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		r.mu.Lock()
		n := len(r.links)
		r.mu.Unlock()
		r.refreshGood()
		if sincePing++; sincePing < r.pingPeriod.Load() {
			continue
		}
		sincePing = 0
		if n > 0 && !r.replica.Load() {
			r.FeedRaw(ping)
		}
	}
}

// Snapshotting reports whether a full sync's snapshot is cutting the
// keyspace (see aof.Log.Snapshotting).
func (r *State) Snapshotting() bool { return r.snapPtr.Load() != nil }
