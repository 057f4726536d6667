package kv

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestInfoLuaMemory: INFO memory's Lua fields are estimates that grow as
// scripts and libraries are loaded and fall back after SCRIPT FLUSH and
// FUNCTION FLUSH, related to each other as Redis 7.0.15's are, and
// MEMORY STATS' lua.caches and functions.caches repeat them.
func TestInfoLuaMemory(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	mem := func() map[string]int64 {
		t.Helper()
		m := infoInts(ctx, e, "memory")
		for _, k := range []string{"used_memory_lua", "used_memory_vm_eval", "used_memory_vm_functions",
			"used_memory_vm_total", "used_memory_scripts_eval", "used_memory_functions", "used_memory_scripts"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("INFO memory has no %s", k)
			}
		}
		if m["used_memory_lua"] != m["used_memory_vm_eval"] ||
			m["used_memory_vm_total"] != m["used_memory_vm_eval"]+m["used_memory_vm_functions"] ||
			m["used_memory_scripts"] != m["used_memory_scripts_eval"]+m["used_memory_functions"] {
			t.Errorf("fields do not add up: %v", m)
		}
		st, err := e.rdb.Do(ctx, "memory", "stats").Slice()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(st); i += 2 {
			want := map[string]string{"lua.caches": "used_memory_scripts_eval", "functions.caches": "used_memory_functions"}[st[i].(string)]
			if want != "" && st[i+1].(int64) != m[want] {
				t.Errorf("MEMORY STATS %s %d, INFO %s %d", st[i], st[i+1], want, m[want])
			}
		}
		return m
	}
	start := mem()
	if start["used_memory_vm_eval"] == 0 || start["used_memory_functions"] != 200 || start["used_memory_vm_functions"] != 0 {
		t.Errorf("at start: %v", start)
	}
	body := "local t = {} for i = 1, 10 do t[i] = 'a constant string of some length ' .. i end return #t"
	for i := range 20 {
		if err := e.rdb.ScriptLoad(ctx, body+" + "+strconv.Itoa(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	loaded := mem()
	if loaded["used_memory_vm_eval"] < start["used_memory_vm_eval"]+20*int64(len(body)) ||
		loaded["used_memory_scripts_eval"] < 20*int64(len(body)) {
		t.Errorf("20 scripts loaded: %v, at start %v", loaded, start)
	}
	lib := "#!lua name=l\nlocal big = '" + strings.Repeat("x", 1000) + "'\nredis.register_function('f1', function() return #big end)\nredis.register_function('f2', function() return 2 end)"
	if err := e.rdb.FunctionLoad(ctx, lib).Err(); err != nil {
		t.Fatal(err)
	}
	withLib := mem()
	if withLib["used_memory_vm_functions"] < 1000 || withLib["used_memory_functions"] < 200+int64(len(lib)) {
		t.Errorf("a library loaded: %v", withLib)
	}
	e.run([]step{{"script flush", "OK"}, {"function flush", "OK"}})
	if m := mem(); m["used_memory_vm_eval"] != start["used_memory_vm_eval"] || m["used_memory_scripts_eval"] != 0 ||
		m["used_memory_vm_functions"] != 0 || m["used_memory_functions"] != 200 {
		t.Errorf("after the flushes: %v, at start %v", m, start)
	}
	// EVAL compiles the script on a pooled state too; SCRIPT FLUSH drops
	// that state's scripts from the figure
	if err := e.rdb.Eval(ctx, body, nil).Err(); err != nil {
		t.Fatal(err)
	}
	ran := mem()
	e.run([]step{{"script flush async", "OK"}})
	if m := mem(); m["used_memory_vm_eval"] >= ran["used_memory_vm_eval"]-2*int64(len(body)) || m["number_of_cached_scripts"] != 0 {
		t.Errorf("after EVAL and SCRIPT FLUSH: %v, before the flush %v", m, ran)
	}
}

// TestInfoLuaStates: used_memory_lua (and used_memory_vm_eval) is the
// main Lua VM's, as Redis's single VM's: under 100 KB fresh (the bound
// of Redis's suite); gantry_used_memory_vm_eval_all_states adds up every
// state scripts run on (the main one, EXEC's, the pool's), counted by
// gantry_lua_states.
func TestInfoLuaStates(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	mem := func() map[string]int64 {
		t.Helper()
		m := infoInts(ctx, e, "memory")
		for _, k := range []string{"used_memory_lua", "gantry_lua_states", "gantry_used_memory_vm_eval_all_states"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("INFO memory has no %s", k)
			}
		}
		return m
	}
	fresh := mem()
	if vm := fresh["used_memory_lua"]; vm <= 0 || vm >= 100<<10 {
		t.Errorf("used_memory_lua of a fresh server %d, want above 0 and under 100 KB", vm)
	}
	if fresh["gantry_lua_states"] != 2 || fresh["gantry_used_memory_vm_eval_all_states"] != 2*fresh["used_memory_lua"] {
		t.Errorf("fresh: %d states, %d bytes in all, want the main and EXEC's states of %d bytes each",
			fresh["gantry_lua_states"], fresh["gantry_used_memory_vm_eval_all_states"], fresh["used_memory_lua"])
	}
	body := "local t = {} for i = 1, 10 do t[i] = 'v' .. i end return #t"
	if err := e.rdb.Eval(ctx, body, nil).Err(); err != nil {
		t.Fatal(err)
	}
	pipe := e.rdb.TxPipeline()
	pipe.Eval(ctx, body, nil)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	ran := mem()
	grew := ran["used_memory_lua"] - fresh["used_memory_lua"]
	if grew <= int64(len(body)) {
		t.Errorf("the main VM grew by %d bytes for a script of %d", grew, len(body))
	}
	// the EXEC state compiled it too
	if all := ran["gantry_used_memory_vm_eval_all_states"]; all < fresh["gantry_used_memory_vm_eval_all_states"]+2*grew {
		t.Errorf("all states %d after the script ran in two of them (fresh %d, one's share %d)",
			all, fresh["gantry_used_memory_vm_eval_all_states"], grew)
	}
}

// infoInts returns the integer fields of an INFO section.
func infoInts(ctx context.Context, e *testEnv, section string) map[string]int64 {
	m := map[string]int64{}
	for _, l := range strings.Split(e.rdb.Info(ctx, section).Val(), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				m[k] = n
			}
		}
	}
	return m
}
