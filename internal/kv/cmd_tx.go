package kv

import (
	"strings"
	"sync"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

var (
	bMULTI = []byte("MULTI")
	bEXEC  = []byte("EXEC")
)

func cmdMulti(c *Client) {
	if c.multi {
		c.W.Error("ERR MULTI calls can not be nested")
		return
	}
	c.multi = true
	c.shared.multiN.Store(0)
	c.shared.flags.Or(flagMulti) // x in CLIENT LIST
	c.multiErr = false
	c.queued = c.queued[:0]
	c.queuedBytes = 0
	c.queuedDenyOOM = false
	c.queuedWrite, c.queuedNoStale = false, false
	c.W.OK()
}

func (c *Client) discardMulti() {
	c.multi = false
	c.shared.flags.And(^flagMulti)
	c.multiErr = false
	c.queued = nil
	c.queuedBytes = 0
	c.queuedDenyOOM = false
	c.queuedWrite, c.queuedNoStale = false, false
}

func cmdDiscard(c *Client) {
	if !c.multi {
		c.W.Error("ERR DISCARD without MULTI")
		return
	}
	c.discardMulti()
	c.unwatchAll()
	c.W.OK()
}

// refuse replies the error msg to a command the dispatcher does not run.
// Inside MULTI it fails the transaction; EXEC refused (while a script is
// busy...) ends it with -EXECABORT and the reason, as Redis's
// rejectCommand.
func (c *Client) refuse(cmd *command.Command, msg string) {
	c.showCmd(cmd)
	if c.multi {
		if cmd.Name == "exec" {
			c.discardMulti()
			c.unwatchAll()
			// Redis's reasons without an error code go without "ERR"
			c.W.Error("EXECABORT Transaction discarded because of: " + strings.TrimPrefix(msg, "ERR "))
			return
		}
		c.multiErr = true
	}
	c.W.Error(msg)
}

// cmdExec runs the queued commands atomically: it locks the shards of all
// their keys (every shard when one of them spans the keyspace), checks the
// WATCHed keys, runs each command and logs them as one MULTI ... EXEC
// block, so a torn log never replays half a transaction.
func cmdExec(c *Client) {
	if !c.multi {
		c.W.Error("ERR EXEC without MULTI")
		return
	}
	queued := c.queued
	failed := c.multiErr
	c.discardMulti()
	// while EXEC runs the client stays in MULTI for CLIENT LIST and
	// CLIENT INFO (x, multi=<queued>) and EXEC is its command, as in
	// Redis, which ends the transaction after its commands ran
	c.shared.flags.Or(flagMulti)
	c.showCmd(c.Cmd)
	defer c.endExec()
	if failed {
		c.unwatchAll()
		c.W.Error("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	s := c.srv
	if msg := s.execLogRefusal(c, queued); msg != "" {
		c.unwatchAll()
		c.W.Error("EXECABORT Transaction discarded because of: " + msg)
		return
	}
	all, everything := false, false
	var keys [][]byte
	cmds := make([]*command.Command, len(queued))
	for i, args := range queued {
		cmd := s.cmds.Lookup(args[0])
		cmds[i] = cmd
		if cmd.Mask&command.AllShards != 0 {
			all = true
		}
		if cmd.Mask&command.ExecAll != 0 {
			everything = true
		}
		keys = cmd.GetKeys(args, keys)
	}
	for _, w := range c.watched {
		keys = append(keys, []byte(w.key))
	}
	startDB := c.DB
	switch {
	case everything || c.execCrossDB(cmds, queued):
		// SELECT inside, a command reaching another database, WATCHes in
		// another database, or a command that locks shards itself (INFO,
		// DEBUG DIGEST, BGSAVE ...: command.ExecAll), which would wait
		// for the shards EXEC holds: every shard of every database, so
		// that it runs with c.AllLocked and takes none
		c.lockEverything()
		c.AllLocked = true
	case all:
		c.lockAll()
		c.AllLocked = true
	default:
		c.Keys = keys
		c.lockKeys()
	}
	if s.repl != nil && s.repl.Paused() && !c.master {
		for i, cmd := range cmds {
			if s.pausedQueued(cmd, queued[i]) { // wait for the pause to end, then run again
				c.AllLocked = false
				c.unlock()
				c.multi, c.queued = true, queued
				c.shared.flags.Or(flagMulti)
				c.pausedRetry = true
				return
			}
		}
	}
	// the transaction's time is read with its locks held, and is the rest
	// of the batch's: a key that expired while EXEC waited for them is
	// gone for its commands, as for redis-server, which runs EXEC after
	// the command that held them (call gives them c.batchNow)
	now := s.nowMs()
	if c.master { // the link's commands keep batchNow 1: they see every key
		c.Now = now
	} else {
		c.advanceNow(now)
		now = c.Now
	}
	aborted := c.casDirty.Load()
	for _, w := range c.watched { // a watched key that expired counts as changed
		if w.exp != 0 && w.exp <= now {
			aborted = true
		}
	}
	if aborted {
		c.AllLocked = false
		c.unlock()
		c.unwatchAll()
		c.W.NullArray()
		return
	}
	if msg := c.execAdmitLocked(cmds, queued); msg != "" {
		c.AllLocked = false
		c.unlock()
		c.unwatchAll()
		c.W.Error(msg)
		return
	}
	c.InExec = true
	c.txrec = c.txrec[:0]
	c.txDB = -1 // the block starts in the database of its first write
	c.nrec = 0
	c.W.Array(len(queued))
	saved, execCmd := c.Args, c.Cmd
	// refusedLast: an error was replied after the last command that ran
	// (an ACL refusal). Redis counts the errors of EXEC's own call from
	// the end of the last call it made: such a refusal makes EXEC a
	// failed call
	refusedLast := false
	for i, args := range queued {
		c.Args = args
		at := len(c.W.B)
		if c.restricted() && !c.aclAllowed(cmds[i], args, "multi") {
			// permissions changed since it was queued: its reply is the
			// refusal, counted in the error statistics only, as in Redis
			s.countErrorAt(c, at)
			refusedLast = true
			continue
		}
		start := monoNow()
		if !s.call(c, cmds[i], false) { // refused (a cluster replica's check)
			s.countErrorAt(c, at)
			refusedLast = true
			continue
		}
		s.afterNested(c, cmds[i], start, at)
		refusedLast = false
		// MONITOR shows them as they run, before EXEC's own line
		if s.adm.monitorsN.Load() > 0 && !s.adm.skipMon[cmds[i]] {
			s.feedMonitors(c, cmds[i])
		}
	}
	c.Args, c.Cmd = saved, execCmd
	if refusedLast {
		execCmd.Stats.Failed.Add(1)
	}
	c.InExec = false
	if len(c.txrec) > 0 {
		firstDB, endDB := c.txFirstDB, c.txDB
		rec := c.txrec
		// one command is atomic alone: Redis 7 does not wrap it; a block
		// that SELECTs (writes in two databases, or moves the client to
		// another) keeps the wrapper
		if c.nrec > 1 || firstDB != endDB || c.DB != startDB {
			rec = resp.AppendCommand(nil, bMULTI)
			rec = append(rec, c.txrec...)
			rec = resp.AppendCommand(rec, bEXEC)
		}
		g := c.Locked
		if len(c.Cross) > 0 {
			g = c.Cross
		} else if startDB != 0 {
			g = c.globalLocked()
		}
		if s.aof != nil && s.aof.Enabled() {
			c.aofWait = s.aof.AppendSpan(firstDB, endDB, rec, g)
		}
		if s.repl != nil && !c.master && s.repl.Active() {
			c.replOff = s.repl.FeedSpan(firstDB, endDB, rec, g)
		}
	}
	c.AllLocked = false
	c.unlock()
	c.unwatchAll()
	if everything {
		c.runAfterExec()
	}
}

// execAfter holds, by client, what the commands of its running EXEC left
// to do once EXEC has released its shards: a rewrite (BGSAVE,
// BGREWRITEAOF, DEBUG RELOAD, CONFIG SET appendonly yes) takes every
// shard, which EXEC holds for them (command.ExecAll). Only such an EXEC
// looks here: the other transactions pay nothing.
var execAfter sync.Map // *Client -> *[]func()

// afterExec runs fn once the client's EXEC has released its shards, before
// EXEC's reply is sent.
func (c *Client) afterExec(fn func()) {
	v, _ := execAfter.LoadOrStore(c, new([]func()))
	fns := v.(*[]func())
	*fns = append(*fns, fn)
}

// runAfterExec runs what afterExec left, in order.
func (c *Client) runAfterExec() {
	v, ok := execAfter.LoadAndDelete(c)
	if !ok {
		return
	}
	for _, fn := range *v.(*[]func()) {
		fn()
	}
}

// endExec takes the client out of MULTI for CLIENT LIST once EXEC
// returned, unless EXEC waits to run again (a write pause).
func (c *Client) endExec() {
	if !c.multi {
		c.shared.flags.And(^flagMulti)
	}
}

// cmdWatch registers the client on its keys' shards (locked by the
// dispatcher); any change committed to them sets casDirty.
func cmdWatch(c *Client) {
	if c.multi {
		c.W.Error("ERR WATCH inside MULTI is not allowed")
		return
	}
	now := c.Now
	for _, k := range c.Args[1:] {
		dup := false
		for _, w := range c.watched {
			if w.key == string(k) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		var exp int64 // the shard is locked by the dispatcher
		if e := c.KS.LookupLocked(k, now); e != nil {
			exp = e.Expiry()
		}
		c.Track.WatchLocked(k, &c.casDirty)
		c.watched = append(c.watched, watchedKey{key: string(k), exp: exp, db: c.DB})
	}
	c.W.OK()
}

func cmdUnwatch(c *Client) {
	c.unwatchAll()
	c.W.OK()
}

// unwatchAll forgets the client's WATCHes.
func (c *Client) unwatchAll() {
	for _, w := range c.watched {
		k := []byte(w.key)
		i := keyspace.ShardOf(k)
		d := c.DBs[w.db]
		d.KS.LockShard(i)
		d.Track.UnwatchLocked(k, &c.casDirty)
		d.KS.UnlockShard(i)
	}
	c.watched = c.watched[:0]
	c.casDirty.Store(false)
}

func txSpecs() []cmdSpec {
	const tx = "transactions"
	return []cmdSpec{
		{"multi", 1, "noscript loading stale fast allow-busy noqueue", 0, 0, 0, tx, cmdMulti, nil},
		{"exec", 1, "noscript loading stale skip-slowlog noqueue", 0, 0, 0, tx, cmdExec, nil},
		{"discard", 1, "noscript loading stale fast allow-busy noqueue", 0, 0, 0, tx, cmdDiscard, nil},
		{"watch", -2, "noscript loading stale fast allow-busy noqueue", 1, -1, 1, tx, cmdWatch, nil},
		{"unwatch", 1, "noscript loading stale fast allow-busy", 0, 0, 0, tx, cmdUnwatch, nil},
	}
}

// execCrossDB reports whether a transaction reaches beyond the client's
// database: a SELECT, a script that may SELECT, a command that
// crosses databases (MOVE, SWAPDB, COPY ... DB, FLUSHALL), or a WATCH in
// another database.
func (c *Client) execCrossDB(cmds []*command.Command, queued [][][]byte) bool {
	if len(c.DBs) < 2 {
		return false
	}
	for _, w := range c.watched {
		if w.db != c.DB {
			return true
		}
	}
	savedArgs, savedCmd := c.Args, c.Cmd
	defer func() { c.Args, c.Cmd = savedArgs, savedCmd }()
	for i, cmd := range cmds {
		switch cmd.Name {
		case "select":
			return true
		case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
			// a script runs holding what EXEC holds
			if c.srv.scriptMayReachDB(cmd, queued[i]) {
				return true
			}
		}
		if cmd.Has(command.CrossDB) {
			c.Args, c.Cmd = queued[i], cmd
			if _, ok := c.CrossShards(nil); ok {
				return true
			}
		}
	}
	return false
}
