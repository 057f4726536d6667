package kv

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
)

// validateAdmin checks and defaults the introspection settings.
func (c *Config) validateAdmin() error {
	switch c.EnableDebugCommand {
	case "":
		c.EnableDebugCommand = "no"
	case "no", "yes", "local":
	default:
		return fmt.Errorf("enable-debug-command %q: want no, yes or local", c.EnableDebugCommand)
	}
	switch c.EnableModuleCommand {
	case "":
		c.EnableModuleCommand = "no"
	case "no", "yes", "local":
	default:
		return fmt.Errorf("enable-module-command %q: want no, yes or local", c.EnableModuleCommand)
	}
	if c.SlowlogLogSlowerThan == 0 && c.SlowlogMaxLen == 0 {
		c.SlowlogLogSlowerThan, c.SlowlogMaxLen = 10000, 128
	}
	if c.SlowlogMaxLen < 0 {
		return fmt.Errorf("slowlog-max-len %d: want >= 0", c.SlowlogMaxLen)
	}
	if c.LatencyMonitorThreshold < 0 {
		return fmt.Errorf("latency-monitor-threshold %d: want >= 0", c.LatencyMonitorThreshold)
	}
	return nil
}

// adminParams are the CONFIG parameters of the introspection commands.
func adminParams() map[string]configParam {
	intParam := func(get func(s *Server) *atomic.Int64, min, max int64) configParam {
		return configParam{
			get: func(s *Server) string { return strconv.FormatInt(get(s).Load(), 10) },
			set: func(s *Server, v string) string {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < min || n > max {
					return "argument must be between " + strconv.FormatInt(min, 10) + " and " + strconv.FormatInt(max, 10) + " inclusive"
				}
				get(s).Store(n)
				return ""
			},
		}
	}
	return map[string]configParam{
		"slowlog-log-slower-than": intParam(func(s *Server) *atomic.Int64 { return &s.adm.slowThreshold }, -1, 1<<62),
		"slowlog-max-len": func() configParam {
			p := intParam(func(s *Server) *atomic.Int64 { return &s.adm.slowMax }, 0, 1<<31-1)
			set := p.set
			p.set = func(s *Server, v string) string {
				if msg := set(s, v); msg != "" {
					return msg
				}
				s.adm.slowMu.Lock()
				if n := s.adm.slowMax.Load(); int64(len(s.adm.slowlog)) > n {
					s.adm.slowlog = s.adm.slowlog[:n]
				}
				s.adm.slowMu.Unlock()
				return ""
			}
			return p
		}(),
		"latency-monitor-threshold": intParam(func(s *Server) *atomic.Int64 { return &s.adm.latThreshold }, 0, 1<<62),
		"enable-debug-command":      {get: func(s *Server) string { return s.adm.debugMode }},
		"enable-module-command":     {get: func(s *Server) string { return s.adm.moduleMode }},
		// off, no call is recorded in the latency histograms, as Redis
		"latency-tracking": {
			get: func(s *Server) string {
				if s.adm.latencyOff.Load() {
					return "no"
				}
				return "yes"
			},
			set: func(s *Server, v string) string {
				switch strings.ToLower(v) {
				case "yes", "no":
					s.adm.latencyOff.Store(strings.EqualFold(v, "no"))
					return ""
				}
				return "argument must be 'yes' or 'no'"
			},
		},
		"latency-tracking-info-percentiles": {
			get: func(s *Server) string {
				var out []string
				for _, p := range s.latencyPercentiles() {
					out = append(out, percentileName(p))
				}
				return strings.Join(out, " ")
			},
			set: func(s *Server, v string) string {
				pcts, msg := parsePercentiles(v)
				if msg == "" {
					s.adm.latencyPcts.Store(&pcts)
				}
				return msg
			},
		},
		"port": startParam((*Server).port, "port", "Unable to listen on this port."),
	}
}

// inertParams are Redis parameters that clients and Redis's test suite
// set and that change nothing in gantry (docs/kv.md, "Configuration
// parameters"): encoding thresholds of value layouts gantry does not have,
// tuning of mechanisms it does not have (active defragmentation, RDB
// files, io-threads, OOM score). CONFIG SET checks a value as Redis does
// and CONFIG GET returns it; nothing else reads it. Default values are
// Redis 7.0's.
var inertParams = []struct {
	name, def string
	immutable bool
	aliases   []string
}{
	{"activedefrag", "no", false, nil},
	{"active-defrag-cycle-max", "25", false, nil},
	{"active-defrag-cycle-min", "1", false, nil},
	{"active-defrag-ignore-bytes", "104857600", false, nil},
	{"active-defrag-max-scan-fields", "1000", false, nil},
	{"active-defrag-threshold-lower", "10", false, nil},
	{"active-defrag-threshold-upper", "100", false, nil},
	{"active-expire-effort", "1", false, nil},
	{"activerehashing", "yes", false, nil},
	{"always-show-logo", "no", true, nil},
	{"aof-load-truncated", "yes", false, nil},
	{"aof-rewrite-incremental-fsync", "yes", false, nil},
	{"aof-timestamp-enabled", "no", false, nil},
	{"aof-use-rdb-preamble", "yes", false, nil},
	{"aof-disable-auto-gc", "no", false, nil},
	{"appenddirname", "appendonlydir", true, nil},
	{"auto-aof-rewrite-min-size", "67108864", false, nil},
	{"auto-aof-rewrite-percentage", "100", false, nil},
	{"bind-source-addr", "", false, nil},
	{"crash-log-enabled", "yes", false, nil},
	{"crash-memcheck-enabled", "yes", false, nil},
	{"daemonize", "no", true, nil},
	{"dbfilename", "dump.rdb", false, nil},
	{"disable-thp", "yes", true, nil},
	{"dynamic-hz", "yes", false, nil},
	{"enable-module-command", "no", true, nil},
	{"enable-protected-configs", "no", true, nil},
	{"ignore-warnings", "", false, nil},
	{"io-threads-do-reads", "no", true, nil},
	{"jemalloc-bg-thread", "yes", false, nil},
	{"list-compress-depth", "0", false, nil},
	{"list-max-listpack-size", "-2", false, []string{"list-max-ziplist-size"}},
	{"logfile", "", true, nil},
	{"loglevel", "notice", false, nil},
	{"maxmemory-eviction-tenacity", "10", false, nil},
	{"no-appendfsync-on-rewrite", "no", false, nil},
	{"oom-score-adj", "no", false, nil},
	{"oom-score-adj-values", "0 200 800", false, nil},
	{"pidfile", "", true, nil},
	{"proc-title-template", "{title} {listen-addr} {server-mode}", false, nil},
	{"rdb-del-sync-files", "no", false, nil},
	{"rdb-key-save-delay", "0", false, nil},
	{"key-load-delay", "0", false, nil},
	{"rdb-save-incremental-fsync", "yes", false, nil},
	{"rdbchecksum", "yes", false, nil},
	{"rdbcompression", "yes", false, nil},
	{"repl-backlog-ttl", "3600", false, nil},
	{"repl-disable-tcp-nodelay", "no", false, nil},
	{"repl-diskless-load", "disabled", false, nil},
	{"repl-diskless-sync", "yes", false, nil},
	{"repl-diskless-sync-delay", "5", false, nil},
	{"repl-diskless-sync-max-replicas", "0", false, nil},
	{"replica-announce-ip", "", false, []string{"slave-announce-ip"}},
	{"replica-announce-port", "0", false, []string{"slave-announce-port"}},
	{"replica-announced", "yes", false, nil},
	{"replica-ignore-disk-write-errors", "no", false, nil},
	{"replica-ignore-maxmemory", "yes", false, []string{"slave-ignore-maxmemory"}},
	{"replica-lazy-flush", "no", false, []string{"slave-lazy-flush"}},
	{"replica-priority", "100", false, []string{"slave-priority"}},
	{"replica-read-only", "yes", false, []string{"slave-read-only"}},
	{"sanitize-dump-payload", "no", false, nil},
	{"set-proc-title", "yes", true, nil},
	{"shutdown-on-sigint", "default", false, nil},
	{"shutdown-on-sigterm", "default", false, nil},
	{"shutdown-timeout", "10", false, nil},
	{"socket-mark-id", "0", false, nil},
	{"stop-writes-on-bgsave-error", "yes", false, nil},
	{"supervised", "no", true, nil},
	{"syslog-enabled", "no", true, nil},
	{"syslog-facility", "local0", true, nil},
	{"syslog-ident", "redis", true, nil},
	{"tcp-backlog", "511", true, nil},
	{"tcp-keepalive", "300", false, nil},
	{"tracking-table-max-keys", "1000000", false, nil},
	{"unixsocket", "", true, nil},
	{"unixsocketperm", "0", true, nil},
	{"repl-timeout", "60", false, nil},
}

// enumValues are the values Redis accepts for its enumerated parameters.
var enumValues = map[string][]string{
	"loglevel":                    {"debug", "verbose", "notice", "warning", "nothing"},
	"repl-diskless-load":          {"disabled", "on-empty-db", "swapdb"},
	"shutdown-on-sigint":          {"default", "save", "nosave", "now", "force"},
	"shutdown-on-sigterm":         {"default", "save", "nosave", "now", "force"},
	"oom-score-adj":               {"no", "yes", "relative", "absolute"},
	"supervised":                  {"upstart", "systemd", "auto", "no"},
	"syslog-facility":             {"user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"},
	"sanitize-dump-payload":       {"no", "yes", "clients"},
	"enable-protected-configs":    {"no", "yes", "local"},
	"enable-module-command":       {"no", "yes", "local"},
	"maxmemory-eviction-tenacity": nil,
}

// parsePercentiles parses latency-tracking-info-percentiles as Redis: the
// value split at each space (an empty field is invalid), each field read
// as strtod reads it (hexadecimal too), between 0 and 100.
func parsePercentiles(v string) ([]float64, string) {
	pcts := []float64{}
	if v == "" {
		return pcts, ""
	}
	for _, x := range strings.Split(v, " ") {
		if strings.ContainsRune(x, '_') {
			return nil, "Invalid latency-tracking-info-percentiles parameters"
		}
		h := strings.TrimLeft(strings.ToLower(x), "+-")
		if strings.HasPrefix(h, "0x") && !strings.ContainsRune(h, 'p') {
			x += "p0" // strtod's hexadecimal without exponent
		}
		f, err := strconv.ParseFloat(x, 64)
		if math.IsNaN(f) || (err != nil && !math.IsInf(f, 0)) {
			return nil, "Invalid latency-tracking-info-percentiles parameters"
		}
		if f < 0 || f > 100 {
			return nil, "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
		}
		pcts = append(pcts, f)
	}
	return pcts, ""
}

// checkInert validates v for an inert parameter whose default is def and
// returns the value CONFIG GET shows, or the reason it is refused.
func checkInert(name, def, v string) (string, string) {
	if vals, ok := enumValues[name]; ok && vals != nil {
		for _, x := range strings.Fields(strings.ToLower(v)) {
			found := false
			for _, y := range vals {
				found = found || x == y
			}
			if !found {
				return "", "argument(s) must be one of the following: " + strings.Join(vals, ", ")
			}
		}
		return strings.ToLower(v), ""
	}
	switch {
	case def == "yes" || def == "no":
		switch strings.ToLower(v) {
		case "yes", "no":
			return strings.ToLower(v), ""
		}
		return "", "argument must be 'yes' or 'no'"
	case name == "oom-score-adj-values":
		f := strings.Fields(v)
		if len(f) != 3 {
			return "", "Invalid oom-score-adj-values"
		}
		for _, x := range f {
			if n, err := strconv.Atoi(x); err != nil || n < -2000 || n > 2000 {
				return "", "Invalid oom-score-adj-values"
			}
		}
		return strings.Join(f, " "), ""
	}
	if _, err := strconv.ParseInt(def, 10, 64); err == nil && def != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return strconv.FormatInt(n, 10), ""
		}
		n, err := parseMemory(v)
		if err != nil {
			return "", "argument couldn't be parsed into an integer"
		}
		return strconv.FormatInt(n, 10), ""
	}
	return v, ""
}

// addCompatParams adds the introspection and inert parameters the table
// does not define yet (a parameter given a meaning elsewhere keeps it).
func addCompatParams(table map[string]configParam) map[string]configParam {
	add := func(name string, p configParam) {
		if _, ok := table[name]; !ok {
			table[name] = p
		}
	}
	for name, p := range adminParams() {
		add(name, p)
	}
	for name, p := range lazyFreeParams() {
		add(name, p)
	}
	for _, ip := range inertParams {
		val := new(atomic.Pointer[string])
		def := ip.def
		val.Store(&def)
		name := ip.name
		// key-load-delay and rdb-key-save-delay are hidden in Redis
		p := configParam{get: func(*Server) string { return *val.Load() }, hidden: name == "key-load-delay" || name == "rdb-key-save-delay"}
		if !ip.immutable {
			p.set = func(_ *Server, v string) string {
				norm, msg := checkInert(name, def, v)
				if msg == "" {
					val.Store(&norm)
				}
				return msg
			}
		}
		add(name, p)
		for _, a := range ip.aliases {
			add(a, p)
		}
	}
	return table
}
