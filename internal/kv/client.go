package kv

import (
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

// Client is the state of one connection, and the context a command handler
// runs in: its arguments, the reply writer and the locks it holds.
// A Client is used by its connection's goroutine only, except casDirty.
type Client struct {
	srv *Server
	nc  net.Conn
	id  int64

	w       resp.Writer
	args    [][]byte
	rbuf    []byte
	rstart  int
	rend    int
	pending []byte // bytes read while blocked, parsed next
	closing bool   // close after the replies are sent
	// event loop mode (see eventloop_linux.go)
	fd     int
	inLoop bool // served by an event loop, not by its own goroutine
	detach bool // leave the event loop to block
	wpos   int  // bytes of w.B already written
	// waitingOut is set while the loop waits for the socket to drain.
	waitingOut bool
	nameBuf    [32]byte

	name     string
	libName  string
	libVer   string
	authed   bool
	created  time.Time
	lastCmd  string
	lastTime atomic.Int64

	// the command being executed
	cmd *Command
	now int64 // Unix ms, fixed for the whole command
	// batchNow, when not 0, is the time of the batch of pipelined
	// commands being executed.
	batchNow int64
	keys     [][]byte // its keys
	locked   []int    // shard indices locked, ascending
	dirty    int      // changes made; > 0 logs the command
	custom   bool     // the handler wrote its own log records
	rec      []byte   // log records of the command
	aofWait  int64    // log offset the pending replies acknowledge
	// allLocked is set while EXEC holds every shard.
	allLocked bool

	// transactions
	multi    bool
	multiErr bool
	queued   [][][]byte
	inExec   bool
	txrec    []byte
	watched  []watchedKey
	casDirty atomic.Bool

	cluster clusterConnState

	// replication
	master      bool   // applies the primary's stream (bypasses READONLY and routing)
	replOff     int64  // stream offset after this client's last write (WAIT)
	replPort    string // REPLCONF listening-port of a replica
	replIP      string // REPLCONF ip-address
	pausedRetry bool   // the command met a write pause and runs again after it
}

type watchedKey struct {
	key string
	exp int64 // expiry when watched
}

func newClient(s *Server, nc net.Conn) *Client {
	c := &Client{srv: s, nc: nc, id: s.nextID.Add(1), created: s.clock.Now()}
	c.w.Proto = 2
	c.authed = s.password() == ""
	c.args = make([][]byte, 0, 8)
	return c
}

func (s *Server) password() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requirepass
}

// lockKeys locks the shards of c.keys in ascending order.
func (c *Client) lockKeys() {
	ks := c.srv.ks
	c.locked = c.locked[:0]
	switch len(c.keys) {
	case 0:
		return
	case 1:
		i := shardOf(c.keys[0])
		c.locked = append(c.locked, i)
		ks.shards[i].mu.Lock()
		c.prepare()
		return
	}
	for _, k := range c.keys {
		c.locked = append(c.locked, shardOf(k))
	}
	slices.Sort(c.locked)
	c.locked = slices.Compact(c.locked)
	for _, i := range c.locked {
		ks.shards[i].mu.Lock()
	}
	c.prepare()
}

// prepare lets a running rewrite put the locked shards on one side of its
// cut before the command changes them.
func (c *Client) prepare() {
	if a := c.srv.aof; a != nil {
		a.prepare(c.locked)
	}
	if r := c.srv.repl; r != nil {
		r.prepare(c.locked)
	}
}

// lockAll locks every shard (FLUSHALL, KEYS during EXEC).
func (c *Client) lockAll() {
	c.locked = c.locked[:0]
	for i := range c.srv.ks.shards {
		c.locked = append(c.locked, i)
		c.srv.ks.shards[i].mu.Lock()
	}
	c.prepare()
}

func (c *Client) unlock() {
	for j := len(c.locked) - 1; j >= 0; j-- {
		c.srv.ks.shards[c.locked[j]].mu.Unlock()
	}
	c.locked = c.locked[:0]
}

// log replaces the record of the current command by args (called by
// handlers whose effect differs from their arguments: relative expiries,
// random pops, float increments). It may be called several times.
func (c *Client) log(args ...[]byte) {
	if !c.custom {
		c.custom = true
		c.rec = c.rec[:0]
	}
	c.rec = resp.AppendCommand(c.rec, args...)
}

// commitLocked runs after a handler, with its shards still locked: it logs
// a changing command, invalidates WATCHes on its keys and wakes clients
// blocked on them.
func (c *Client) commitLocked() {
	if c.dirty == 0 {
		return
	}
	s := c.srv
	s.dirty.Add(int64(c.dirty))
	aofOn := s.aof != nil && s.aof.enabled()
	// the replica's stream is fed with the primary's bytes by its link
	replOn := s.repl != nil && !c.master && s.repl.active.Load()
	if aofOn || replOn {
		if !c.custom {
			c.rec = resp.AppendCommand(c.rec[:0], c.args...)
		}
		if len(c.rec) > 0 {
			if c.inExec {
				c.txrec = append(c.txrec, c.rec...)
			} else {
				if aofOn {
					c.aofWait = s.aof.append(c.rec, c.locked)
				}
				if replOn {
					c.replOff = s.repl.feed(c.rec, c.locked)
				}
			}
		}
	}
	c.rec = c.rec[:0]
	c.custom = false
	c.dirty = 0
	for _, k := range c.keys {
		sh := &s.ks.shards[shardOf(k)]
		if len(sh.watchers) > 0 {
			for _, w := range sh.watchers[string(k)] {
				w.casDirty.Store(true)
			}
		}
		if len(sh.blocked) > 0 {
			for _, ch := range sh.blocked[string(k)] {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}
}

// touchAllLocked invalidates every WATCH (FLUSHALL with all shards locked).
func (c *Client) touchAllLocked() {
	for i := range c.srv.ks.shards {
		for _, ws := range c.srv.ks.shards[i].watchers {
			for _, w := range ws {
				w.casDirty.Store(true)
			}
		}
	}
}

// dispatch looks a command up, checks arity, authentication and MULTI
// queueing, and calls it.
func (s *Server) dispatch(c *Client) {
	args := c.args
	name := lowerInto(c.nameBuf[:0], args[0])
	cmd := s.cmds[string(name)]
	s.totalCommands.Add(1)
	if cmd == nil {
		if c.multi {
			c.multiErr = true
		}
		msg := "ERR unknown command '" + trunc(args[0], 128) + "', with args beginning with: "
		for _, a := range args[1:] {
			if len(msg) > 256 {
				break
			}
			msg += "'" + trunc(a, 128) + "' "
		}
		c.w.Error(msg)
		return
	}
	if (cmd.Arity > 0 && len(args) != cmd.Arity) || (cmd.Arity < 0 && len(args) < -cmd.Arity) {
		if c.multi {
			c.multiErr = true
		}
		c.w.Error("ERR wrong number of arguments for '" + cmd.Name + "' command")
		return
	}
	if !c.authed && cmd.flags&flagNoAuth == 0 {
		if c.multi {
			c.multiErr = true
		}
		c.w.Error("NOAUTH Authentication required.")
		return
	}
	if c.multi && cmd.flags&flagNoMulti != 0 {
		c.multiErr = true
		c.w.Error("ERR Command not allowed inside a transaction")
		return
	}
	if s.cfg.Cluster != nil && !c.master {
		// ASKING lasts for one command; cmdAsking sets it again
		asking := c.cluster.asking
		c.cluster.asking = false
		// kept for call, for a blocking command that routes again as it
		// waits, and for a command that runs again after leaving the loop
		c.cluster.pendingAsking = asking
		queue := c.multi && cmd.flags&flagNoQueue == 0
		switch {
		case cmd.flags&flagAllShards != 0:
		case queue || cmd.flags&flagSelfLock != 0:
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
			c.w.Error(msg)
			return
		}
	}
	if c.multi && cmd.flags&flagNoQueue == 0 {
		q := make([][]byte, len(args))
		for i, a := range args {
			q[i] = slices.Clone(a)
		}
		c.queued = append(c.queued, q)
		c.w.Simple("QUEUED")
		return
	}
	c.lastCmd = cmd.Name
	c.lastTime.Store(c.now)
	s.call(c, cmd, true)
	if c.pausedRetry { // writes are paused (CLUSTER FAILOVER, CLIENT PAUSE)
		c.pausedRetry = false
		if c.inLoop {
			c.detach = true // wait on a goroutine, then run again
			c.keepAsking()
			return
		}
		if !s.repl.waitUnpaused() {
			c.closing = true
			return
		}
		c.keepAsking()
		s.dispatch(c) // routing may have changed meanwhile
		return
	}
	if c.detach { // it runs again on the connection's goroutine
		c.keepAsking()
	}
}

// keepAsking gives a command that is dispatched again (after leaving the
// event loop, or after a pause) the ASKING it had.
func (c *Client) keepAsking() {
	if c.srv.cfg.Cluster != nil && !c.master {
		c.cluster.asking = c.cluster.asking || c.cluster.pendingAsking
	}
}

// call runs a command: it locks the shards of its keys (unless the caller
// holds them, as EXEC does), runs the handler and commits.
func (s *Server) call(c *Client, cmd *Command, lock bool) {
	c.cmd = cmd
	c.dirty = 0
	c.custom = false
	if c.batchNow != 0 {
		c.now = c.batchNow
	} else {
		c.now = s.nowMs()
	}
	c.keys = cmd.getKeys(c.args, c.keys[:0])
	if cmd.flags&flagSelfLock != 0 {
		if !c.replicaAdmits(cmd) {
			return
		}
		if c.pauseHit(cmd) {
			c.pausedRetry = true
			return
		}
		cmd.Handler(c)
		return
	}
	if lock {
		c.lockKeys()
		if !c.admitLocked(cmd) {
			c.unlock()
			return
		}
	}
	if !c.replicaAdmits(cmd) {
		if lock {
			c.unlock()
		}
		return
	}
	if c.pauseHit(cmd) {
		if lock {
			c.unlock()
		}
		c.pausedRetry = true
		return
	}
	cmd.Handler(c)
	c.commitLocked()
	if lock {
		c.unlock()
	}
}

func lowerInto(dst, b []byte) []byte {
	for _, ch := range b {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		dst = append(dst, ch)
	}
	return dst
}

func trunc(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// Reply helpers shared by the handlers.

const (
	errWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNotInt    = "ERR value is not an integer or out of range"
	errNotFloat  = "ERR value is not a valid float"
	errSyntax    = "ERR syntax error"
	errOverflow  = "ERR increment or decrement would overflow"
	errNoSuchKey = "ERR no such key"
)

func (c *Client) wrongArgs() {
	c.w.Error("ERR wrong number of arguments for '" + c.cmd.Name + "' command")
}

func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// argInt parses args[i] as an integer, replying the Redis error if not.
func (c *Client) argInt(i int) (int64, bool) {
	n, ok := parseInt(c.args[i])
	if !ok {
		c.w.Error(errNotInt)
	}
	return n, ok
}

// argInts2 parses the integer arguments i and i+1 (a start and a stop).
func (c *Client) argInts2(i int) (int64, int64, bool) {
	a, ok := c.argInt(i)
	if !ok {
		return 0, 0, false
	}
	b, ok := c.argInt(i + 1)
	return a, b, ok
}

func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		// strconv rejects "inf" spellings Redis accepts only partly; and
		// reports range errors for huge values.
		switch string(b) {
		case "inf", "+inf", "Inf", "+Inf", "INF", "+INF":
			return posInf, true
		case "-inf", "-Inf", "-INF":
			return negInf, true
		}
		return 0, false
	}
	if f != f { // NaN
		return 0, false
	}
	return f, true
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
