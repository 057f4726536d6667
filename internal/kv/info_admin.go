package kv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
)

// cpuInfo is INFO's CPU section, from getrusage(2).
func (s *Server) cpuInfo() []string {
	u, sy := cpuTimes()
	cu, csy := cpuChildren()
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	return []string{"used_cpu_sys:" + f(sy), "used_cpu_user:" + f(u),
		"used_cpu_sys_children:" + f(csy), "used_cpu_user_children:" + f(cu),
		"used_cpu_sys_main_thread:" + f(sy), "used_cpu_user_main_thread:" + f(u)}
}

func statLine(name string, st *command.CallStats) string {
	calls, usec := st.Calls.Load(), st.Usec.Load()
	per := 0.0
	if calls > 0 {
		per = float64(usec) / float64(calls)
	}
	return fmt.Sprintf("cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d",
		name, calls, usec, per, st.Rejected.Load(), st.Failed.Load())
}

// commandStatsInfo is INFO commandstats: the commands (and subcommands)
// called, refused or failed since the start or CONFIG RESETSTAT.
func (s *Server) commandStatsInfo() []string {
	var lines []string
	for _, cmd := range s.cmds.Sorted() {
		st := &cmd.Stats
		if st.Calls.Load() == 0 && st.Rejected.Load() == 0 && st.Failed.Load() == 0 {
			continue
		}
		lines = append(lines, statLine(cmd.Name, st))
	}
	s.adm.subMu.Lock()
	for name, st := range s.adm.subStats {
		lines = append(lines, statLine(name, st))
	}
	s.adm.subMu.Unlock()
	sort.Strings(lines)
	return lines
}

// errorStatsInfo is INFO errorstats: error replies by their first word.
func (s *Server) errorStatsInfo() []string {
	s.adm.errMu.Lock()
	defer s.adm.errMu.Unlock()
	lines := make([]string, 0, len(s.adm.errCodes))
	for code, n := range s.adm.errCodes {
		lines = append(lines, "errorstat_"+code+":count="+strconv.FormatInt(n, 10))
	}
	sort.Strings(lines)
	return lines
}

// cached is the number of idle MIGRATE connections kept (INFO
// migrate_cached_sockets).
func (m *migrateConns) cached() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.idle)
}

// i64 and pct format INFO values.
func i64(n int64) string { return strconv.FormatInt(n, 10) }

func pct(part, whole int64) string {
	if whole <= 0 {
		return "0.00%"
	}
	return strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 2, 64) + "%"
}

func ratio(a, b int64) string {
	if b <= 0 {
		return "0.00"
	}
	return strconv.FormatFloat(float64(a)/float64(b), 'f', 2, 64)
}

// kbps formats an instantaneous byte rate as Redis's *_kbps fields.
func kbps(bytesPerSec int64) string {
	return strconv.FormatFloat(float64(bytesPerSec)/1024, 'f', 2, 64)
}

// runID is the server's run_id: 40 random hex digits drawn at start.
func (s *Server) runID() string {
	a := &s.adm
	a.runIDOnce.Do(func() {
		var b [20]byte
		if _, err := rand.Read(b[:]); err != nil { // never fails on supported systems
			copy(b[:], strconv.FormatInt(s.started.UnixNano(), 16))
		}
		a.runID = hex.EncodeToString(b[:])
	})
	return a.runID
}

// multiplexingAPI is INFO's multiplexing_api: what waits for the sockets
// (the event loops' epoll, or Go's netpoller, which uses the same).
func multiplexingAPI() string {
	switch runtime.GOOS {
	case "linux", "android":
		return "epoll"
	case "darwin", "ios", "freebsd", "netbsd", "openbsd", "dragonfly":
		return "kqueue"
	case "solaris", "illumos":
		return "evport"
	}
	return "select"
}

// serverInfo is INFO's Server section.
func (s *Server) serverInfo(now time.Time) []string {
	up := int64(now.Sub(s.started).Seconds())
	mode := "redis_mode:standalone"
	if s.cfg.Cluster != nil {
		mode = "redis_mode:cluster"
	}
	hz := strconv.Itoa(s.cfg.ActiveExpireHz)
	return []string{
		"redis_version:" + Version, "redis_git_sha1:00000000", "redis_git_dirty:0",
		"redis_build_id:0", mode, "os:" + runtime.GOOS, "arch_bits:64",
		"monotonic_clock:POSIX clock_gettime", "multiplexing_api:" + multiplexingAPI(),
		"atomicvar_api:c11-builtin", "gcc_version:0.0.0",
		"process_id:" + strconv.Itoa(pid()), "process_supervised:no",
		"run_id:" + s.runID(), "tcp_port:" + s.port(),
		"server_time_usec:" + i64(now.UnixMicro()),
		"uptime_in_seconds:" + i64(up), "uptime_in_days:" + i64(up/86400),
		"hz:" + hz, "configured_hz:" + hz,
		// Redis's LRU clock: seconds, on 24 bits
		"lru_clock:" + i64(now.Unix()&(1<<24-1)),
		"executable:gantry", "config_file:", "io_threads_active:0",
		"gantry:1",
	}
}

// clientsInfo is INFO's Clients section. client_recent_max_input_buffer
// and client_recent_max_output_buffer are the largest read buffer and
// unsent replies the cron saw among the clients in about the last 8
// seconds (clientPeaks).
func (s *Server) clientsInfo() []string {
	s.mu.Lock()
	n := len(s.clients)
	s.mu.Unlock()
	maxIn, maxOut := s.recentBuffers()
	return []string{
		"connected_clients:" + strconv.Itoa(n), "cluster_connections:0",
		"maxclients:" + i64(s.lim.maxClients.Load()),
		"client_recent_max_input_buffer:" + i64(maxIn),
		"client_recent_max_output_buffer:" + i64(maxOut),
		"blocked_clients:" + i64(s.blocked.Load()),
		"tracking_clients:" + strconv.Itoa(int(s.ct.n.Load())),
		"clients_in_timeout_table:0",
	}
}

// memoryInfo is INFO's Memory section; ms is the Go runtime's figures.
// The allocator_* fields are those of Go's heap: allocated is the live
// heap, active the heap's spans in use, resident what the heap holds
// from the system.
func (s *Server) memoryInfo(ms *runtime.MemStats) []string {
	used, maxmem := s.usedMemory(), s.maxmemory.Load()
	peak := s.notePeakMemory(used)
	rss := processRSS()
	if rss == 0 {
		rss = int64(ms.Sys - ms.HeapReleased)
	}
	dataset := used - s.baseMem
	alloc, active := int64(ms.HeapAlloc), int64(ms.HeapInuse)
	resident := int64(ms.HeapSys - ms.HeapReleased)
	clientsMem := s.cev.total.Load()
	overhead := s.baseMem // used_memory is the startup memory and the data's
	evalMem, fnMem := s.script.scriptsMem.Load(), s.script.fnMem.Load()
	vmEval, vmAll, states := s.script.luaMemory()
	vmFn := s.script.fnVM.Load()
	return []string{
		"used_memory:" + i64(used), "used_memory_human:" + humanBytes(used),
		"used_memory_rss:" + i64(rss), "used_memory_rss_human:" + humanBytes(rss),
		"used_memory_peak:" + i64(peak), "used_memory_peak_human:" + humanBytes(peak),
		"used_memory_peak_perc:" + pct(used, peak),
		"used_memory_overhead:" + i64(overhead),
		"used_memory_startup:" + i64(s.baseMem),
		"used_memory_dataset:" + i64(dataset),
		"used_memory_dataset_perc:" + pct(dataset, used-s.baseMem),
		"allocator_allocated:" + i64(alloc), "allocator_active:" + i64(active),
		"allocator_resident:" + i64(resident),
		"total_system_memory:" + i64(totalSystemMemory()),
		"total_system_memory_human:" + humanBytes(totalSystemMemory()),
		// estimates (script/memory.go): gopher-lua meters nothing
		"used_memory_lua:" + i64(vmEval), "used_memory_vm_eval:" + i64(vmEval),
		"used_memory_lua_human:" + humanBytes(vmEval),
		"used_memory_scripts_eval:" + i64(evalMem),
		"number_of_cached_scripts:" + i64(s.script.nScripts.Load()),
		"number_of_functions:" + i64(s.script.funcCount.Load()),
		"number_of_libraries:" + i64(s.script.libCount.Load()),
		"used_memory_vm_functions:" + i64(vmFn), "used_memory_vm_total:" + i64(vmEval+vmFn),
		"used_memory_vm_total_human:" + humanBytes(vmEval+vmFn),
		"used_memory_functions:" + i64(fnMem),
		"used_memory_scripts:" + i64(evalMem+fnMem), "used_memory_scripts_human:" + humanBytes(evalMem+fnMem),
		"maxmemory:" + i64(maxmem), "maxmemory_human:" + humanBytes(maxmem),
		"maxmemory_policy:" + s.ks.Policy().String(),
		"allocator_frag_ratio:" + ratio(active, alloc), "allocator_frag_bytes:" + i64(active-alloc),
		"allocator_rss_ratio:" + ratio(resident, active), "allocator_rss_bytes:" + i64(resident-active),
		"rss_overhead_ratio:" + ratio(rss, resident), "rss_overhead_bytes:" + i64(rss-resident),
		"mem_fragmentation_ratio:" + ratio(rss, used), "mem_fragmentation_bytes:" + i64(rss-used),
		"mem_not_counted_for_evict:0", "mem_replication_backlog:0",
		"mem_total_replication_buffers:0", "mem_clients_slaves:0",
		"mem_clients_normal:" + i64(clientsMem),
		"mem_cluster_links:0", "mem_aof_buffer:0",
		"mem_allocator:go", "active_defrag_running:0",
		"lazyfree_pending_objects:" + i64(s.lazy.Pending()),
		"lazyfreed_objects:" + i64(s.lazy.Freed()),
		"gantry_lua_states:" + strconv.Itoa(states),
		"gantry_used_memory_vm_eval_all_states:" + i64(vmAll),
		"gantry_heap_alloc:" + strconv.FormatUint(ms.HeapAlloc, 10),
		"gantry_scan_snapshots_bytes:" + i64(s.scanSnapshotsBytes()),
	}
}

// infoFields maps "name:value" lines to their values.
func infoFields(lines []string) map[string]string {
	m := make(map[string]string, len(lines))
	for _, l := range lines {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// persistenceInfo is INFO's Persistence section in Redis's order. A
// rewrite of the log (BGREWRITEAOF, BGSAVE, SAVE) is gantry's snapshot:
// rdb_bgsave_in_progress and aof_rewrite_in_progress both report it. There
// is no fork: the cow and fork fields are 0.
func (s *Server) persistenceInfo() []string {
	var own []string
	if s.aof != nil {
		own = s.aof.Info()
	}
	f := infoFields(own)
	get := func(name, def string) string {
		if v, ok := f[name]; ok {
			return v
		}
		return def
	}
	lines := []string{
		"loading:0", "async_loading:0",
		"current_cow_peak:0", "current_cow_size:0", "current_cow_size_age:0",
		"current_fork_perc:0.00", "current_save_keys_processed:0", "current_save_keys_total:0",
		"rdb_changes_since_last_save:" + i64(s.dirty.Load()),
		"rdb_bgsave_in_progress:" + get("rdb_bgsave_in_progress", "0"),
		"rdb_last_save_time:" + i64(s.lastSave.Load()),
		"rdb_last_bgsave_status:" + get("rdb_last_bgsave_status", "ok"),
		"rdb_last_bgsave_time_sec:-1", "rdb_current_bgsave_time_sec:-1",
		"rdb_saves:" + get("aof_rewrites", "0"),
		"rdb_last_cow_size:0", "rdb_last_load_keys_expired:0", "rdb_last_load_keys_loaded:0",
		"aof_enabled:" + get("aof_enabled", "0"),
		"aof_rewrite_in_progress:" + get("aof_rewrite_in_progress", "0"),
		"aof_rewrite_scheduled:0",
		"aof_last_rewrite_time_sec:-1", "aof_current_rewrite_time_sec:-1",
		"aof_last_bgrewrite_status:" + get("aof_last_bgrewrite_status", "ok"),
		"aof_rewrites:" + get("aof_rewrites", "0"),
		"aof_rewrites_consecutive_failures:" + get("aof_rewrites_consecutive_failures", "0"),
		"aof_last_write_status:" + get("aof_last_write_status", "ok"),
		"aof_last_cow_size:0", "module_fork_in_progress:0", "module_fork_last_cow_size:0",
	}
	if f["aof_enabled"] == "1" {
		lines = append(lines,
			"aof_current_size:"+f["aof_current_size"], "aof_base_size:"+f["aof_base_size"],
			"aof_pending_rewrite:0", "aof_buffer_length:"+f["aof_buffer_length"],
			"aof_pending_bio_fsync:0", "aof_delayed_fsync:0")
	}
	if s.aof != nil {
		// gantry's own: the error of a failing write (docs/kv.md "Full disk")
		lines = append(lines, "aof_last_write_errno:"+f["aof_last_write_errno"],
			"aof_last_write_error:"+f["aof_last_write_error"],
			"aof_write_errors:"+f["aof_write_errors"])
	}
	return lines
}

// pubsubCounts are INFO's pubsub_channels, pubsub_patterns and
// pubsubshard_channels.
func (s *Server) pubsubCounts() (channels, patterns, shard int) {
	s.ps.mu.RLock()
	defer s.ps.mu.RUnlock()
	return len(s.ps.subs[psChannel]), len(s.ps.subs[psPattern]), len(s.ps.subs[psShard])
}

// trackingCounts are INFO's tracking_total_keys, _items and _prefixes.
func (s *Server) trackingCounts() (keys, items, prefixes int64) {
	t := &s.ct
	t.mu.Lock()
	defer t.mu.Unlock()
	return int64(len(t.keys)), t.items, int64(len(t.prefixes))
}

// statsInfo is INFO's Stats section.
func (s *Server) statsInfo() []string {
	io := s.ioTotals()
	m := &s.adm.metrics
	m.mu.Lock()
	ops, in, out := m.ops.value(), m.netIn.value(), m.netOut.value()
	rin, rout := m.replIn.value(), m.replOut.value()
	m.mu.Unlock()
	replIn, replOut := s.repl.NetBytes()
	repl := infoFields(s.repl.Info())
	orZero := func(v string) string {
		if v == "" {
			return "0"
		}
		return v
	}
	channels, patterns, shard := s.pubsubCounts()
	tkeys, titems, tprefixes := s.trackingCounts()
	return []string{
		"total_connections_received:" + i64(s.totalConns.Load()),
		"total_commands_processed:" + i64(s.totalCommands.Load()),
		"instantaneous_ops_per_sec:" + i64(ops),
		"total_net_input_bytes:" + i64(io.netIn),
		"total_net_output_bytes:" + i64(io.netOut),
		"total_net_repl_input_bytes:" + i64(replIn), "total_net_repl_output_bytes:" + i64(replOut),
		"instantaneous_input_kbps:" + kbps(in), "instantaneous_output_kbps:" + kbps(out),
		"instantaneous_input_repl_kbps:" + kbps(rin), "instantaneous_output_repl_kbps:" + kbps(rout),
		"rejected_connections:" + i64(s.rejectedConns.Load()),
		"sync_full:" + orZero(repl["gantry_full_syncs"]),
		"sync_partial_ok:" + orZero(repl["gantry_partial_syncs"]),
		"sync_partial_err:" + orZero(repl["gantry_partial_sync_errors"]),
		"expired_keys:" + i64(s.expiredKeys.Load()),
		"expired_stale_perc:0.00", "expired_time_cap_reached_count:0",
		"expire_cycle_cpu_milliseconds:0",
		"evicted_keys:" + i64(s.evictedKeys.Load()),
		"evicted_clients:" + i64(s.cev.evicted.Load()),
		"total_eviction_exceeded_time:0", "current_eviction_exceeded_time:0",
		"keyspace_hits:" + i64(io.hits), "keyspace_misses:" + i64(io.misses),
		"pubsub_channels:" + strconv.Itoa(channels),
		"pubsub_patterns:" + strconv.Itoa(patterns),
		"pubsubshard_channels:" + strconv.Itoa(shard),
		"latest_fork_usec:0", "total_forks:0",
		"migrate_cached_sockets:" + strconv.Itoa(s.migrations.cached()),
		"slave_expires_tracked_keys:0",
		"active_defrag_hits:0", "active_defrag_misses:0",
		"active_defrag_key_hits:0", "active_defrag_key_misses:0",
		"total_active_defrag_time:0", "current_active_defrag_time:0",
		"tracking_total_keys:" + i64(tkeys), "tracking_total_items:" + i64(titems),
		"tracking_total_prefixes:" + i64(tprefixes),
		"unexpected_error_replies:0",
		"total_error_replies:" + i64(s.adm.errTotal.Load()),
		"dump_payload_sanitizations:0",
		"total_reads_processed:" + i64(io.reads), "total_writes_processed:" + i64(io.writes),
		"io_threaded_reads_processed:0", "io_threaded_writes_processed:0",
		"reply_buffer_shrinks:" + i64(s.rbufs.shrinks.Load()),
		"reply_buffer_expands:" + i64(s.rbufs.expands.Load()),
		"gantry_oom_rejected_commands:" + i64(s.oomRejected.Load()),
		"client_query_buffer_limit_disconnections:" + i64(s.queryLimitCloses.Load()),
		"client_output_buffer_limit_disconnections:" + i64(s.outputLimitCloses.Load()),
		"gantry_timeout_disconnections:" + i64(s.timeoutCloses.Load()),
	}
}

// latencyStatsInfo is INFO latencystats: for each command called since
// the start or CONFIG RESETSTAT, the latency-tracking-info-percentiles of
// its calls' durations, in µs with three decimals, from the command's
// HDR histogram as Redis's (command.Latency.Percentile).
func (s *Server) latencyStatsInfo() []string {
	if s.adm.latencyOff.Load() {
		return nil
	}
	pcts := s.latencyPercentiles()
	var lines []string
	add := func(name string, st *command.CallStats) {
		l := st.Latency()
		if l == nil {
			return
		}
		b := []byte("latency_percentiles_usec_" + name + ":")
		for j, p := range pcts {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, 'p')
			b = append(b, percentileName(p)...)
			b = append(b, '=')
			b = strconv.AppendFloat(b, float64(l.Percentile(p))/1000, 'f', 3, 64)
		}
		lines = append(lines, string(b))
	}
	for _, cmd := range s.cmds.Sorted() {
		add(cmd.Name, &cmd.Stats)
	}
	s.adm.subMu.Lock()
	for name, st := range s.adm.subStats {
		add(name, st)
	}
	s.adm.subMu.Unlock()
	sort.Strings(lines)
	return lines
}

// latencyPercentiles is latency-tracking-info-percentiles, as set (CONFIG
// GET shows them formatted by percentileName, as Redis).
func (s *Server) latencyPercentiles() []float64 {
	if p := s.adm.latencyPcts.Load(); p != nil {
		return *p
	}
	return []float64{50, 99, 99.9}
}

// percentileName is a percentile as Redis names it in INFO latencystats:
// "%f" without its trailing zeros and point (99.9, 50).
func percentileName(p float64) string {
	s := strconv.FormatFloat(p, 'f', 6, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
