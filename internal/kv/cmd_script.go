package kv

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/kv/acl"
	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/kv/script"
	"github.com/gantry-project/gantry/internal/resp"
)

// Scripting (EVAL, FCALL). A script runs atomically: it holds the shards
// of the keys it declares (KEYS) while it runs, so no other command sees
// those keys half-changed. A command of the script on a key of a shard it
// does not hold (an undeclared key, or a keyspace-wide command such as
// KEYS) makes it take the whole keyspace: if it has had no effect yet it
// stops and runs again with every shard locked, else it takes the missing
// shards without waiting (waiting could deadlock against a client that
// holds one of them and waits for one of the script's), and the command
// fails if it cannot. A script that touched undeclared keys once locks
// the whole keyspace from then on. A script that SELECTs another database
// (or reaches one: MOVE, SWAPDB...) does the same with every shard of
// every database: it runs again holding them all (or takes them without
// waiting once it has had effects), and holds them all from then on. Its
// SELECT changes the database of its following commands only; the
// caller's stays. Its commands run as a script client
// (scriptCaller) through the same call path as EXEC's queued commands,
// and their log records are gathered and logged and replicated as one
// MULTI ... EXEC block (scripts are replicated by their effects, as
// Redis 7 does; one command alone is not wrapped).
//
// EVAL scripts run on a bounded pool of Lua states (scriptRunner), so
// scripts on different keys run in parallel; functions run on the one
// state that holds their libraries, one at a time.
//
// A client served by an event loop runs a script on the loop itself
// when earlier runs of the script took less than inlineScriptMax on
// average. If it runs longer than loopScriptWait without an effect it is
// stopped, and it runs again as a long script does: on a goroutine; if it
// is not done within loopScriptWait the client leaves the loop (as a
// blocking command does) and waits for it there, so the other clients of
// the loop are still served: after busy-reply-threshold they get -BUSY,
// and SCRIPT KILL or FUNCTION KILL stops a script that has not written.
// (A script that writes and then runs long on the loop keeps the loop's
// other clients waiting, as Redis keeps all of them; it could not be
// killed anyway.)

// loopScriptWait is how long an event loop waits for a script before
// handing its client to a goroutine of its own, and how long a script
// may run on the loop before it is moved off.
const loopScriptWait = 5 * time.Millisecond

// inlineScriptMax is the average run time under which a script runs on
// its client's event loop.
const inlineScriptMax = 200 * time.Microsecond

// undeclaredTries bounds the attempts to take a shard a script did not
// declare once it has had effects.
const undeclaredTries = 1000

type scriptEngine struct {
	mu  sync.Mutex // the main Lua state: its cache, functions, FCALL
	eng *script.Engine
	// noscript: the commands scripts may not call; denyOff is DEBUG
	// SET-DISABLE-DENY-SCRIPTS: scripts may call those of them
	// scriptMayCallDenied allows
	noscript map[*command.Command]bool
	denyOff  atomic.Bool
	// main runs functions (with mu held); pool holds the idle runners of
	// EVAL scripts, made on demand up to cap(pool); exec is the runner of
	// scripts inside EXEC, which holds every shard (so one at a time, and
	// it never waits for a pooled runner held by a script waiting for a
	// shard of the transaction)
	main, exec *scriptRunner
	pool       []runnerSlot
	made       atomic.Int32
	// waiting counts the runner calls that wait; release sends them a
	// token on freed
	waiting atomic.Int32
	freed   chan struct{}
	// gen counts SCRIPT FLUSHes; a runner drops its cache when it lags
	gen atomic.Uint64

	// runners lists every runner made (runMu); a runner's cur is the
	// script it runs now. A run is published and withdrawn with an atomic
	// store on its runner alone: no lock is shared by the runs of the
	// event loops
	runMu   sync.Mutex
	runners []*scriptRunner
	// watchIdle: the watchdog sleeps until wake
	watchIdle atomic.Bool
	wake      chan struct{}
	// busyRun is a script that ran longer than busy-reply-threshold; it
	// is busy while it runs (a timer that fires as the script ends may
	// leave it set)
	busyRun   atomic.Pointer[runningScript]
	threshold atomic.Int64 // busy-reply-threshold, ms

	// allGlobal lists every shard of every database (a script that
	// SELECTs locks them all; read only)
	allOnce   sync.Once
	allGlobal []int

	// read without mu (FUNCTION STATS while a function runs, snapshots,
	// INFO)
	libCount, funcCount  atomic.Int64
	nScripts, scriptsMem atomic.Int64
	// fnVM and fnMem: FunctionsVMMemory and FunctionsMemory of eng
	fnVM, fnMem atomic.Int64
	preamble    atomic.Pointer[[]byte]
}

// runningScript is a script running now (SCRIPT KILL, FUNCTION STATS).
// A runner reuses the one of its last run (scriptRunner.spare) unless
// another goroutine may still read it: those read it pinned (pinCur,
// pinBusy), and busyRun may point to it.
type runningScript struct {
	name     string
	function bool          // set when it is made: a reused one keeps it
	args     [][]byte      // the command, for FUNCTION STATS
	start    time.Duration // monoNow when it started
	kill     *killCtx
	seq      uint64
	inline   bool // on an event loop: stopped after loopScriptWait without an effect
	allowOOM bool // the allow-oom flag: no OOM refusal of its commands
	wrote    atomic.Bool
	done     atomic.Bool
	// state: runClean, then runEffects once a command with an effect ran,
	// or runStopped when the run is stopped to run again (stop says why);
	// runDone when it returned (a late timer then changes nothing)
	state atomic.Int32
	stop  atomic.Int32
	// pins counts the readers of other goroutines (pinCur, pinBusy)
	pins atomic.Int32
}

// pinCur returns the run r runs now, pinned (its fields stay as they are
// until unpin), nil if none. A run that ended between the two loads may
// have been reused for the runner's next run: then the second load is
// that run, published after its fields were written.
func (r *scriptRunner) pinCur() *runningScript {
	run := r.cur.Load()
	if run == nil {
		return nil
	}
	run.pins.Add(1)
	if r.cur.Load() != run {
		run.unpin()
		return nil
	}
	return run
}

// pinBusy returns the run marked busy, pinned, nil if none. A runner
// does not reuse a run busyRun points to, and the watchdog marks a run
// only while it holds it pinned.
func (se *scriptEngine) pinBusy() *runningScript {
	run := se.busyRun.Load()
	if run == nil {
		return nil
	}
	run.pins.Add(1)
	if se.busyRun.Load() != run || run.done.Load() {
		run.unpin()
		return nil
	}
	return run
}

func (run *runningScript) unpin() { run.pins.Add(-1) }

const (
	runClean int32 = iota
	runEffects
	runStopped
	runDone
)

// why a run was stopped to run again
const (
	stopNone    int32 = iota
	stopYield         // ran too long on an event loop
	stopRestart       // touched an undeclared key: run with every shard
	stopAllDBs        // reached another database: run with every database
)

// killCtx is the cancellation of a runner's Lua state. gopher-lua
// selects on Done before every instruction it runs; Done answers nil (a
// select on a nil channel falls through at once) until the run is
// cancelled, then the closed channel, so the running script sees the
// kill at its next instruction. seq tells runs apart, so that a timer of
// a finished run cancels nothing.
type killCtx struct {
	mu     sync.Mutex
	done   chan struct{} // closed by cancel; written by next (mu)
	closed atomic.Bool   // done is closed: the current run is cancelled
	seq    uint64
}

func newKillCtx() *killCtx { return &killCtx{done: make(chan struct{})} }

func (k *killCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (k *killCtx) Value(any) any               { return nil }

// Done is nil while the run goes on: the run's goroutine wrote done
// (next) before the run, and cancel closes it before setting closed.
func (k *killCtx) Done() <-chan struct{} {
	if !k.closed.Load() {
		return nil
	}
	return k.done
}

func (k *killCtx) Err() error {
	if k.closed.Load() {
		return context.Canceled
	}
	return nil
}

// cancel stops run seq if it is still the current one.
func (k *killCtx) cancel(seq uint64) {
	k.mu.Lock()
	if k.seq == seq && !k.closed.Load() {
		close(k.done)
		k.closed.Store(true)
	}
	k.mu.Unlock()
}

// next starts a run and returns its seq.
func (k *killCtx) next() uint64 {
	k.mu.Lock()
	k.seq++
	if k.closed.Load() {
		k.done = make(chan struct{})
		k.closed.Store(false)
	}
	seq := k.seq
	k.mu.Unlock()
	return seq
}

// scriptRunner is a Lua state and the client its scripts' commands run
// as, with what the current run holds.
type scriptRunner struct {
	s    *Server
	eng  *script.Engine
	fake *Client
	// gen is the SCRIPT FLUSH its cache is of (atomic: INFO reads it)
	gen  atomic.Uint64
	kill *killCtx
	// cur is the script it runs now, nil between runs (begin, end)
	cur atomic.Pointer[runningScript]
	// held are the shards the run holds (all: every one, held[] unused)
	held [keyspace.NumShards]bool
	all  bool
	// extra are the shards taken after the start (released at the end)
	extra []int
	// ks is the keyspace of db, the database of the run (the caller's):
	// held, extra and fake.Locked are shards of it
	ks *keyspace.Keyspace
	db int
	// alldb: the run holds every shard of every database (it may SELECT
	// another one); xheld are the global shards of the other databases
	// taken after the start (holdAllDBs), alldbFrom whether it locked
	// them all at the start (in fake.Cross)
	alldb, alldbFrom bool
	xheld            []int
	inExec           bool // the run is a command of EXEC (which holds its shards)
	// gshards is global's buffer
	gshards []int
	// caller and inv are those of the run (runOnce)
	caller scriptCaller
	inv    script.Invocation
	// src and local: the script last run and this runner's compiled copy
	// of it (Engine.Local, a map lookup by SHA1 otherwise)
	src, local *script.Script
	// allowed is the last command its scripts called that scripts may
	// call (the noscript table is a map lookup)
	allowed *command.Command
	// spare is the runningScript of the last run when no other goroutine
	// can read it any more: the next run reuses it (one allocation less
	// per run)
	spare *runningScript
}

// global returns the global numbers (command.GlobalShard) of shards of
// the run's database, for the log's and the stream's cut: the shards
// themselves in database 0.
func (r *scriptRunner) global(shards []int) []int {
	if r.db == 0 {
		return shards
	}
	r.gshards = r.gshards[:0]
	for _, i := range shards {
		r.gshards = append(r.gshards, command.GlobalShard(r.db, i))
	}
	return r.gshards
}

func (s *Server) newScriptRunner(eng *script.Engine) *scriptRunner {
	fc := &Client{srv: s, authed: true, created: s.clock.Now()}
	fc.initCtx()
	fc.InExec, fc.InScript = true, true
	r := &scriptRunner{s: s, eng: eng, fake: fc, kill: newKillCtx()}
	se := &s.script
	se.runMu.Lock()
	se.runners = append(se.runners, r)
	se.runMu.Unlock()
	return r
}

// watchdogTick is how often the watchdog looks at the running scripts.
const watchdogTick = time.Millisecond

// scriptWatchdog watches the running scripts, instead of two timers per
// run: it stops a script running on an event loop for loopScriptWait
// without an effect (to run again on a goroutine), and marks the one
// running past busy-reply-threshold busy. It ticks only while scripts
// run; begin wakes it.
func (s *Server) scriptWatchdog() {
	se := &s.script
	t := time.NewTicker(watchdogTick)
	t.Stop()
	for {
		select {
		case <-s.done:
			t.Stop()
			return
		case <-se.wake:
			t.Reset(watchdogTick)
			continue
		case <-t.C:
		}
		now := monoNow()
		threshold := time.Duration(se.threshold.Load()) * time.Millisecond
		// a run marked busy as it ended (end cleared the mark before it
		// was set) is unmarked here
		if b := se.busyRun.Load(); b != nil && b.done.Load() {
			se.busyRun.CompareAndSwap(b, nil)
		}
		if !se.watchRuns(now, threshold) {
			// idle, then look again: a run that begins now either finds
			// watchIdle set (and wakes the watchdog) or is seen here
			se.watchIdle.Store(true)
			if !se.watchRuns(now, threshold) || !se.watchIdle.CompareAndSwap(true, false) {
				t.Stop()
			}
		}
	}
}

// watchRuns does the watchdog's work on the runs of now; false when none
// is running.
func (se *scriptEngine) watchRuns(now, threshold time.Duration) bool {
	se.runMu.Lock()
	defer se.runMu.Unlock()
	running := false
	for _, r := range se.runners {
		run := r.pinCur()
		if run == nil {
			continue
		}
		running = true
		el := now - run.start
		if run.inline && el >= loopScriptWait {
			run.stop.Store(stopYield) // read only if the swap below succeeds
			if run.state.CompareAndSwap(runClean, runStopped) {
				run.kill.cancel(run.seq)
			}
		}
		if el >= threshold && !run.done.Load() {
			if b := se.busyRun.Load(); b == nil || b.done.Load() {
				se.busyRun.Store(run)
			}
		}
		run.unpin()
	}
	return running
}

// runnerSlot holds an idle runner of the pool, one slot per cache line:
// event loops take a runner and put it back with one compare-and-swap
// each, on lines they mostly do not share (a channel took a lock shared
// by every loop, twice per run).
type runnerSlot struct {
	r atomic.Pointer[scriptRunner]
	_ [56]byte
}

// runner takes an idle runner of the pool, makes one if the pool is not
// full, or waits for one when wait is set (nil otherwise).
func (se *scriptEngine) runner(s *Server, wait bool) *scriptRunner {
	waiting := false
	defer func() {
		if waiting {
			se.waiting.Add(-1)
		}
	}()
	for {
		for i := range se.pool {
			if r := se.pool[i].r.Load(); r != nil && se.pool[i].r.CompareAndSwap(r, nil) {
				return r
			}
		}
		if n := se.made.Add(1); int(n) <= len(se.pool) {
			return s.newScriptRunner(script.New())
		}
		se.made.Add(-1)
		if !wait {
			return nil
		}
		// counted as waiting before the pool is searched again: a runner
		// put back after that search finds the count and sends a token
		if !waiting {
			waiting = true
			se.waiting.Add(1)
			continue
		}
		<-se.freed
	}
}

func (se *scriptEngine) release(r *scriptRunner) {
	for i := range se.pool {
		if se.pool[i].r.CompareAndSwap(nil, r) {
			break
		}
	}
	if se.waiting.Load() > 0 {
		select {
		case se.freed <- struct{}{}:
		default: // as many tokens as runners are pending: a waiter has one
		}
	}
}

// scriptResult is what a script run leaves for its client.
type scriptResult struct {
	reply   []byte
	aofWait int64
	replOff int64
	txrec   []byte // inside EXEC: the effects, for EXEC's block
	nrec    int    // the commands in txrec
	endDB   int    // the database txrec ends in (the script SELECTed)
	// errCounted: reply is an error the script's command replied,
	// counted in the error statistics then
	errCounted bool
	// hits and misses: keyspace_hits and keyspace_misses of the
	// script's commands
	hits, misses int64
}

// noteScripts counts the cached scripts for INFO (with mu held).
func (se *scriptEngine) noteScripts() {
	se.nScripts.Store(int64(se.eng.NumScripts()))
	se.scriptsMem.Store(se.eng.ScriptsMemory())
}

// luaMemory returns the estimates of INFO's Lua fields: vm, the main Lua
// state's with its compiled scripts (used_memory_vm_eval and
// used_memory_lua: the memory of the VM scripts run in, Redis's single
// VM), and all, every state EVAL scripts run on (the main one, the EXEC
// one and the pool's made so far, each a VM like the main one that
// compiles the scripts it runs; gantry_used_memory_vm_eval_all_states).
// A runner whose cache lags a SCRIPT FLUSH counts as empty (it drops
// its cache on its next run).
func (se *scriptEngine) luaMemory() (vm, all int64, states int) {
	g := se.gen.Load()
	se.runMu.Lock()
	defer se.runMu.Unlock()
	for _, r := range se.runners {
		if r != se.main && r.gen.Load() != g {
			all += script.StateBase()
			continue
		}
		n := r.eng.VMMemory()
		if r == se.main {
			vm = n
		}
		all += n
	}
	return vm, all, len(se.runners)
}

// registerFunction adds the FUNCTION command to the table, with the
// server (so the log can replay it); before the ACL catalog is built,
// which must know it and its subcommands (+@scripting allows FUNCTION
// LOAD, as in Redis).
func (s *Server) registerFunction() {
	s.cmds.Register(command.Spec{
		Name: "function", Arity: -2, Flags: "noscript may-replicate allow-busy", Group: "scripting",
		Handler: func(x *command.Ctx) { s.cmdFunction(x) },
	})
}

// initPubsubScripting sets up pub/sub, keyspace notifications and the
// script engine; the command table must exist (registerFunction).
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
	se.wake = make(chan struct{}, 1)
	se.watchIdle.Store(true)
	se.main = s.newScriptRunner(se.eng)
	se.exec = s.newScriptRunner(script.New())
	se.fnMem.Store(se.eng.FunctionsMemory())
	se.pool = make([]runnerSlot, min(max(2*runtime.GOMAXPROCS(0), 4), 16))
	se.freed = make(chan struct{}, len(se.pool))
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
	if cmd.Has(command.AllowBusy) {
		return ""
	}
	r := s.script.busy()
	if r == nil {
		return ""
	}
	if r.function {
		return "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
	}
	return "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
}

// scriptKeys parses "numkeys key... arg..." at Args[2].
func scriptKeys(c *Client) (keys, argv [][]byte, ok bool) {
	// call took the keys from these arguments with the command's key
	// spec (NumKeysAt(2)), which gives them only for a valid numkeys
	// above 0: numkeys is not parsed again
	if n := len(c.Keys); n > 0 && n <= len(c.Args)-3 {
		return c.Args[3 : 3+n], c.Args[3+n:], true
	}
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
	if c.pauseScript() { // runs again after a write pause
		return
	}
	keys, argv, ok := scriptKeys(c)
	if !ok {
		return
	}
	ro := strings.HasSuffix(name, "_ro")
	var (
		sc    *script.Script
		fn    *script.Function
		flags script.Flags
		stats *script.RunStats
	)
	if name == "evalsha" || name == "evalsha_ro" {
		if sc = c.evalLast.lookup(se, c.Args[1]); sc != nil {
			flags, stats = sc.Flags, &sc.Stats
		}
	}
	if sc == nil {
		se.mu.Lock()
	}
	switch {
	case sc != nil:
	case name == "eval" || name == "eval_ro":
		var err error
		sc, err = se.eng.Load(string(c.Args[1]))
		se.noteScripts()
		se.mu.Unlock()
		if err != nil {
			c.W.Error(err.Error())
			return
		}
		flags, stats = sc.Flags, &sc.Stats
	case name == "evalsha" || name == "evalsha_ro":
		if sc = se.eng.LookupSHA(c.Args[1]); sc == nil {
			se.mu.Unlock()
			c.W.Error(script.ErrNoScript.Error())
			return
		}
		c.remember(se, c.Args[1], sc)
		flags, stats = sc.Flags, &sc.Stats
		se.mu.Unlock()
	default:
		if fn = se.eng.Function(string(c.Args[1])); fn == nil {
			se.mu.Unlock()
			c.W.Error("ERR Function not found")
			return
		}
		flags, stats = fn.Flags|script.FlagShebang, &fn.Stats
		if ro && flags&script.FlagNoWrites == 0 {
			se.mu.Unlock()
			c.W.Error("ERR Can not execute a script with write flag using *_ro command.")
			return
		}
		se.mu.Unlock()
	}
	if flags&script.FlagShebang != 0 {
		if flags&script.FlagNoWrites != 0 {
			ro = true
		}
		if flags&script.FlagNoCluster != 0 && s.cfg.Cluster != nil {
			c.W.Error("ERR Can not run script on cluster, 'no-cluster' flag is set.")
			return
		}
		if !ro && s.repl.IsReplica() && !c.master {
			c.rejected = true
			c.W.Error(errReadOnlyReplica)
			return
		}
		// a script that may write is refused up front, as Redis does,
		// rather than at its first write
		if msg := s.minReplicasRefusal(); !ro && msg != "" {
			c.rejected = true
			c.W.Error(msg)
			return
		}
		if !ro && flags&script.FlagAllowOOM == 0 && s.maxmemory.Load() > 0 && s.freeMemory(evictBudget) == evictFail {
			s.oomRejected.Add(1)
			c.rejected = true
			c.W.Error("OOM command not allowed when used memory > 'maxmemory'.")
			return
		}
	}
	if s.cfg.Cluster != nil && !c.master && !c.InExec && len(keys) > 0 {
		if flags&script.FlagAllowCrossSlot == 0 || flags&script.FlagShebang == 0 {
			if !s.route(c, c.Cmd, c.cluster.pendingAsking, c.existsSelfLocking) {
				c.rejected = true
				return
			}
		}
	}
	// EVAL and FCALL skip the monitors after the call: they are shown
	// before their script's commands, as Redis does
	if s.adm.monitorsN.Load() > 0 {
		s.feedMonitors(c, c.Cmd)
	}
	who := scriptUser{}
	if c.restricted() { // the script's commands are checked as the caller's
		who = scriptUser{user: c.user, info: c.infoLine()}
	}
	job := scriptJob{inExec: c.InExec, allDBs: c.InExec && len(c.Cross) > 0, db: c.DB, proto: c.W.Proto, cmdArgs: c.Args, sc: sc, fn: fn, pass: &c.pass,
		inv: script.Invocation{Keys: keys, Argv: argv, ReadOnly: ro, Repl: script.ReplAll}, who: who,
		allowOOM: flags&script.FlagShebang != 0 && flags&script.FlagAllowOOM != 0}
	// a run on this goroutine writes its reply into the client's buffer
	// and runs at the command's time (a goroutine's run below has its own
	// buffer and reads the clock when it starts)
	job.out, job.now = &c.W, c.Now
	// on a loop, the run starts where the previous command of the batch
	// ended (the batch's start for its first): one clock reading less
	job.start = c.mark
	if c.InExec || !c.inLoop {
		r, _ := s.runScript(&job, false)
		c.finishScript(r)
		return
	}
	// a script known to run short runs on the loop, without copies (a
	// new one runs on a goroutine: it may write and then run long)
	if n := stats.Nanos.Load(); n > 0 && n < int64(inlineScriptMax) {
		if r, ok := s.runScript(&job, true); ok {
			c.finishScript(r)
			return
		}
	}
	// a goroutine runs it: it keeps its own copy of the job and of the
	// arguments
	gj := new(scriptJob)
	*gj = job
	gj.out, gj.now, gj.start = nil, 0, 0
	gj.cmdArgs = cloneArgs(c.Args)
	gj.inv.Keys, gj.inv.Argv = gj.cmdArgs[3:3+len(keys)], gj.cmdArgs[3+len(keys):]
	ch := make(chan scriptResult, 1)
	go func() {
		r, _ := s.runScript(gj, false)
		ch <- r
	}()
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

// evalLast is a client's last EVALSHA: the SHA1 as it sent it and the
// script, valid while no SCRIPT FLUSH has run since (gen). A pipeline or
// a client repeating one script finds it without the script cache's lock
// (which every event loop takes) and its map lookup.
type evalLast struct {
	sha [40]byte
	sc  *script.Script
	gen uint64
}

// lookup returns the script of sha if it is the one remembered, nil
// otherwise (l may be nil).
func (l *evalLast) lookup(se *scriptEngine, sha []byte) *script.Script {
	if l == nil || l.sc == nil || len(sha) != len(l.sha) || string(sha) != string(l.sha[:]) || l.gen != se.gen.Load() {
		return nil
	}
	return l.sc
}

// remember makes sc the client's last EVALSHA (se.mu held: gen is that
// of the cache sc was found in).
func (c *Client) remember(se *scriptEngine, sha []byte, sc *script.Script) {
	if len(sha) != len(evalLast{}.sha) {
		return
	}
	if c.evalLast == nil {
		c.evalLast = new(evalLast)
	}
	copy(c.evalLast.sha[:], sha)
	c.evalLast.sc, c.evalLast.gen = sc, se.gen.Load()
}

// scriptJob is one EVAL or FCALL to run.
type scriptJob struct {
	inExec  bool
	db      int // the caller's database: the script runs in it
	proto   int
	cmdArgs [][]byte
	sc      *script.Script
	fn      *script.Function
	inv     script.Invocation
	who     scriptUser
	// allDBs: inside EXEC, the transaction holds every database
	allDBs bool
	// allowOOM: the allow-oom flag, its commands run over maxmemory
	allowOOM bool
	// pass is the caller's: the blocked clients the script's changes
	// wake are served before the caller's reply (Client.servePass)
	pass *command.Pass
	// out, when set, is the writer the reply goes to (the caller's, on
	// its goroutine); otherwise scriptResult.reply holds it
	out *resp.Writer
	// now is the time (Unix ms) of the run's commands, 0 to read the
	// clock when the run starts
	now int64
	// start is the monoNow reading the first run starts at, 0 to read
	// the clock (a run that runs again reads it)
	start time.Duration
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
	c.errCounted = r.errCounted // inside EXEC, afterNested reads it
	c.Hits += r.hits
	c.Misses += r.misses
	if r.aofWait > c.aofWait {
		c.aofWait = r.aofWait
	}
	if r.replOff > 0 {
		c.replOff = r.replOff
	}
	if c.InExec && len(r.txrec) > 0 {
		c.txSelect()
		c.txrec = append(c.txrec, r.txrec...)
		c.nrec += r.nrec
		c.txDB = r.endDB
	}
}

// awaitScript is the dispatch of a command whose script left the event
// loop: wait for the script and reply.
func (c *Client) awaitScript() {
	r := <-c.scriptWait
	c.scriptWait = nil
	c.finishScript(r)
}

// runScript runs a script and logs its effects. inline (on an event
// loop) takes no runner it would wait for, and gives up (ok false) when
// the script runs longer than loopScriptWait without an effect; the
// caller then runs it on a goroutine.
func (s *Server) runScript(j *scriptJob, inline bool) (res scriptResult, ok bool) {
	se := &s.script
	var r *scriptRunner
	switch {
	case j.fn != nil:
		r = se.main
	case j.inExec:
		r = se.exec
	default:
		if r = se.runner(s, !inline); r == nil {
			return res, false
		}
		defer se.release(r)
	}
	if g := se.gen.Load(); r != se.main && r.gen.Load() != g {
		r.eng.Flush()
		r.gen.Store(g)
		r.src, r.local = nil, nil
	}
	var stats *script.RunStats
	sc := j.sc
	if j.fn != nil {
		stats = &j.fn.Stats
	} else {
		stats = &j.sc.Stats
		if j.sc == r.src {
			sc = r.local
		} else {
			var err error
			if sc, err = r.eng.Local(j.sc); err != nil { // not expected: the main state compiled it
				return scriptResult{reply: errorReply(j.proto, err.Error())}, true
			}
			r.src, r.local = j.sc, sc
		}
	}
	all := j.inExec || stats.Undeclared.Load()
	alldb := !j.inExec && len(s.dbs) > 1 && stats.OtherDB.Load()
	for {
		res, stop := s.runOnce(r, j, sc, all, alldb, inline)
		switch stop {
		case stopYield:
			return res, false
		case stopRestart:
			all = true
			continue
		case stopAllDBs:
			all, alldb = true, true
			continue
		}
		return res, true
	}
}

func errorReply(proto int, msg string) []byte {
	w := resp.Writer{Proto: proto}
	w.Error(msg)
	return w.B
}

// runOnce runs a script once: with every shard of every database locked
// (alldb), every shard of its database (all) or those of its declared
// keys. It returns why the run stopped to run again.
func (s *Server) runOnce(r *scriptRunner, j *scriptJob, sc *script.Script, all, alldb, inline bool) (scriptResult, int32) {
	se := &s.script
	fake := r.fake
	fake.SelectDB(j.db) // the caller's database: its keyspace and tracker
	fake.touchPass = j.pass
	ks := fake.KS
	r.ks, r.db = ks, j.db
	locked := fake.Locked[:0]
	r.alldb, r.alldbFrom, r.inExec = j.allDBs, false, j.inExec
	r.xheld = r.xheld[:0]
	if alldb && !j.inExec {
		se.allOnce.Do(func() { se.allGlobal = s.allGlobalShards() })
		fake.LockCross(se.allGlobal)
		fake.prepareGlobal(fake.Cross)
		r.alldb, r.alldbFrom, all = true, true, true
	} else if !j.inExec {
		if all {
			for i := 0; i < keyspace.NumShards; i++ {
				locked = append(locked, i)
			}
		} else {
			for _, k := range j.inv.Keys {
				locked = append(locked, keyspace.ShardOf(k))
			}
			slices.Sort(locked)
			locked = slices.Compact(locked)
		}
		for _, i := range locked {
			ks.LockShard(i)
		}
		if len(locked) > 1 { // the log's and the stream's cut name global shards
			g := r.global(locked)
			if s.aof != nil {
				s.aof.Prepare(g)
			}
			if s.repl != nil {
				s.repl.Prepare(g)
			}
		}
	}
	r.all = all
	if !all {
		for _, i := range locked {
			r.held[i] = true
		}
	}
	r.extra = r.extra[:0]
	fake.AllLocked = all
	fake.Locked = locked
	if j.fn != nil {
		se.mu.Lock()
	}
	start := j.start
	if j.start = 0; start == 0 {
		start = monoNow()
	}
	run := r.spare
	r.spare = nil
	if run == nil || run.function != (j.fn != nil) {
		run = &runningScript{function: j.fn != nil}
	}
	run.kill, run.args, run.start, run.inline, run.allowOOM = r.kill, j.cmdArgs, start, inline, j.allowOOM
	run.wrote.Store(false)
	run.done.Store(false)
	run.state.Store(runClean)
	run.stop.Store(stopNone)
	if j.fn != nil {
		run.name = j.fn.Name
	} else {
		run.name = sc.SHA
	}
	run.seq = r.kill.next()
	// the records start in the caller's database; a SELECT of the script
	// puts a SELECT before the next one (txSelect)
	fake.txDB, fake.txFirstDB = j.db, j.db
	// the script's commands see one time, its start's, as in Redis (a key
	// does not expire in the middle of a script); call reads it from
	// batchNow instead of the clock
	fake.batchNow = j.now
	if fake.batchNow == 0 {
		fake.batchNow = s.nowMs()
	}
	fake.txrec = fake.txrec[:0]
	fake.aofWait, fake.replOff = 0, 0
	fake.W.Proto = 2
	fake.W.B = fake.W.B[:0]
	fake.nrec = 0
	fake.Hits, fake.Misses = 0, 0
	// the runner's caller and invocation serve one run at a time
	caller := &r.caller
	*caller = scriptCaller{s: s, r: r, run: run, who: j.who}
	if j.fn != nil {
		caller.stats = &j.fn.Stats
	} else {
		caller.stats = &j.sc.Stats
	}
	inv := &r.inv
	*inv = j.inv
	inv.Caller, inv.Ctx = caller, r.kill
	se.begin(r, run)
	own := resp.Writer{Proto: j.proto}
	w := &own
	if j.out != nil {
		w = j.out
	}
	mark := len(w.B)
	if j.fn != nil {
		se.eng.FCall(j.fn, inv, w)
	} else {
		r.eng.Run(sc, inv, w)
	}
	stopped := run.state.Swap(runDone) == runStopped
	se.end(r, run)
	// unpublished (end), read by no other goroutine and not marked busy:
	// the next run may reuse it (a reader that pins it from now on finds
	// it withdrawn, or published again for that run)
	if run.pins.Load() == 0 && se.busyRun.Load() != run {
		r.spare = run
	}
	stop := stopNone
	if stopped {
		stop = run.stop.Load()
		w.B = w.B[:mark] // the run that replaces it replies
	}
	res := scriptResult{reply: own.B, aofWait: fake.aofWait, errCounted: inv.ErrorCounted}
	if stop != stopRestart {
		// the keyspace hits and misses of the script's commands count
		// with the caller's (finishScript); a run stopped to run again
		// on a goroutine counts in that run
		res.hits, res.misses = fake.Hits, fake.Misses
		if j.fn != nil {
			j.fn.Stats.Observe(monoNow() - run.start)
		} else {
			j.sc.Stats.Observe(monoNow() - run.start)
		}
	}
	if len(fake.txrec) > 0 { // only a run with effects, which is not stopped
		shards := locked
		if !all && len(r.extra) > 0 {
			shards = append(slices.Clone(locked), r.extra...)
		}
		if r.all {
			shards = allShards
		}
		shards = r.global(shards)
		if r.alldb {
			se.allOnce.Do(func() { se.allGlobal = s.allGlobalShards() })
			shards = se.allGlobal
		}
		endDB := fake.txDB
		if j.inExec { // the client's EXEC logs them in its block
			res.txrec, res.nrec, res.endDB = slices.Clone(fake.txrec), fake.nrec, endDB
		} else {
			rec := fake.txrec
			// one command needs no wrapper, as in Redis 7; records that
			// SELECT keep it
			if fake.nrec > 1 || endDB != j.db {
				rec = resp.AppendCommand(nil, bMULTI)
				rec = append(rec, fake.txrec...)
				rec = resp.AppendCommand(rec, bEXEC)
			}
			if s.aof != nil && s.aof.Enabled() && inv.Repl&script.ReplAOF != 0 {
				res.aofWait = s.aof.AppendSpan(j.db, endDB, rec, shards)
			}
			if s.repl != nil && s.repl.Active() && inv.Repl&script.ReplSlave != 0 {
				res.replOff = s.repl.FeedSpan(j.db, endDB, rec, shards)
			}
		}
	}
	fake.txrec = fake.txrec[:0]
	if j.fn != nil {
		se.mu.Unlock()
	}
	switch {
	case j.inExec:
	case r.alldbFrom:
		fake.UnlockCross()
		fake.Cross = nil // allGlobalShards' slice is shared
	default:
		if len(r.xheld) > 0 {
			// an entry may have moved between databases (MOVE): settle
			// every shard before unlocking any (Keyspace.SettleShard)
			for _, d := range fake.DBs {
				for i := 0; i < keyspace.NumShards; i++ {
					d.KS.SettleShard(i)
				}
			}
			for k := len(r.xheld) - 1; k >= 0; k-- {
				x := r.xheld[k]
				fake.DBs[x/keyspace.NumShards].KS.UnlockShard(x % keyspace.NumShards)
			}
		}
		for _, i := range r.extra {
			ks.UnlockShard(i)
		}
		for k := len(locked) - 1; k >= 0; k-- {
			ks.UnlockShard(locked[k])
		}
	}
	r.xheld = r.xheld[:0]
	r.alldb, r.alldbFrom = false, false
	if !all {
		for _, i := range locked {
			r.held[i] = false
		}
		for _, i := range r.extra {
			r.held[i] = false
		}
	}
	r.extra = r.extra[:0]
	fake.Locked = locked[:0]
	fake.AllLocked = false
	fake.batchNow = 0
	*caller, *inv = scriptCaller{}, script.Invocation{}
	return res, stop
}

// allShards lists every shard (the log's records of keyspace-wide
// changes).
var allShards = func() []int {
	out := make([]int, keyspace.NumShards)
	for i := range out {
		out[i] = i
	}
	return out
}()

// begin and end publish and withdraw the script a runner runs, and begin
// wakes the watchdog when it sleeps.
func (se *scriptEngine) begin(r *scriptRunner, run *runningScript) {
	r.cur.Store(run)
	if se.watchIdle.Load() && se.watchIdle.CompareAndSwap(true, false) {
		select {
		case se.wake <- struct{}{}:
		default:
		}
	}
}

func (se *scriptEngine) end(r *scriptRunner, run *runningScript) {
	run.done.Store(true)
	r.cur.Store(nil)
	if se.busyRun.Load() == run {
		se.busyRun.CompareAndSwap(run, nil)
	}
}

// busy returns the script running longer than busy-reply-threshold, nil
// if none (only its function field may be read: pinBusy).
func (se *scriptEngine) busy() *runningScript {
	r := se.busyRun.Load()
	if r == nil || r.done.Load() {
		return nil
	}
	return r
}

// oldestRun is the script SCRIPT KILL and FUNCTION STATS see: the busy
// one, or else the one running longest; pinned (the caller unpins it).
func (se *scriptEngine) oldestRun() *runningScript {
	if r := se.pinBusy(); r != nil {
		return r
	}
	se.runMu.Lock()
	defer se.runMu.Unlock()
	var oldest *runningScript
	for _, r := range se.runners {
		run := r.pinCur()
		if run == nil {
			continue
		}
		if oldest == nil || run.start < oldest.start {
			if oldest != nil {
				oldest.unpin()
			}
			oldest = run
		} else {
			run.unpin()
		}
	}
	return oldest
}

// scriptCaller runs the commands of a script as the script client.
type scriptCaller struct {
	s     *Server
	r     *scriptRunner
	run   *runningScript
	who   scriptUser
	stats *script.RunStats
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
	d, ok := sc.aclCheck(cmd, args)
	if ok {
		return ""
	}
	s := sc.s
	s.aclLog.Add(d.Reason.String(), "lua", d.Object, sc.who.user.User().Name, sc.who.info, s.nowMs())
	return d.Error()
}

// aclCheck checks a command against the script's user; ok when allowed.
func (sc *scriptCaller) aclCheck(cmd *command.Command, args [][]byte) (d acl.Denial, ok bool) {
	if sc.who.user == nil {
		return d, true
	}
	u := sc.who.user.User()
	if u.Unrestricted() {
		return d, true
	}
	s := sc.s
	req := acl.Request{Cmd: s.users.Catalog().Lookup(cmd.Name, args), Args: args, Keys: cmd.GetKeys(args, nil)}
	req.Channels, req.Patterns = aclChannels(cmd.Name, args)
	return u.Check(&req)
}

// ACLCheck is redis.acl_check_cmd: the check of aclRefusal, not logged.
func (sc *scriptCaller) ACLCheck(args [][]byte) (known, allowed bool) {
	cmd := sc.s.cmds.Lookup(args[0])
	if cmd == nil {
		return false, false
	}
	_, ok := sc.aclCheck(cmd, args)
	return true, ok
}

func (sc *scriptCaller) Log(level int, msg string) {
	if level >= script.LogNotice {
		sc.s.logger.Printf("script: %s", msg)
	}
}

// scriptMayCallDenied tells whether a script may call cmd, a command
// marked noscript, once DEBUG SET-DISABLE-DENY-SCRIPTS 1 lets it. Redis
// then lets scripts call any of them; gantry those that run on the
// script's own client as on a connection: not the ones that act on a
// connection's transaction, subscriptions or authentication, the scripting
// engine, replicas (WAIT) or snapshots, nor those taking locks of their
// own (a script holds its shards).
func scriptMayCallDenied(cmd *command.Command) bool {
	switch cmd.Name {
	case "acl", "client", "config", "debug", "latency", "role":
		return true
	}
	return false
}

func (sc *scriptCaller) Call(inv *script.Invocation, args [][]byte) []byte {
	s := sc.s
	fake := sc.r.fake
	fake.W.Proto = inv.Resp
	fake.W.B = fake.W.B[:0]
	errReply := func(msg string) []byte {
		fake.W.Error(msg)
		return fake.W.B
	}
	if sc.run.state.Load() == runStopped { // stopped to run again: no more effects
		return errReply(errScriptStopped)
	}
	cmd := fake.lookupCmd(args[0])
	if cmd == nil {
		s.countError(errReply("ERR Unknown Redis command called from script"))
		return fake.W.B
	}
	// a command refused before it runs: counted in the error statistics
	// and as a rejected call of the command, as Redis does
	refuse := func(msg string) []byte {
		if msg == errScriptStopped {
			return errReply(msg)
		}
		s.countError(errReply(msg))
		st, _ := s.scriptCmdStats(cmd, args)
		st.Rejected.Add(1)
		return fake.W.B
	}
	if !cmd.ArityOK(len(args)) {
		return refuse("ERR Wrong number of args calling Redis command from script")
	}
	if cmd.Subs != nil && len(args) > 1 { // a subcommand is a command of its own
		if sub, msg := cmd.CheckSub(args); sub == nil {
			s.countError(errReply("ERR Unknown Redis command called from script"))
			return fake.W.B
		} else if msg != "" {
			return refuse("ERR Wrong number of args calling Redis command from script")
		}
	}
	denied := false
	if cmd != sc.r.allowed {
		denied = s.script.noscript[cmd]
		if cmd.Has(command.NoMulti) || denied && (!s.script.denyOff.Load() || !scriptMayCallDenied(cmd)) {
			return refuse("ERR This Redis command is not allowed from script")
		}
	}
	if cmd.Has(command.SelfLock) {
		switch cmd.Name {
		case "xread", "xreadgroup":
			for _, a := range args[1:] {
				if command.EqualFold(a, "block") {
					return refuse("ERR " + cmd.Name + " command is not allowed with BLOCK option from scripts")
				}
				if command.EqualFold(a, "streams") {
					break
				}
			}
		default:
			return refuse("ERR This Redis command is not allowed from script")
		}
	}
	if !denied { // a denied command is checked again: the switch may be off next time
		sc.r.allowed = cmd
	}
	if msg := sc.aclRefusal(cmd, args); msg != "" {
		return refuse(msg)
	}
	if !sc.r.alldb && s.scriptOtherDB(fake, cmd, args) {
		if msg := sc.holdAllDBs(); msg != "" {
			return refuse(msg)
		}
	}
	// a command that locks shards itself (INFO, MEMORY STATS:
	// command.ExecAll) would wait for those the script holds: it runs
	// holding every shard of every database, with AllLocked
	if cmd.Has(command.ExecAll) && !sc.r.alldb && (len(fake.DBs) > 1 || !sc.r.all) {
		if msg := sc.holdAllDBs(); msg != "" {
			return refuse(msg)
		}
	}
	// a read-only script refuses what may replicate too (PUBLISH,
	// PFCOUNT), as Redis does: it runs during a write pause
	if inv.ReadOnly && mayReplicate(cmd, args) {
		return refuse("ERR Write commands are not allowed from read-only scripts.")
	}
	if cmd.Has(command.Write) {
		if s.repl.IsReplica() {
			return refuse(errReadOnlyReplica)
		}
		if msg := s.minReplicasRefusal(); msg != "" { // min-replicas-to-write (replguard.go)
			return errReply(msg)
		}
		if !sc.run.allowOOM && s.maxmemory.Load() > 0 && cmd.Has(command.DenyOOM) && !sc.run.wrote.Load() && s.freeMemory(evictBudget) == evictFail {
			s.oomRejected.Add(1)
			return refuse("OOM command not allowed when used memory > 'maxmemory'.")
		}
	}
	keys := cmd.GetKeys(args, fake.Keys[:0])
	fake.Keys = keys
	if s.cfg.Cluster != nil {
		// every key must be served here (MOVED would not help a script)
		for _, k := range keys {
			if msg := s.cfg.Cluster.Route(RouteRequest{Keys: [][]byte{k}, Write: cmd.Has(command.Write)}); msg != "" {
				return refuse("ERR Script attempted to access a non local key in a cluster node script")
			}
		}
	}
	if msg := sc.hold(cmd, keys); msg != "" {
		return refuse(msg)
	}
	// a command with an effect (a write, PUBLISH...) pins the run: it is
	// not stopped and run again any more
	if !cmd.Has(command.ReadOnly) && !sc.run.state.CompareAndSwap(runClean, runEffects) && sc.run.state.Load() == runStopped {
		return refuse(errScriptStopped)
	}
	fake.Args = args // call sets fake.Now to the run's time (batchNow)
	// fake.Keys are args' (GetKeys above)
	fake.keysReady = true
	start := monoNow()
	if !s.call(fake, cmd, false) {
		s.countErrorAt(fake, 0)
		st, _ := s.scriptCmdStats(cmd, args)
		st.Rejected.Add(1)
		return fake.W.B
	}
	// counted as Redis's call() counts a script's command: commandstats,
	// errorstats, total_commands_processed, the slow log
	s.afterNested(fake, cmd, start, 0)
	if s.adm.monitorsN.Load() > 0 && !s.adm.skipMon[cmd] {
		s.feedMonitors(fake, cmd)
	}
	if cmd.Has(command.Write) && !sc.run.wrote.Load() {
		sc.run.wrote.Store(true)
	}
	return fake.W.B
}

// errScriptStopped stops a run that runs again: not an error of the
// script's.
const errScriptStopped = "ERR script stopped"

// scriptCmdStats are the statistics of a command a script calls (its
// subcommand's for CLIENT, CONFIG...); known is false for a subcommand
// Redis does not have, which gets no latency histogram.
func (s *Server) scriptCmdStats(cmd *command.Command, args [][]byte) (st *command.CallStats, known bool) {
	if cmd.Stats.Container && len(args) > 1 {
		return s.subStatsFor(cmd.Name + "|" + strings.ToLower(string(args[1]))), s.knownSub(cmd, args)
	}
	return &cmd.Stats, true
}

// hold makes sure the run holds the shards cmd reaches: those of keys, or
// every shard for a keyspace-wide command. It returns an error reply when
// it cannot take them, "" when they are held. A run without effects is
// stopped instead, to run again with every shard locked.
func (sc *scriptCaller) hold(cmd *command.Command, keys [][]byte) string {
	r := sc.r
	if r.all {
		return ""
	}
	wide := cmd.Has(command.AllShards) || cmd.Has(command.LockAll)
	if !wide {
		missing := false
		for _, k := range keys {
			if !r.declared(k) && !r.held[keyspace.ShardOf(k)] {
				missing = true
				break
			}
		}
		if !missing {
			return ""
		}
	}
	sc.stats.Undeclared.Store(true)
	if sc.stopToRerun(stopRestart) {
		return errScriptStopped
	}
	// it has had effects: take the shards without waiting, unless a
	// rewrite or full sync is cutting the keyspace (a shard taken now
	// could be on the other side of its cut from the ones changed)
	s := r.s
	if s.snapshotting() {
		return undeclaredErr
	}
	var want []int
	if wide {
		for i := 0; i < keyspace.NumShards; i++ {
			if !r.held[i] {
				want = append(want, i)
			}
		}
	} else {
		for _, k := range keys {
			if i := keyspace.ShardOf(k); !r.held[i] && !slices.Contains(want, i) {
				want = append(want, i)
			}
		}
	}
	var taken []int
	for _, i := range want {
		got := false
		for try := 0; try < undeclaredTries && !got; try++ {
			if got = r.ks.TryLockShard(i); !got {
				runtime.Gosched()
			}
		}
		if !got {
			for _, t := range taken {
				r.ks.UnlockShard(t)
			}
			return undeclaredErr
		}
		taken = append(taken, i)
	}
	for _, i := range taken {
		r.held[i] = true
	}
	r.extra = append(r.extra, taken...)
	if wide {
		r.all = true
		r.fake.AllLocked = true
	}
	return ""
}

// declared reports whether k is one of the first keys the run declared
// (KEYS), whose shards it holds: found without computing its slot.
func (r *scriptRunner) declared(k []byte) bool {
	for i, d := range r.inv.Keys {
		if i == 4 {
			break
		}
		if string(d) == string(k) {
			return true
		}
	}
	return false
}

// scriptMayReachDB reports whether a script queued in MULTI (args: its
// EVAL, EVALSHA or FCALL) may reach another database, so that EXEC locks
// every database for it: a script not run yet, or one that SELECTed (or
// reached another database) once. A script that ran without doing so
// runs under EXEC's usual locks (every shard of the client's database):
// locking all of them costs EXEC several times its time with 16
// databases. If such a script SELECTs all the same (its data led it
// there), that command fails inside the transaction and the script is
// marked, so that the next EXEC of it locks every database.
// scriptMayWrite reports whether EVAL, EVALSHA, FCALL or their _RO forms
// with args may write, as Redis's evalGetCommandFlags and
// fcallGetCommandFlags tell a write pause: a script that declares flags
// may unless no-writes; one without flags, or not known (an EVALSHA of
// an unknown digest, an unknown function), as its command: EVAL, EVALSHA
// and FCALL may, their _RO forms not.
func (s *Server) scriptMayWrite(name string, args [][]byte) bool {
	ro := strings.HasSuffix(name, "_ro")
	if len(args) < 2 {
		return !ro
	}
	var flags script.Flags
	se := &s.script
	se.mu.Lock()
	switch name {
	case "eval", "eval_ro":
		if sc := se.eng.Lookup(script.SHA1Hex(string(args[1]))); sc != nil {
			flags = sc.Flags
		} else {
			flags = script.ShebangFlags(string(args[1]))
		}
	case "evalsha", "evalsha_ro":
		if sc := se.eng.LookupSHA(args[1]); sc != nil {
			flags = sc.Flags
		}
	default:
		if fn := se.eng.Function(string(args[1])); fn != nil {
			flags = fn.Flags | script.FlagShebang
		}
	}
	se.mu.Unlock()
	if flags&script.FlagShebang == 0 {
		return !ro
	}
	return flags&script.FlagNoWrites == 0
}

func (s *Server) scriptMayReachDB(cmd *command.Command, args [][]byte) bool {
	if len(args) < 2 {
		return true
	}
	se := &s.script
	var st *script.RunStats
	se.mu.Lock()
	switch cmd.Name {
	case "eval", "eval_ro":
		if sc := se.eng.Lookup(script.SHA1Hex(string(args[1]))); sc != nil {
			st = &sc.Stats
		}
	case "evalsha", "evalsha_ro":
		if sc := se.eng.LookupSHA(args[1]); sc != nil {
			st = &sc.Stats
		}
	default:
		if fn := se.eng.Function(string(args[1])); fn != nil {
			st = &fn.Stats
		}
	}
	se.mu.Unlock()
	return st == nil || st.Nanos.Load() == 0 || st.OtherDB.Load()
}

// holdAllDBs makes the run hold every shard of every database, before a
// command that reaches another database than the one it holds (SELECT,
// MOVE...). A run without effects is stopped instead, to run again with
// every database locked; else the missing shards are taken without
// waiting, as hold does.
// stopToRerun stops a run that has had no effects yet, to run it again for
// why (stopRestart, stopAllDBs); false when it has had effects.
func (sc *scriptCaller) stopToRerun(why int32) bool {
	sc.run.stop.Store(why) // read only if the swap below succeeds
	if sc.run.state.CompareAndSwap(runClean, runStopped) {
		sc.r.kill.cancel(sc.run.seq)
		return true
	}
	return false
}

// snapshotting: a rewrite or a full sync is cutting the keyspace.
func (s *Server) snapshotting() bool {
	return (s.aof != nil && s.aof.Snapshotting()) || (s.repl != nil && s.repl.Snapshotting())
}

func (sc *scriptCaller) holdAllDBs() string {
	r := sc.r
	sc.stats.OtherDB.Store(true)
	if r.inExec { // EXEC did not lock every database (scriptMayReachDB)
		return "ERR Script reached another database inside MULTI for the first time; EXEC locks every database for it from now on"
	}
	if sc.stopToRerun(stopAllDBs) {
		return errScriptStopped
	}
	s := r.s
	if s.snapshotting() {
		return otherDBErr
	}
	fake := r.fake
	var taken []int // global
	for db := range fake.DBs {
		for i := 0; i < keyspace.NumShards; i++ {
			if db == r.db && (r.all || r.held[i]) {
				continue
			}
			ks := fake.DBs[db].KS
			got := false
			for try := 0; try < undeclaredTries && !got; try++ {
				if got = ks.TryLockShard(i); !got {
					runtime.Gosched()
				}
			}
			if !got {
				for k := len(taken) - 1; k >= 0; k-- {
					x := taken[k]
					fake.DBs[x/keyspace.NumShards].KS.UnlockShard(x % keyspace.NumShards)
				}
				return otherDBErr
			}
			taken = append(taken, command.GlobalShard(db, i))
		}
	}
	for _, x := range taken {
		if x/keyspace.NumShards == r.db {
			r.extra = append(r.extra, x%keyspace.NumShards)
			r.held[x%keyspace.NumShards] = true
		} else {
			r.xheld = append(r.xheld, x)
		}
	}
	r.all, r.alldb = true, true
	fake.AllLocked = true
	return ""
}

const otherDBErr = "ERR Script reached another database while another client held part of it; it runs holding every database from its next call"

const undeclaredErr = "ERR Script attempted to access a key it did not declare in KEYS while another client held it; declare every key the script uses"

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
		se.noteScripts()
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
	case sub == "flush":
		if len(c.Args) > 3 || len(c.Args) == 3 && !command.EqualFold(c.Args[2], "sync") && !command.EqualFold(c.Args[2], "async") {
			c.W.Error("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
			return
		}
		se.mu.Lock()
		se.eng.Flush()
		se.noteScripts()
		se.gen.Add(1)
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
		c.SubcommandSyntax()
	}
}

// busyRefusalAll is busyRefusal for a command without allow-busy.
func (s *Server) busyRefusalAll() string {
	if s.script.busy() == nil {
		return ""
	}
	return s.busyRefusal(&command.Command{})
}

// killScript is SCRIPT KILL (function false) and FUNCTION KILL.
func (c *Client) killScript(function bool) {
	r := c.srv.script.oldestRun()
	if r != nil {
		defer r.unpin()
	}
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
		r.kill.cancel(r.seq)
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
