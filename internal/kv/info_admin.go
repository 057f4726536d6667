package kv

import (
	"fmt"
	"sort"
	"strconv"

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
