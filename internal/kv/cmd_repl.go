package kv

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/repl"
)

// The server's side of replication: the commands, and the checks the
// dispatcher makes for a replica and for paused writes. The protocol is
// in internal/kv/repl.

const (
	errReadOnlyReplica = "READONLY You can't write against a read only replica."
	errLoading         = "LOADING Gantry is loading the dataset in memory"
)

// ReplOffset returns the replication offset: the end of this server's
// stream (master_repl_offset; on a replica, what it has applied).
func (s *Server) ReplOffset() int64 { return s.repl.Offset() }

// IsReplica reports whether the server replicates from a primary.
func (s *Server) IsReplica() bool { return s.repl.IsReplica() }

// ReplicaOf makes the server a replica of the primary at addr (host:port),
// or, with addr "", a primary again (REPLICAOF NO ONE); see
// repl.State.ReplicaOf. It does not block on the network.
func (s *Server) ReplicaOf(addr string) { s.repl.ReplicaOf(addr) }

// MasterAddr returns the primary this server replicates from, "" for a
// primary.
func (s *Server) MasterAddr() string { return s.repl.MasterAddr() }

// LinkUp reports whether a replica is connected to its primary and
// streaming.
func (s *Server) LinkUp() bool { return s.repl.LinkUp() }

// PauseWrites makes client writes wait for d (or until UnpauseWrites) and
// returns the stream offset once every write already executing has
// committed: the writes acknowledged before the pause are all below it.
func (s *Server) PauseWrites(d time.Duration) int64 { return s.repl.PauseWrites(d) }

// UnpauseWrites ends a pause.
func (s *Server) UnpauseWrites() { s.repl.UnpauseWrites() }

// ReplInfo is INFO's Replication section as field -> value (tests, the
// cluster layer).
func (s *Server) ReplInfo() map[string]string {
	m := map[string]string{}
	for _, l := range s.repl.Info() {
		k, v, _ := strings.Cut(l, ":")
		m[k] = v
	}
	return m
}

// newApplier returns how a replica's link applies its primary's commands:
// through the dispatcher, as a client flagged master (it bypasses
// READONLY and routing), so this server's own log records them and
// WATCHes and blocked clients hear of them.
func (s *Server) newApplier() func(args [][]byte) string {
	mc := &Client{srv: s, authed: true, master: true, created: time.Now()}
	mc.initCtx()
	// a partial resync goes on in the database the stream was in
	mc.SelectDB(int(s.replDB.Load()))
	// the primary decides expiry: its commands see every key, expired or not
	mc.batchNow = 1
	mc.Replaying = true
	return func(args [][]byte) string {
		mc.Args = args
		s.dispatch(mc)
		var msg string
		if b := mc.W.B; len(b) > 0 && b[0] == '-' {
			msg = strings.TrimSpace(string(b[1:]))
		}
		mc.W.B = mc.W.B[:0]
		mc.aofWait = 0
		return msg
	}
}

// pauseHit reports whether a command that just locked its shards must
// wait for the end of a pause instead of running. EVAL, EVALSHA and FCALL
// decide in their handler, from their script's flags (pauseScript).
func (c *Client) pauseHit(cmd *command.Command) bool {
	if c.master || c.InExec || !c.srv.repl.Paused() {
		return false
	}
	switch cmd.Name {
	case "eval", "evalsha", "fcall":
		return false
	}
	return mayReplicate(cmd, c.Args)
}

// mayReplicate reports whether a command writes or may replicate, as
// Redis's CMD_WRITE | CMD_MAY_REPLICATE: what a write pause holds and a
// read-only script refuses. Redis flags PFCOUNT may-replicate (it may
// rewrite its keys' cached cardinality), and of FUNCTION the subcommands
// that change the libraries.
func mayReplicate(cmd *command.Command, args [][]byte) bool {
	switch cmd.Name {
	case "pfcount":
		return true
	case "function":
		if len(args) < 2 {
			return false
		}
		sub := args[1]
		return command.EqualFold(sub, "load") || command.EqualFold(sub, "delete") ||
			command.EqualFold(sub, "flush") || command.EqualFold(sub, "restore")
	}
	return cmd.Has(command.Write | command.MayReplicate)
}

// pauseScript holds EVAL, EVALSHA and FCALL (and their _RO forms) during
// a write pause when their script may write (scriptMayWrite): true means
// the command runs again after the pause.
func (c *Client) pauseScript() bool {
	if c.master || c.InExec || !c.srv.repl.Paused() || !c.srv.scriptMayWrite(c.Cmd.Name, c.Args) {
		return false
	}
	c.pausedRetry = true
	c.rejected = true
	return true
}

// pausedQueued reports whether a queued command of a transaction makes
// EXEC wait for the end of a write pause.
func (s *Server) pausedQueued(cmd *command.Command, args [][]byte) bool {
	switch cmd.Name {
	case "eval", "evalsha", "fcall", "eval_ro", "evalsha_ro", "fcall_ro":
		return s.scriptMayWrite(cmd.Name, args)
	}
	return mayReplicate(cmd, args)
}

// waitPause holds a client whose command met a write pause until the
// pause ends; false when the server is closing. Meanwhile the client
// counts in INFO's blocked_clients and shows flag b in CLIENT LIST, as
// Redis 7.0 shows a client it postpones (BLOCKED_POSTPONE).
func (s *Server) waitPause(c *Client) bool {
	s.blocked.Add(1)
	c.showBlocked()
	ok := s.repl.WaitUnpaused()
	c.shared.flags.And(^flagBlocked)
	s.blocked.Add(-1)
	return ok
}

// replicaCheck refuses client writes on a replica and every command with
// keys while a full sync loads; "" lets the command run.
func (s *Server) replicaCheck(c *Client, cmd *command.Command) string {
	if c.master || !s.repl.IsReplica() {
		return ""
	}
	if cmd.Has(command.Write) {
		return errReadOnlyReplica
	}
	if s.repl.Loading() && (cmd.First != 0 || cmd.KeysFn != nil || cmd.Has(command.AllShards)) {
		return errLoading
	}
	return ""
}

// replicaAdmits is the replica check of cluster mode, run by call once the
// command was routed (standalone servers check in dispatch); false means
// the error reply is written.
func (c *Client) replicaAdmits(cmd *command.Command) bool {
	s := c.srv
	if s.cfg.Cluster == nil {
		return true
	}
	if msg := s.replicaCheck(c, cmd); msg != "" {
		c.W.Error(msg)
		return false
	}
	return true
}

// cmdPSync serves PSYNC replid offset (and SYNC): the connection becomes a
// replication link (repl.State.ServeReplica) on a goroutine of its own.
func cmdPSync(c *Client) {
	if c.srv.repl.IsReplica() {
		c.W.Error(errChainedReplica)
		return
	}
	if c.inLoop { // the link lives on a goroutine of its own
		c.detach = true
		return
	}
	p := repl.PSync{Offset: -1, Legacy: c.Cmd.Name == "sync", IP: c.replIP, Port: c.replPort, Conn: c.nc,
		Flush: c.flush,
		Buffered: func() []byte {
			b := append([]byte(nil), c.rbuf[c.rstart:c.rend]...)
			b = append(b, c.pending...)
			c.rstart, c.rend, c.pending = 0, 0, nil
			return b
		}}
	if !p.Legacy {
		p.ID = string(c.Args[1])
		if off, ok := command.ParseInt(c.Args[2]); ok {
			p.Offset = off
		}
	}
	if p.IP == "" {
		if a, ok := c.nc.RemoteAddr().(*net.TCPAddr); ok {
			p.IP = a.IP.String()
		}
	}
	if msg := c.srv.repl.ServeReplica(p); msg != "" {
		c.W.Error(msg)
		return
	}
	c.closing = true
}

const errChainedReplica = "ERR gantry replicas do not serve replicas (no chained replication); PSYNC the primary"

// cmdRole is ROLE.
func cmdRole(c *Client) { c.srv.repl.Role(&c.W) }

// cmdWait is WAIT numreplicas timeout: it returns once numreplicas
// replicas acknowledged the client's last write, or at the timeout, with
// the number that did. A client served by an event loop moves to a
// goroutine of its own to wait, so no loop blocks.
func cmdWait(c *Client) {
	r := c.srv.repl
	if r.IsReplica() {
		c.W.Error("ERR WAIT cannot be used with replica instances.")
		return
	}
	want, ok := c.ArgInt(1)
	if !ok {
		return
	}
	ms, ok := command.ParseInt(c.Args[2])
	if !ok || ms < 0 {
		c.W.Error("ERR timeout is negative")
		return
	}
	target := c.replOff
	n := r.CountAcked(target)
	if int64(n) >= want || c.InExec {
		c.W.Int(int64(n))
		return
	}
	if c.inLoop {
		c.detach = true
		return
	}
	r.RequestAcks()
	var deadline <-chan time.Time
	if ms > 0 {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		deadline = t.C
	}
	wake := make(chan struct{}, 1)
	r.AddWaiter(wake)
	defer r.RemoveWaiter(wake)
	w := &command.Waiter{C: wake} // in no key's line: no pass wakes it
	for {
		switch c.waitBlocked(w, deadline) {
		case waitGone:
			c.closing = true
			return
		case waitTimeout:
			c.W.Int(int64(r.CountAcked(target)))
			return
		}
		if n := r.CountAcked(target); int64(n) >= want {
			c.W.Int(int64(n))
			return
		}
	}
}

// clientPause is CLIENT PAUSE timeout [WRITE|ALL] and CLIENT UNPAUSE.
// gantry pauses writes only (ALL is taken as WRITE): reads go on.
func clientPause(c *Client, sub string) {
	if sub == "unpause" {
		if len(c.Args) != 2 {
			c.WrongArgs()
			return
		}
		c.srv.UnpauseWrites()
		c.W.OK()
		return
	}
	if len(c.Args) > 4 {
		c.SubcommandSyntax()
		return
	}
	// the mode first, then the timeout, as Redis
	if len(c.Args) == 4 && !command.EqualFold(c.Args[3], "write") && !command.EqualFold(c.Args[3], "all") {
		c.W.Error("ERR CLIENT PAUSE mode must be WRITE or ALL")
		return
	}
	ms, ok := command.ParseInt(c.Args[2])
	if !ok {
		c.W.Error("ERR timeout is not an integer or out of range")
		return
	}
	if ms < 0 {
		c.W.Error("ERR timeout is negative")
		return
	}
	d := time.Duration(ms) * time.Millisecond
	if c.holdsShards() {
		// run by EXEC (or with shards held): the barrier would wait for
		// the shards this client holds, and every client after it for
		// the barrier. The pause starts now without it; the rest of the
		// transaction runs (its writes skip the pause check), as in
		// Redis, whose pause starts at the end of the transaction
		c.srv.repl.StartPause(d)
	} else {
		c.srv.PauseWrites(d)
	}
	c.W.OK()
}

// holdsShards reports whether the client holds shard locks now: it runs
// inside EXEC or a script, or under its own command's locks. Nothing it
// runs may then wait for every shard (a barrier), which would wait for
// itself.
func (c *Client) holdsShards() bool {
	return c.InExec || c.InScript || c.AllLocked || len(c.Locked) > 0 || len(c.Cross) > 0
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
	if (len(c.Args)-1)%2 != 0 {
		c.W.Error(command.ErrSyntax)
		return
	}
	for i := 1; i < len(c.Args); i += 2 {
		opt := string(command.LowerInto(nil, c.Args[i]))
		val := string(c.Args[i+1])
		switch opt {
		case "listening-port":
			if p, err := strconv.Atoi(val); err != nil || p <= 0 || p > 65535 {
				c.W.Error("ERR Invalid listening-port " + val)
				return
			}
			c.replPort = val
		case "ip-address":
			c.replIP = val
		case "capa", "rdb-only", "rdb-filter-only":
		case "ack", "getack":
			return // no reply, as in Redis
		default:
			c.W.Error("ERR Unrecognized REPLCONF option: " + command.Trunc(c.Args[i], 64))
			return
		}
	}
	c.W.OK()
}

// replicaOfValue is CONFIG GET replicaof: "host port" of the primary,
// "" on a primary.
func (s *Server) replicaOfValue() string {
	host, port, err := net.SplitHostPort(s.repl.MasterAddr())
	if err != nil {
		return ""
	}
	return host + " " + port
}

// cmdReplicaOf is REPLICAOF host port | REPLICAOF NO ONE (and SLAVEOF).
func cmdReplicaOf(c *Client) {
	s := c.srv
	if s.cfg.Cluster != nil {
		c.W.Error("ERR REPLICAOF not allowed in cluster mode.")
		return
	}
	if command.EqualFold(c.Args[1], "no") && command.EqualFold(c.Args[2], "one") {
		s.ReplicaOf("")
		c.W.OK()
		return
	}
	// port 0 is accepted, as Redis 7 does: the link never comes up (a
	// replica kept away from any primary, replica-serve-stale-data)
	p, err := strconv.Atoi(string(c.Args[2]))
	if err != nil || p < 0 || p > 65535 {
		c.W.Error("ERR Invalid master port")
		return
	}
	addr := net.JoinHostPort(string(c.Args[1]), strconv.Itoa(p))
	if s.repl.MasterAddr() == addr {
		c.W.Simple("OK Already connected to specified master")
		return
	}
	s.ReplicaOf(addr)
	c.W.OK()
}
