package kv

import (
	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/script"
	"github.com/gantry-project/gantry/internal/resp"
)

var bFUNCTION = []byte("FUNCTION")

// cmdFunction serves FUNCTION LOAD|DELETE|FLUSH|LIST|DUMP|RESTORE|STATS|
// KILL|HELP. The changes (LOAD, DELETE, FLUSH, RESTORE) are logged and
// replicated: LOAD as LOAD REPLACE, so replaying it is idempotent. x.Conn
// is nil while the log is replayed.
func (s *Server) cmdFunction(x *command.Ctx) {
	se := &s.script
	sub := string(command.LowerInto(nil, x.Args[1]))
	if sub != "kill" && sub != "stats" {
		if msg := s.busyRefusalAll(); msg != "" {
			x.W.Error(msg)
			return
		}
	}
	args := x.Args[2:]
	// LOAD and RESTORE are denyoom subcommands in Redis
	if (sub == "load" || sub == "restore") && !x.Replaying && s.maxmemory.Load() > 0 && s.freeMemory(evictBudget) == evictFail {
		s.oomRejected.Add(1)
		x.W.Error("OOM command not allowed when used memory > 'maxmemory'.")
		return
	}
	switch sub {
	case "load":
		replace := false
		if len(args) == 2 && command.EqualFold(args[0], "replace") {
			replace, args = true, args[1:]
		}
		if len(args) != 1 {
			x.W.Error("ERR Unknown option given: " + command.Trunc(args[0], 64))
			return
		}
		se.mu.Lock()
		name, err := se.eng.FunctionLoad(string(args[0]), replace)
		se.functionsChanged()
		se.mu.Unlock()
		if err != nil {
			x.W.Error(err.Error())
			return
		}
		x.Log(bFUNCTION, []byte("LOAD"), bREPLACE, args[0])
		x.Dirty++
		x.W.BulkString(name)
	case "delete":
		se.mu.Lock()
		err := se.eng.FunctionDelete(string(args[0]))
		se.functionsChanged()
		se.mu.Unlock()
		if err != nil && !x.Replaying {
			x.W.Error(err.Error())
			return
		}
		x.Dirty++
		x.W.OK()
	case "flush":
		if len(args) > 1 {
			x.SubcommandSyntax()
			return
		}
		if len(args) == 1 && !command.EqualFold(args[0], "sync") && !command.EqualFold(args[0], "async") {
			x.W.Error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
			return
		}
		se.mu.Lock()
		se.eng.FunctionFlush()
		se.functionsChanged()
		se.mu.Unlock()
		x.Dirty++
		x.W.OK()
	case "list":
		s.functionList(x, args)
	case "dump":
		se.mu.Lock()
		d := se.eng.FunctionDump()
		se.mu.Unlock()
		x.W.Bulk(d)
	case "restore":
		if len(args) < 1 || len(args) > 2 {
			x.SubcommandSyntax()
			return
		}
		policy := script.RestoreAppend
		if len(args) == 2 {
			switch {
			case command.EqualFold(args[1], "append"):
			case command.EqualFold(args[1], "replace"):
				policy = script.RestoreReplace
			case command.EqualFold(args[1], "flush"):
				policy = script.RestoreFlush
			default:
				x.W.Error("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
				return
			}
		}
		se.mu.Lock()
		err := se.eng.FunctionRestore(args[0], policy)
		se.functionsChanged()
		se.mu.Unlock()
		if err != nil {
			x.W.Error(err.Error())
			return
		}
		x.Dirty++
		x.W.OK()
	case "stats":
		s.functionStats(x)
	case "kill":
		if x.Conn == nil {
			x.W.Error("ERR no client")
			return
		}
		clientOf(x).killScript(true)
	case "help":
		lines := []string{
			"FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"LOAD [REPLACE] <FUNCTION CODE>", "DELETE <LIBRARY NAME>", "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
			"FLUSH [ASYNC|SYNC]", "DUMP", "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]", "STATS", "KILL", "HELP",
		}
		x.W.Array(len(lines))
		for _, l := range lines {
			x.W.Simple(l)
		}
	default:
		x.SubcommandSyntax()
	}
}

// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
func (s *Server) functionList(x *command.Ctx, args [][]byte) {
	var pattern []byte
	withCode := false
	for i := 0; i < len(args); i++ {
		switch {
		case command.EqualFold(args[i], "withcode") && !withCode:
			withCode = true
		case command.EqualFold(args[i], "libraryname") && pattern == nil && i+1 < len(args):
			pattern = args[i+1]
			i++
		case command.EqualFold(args[i], "libraryname") && i+1 >= len(args):
			x.W.Error("ERR library name argument was not given")
			return
		default:
			x.W.Error("ERR Unknown argument " + command.Trunc(args[i], 64))
			return
		}
	}
	se := &s.script
	se.mu.Lock()
	defer se.mu.Unlock()
	var libs []*script.Library
	for _, l := range se.eng.Libraries() {
		if pattern == nil || command.GlobMatch(pattern, []byte(l.Name)) {
			libs = append(libs, l)
		}
	}
	x.W.Array(len(libs))
	for _, l := range libs {
		n := 3
		if withCode {
			n = 4
		}
		x.W.Map(n)
		x.W.BulkString("library_name")
		x.W.BulkString(l.Name)
		x.W.BulkString("engine")
		x.W.BulkString("LUA")
		x.W.BulkString("functions")
		x.W.Array(len(l.Funcs))
		for _, f := range l.Funcs {
			x.W.Map(3)
			x.W.BulkString("name")
			x.W.BulkString(f.Name)
			x.W.BulkString("description")
			if f.Description == "" {
				x.W.Null()
			} else {
				x.W.BulkString(f.Description)
			}
			x.W.BulkString("flags")
			names := f.Flags.Names()
			x.W.Set(len(names))
			for _, fl := range names {
				x.W.BulkString(fl)
			}
		}
		if withCode {
			x.W.BulkString("library_code")
			x.W.BulkString(l.Code)
		}
	}
}

// FUNCTION STATS: the running script and the engine's counts.
func (s *Server) functionStats(x *command.Ctx) {
	se := &s.script
	x.W.Map(2)
	x.W.BulkString("running_script")
	r := se.oldestRun()
	if r != nil {
		defer r.unpin()
	}
	if r != nil && r.function {
		x.W.Map(3)
		x.W.BulkString("name")
		x.W.BulkString(r.name)
		x.W.BulkString("command")
		x.W.Array(len(r.args))
		for _, a := range r.args {
			x.W.Bulk(a)
		}
		x.W.BulkString("duration_ms")
		x.W.Int((monoNow() - r.start).Milliseconds())
	} else {
		x.W.Null()
	}
	x.W.BulkString("engines")
	x.W.Map(1)
	x.W.BulkString("LUA")
	// the counts are read without the engine's lock, which a running
	// function holds: FUNCTION STATS answers while it runs
	libs, funcs := se.libCount.Load(), se.funcCount.Load()
	x.W.Map(2)
	x.W.BulkString("libraries_count")
	x.W.Int(libs)
	x.W.BulkString("functions_count")
	x.W.Int(funcs)
}

// functionsPreamble is what a snapshot starts with: the libraries as one
// FUNCTION RESTORE ... REPLACE, so they survive a rewrite and reach a
// replica's full sync; nil without libraries.
func (s *Server) functionsPreamble() []byte {
	if p := s.script.preamble.Load(); p != nil {
		return *p
	}
	return nil
}

// functionsChanged updates what is read without the engine's lock: the
// counts of FUNCTION STATS and the snapshot preamble. se.mu is held.
func (se *scriptEngine) functionsChanged() {
	se.libCount.Store(int64(len(se.eng.Libraries())))
	se.funcCount.Store(int64(se.eng.NumFunctions()))
	se.fnVM.Store(se.eng.FunctionsVMMemory())
	se.fnMem.Store(se.eng.FunctionsMemory())
	if se.eng.NumFunctions() == 0 {
		se.preamble.Store(nil)
		return
	}
	p := resp.AppendCommand(nil, bFUNCTION, bRESTORE, se.eng.FunctionDump(), bREPLACE)
	se.preamble.Store(&p)
}
