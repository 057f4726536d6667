package script

import (
	"runtime"
	"testing"
)

// TestEngineFootprint: a fresh engine (a Lua state with the sandboxed
// libraries) takes under 100 KB of Go heap, the bound Redis's suite puts
// on its Lua VM ("EVAL does not leak in the Lua stack"), and its estimate
// (VMMemory, INFO's used_memory_vm_eval) is within a third of it. A
// server keeps several (the main one, EXEC's, a pool), so every table
// made at start is sized to what it holds, the registry starts small and
// grows: gopher-lua's defaults (NewTable's 32-slot array and map, a
// 4,096-slot registry) took 239 KB an engine.
func TestEngineFootprint(t *testing.T) {
	const n = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	es := make([]*Engine, n)
	for i := range es {
		es[i] = New()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	real := int64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(es)
	est := es[0].VMMemory()
	t.Logf("a fresh engine: %d bytes of heap, estimated %d", real, est)
	if real >= 100<<10 {
		t.Errorf("a fresh engine takes %d bytes of heap, want under 100 KB", real)
	}
	if 3*est < 2*real || 3*est > 4*real {
		t.Errorf("estimate %d for %d bytes of heap: off by more than a third", est, real)
	}
}
