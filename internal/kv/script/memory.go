package script

import (
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// The Lua memory figures of INFO memory. gopher-lua allocates on the Go
// heap and meters nothing, so these are estimates, with memWalk's sizes
// (gc.go):
//
//   - VMMemory (used_memory_vm_eval): the state as made by New (its
//     libraries, globals, registry and stack: stateBase, measured once
//     on the first state) plus each script compiled in it: its function
//     and prototypes (code, line table, constants) and its source. Flush
//     takes it back to stateBase.
//   - ScriptsMemory (used_memory_scripts_eval): the cache's own bytes:
//     each script's source and SHA1 and an entry (scriptEntry).
//   - FunctionsVMMemory (used_memory_vm_functions): the functions the
//     libraries registered: their closures, upvalues and prototypes.
//   - FunctionsMemory (used_memory_functions): the libraries' and
//     functions' records: names, descriptions, code and an entry each,
//     plus functionsBase for the (empty) tables, as Redis's 200 bytes.
const (
	scriptEntry   = 160
	libEntry      = 96
	funcEntry     = 96
	functionsBase = 200
)

var (
	stateBaseOnce sync.Once
	stateBase     int64
)

// noteBase measures a fresh state once (New calls it).
func (e *Engine) noteBase() {
	stateBaseOnce.Do(func() { stateBase = e.luaMemory() })
}

// StateBase is VMMemory of a state with no script compiled.
func StateBase() int64 { return stateBase }

// compiledMem estimates the bytes of a compiled function: the closure
// and its prototypes with their constants.
func compiledMem(fns ...*lua.LFunction) int64 {
	w := &memWalk{budget: gcWalkLimit, seen: make(map[any]bool), protos: make(map[*lua.FunctionProto]bool)}
	for _, fn := range fns {
		if fn != nil {
			w.value(fn)
		}
	}
	return w.n
}

// VMMemory estimates the bytes of the Lua state with its compiled
// scripts; it may be read while another goroutine uses the engine.
func (e *Engine) VMMemory() int64 { return stateBase + e.vmScripts.Load() }

// ScriptsMemory estimates the bytes the script cache holds.
func (e *Engine) ScriptsMemory() int64 { return e.scriptsMem }

// scriptMem estimates the bytes a cached script's entry holds.
func scriptMem(s *Script) int64 { return int64(len(s.Body)+len(s.SHA)) + scriptEntry }

// FunctionsVMMemory estimates the bytes of the libraries' compiled code.
func (e *Engine) FunctionsVMMemory() int64 {
	var fns []*lua.LFunction
	for _, l := range e.lib.libs {
		for _, f := range l.Funcs {
			fns = append(fns, f.fn)
		}
	}
	if len(fns) == 0 {
		return 0
	}
	return compiledMem(fns...)
}

// FunctionsMemory estimates the bytes of the libraries' and functions'
// records (FUNCTION LIST's data).
func (e *Engine) FunctionsMemory() int64 {
	n := int64(functionsBase)
	for _, l := range e.lib.libs {
		n += libEntry + int64(len(l.Name)+len(l.Code))
		for _, f := range l.Funcs {
			n += funcEntry + int64(len(f.Name)+len(f.Description))
		}
	}
	return n
}
