package kv

import (
	"context"
	"github.com/gantry-project/gantry/internal/kv/acl"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/kv/script"
	"github.com/gantry-project/gantry/internal/resp"
)

// Scripting (EVAL, FCALL). A script runs atomically the way EXEC runs a
// keyspace-wide transaction: it holds every shard of the keyspace, so no
// other command sees its keys half-changed; its commands run as the
// server's script client (scriptCaller) through the same call path as
// EXEC's queued commands, and their log records are gathered and logged
// and replicated as one MULTI ... EXEC block (scripts are replicated by
// their effects, as Redis 7 does).
//
// A client served by an event loop does not run the script on the loop:
// the script runs on a goroutine, and if it is not done within
// loopScriptWait the client leaves the loop (as a blocking command does)
// and waits for it there, so the other clients of the loop are still
// served: after busy-reply-threshold they get -BUSY, and SCRIPT KILL or
// FUNCTION KILL stops a script that has not written.

// loopScriptWait is how long an event loop waits for a script before
// handing its client to a goroutine of its own.
const loopScriptWait = 5 * time.Millisecond

type scriptEngine struct {
	mu  sync.Mutex // the Lua state: one script, load or listing at a time
	eng *script.Engine
	// noscript: the commands scripts may not call
	noscript map[*command.Command]bool
	running  atomic.Pointer[runningScript]
	// busyRun is the script that ran longer than busy-reply-threshold;
	// it is busy while it is still the running one (a timer that fires
	// as the script ends may leave it set)
	busyRun   atomic.Pointer[runningScript]
	threshold atomic.Int64 // busy-reply-threshold, ms
	// fake is the client the scripts' commands run as; only the holder of
	// every shard uses it
	fake *Client
	// allShards lists every shard, for the log's Prepare and records
	allShards []int

	calls atomic.Int64 // scripts and functions run (INFO)
	// read without mu (FUNCTION STATS while a function runs, snapshots)
	libCount, funcCount atomic.Int64
	preamble            atomic.Pointer[[]byte]
}

// runningScript is the script running now (SCRIPT KILL, FUNCTION STATS).
type runningScript struct {
	name     string
	function bool
	cmd      string
	args     [][]byte // the command, for FUNCTION STATS
	start    time.Time
	cancel   context.CancelFunc
	wrote    atomic.Bool
}

// scriptResult is what a script run leaves for its client.
type scriptResult struct {
	reply   []byte
	aofWait int64
	replOff int64
	txrec   []byte // inside EXEC: the effects, for EXEC's block
}

// initPubsubScripting sets up pub/sub, keyspace notifications and the
// script engine; the command table must exist (the FUNCTION command is
// registered here, with the server, so the log can replay it).
func (s *Server) initPubsubScripting() {
	s.ps.init()
	se := &s.script
	se.eng = script.New()
	se.threshold.Store(5000)
	se.noscript = make(map[*command.Command]bool)
	for _, cmd := range s.cmds.Sorted() {
		if slices.Contains(cmd.Flags, "noscript") {
			se.noscript[cmd] = true
		}
	}
	for i := 0; i < keyspace.NumShards; i++ {
		se.allShards = append(se.allShards, i)
	}
	fc := &Client{srv: s, authed: true, created: s.clock.Now()}
	fc.initCtx()
	fc.AllLocked, fc.InExec, fc.InScript = true, true, true
	se.fake = fc
	s.cmds.Register(command.Spec{
		Name: "function", Arity: -2, Flags: "noscript may-replicate allow-busy", Group: "scripting",
		Handler: func(x *command.Ctx) { s.cmdFunction(x) },
	})
	s.config["notify-keyspace-events"] = notifyConfig()
	busy := configParam{
		get: func(s *Server) string { return strconv.FormatInt(s.script.threshold.Load(), 10) },
		set: func(s *Server, v string) string {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return "argument couldn't be parsed into an integer"
			}
			s.script.threshold.Store(n)
			return ""
		},
	}
	s.config["busy-reply-threshold"] = busy
	s.config["lua-time-limit"] = busy
}

// busyRefusal is the -BUSY reply of a command that cannot run while a
// script is over busy-reply-threshold; "" when it may run.
func (s *Server) busyRefusal(cmd *command.Command) string {
	if !s.script.isBusy() || cmd.Has(command.AllowBusy) {
		return ""
	}
	if r := s.script.running.Load(); r != nil && r.function {
		return "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
	}
	return "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
}

// scriptKeys parses "numkeys key... arg..." at Args[2].
func scriptKeys(c *Client) (keys, argv [][]byte, ok bool) {
	n, ok := command.ParseInt(c.Args[2])
	if !ok {
		if strings.HasPrefix(c.Cmd.Name, "fcall") {
			c.W.Error("ERR Bad number of keys provided")
		} else {
			c.W.Error(command.ErrNotInt)
		}
		return nil, nil, false
	}
	if n < 0 {
		c.W.Error("ERR Number of keys can't be negative")
		return nil, nil, false
	}
	if n > int64(len(c.Args)-3) {
		c.W.Error("ERR Number of keys can't be greater than number of args")
		return nil, nil, false
	}
	return c.Args[3 : 3+n], c.Args[3+n:], true
}

// cmdEval serves EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL and FCALL_RO.
func cmdEval(c *Client) {
	s := c.srv
	se := &s.script
	name := c.Cmd.Name
	keys, argv, ok := scriptKeys(c)
	if !ok {
		return
	}
	ro := strings.HasSuffix(name, "_ro")
	var (
		sc    *script.Script
		fn    *script.Function
		flags script.Flags
	)
	se.mu.Lock()
	switch name {
	case "eval", "eval_ro":
		var err error
		sc, err = se.eng.Load(string(c.Args[1]))
		if err != nil {
			se.mu.Unlock()
			c.W.Error(err.Error())
			return
		}
		flags = sc.Flags
	case "evalsha", "evalsha_ro":
		if sc = se.eng.Lookup(string(c.Args[1])); sc == nil {
			se.mu.Unlock()
			c.W.Error(script.ErrNoScript.Error())
			return
		}
		flags = sc.Flags
	default:
		if fn = se.eng.Function(string(c.Args[1])); fn == nil {
			se.mu.Unlock()
			c.W.Error("ERR Function not found")
			return
		}
		flags = fn.Flags | script.FlagShebang
		if ro && flags&script.FlagNoWrites == 0 {
			se.mu.Unlock()
			c.W.Error("ERR Can not execute a script with write flag using *_ro command.")
			return
		}
	}
	se.mu.Unlock()
	if flags&script.FlagShebang != 0 {
		if flags&script.FlagNoWrites != 0 {
			ro = true
		}
		if flags&script.FlagNoCluster != 0 && s.cfg.Cluster != nil {
			c.W.Error("ERR Can not run script on cluster, 'no-cluster' flag is set.")
			return
		}
		if !ro && s.repl.IsReplica() && !c.master {
			c.W.Error(errReadOnlyReplica)
			return
		}
		if !ro && flags&script.FlagAllowOOM == 0 && s.maxmemory.Load() > 0 && s.freeMemory(evictBudget) == evictFail {
			s.oomRejected.Add(1)
			c.W.Error("OOM command not allowed when used memory > 'maxmemory'.")
			return
		}
	}
	if s.cfg.Cluster != nil && !c.master && !c.InExec && len(keys) > 0 {
		if flags&script.FlagAllowCrossSlot == 0 || flags&script.FlagShebang == 0 {
			if !s.route(c, c.Cmd, c.cluster.pendingAsking, c.existsSelfLocking) {
				return
			}
		}
	}
	inv := &script.Invocation{Keys: cloneArgs(keys), Argv: cloneArgs(argv), ReadOnly: ro, Repl: script.ReplAll}
	cmdArgs := cloneArgs(c.Args)
	who := scriptUser{}
	if c.restricted() { // the script's commands are checked as the caller's
		who = scriptUser{user: c.user, info: c.infoLine()}
	}
	db := c.DB
	job := func() scriptResult { return s.runScript(c.InExec, db, c.W.Proto, cmdArgs, sc, fn, inv, who) }
	if c.InExec || !c.inLoop {
		r := job()
		c.finishScript(r)
		return
	}
	ch := make(chan scriptResult, 1)
	go func() { ch <- job() }()
	t := time.NewTimer(loopScriptWait)
	select {
	case r := <-ch:
		t.Stop()
		c.finishScript(r)
	case <-t.C:
		// leave the loop; the command is dispatched again on the client's
		// goroutine, which waits for this result (dispatch, scriptWait)
		c.scriptWait = ch
		c.detach = true
	}
}

func cloneArgs(a [][]byte) [][]byte {
	out := make([][]byte, len(a))
	for i, b := range a {
		out[i] = slices.Clone(b)
	}
	return out
}

// finishScript gives the client a script's reply and what it waits for.
func (c *Client) finishScript(r scriptResult) {
	c.W.B = append(c.W.B, r.reply...)
	if r.aofWait > c.aofWait {
		c.aofWait = r.aofWait
	}
	if r.replOff > 0 {
		c.replOff = r.replOff
	}
	if c.InExec && len(r.txrec) > 0 {
		c.txSelect()
		c.txrec = append(c.txrec, r.txrec...)
	}
}

// awaitScript is the dispatch of a command whose script left the event
// loop: wait for the script and reply.
func (c *Client) awaitScript() {
	r := <-c.scriptWait
	c.scriptWait = nil
	c.finishScript(r)
}

// runScript runs a script in database db with every shard of db locked
// (held already inside EXEC) and logs its effects.
func (s *Server) runScript(inExec bool, db, proto int, cmdArgs [][]byte, sc *script.Script, fn *script.Function,
	inv *script.Invocation, who scriptUser) scriptResult {
	se := &s.script
	ks := s.dbs[db].KS
	shards := se.allShards
	if db != 0 {
		shards = make([]int, keyspace.NumShards)
		for i := range shards {
			shards[i] = command.GlobalShard(db, i)
		}
	}
	if !inExec {
		for i := 0; i < keyspace.NumShards; i++ {
			ks.LockShard(i)
		}
		if s.aof != nil {
			s.aof.Prepare(shards)
		}
		if s.repl != nil {
			s.repl.Prepare(shards)
		}
		defer func() {
			for i := keyspace.NumShards - 1; i >= 0; i-- {
				ks.UnlockShard(i)
			}
		}()
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := &runningScript{cancel: cancel, cmd: string(cmdArgs[0]), args: cmdArgs, start: time.Now()}
	if fn != nil {
		run.name, run.function = fn.Name, true
	} else {
		run.name = sc.SHA
	}
	fake := se.fake
	fake.SelectDB(db)
	fake.txDB, fake.txFirstDB = db, db
	fake.txrec = fake.txrec[:0]
	fake.aofWait, fake.replOff = 0, 0
	fake.W.Proto = 2
	fake.W.B = fake.W.B[:0]
	caller := &scriptCaller{s: s, run: run, who: who}
	inv.Caller, inv.Ctx = caller, ctx
	se.running.Store(run)
	se.calls.Add(1)
	se.busyRun.Store(nil)
	timer := time.AfterFunc(time.Duration(se.threshold.Load())*time.Millisecond, func() { se.busyRun.Store(run) })
	w := resp.Writer{Proto: proto}
	if fn != nil {
		se.eng.FCall(fn, inv, &w)
	} else {
		se.eng.Run(sc, inv, &w)
	}
	timer.Stop()
	se.running.Store(nil)
	se.busyRun.Store(nil)
	res := scriptResult{reply: w.B, aofWait: fake.aofWait}
	if len(fake.txrec) > 0 {
		if inExec { // the client's EXEC logs them in its block
			res.txrec = slices.Clone(fake.txrec)
		} else {
			rec := resp.AppendCommand(nil, bMULTI)
			rec = append(rec, fake.txrec...)
			rec = resp.AppendCommand(rec, bEXEC)
			if s.aof != nil && s.aof.Enabled() && inv.Repl&script.ReplAOF != 0 {
				res.aofWait = s.aof.AppendDB(db, rec, shards)
			}
			if s.repl != nil && s.repl.Active() && inv.Repl&script.ReplSlave != 0 {
				res.replOff = s.repl.FeedDB(db, rec, shards)
			}
		}
	}
	fake.txrec = fake.txrec[:0]
	return res
}

// scriptCaller runs the commands of a script as the script client.
type scriptCaller struct {
	s   *Server
	run *runningScript
	who scriptUser
}

// scriptUser is the ACL user whose script runs, when it is restricted
// (user nil: every command allowed), and its connection's CLIENT INFO
// line for the ACL log.
type scriptUser struct {
	user *acl.Handle
	info string
}

// aclRefusal checks a command a script calls against the script's user,
// as Redis does (context "lua"); it returns the error reply, "" if
// allowed.
func (sc *scriptCaller) aclRefusal(cmd *command.Command, args [][]byte) string {
	if sc.who.user == nil {
		return ""
	}
	u := sc.who.user.User()
	if u.Unrestricted() {
		return ""
	}
	s := sc.s
	req := acl.Request{Cmd: s.users.Catalog().Lookup(cmd.Name, args), Args: args, Keys: cmd.GetKeys(args, nil)}
	req.Channels, req.Patterns = aclChannels(cmd.Name, args)
	d, ok := u.Check(&req)
	if ok {
		return ""
	}
	s.aclLog.Add(d.Reason.String(), "lua", d.Object, u.Name, sc.who.info, s.nowMs())
	return d.Error()
}

func (sc *scriptCaller) Known(name []byte) bool { return sc.s.cmds.Lookup(name) != nil }

func (sc *scriptCaller) Log(level int, msg string) {
	if level >= script.LogNotice {
		sc.s.logger.Printf("script: %s", msg)
	}
}

func (sc *scriptCaller) Call(inv *script.Invocation, args [][]byte) []byte {
	s := sc.s
	fake := s.script.fake
	fake.W.Proto = inv.Resp
	fake.W.B = fake.W.B[:0]
	errReply := func(msg string) []byte {
		fake.W.Error(msg)
		return fake.W.B
	}
	cmd := s.cmds.Lookup(args[0])
	if cmd == nil {
		return errReply("ERR Unknown Redis command called from script")
	}
	if !cmd.ArityOK(len(args)) {
		return errReply("ERR Wrong number of args calling Redis command from script")
	}
	if s.script.noscript[cmd] || cmd.Has(command.NoMulti) {
		return errReply("ERR This Redis command is not allowed from script")
	}
	if cmd.Has(command.SelfLock) {
		switch cmd.Name {
		case "xread", "xreadgroup":
			for _, a := range args[1:] {
				if command.EqualFold(a, "block") {
					return errReply("ERR " + cmd.Name + " command is not allowed with BLOCK option from scripts")
				}
				if command.EqualFold(a, "streams") {
					break
				}
			}
		default:
			return errReply("ERR This Redis command is not allowed from script")
		}
	}
	if msg := sc.aclRefusal(cmd, args); msg != "" {
		return errReply(msg)
	}
	if msg := s.scriptDBRefusal(fake, cmd, args); msg != "" {
		return errReply(msg)
	}
	if cmd.Has(command.Write) {
		if inv.ReadOnly {
			return errReply("ERR Write commands are not allowed from read-only scripts.")
		}
		if s.repl.IsReplica() {
			return errReply(errReadOnlyReplica)
		}
		if s.maxmemory.Load() > 0 && cmd.Has(command.DenyOOM) && !sc.run.wrote.Load() && s.freeMemory(evictBudget) == evictFail {
			s.oomRejected.Add(1)
			return errReply("OOM command not allowed when used memory > 'maxmemory'.")
		}
	}
	if s.cfg.Cluster != nil {
		// every key must be served here (MOVED would not help a script)
		for _, k := range cmd.GetKeys(args, nil) {
			if msg := s.cfg.Cluster.Route(RouteRequest{Keys: [][]byte{k}, Write: cmd.Has(command.Write)}); msg != "" {
				return errReply("ERR Script attempted to access a non local key in a cluster node script")
			}
		}
	}
	fake.Args = args
	fake.Now = s.nowMs()
	s.call(fake, cmd, false)
	if cmd.Has(command.Write) {
		sc.run.wrote.Store(true)
	}
	return fake.W.B
}

// SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP
func cmdScript(c *Client) {
	s := c.srv
	se := &s.script
	sub := string(command.LowerInto(nil, c.Args[1]))
	if sub != "kill" {
		if msg := s.busyRefusalAll(); msg != "" {
			c.W.Error(msg)
			return
		}
	}
	switch {
	case sub == "load" && len(c.Args) == 3:
		se.mu.Lock()
		sc, err := se.eng.Load(string(c.Args[2]))
		se.mu.Unlock()
		if err != nil {
			c.W.Error(err.Error())
			return
		}
		c.W.BulkString(sc.SHA)
	case sub == "exists" && len(c.Args) >= 3:
		se.mu.Lock()
		c.W.Array(len(c.Args) - 2)
		for _, a := range c.Args[2:] {
			if se.eng.Exists(string(a)) {
				c.W.Int(1)
			} else {
				c.W.Int(0)
			}
		}
		se.mu.Unlock()
	case sub == "flush" && len(c.Args) <= 3:
		if len(c.Args) == 3 && !command.EqualFold(c.Args[2], "sync") && !command.EqualFold(c.Args[2], "async") {
			c.W.Error("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
			return
		}
		se.mu.Lock()
		se.eng.Flush()
		se.mu.Unlock()
		c.W.OK()
	case sub == "kill" && len(c.Args) == 2:
		c.killScript(false)
	case sub == "help" && len(c.Args) == 2:
		writeHelp(c, "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"EXISTS <sha1> [<sha1> ...]", "    Return information about the existence of the scripts in the script cache.",
			"FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache. Very dangerous on replicas.",
			"KILL", "    Kill the currently executing Lua script.",
			"LOAD <script>", "    Load a script into the scripts cache without executing it.",
			"HELP", "    Print this help.")
	default:
		c.W.Error("ERR unknown subcommand or wrong number of arguments for '" + command.Trunc(c.Args[1], 128) + "'. Try SCRIPT HELP.")
	}
}

// isBusy reports whether a script has been running longer than
// busy-reply-threshold.
func (se *scriptEngine) isBusy() bool {
	r := se.busyRun.Load()
	return r != nil && r == se.running.Load()
}

// busyRefusalAll is busyRefusal for a command without allow-busy.
func (s *Server) busyRefusalAll() string {
	if !s.script.isBusy() {
		return ""
	}
	return s.busyRefusal(&command.Command{})
}

// killScript is SCRIPT KILL (function false) and FUNCTION KILL.
func (c *Client) killScript(function bool) {
	r := c.srv.script.running.Load()
	switch {
	case r == nil:
		c.W.Error("NOTBUSY No scripts in execution right now.")
	case r.function != function:
		if function {
			c.W.Error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
		} else {
			c.W.Error("BUSY Redis is busy running a function. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
		}
	case r.wrote.Load():
		c.W.Error("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.")
	default:
		r.cancel()
		c.W.OK()
	}
}

func scriptSpecs() []cmdSpec {
	const sg = "scripting"
	keys := command.NumKeysAt(2)
	const f = "noscript stale skip-monitor may-replicate no-mandatory-keys allshards selflock"
	const fro = "noscript stale skip-monitor no-mandatory-keys readonly allshards selflock"
	return []cmdSpec{
		{"eval", -3, f, 0, 0, 0, sg, cmdEval, keys},
		{"evalsha", -3, f, 0, 0, 0, sg, cmdEval, keys},
		{"eval_ro", -3, fro, 0, 0, 0, sg, cmdEval, keys},
		{"evalsha_ro", -3, fro, 0, 0, 0, sg, cmdEval, keys},
		{"fcall", -3, f, 0, 0, 0, sg, cmdEval, keys},
		{"fcall_ro", -3, fro, 0, 0, 0, sg, cmdEval, keys},
		{"script", -2, "noscript allow-busy", 0, 0, 0, sg, cmdScript, nil},
	}
}
