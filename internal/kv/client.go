package kv

import (
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/kv/acl"
	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/resp"
)

// Client is the state of one connection. It embeds the command.Ctx its
// commands run in (arguments, reply writer, keys and locks), so a handler
// reaches the connection through Ctx.Conn only when it needs it
// (connection, transaction and replication commands).
// A Client is used by its connection's goroutine only, except casDirty.
type Client struct {
	command.Ctx

	srv *Server
	nc  net.Conn
	id  int64
	// listIdx is its place in srv.clientList (srv.mu)
	listIdx int

	rbuf    []byte
	rstart  int
	rend    int
	partial resp.Partial // progress of a big command still arriving
	pending []byte       // bytes read while blocked, parsed next
	qpeak   int          // most input held since the last cron (querybuf.go)
	reply   replyBuf     // the reply buffer's usable size and peak (replybuf.go)
	closing bool         // close after the replies are sent
	// limits (limits.go)
	lastIO    int64 // Unix ms of the last read or write progress (timeout)
	softSince int64 // Unix ms since the replies are over the soft limit, 0 if not
	deadline  bool  // a read deadline is set (goroutine mode, timeout)
	wdeadline bool  // a write deadline is set (goroutine mode, timeout)
	// event loop mode (see eventloop_linux.go)
	fd     int
	inLoop bool // served by an event loop, not by its own goroutine
	detach bool // leave the event loop to block
	wpos   int  // bytes of W.B already written
	// batched marks the client while writeBatch has written its replies
	batched bool
	// pushHeld marks the client while its loop holds its mailbox (l.held)
	pushHeld bool
	// waitingOut is set while the loop waits for the socket to drain.
	waitingOut bool
	// blockWake is the wake channel of a blocking command that registered
	// on its keys in the event loop before leaving it: the command's run on
	// the connection's goroutine waits on it (blocking.go)
	blockWake *command.Waiter
	// pass serves the blocked clients the client's commands wake
	// before their replies (dispatch waits for it); touchPass, when set,
	// is the pass its changes wake clients into instead: that of the
	// command that woke its blocking command, or of a script's caller
	pass      command.Pass
	touchPass *command.Pass
	// blockCancel undoes that registration when the goroutine's run of the
	// command is refused before it waits (its ACL changed meanwhile...)
	blockCancel func()

	// keysReady: Keys are those of Args already (a script's command,
	// whose keys the script checked): call does not take them again
	keysReady bool

	name     string
	libName  string
	libVer   string
	authed   bool
	user     *acl.Handle // the ACL user (cmd_acl.go)
	aclKeys  [][]byte    // keys of the command being checked
	created  time.Time
	lastCmd  string
	lastTime atomic.Int64

	// batchNow, when not 0, is the time of the batch of pipelined
	// commands being executed.
	batchNow int64
	aofWait  int64     // log offset the pending replies acknowledge
	acks     []ackSpan // the pending replies that acknowledge logged writes (ack.go)

	// transactions
	multi    bool
	multiErr bool
	queued   [][][]byte
	// queuedBytes is the size of queued, counted as input held
	// (client-query-buffer-limit)
	queuedBytes int64
	// queuedDenyOOM: a queued command is flagged denyoom (EXEC is
	// refused when memory is over maxmemory)
	queuedDenyOOM bool
	// queuedWrite: a queued command is a write (EXEC is refused without
	// enough good replicas, min-replicas-to-write); queuedNoStale: one is
	// not flagged stale (EXEC is refused on a replica whose link is down,
	// replica-serve-stale-data no)
	queuedWrite   bool
	queuedNoStale bool
	txrec         []byte
	nrec          int // the commands in txrec
	pushEnd       int // where pushes moved into W.B by this command end (CLIENT REPLY)
	watched       []watchedKey
	// gLocked holds the global shards of a command of another database
	// than 0 (globalLocked)
	gLocked   []int
	txDB      int         // the database of txrec's last record, -1 before the first
	txFirstDB int         // the database of txrec's first record
	casDirty  atomic.Bool // a watched key changed (set by other clients' commits)

	// trk is the client's tracking mode (set and cleared by its own
	// goroutine; its fields are guarded by the server's tracker)
	trk *clientTracking
	// pushTarget: invalidations may come to the mailbox outside pub/sub
	pushTarget atomic.Bool

	cluster clusterConnState

	// pub/sub (pubsub.go)
	subs    *clientSubs
	mail    mailbox
	newKeys [][]byte // keys a write creates (notify.go)
	// scriptWait: the script this client's EVAL runs, after the client
	// left its event loop to wait for it (cmd_script.go)
	scriptWait chan scriptResult
	// detachStart: when the command that left the event loop started
	// (an EVAL whose script goes on is counted from there)
	detachStart time.Duration
	// evalLast is the script of the client's last EVALSHA, looked up
	// again without the script cache's lock (cmd_script.go)
	evalLast *evalLast

	// replication
	master      bool   // applies the primary's stream (bypasses READONLY and routing)
	replOff     int64  // stream offset after this client's last write (WAIT)
	replPort    string // REPLCONF listening-port of a replica
	replIP      string // REPLCONF ip-address
	pausedRetry bool   // the command met a write pause and runs again after it

	// introspection (admin.go, client_admin.go)
	shared clientShared
	// ranStats are the statistics of the command just run, its
	// subcommand's for a container (INFO commandstats failed_calls)
	ranStats *command.CallStats
	// errCounted: the error reply of the command just run was counted in
	// the error statistics already (a script's, by the command that
	// replied it)
	errCounted bool
	// rejected: the handler refused the command before it ran, where
	// Redis refuses it before call() (an EVAL whose keys are served
	// elsewhere, a script flagged to write over maxmemory): a rejected
	// call, not a call (read and cleared by call)
	rejected  bool
	replyMode replyMode // CLIENT REPLY
	// mark is when the previous command of the batch ended (the batch's
	// start for its first), on monoNow's clock; 0 when not set. One clock
	// reading per command times them all
	mark time.Duration
	// lastName and lastLookup are the name (as sent) and the command of
	// the last lookup: a pipeline mostly repeats one command (lookupCmd)
	lastName   [16]byte
	lastLen    int
	lastLookup *command.Command
	// tally gathers the statistics of the batch's commands (tally.go)
	tally callTally
	// io are the counters of the client's event loop, nil while it is
	// served by a goroutine (adminState.io then; iostats.go)
	io *ioStats
}

// lookupCmd is s.cmds.Lookup with the last name looked up remembered:
// the table does not change once the server runs.
func (c *Client) lookupCmd(name []byte) *command.Command {
	if c.lastLookup != nil && len(name) == c.lastLen && string(name) == string(c.lastName[:c.lastLen]) {
		return c.lastLookup
	}
	cmd := c.srv.cmds.Lookup(name)
	if cmd != nil && len(name) <= len(c.lastName) {
		c.lastLen = copy(c.lastName[:], name)
		c.lastLookup = cmd
	}
	return cmd
}

type watchedKey struct {
	key string
	exp int64 // expiry when watched
	db  int   // the database of key
}

func newClient(s *Server, nc net.Conn) *Client {
	c := &Client{srv: s, nc: nc, id: s.nextID.Add(1), created: s.clock.Now()}
	c.lastIO = c.created.UnixMilli()
	c.reply.init()
	c.initCtx()
	c.setUser(s.users.Default())
	c.authed = s.defaultAuthed()
	c.Args = make([][]byte, 0, 8)
	return c
}

// initCtx points the embedded command context at the server's keyspace.
func (c *Client) initCtx() {
	c.W.Proto = 2
	c.KS = c.srv.ks
	c.Track = &c.srv.track
	c.DBs = c.srv.dbs
	c.Conn = c
}

// clientOf returns the connection of a command context.
func clientOf(x *command.Ctx) *Client { return x.Conn.(*Client) }

func (s *Server) password() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requirepass
}

// lockKeys locks the shards of c.Keys in ascending order.
func (c *Client) lockKeys() {
	if c.LockKeys() {
		c.lockWaited()
	}
	c.prepare()
}

// lockAll locks every shard (FLUSHALL, EXEC of a keyspace-wide command).
func (c *Client) lockAll() {
	if c.LockAll() {
		c.lockWaited()
	}
	c.prepare()
}

// lockWaited reads the clock again after the command waited for a shard
// another held (an EXEC that slept, a slow script): redis-server would
// have run it after that one, so a key that expired meanwhile is gone
// for it. A replica's link (which sees every key), a script's and
// EXEC's commands keep the one time they run at.
func (c *Client) lockWaited() {
	if c.master || c.InScript || c.InExec {
		return
	}
	c.advanceNow(c.srv.nowMs())
}

// advanceNow makes now the time of the running command and of the rest
// of its batch: the commands after it never see an earlier time than it
// did, nor does it see an earlier one than its batch.
func (c *Client) advanceNow(now int64) {
	now = max(now, c.Now)
	if c.batchNow != 0 {
		now = max(now, c.batchNow)
		c.batchNow = now
	}
	c.Now = now
}

// unlock unlocks what lockKeys, lockAll, lockCross or lockEverything
// locked.
func (c *Client) unlock() {
	if len(c.Cross) > 0 {
		c.UnlockCross()
		return
	}
	c.Unlock()
}

// lockWide locks for a command that locks every shard or may cross
// databases.
func (c *Client) lockWide(cmd *command.Command) {
	switch {
	case cmd.Has(command.CrossDB) && c.lockCross():
	case cmd.Has(command.LockAll):
		c.lockAll()
	default:
		c.lockKeys()
	}
}

// lockCross locks the shards a command needs in several databases
// (command.CrossDB); false when it needs one database only.
func (c *Client) lockCross() bool {
	if len(c.DBs) < 2 {
		return false
	}
	g, ok := c.CrossShards(c.Cross[:0])
	if !ok {
		return false
	}
	c.Locked = c.Locked[:0]
	if c.LockCross(g) {
		c.lockWaited()
	}
	c.prepareGlobal(g)
	return true
}

// prepare lets a running rewrite or full-sync snapshot put the locked
// shards on one side of its cut before the command changes them.
func (c *Client) prepare() {
	if len(c.Locked) < 2 {
		return
	}
	g := c.globalLocked()
	if a := c.srv.aof; a != nil {
		a.Prepare(g)
	}
	if r := c.srv.repl; r != nil {
		r.Prepare(g)
	}
}

// commitLocked runs after a handler, with its shards still locked: it logs
// a changing command, invalidates WATCHes on its keys and wakes clients
// blocked on them.
func (c *Client) commitLocked() {
	if c.Dirty == 0 {
		c.ResetEvents()
		return
	}
	s := c.srv
	s.dirty.Add(int64(c.Dirty))
	aofOn := s.aof != nil && s.aof.Enabled()
	// the replica's stream is fed with the primary's bytes by its link
	replOn := s.repl != nil && !c.master && s.repl.Active()
	if aofOn || replOn {
		if rec := c.Record(); len(rec) > 0 {
			if c.InExec {
				c.txSelect()
				c.txrec = append(c.txrec, rec...)
				c.nrec++
			} else {
				g := c.globalLocked()
				if aofOn {
					c.aofWait = s.aof.AppendDB(c.DB, rec, g)
				}
				if replOn {
					c.replOff = s.repl.FeedDB(c.DB, rec, g)
				}
			}
		}
	}
	keys := c.Keys
	if c.Changed != nil {
		keys = c.Changed
	}
	c.afterWrite()
	c.ResetRecord()
	p := c.touchPass
	if p == nil {
		p = &c.pass
	}
	for _, k := range keys {
		c.Track.TouchForLocked(k, p)
	}
	// the tracking table is keyed by key name alone, as Redis's: a write
	// in any database invalidates the key for readers of every database
	// (more invalidations, never a stale cache), and FLUSHDB flushes
	// every tracking client as FLUSHALL does (Redis does the same); so
	// does SWAPDB, which changes every key of two databases at once
	if s.ct.n.Load() > 0 {
		if c.Cmd.Name == "flushall" || c.Cmd.Name == "flushdb" || c.Cmd.Name == "swapdb" {
			s.invalidateAll()
		}
		for _, k := range keys {
			s.invalidate(k, c)
		}
	}
}

// txSelect puts a SELECT in a transaction's records before a record of
// another database than the previous one's (SELECT inside MULTI).
func (c *Client) txSelect() {
	switch {
	case c.txDB < 0: // the first: the block is logged after a SELECT of its database
		c.txFirstDB, c.txDB = c.DB, c.DB
	case c.DB != c.txDB:
		c.txrec = command.AppendSelect(c.txrec, c.DB)
		c.txDB = c.DB
	}
}

// dispatch looks a command up, checks arity, authentication and MULTI
// queueing, and calls it.
func (s *Server) dispatch(c *Client) {
	if c.scriptWait != nil { // the EVAL that left the event loop
		cmd := c.lookupCmd(c.Args[0])
		c.awaitScript()
		c.servePass()
		// counted here, once, from its start on the loop (the loop's
		// run returned without counting it): commandstats, the slow
		// log, the latency monitor and MONITOR see it as any other call
		if cmd != nil {
			c.countCommand()
			c.mark = s.afterCall(c, cmd, c.detachStart)
		}
		return
	}
	args := c.Args
	cmd := c.lookupCmd(args[0])
	if cmd == nil {
		if c.multi {
			c.multiErr = true
		}
		c.showCmd(nil)
		msg := "ERR unknown command '" + command.Trunc(args[0], 128) + "', with args beginning with: "
		for _, a := range args[1:] {
			if len(msg) > 256 {
				break
			}
			msg += "'" + command.Trunc(a, 128) + "' "
		}
		c.W.Error(msg)
		return
	}
	if !cmd.ArityOK(len(args)) {
		c.refuse(cmd, "ERR wrong number of arguments for '"+cmd.Name+"' command")
		return
	}
	// a container's subcommand is looked up as a command of its own: an
	// unknown one, or a wrong number of arguments for one, is refused
	// before anything else runs, as Redis does
	if cmd.Subs != nil && len(args) > 1 {
		if _, msg := cmd.CheckSub(args); msg != "" {
			c.refuse(cmd, msg)
			return
		}
	}
	// DEBUG and MODULE LOAD are refused by their settings before
	// anything else, as Redis's protected commands
	if cmd.Has(command.Protected) && c.protectedRefused(cmd, args) {
		return
	}
	if !c.authed && !cmd.Has(command.NoAuth) {
		c.refuse(cmd, "NOAUTH Authentication required.")
		return
	}
	if c.restricted() && !c.aclAllowed(cmd, args, "toplevel") {
		if c.multi {
			c.multiErr = true
		}
		c.showCmd(cmd)
		return
	}
	if (c.subs != nil || c.trk != nil || c.pushTarget.Load()) && s.pubsubGate(c, cmd) {
		return
	}
	if s.script.busyRun.Load() != nil && !c.master {
		if msg := s.busyRefusal(cmd); msg != "" {
			c.refuse(cmd, msg)
			return
		}
	}
	if c.multi && cmd.Has(command.NoMulti) {
		c.multiErr = true
		c.showCmd(cmd)
		c.W.Error("ERR Command not allowed inside a transaction")
		return
	}
	if s.cfg.Cluster != nil && !c.master {
		// ASKING lasts for one command; cmdAsking sets it again
		asking := c.cluster.asking
		c.cluster.asking = false
		// kept for call, for a blocking command that routes again as it
		// waits, and for a command that runs again after leaving the loop
		c.cluster.pendingAsking = asking
		queue := c.multi && !cmd.Has(command.NoQueue)
		switch {
		case cmd.Has(command.AllShards):
		case queue || cmd.Has(command.SelfLock):
			// not run now or not locked by call: route at once (EXEC
			// routes the queued commands again under their locks)
			var exists func([]byte) bool
			if !queue {
				exists = c.existsSelfLocking
			}
			if !s.route(c, cmd, asking, exists) {
				if c.multi {
					c.multiErr = true
				}
				return
			}
		default: // call routes it with the shards locked
			c.cluster.pending = true
		}
	}
	// a replica refuses writes; in cluster mode after routing (in call),
	// so that a write for a slot of another shard gets MOVED, as in Redis
	if s.cfg.Cluster == nil {
		if msg := s.replicaCheck(c, cmd); msg != "" {
			if c.multi {
				c.multiErr = true
			}
			c.W.Error(msg)
			return
		}
	}
	// a write does not run while the log cannot hold it (a replica
	// applies its primary's stream regardless: the log retries it)
	if s.aof != nil && cmd.Has(command.Write) && !c.master && !s.aof.Writable() {
		if msg := s.logRefusal(); msg != "" {
			if c.multi {
				c.multiErr = true
			}
			c.W.Error(msg)
			return
		}
	}
	if s.replGuards.Load() != 0 && !c.master {
		if msg := s.replGuardRefusal(c, cmd); msg != "" {
			c.refuse(cmd, msg)
			return
		}
	}
	if !c.master && s.maxmemory.Load() > 0 && !s.admitMemory(c, cmd) {
		return
	}
	if c.multi && !cmd.Has(command.NoQueue) {
		c.queuedDenyOOM = c.queuedDenyOOM || cmd.Has(command.DenyOOM)
		c.queuedWrite = c.queuedWrite || cmd.Has(command.Write)
		c.queuedNoStale = c.queuedNoStale || !cmd.Has(command.Stale)
		size := 0
		for _, a := range args {
			size += len(a) + 24
		}
		if c.queryOver(size) { // a transaction counts as input held
			c.closing = true
			return
		}
		c.queuedBytes += int64(size)
		q := make([][]byte, len(args))
		for i, a := range args {
			q[i] = slices.Clone(a)
		}
		c.queued = append(c.queued, q)
		c.shared.multiN.Store(int32(len(c.queued)))
		c.showCmd(cmd)
		c.W.Simple("QUEUED")
		return
	}
	c.lastCmd = cmd.Name
	now := c.batchNow
	if now == 0 {
		now = s.nowMs()
	}
	if c.lastTime.Load() != now { // a batch stores it once
		c.lastTime.Store(now)
	}
	if t := &c.tally; t.stats != &cmd.Stats && (t.stats != nil || t.total > 0) {
		// what this command may read is counted (this command itself
		// once it ran, as Redis counts it)
		c.flushTally()
	}
	start := c.mark // the end of the previous command of the batch
	if start == 0 {
		start = monoNow()
	}
	ran := s.call(c, cmd, true)
	c.servePass()
	if s.ct.n.Load() > 0 {
		s.flushBcast()
		if c.trk != nil {
			c.afterTrackedCommand(cmd)
		}
	}
	if c.detach {
		// it blocks on an event loop: it runs again on the connection's
		// goroutine, and that run is the call counted (commandstats,
		// MONITOR, slow log), once, as Redis counts a blocked command
		c.detachStart = start
		c.keepAsking()
		return
	}
	if !ran || c.pausedRetry {
		c.showCmd(cmd)
		c.mark = 0
		if !c.pausedRetry {
			// refused under its locks (cluster routing, a replica's
			// check): a rejected call, not a call, as Redis refuses it
			// before call() (noteReply counts it)
			return
		}
		// writes are paused (CLUSTER FAILOVER, CLIENT PAUSE): it runs
		// again after the pause, and that run is the call counted, as
		// Redis counts a client's command the pause held
		c.pausedRetry = false
		if c.inLoop {
			c.detach = true // wait on a goroutine, then run again
			c.keepAsking()
			return
		}
		if !s.waitPause(c) {
			c.closing = true
			return
		}
		c.keepAsking()
		s.dispatch(c) // routing may have changed meanwhile
		return
	}
	c.countCommand()
	c.mark = s.afterCall(c, cmd, start)
}

// passWaitMax bounds how long a command waits for the clients it woke to
// try (command.Pass.Wait): their goroutines are runnable, the bound only
// keeps a command from waiting on one that is not (a goroutine held up by
// CLIENT PAUSE before its try).
const passWaitMax = time.Second

// servePass waits, before the reply, until the blocked clients the
// command woke (and those they woke in turn) have tried, as Redis serves
// them right after the command: whoever reads the reply, or sends a
// command after it, sees their pops and moves done.
func (c *Client) servePass() {
	if c.pass.Pending() {
		c.pass.Wait(passWaitMax)
	}
}

// keepAsking gives a command that is dispatched again (after leaving the
// event loop, or after a pause) the ASKING it had.
func (c *Client) keepAsking() {
	if c.srv.cfg.Cluster != nil && !c.master {
		c.cluster.asking = c.cluster.asking || c.cluster.pendingAsking
	}
}

// countCommand counts a command that ran in total_commands_processed:
// as Redis counts in call(), a command refused before it runs or queued
// by MULTI is not counted, and each command EXEC or a script runs is.
func (c *Client) countCommand() {
	if c.tally.on {
		c.tally.total++
	} else {
		c.srv.totalCommands.Add(1)
	}
}

// call runs a command: it locks the shards of its keys (unless the caller
// holds them, as EXEC does), runs the handler and commits. It returns
// false when the command did not run: refused with its shards locked
// (an error reply), or to run again after a write pause (pausedRetry).
func (s *Server) call(c *Client, cmd *command.Command, lock bool) bool {
	c.Cmd = cmd
	c.Dirty = 0
	if c.batchNow != 0 {
		c.Now = c.batchNow
	} else {
		c.Now = s.nowMs()
	}
	if c.keysReady { // the caller took them from c.Args already
		c.keysReady = false
	} else {
		c.Keys = cmd.GetKeys(c.Args, c.Keys[:0])
	}
	if cmd.Has(command.SelfLock) {
		if !c.replicaAdmits(cmd) {
			return false
		}
		if c.pauseHit(cmd) {
			c.pausedRetry = true
			return false
		}
		cmd.Handler(&c.Ctx)
		if c.rejected {
			c.rejected = false
			return false
		}
		return true
	}
	if lock {
		if !cmd.Has(command.LockAll | command.CrossDB) {
			c.lockKeys()
		} else {
			c.lockWide(cmd)
		}
		if !c.admitLocked(cmd) {
			c.unlock()
			return false
		}
	}
	if !c.replicaAdmits(cmd) {
		if lock {
			c.unlock()
		}
		return false
	}
	if c.pauseHit(cmd) {
		if lock {
			c.unlock()
		}
		c.pausedRetry = true
		return false
	}
	if s.ps.notify.Load()&notifyNew != 0 && cmd.Has(command.Write) {
		c.noteNewKeys()
	}
	cmd.Handler(&c.Ctx)
	c.commitLocked()
	if c.trk != nil && cmd.Has(command.ReadOnly) && len(c.Keys) > 0 && !c.InScript {
		s.rememberKeys(c)
	}
	if lock {
		c.unlock()
	}
	return true
}

// cmdSpec registers a command whose handler needs the connection.
type cmdSpec struct {
	name              string
	arity             int
	flags             string
	first, last, step int
	group             string
	handler           func(c *Client)
	keysFn            func(args [][]byte, dst [][]byte) [][]byte
}

// commandTable builds the registry: the data commands of the command
// layer and the server's own.
func commandTable() *command.Table {
	t := command.NewTable()
	t.Register(command.DataCommands()...)
	t.Register(command.LCSSpecs()...)
	t.Register(command.BlockingSpecs(func(x *command.Ctx) { cmdBPop(clientOf(x)) })...)
	for _, specs := range [][]cmdSpec{serverSpecs(), txSpecs(), clusterSpecs(), replSpecs(), aclSpecs(), adminSpecs(), pubsubSpecs(), scriptSpecs()} {
		for _, sp := range specs {
			h := sp.handler
			t.Register(command.Spec{
				Name: sp.name, Arity: sp.arity, Flags: sp.flags, First: sp.first, Last: sp.last,
				Step: sp.step, Group: sp.group, KeysFn: sp.keysFn,
				Handler: func(x *command.Ctx) { h(clientOf(x)) },
			})
		}
	}
	return t
}
