package kv

import (
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

// configParam is a parameter of CONFIG GET and SET: get returns its value
// as CONFIG GET shows it; set (nil for an immutable parameter) applies a
// value and returns the reason it is refused, "" if it is not.
type configParam struct {
	get func(s *Server) string
	set func(s *Server, v string) string
	// hidden: CONFIG GET shows it when asked by its name only, not for a
	// pattern (Redis's hidden test parameters)
	hidden bool
}

// startParam is a parameter Redis changes live and a running gantry
// server keeps as it started (bind, port, masteruser): CONFIG SET to its
// current value is accepted (it changes nothing, as in Redis), another
// value is refused with refusal (Redis's message for a socket it cannot
// open, for bind and port) and the flag to restart with.
func startParam(get func(*Server) string, flag, refusal string) configParam {
	return configParam{get: get, set: func(s *Server, v string) string {
		if strings.EqualFold(strings.TrimSpace(v), get(s)) {
			return ""
		}
		return refusal + " (gantry keeps the value it started with: restart it with --" + flag + ")"
	}}
}

// saveParam is save: gantry has no RDB schedule (its log and snapshots
// are section "Persistence"), so the value is checked as Redis checks it
// (pairs of seconds and changes, or "") and kept for CONFIG GET only.
func saveParam() configParam {
	val := new(atomic.Pointer[string])
	empty := ""
	val.Store(&empty)
	return configParam{get: func(*Server) string { return *val.Load() }, set: func(_ *Server, v string) string {
		f := strings.Fields(v)
		if len(f)%2 != 0 {
			return "Invalid save parameters"
		}
		for _, x := range f {
			if n, err := strconv.Atoi(x); err != nil || n < 0 {
				return "Invalid save parameters"
			}
		}
		norm := strings.Join(f, " ")
		val.Store(&norm)
		return ""
	}}
}

// configTable returns the parameters CONFIG knows.
func configTable() map[string]configParam {
	yesno := map[bool]string{true: "yes", false: "no"}
	fixed := func(v string) configParam { return configParam{get: func(*Server) string { return v }} }
	// accepted for client compatibility: gantry has no RDB schedule and a
	// fixed expiry rate
	ignored := func(v string, number bool) configParam {
		return configParam{get: func(*Server) string { return v }, set: func(_ *Server, val string) string {
			if _, err := strconv.Atoi(val); number && err != nil {
				return "argument couldn't be parsed into an integer"
			}
			return ""
		}}
	}
	memory := func(p func(s *Server) int64, min, max int64, set func(s *Server, v int64)) configParam {
		return configParam{
			get: func(s *Server) string { return strconv.FormatInt(p(s), 10) },
			set: func(s *Server, val string) string {
				v, err := parseMemory(val)
				if err != nil {
					return "argument must be a memory value"
				}
				if v < min || v > max {
					return "argument must be between " + strconv.FormatInt(min, 10) + " and " + strconv.FormatInt(max, 10) + " inclusive"
				}
				set(s, v)
				return ""
			},
		}
	}
	integer := func(p func(s *Server) int64, min, max int64, set func(s *Server, v int64)) configParam {
		return configParam{
			get: func(s *Server) string { return strconv.FormatInt(p(s), 10) },
			set: func(s *Server, val string) string {
				v, err := strconv.ParseInt(val, 10, 64)
				if err != nil || v < min || v > max {
					return "argument must be between " + strconv.FormatInt(min, 10) + " and " + strconv.FormatInt(max, 10) + " inclusive"
				}
				set(s, v)
				return ""
			},
		}
	}
	table := map[string]configParam{
		"appendonly": {
			get: func(s *Server) string { return yesno[s.aof != nil && s.aof.Enabled()] },
			set: func(s *Server, val string) string {
				if val != "yes" && val != "no" {
					return "argument must be 'yes' or 'no'"
				}
				if s.aof == nil {
					if val == "yes" {
						return "no data directory configured"
					}
					return ""
				}
				if err := s.aof.SetEnabled(val == "yes"); err != nil {
					return err.Error()
				}
				return ""
			},
		},
		"appendfsync": {
			get: func(s *Server) string {
				if s.aof != nil {
					return s.aof.FsyncMode()
				}
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.cfg.AppendFsync
			},
			set: func(s *Server, val string) string {
				if val != "always" && val != "everysec" && val != "no" {
					return "argument(s) must be one of the following: always, everysec, no"
				}
				if s.aof != nil {
					s.aof.SetFsync(val)
				}
				s.mu.Lock()
				s.cfg.AppendFsync = val
				s.mu.Unlock()
				return ""
			},
		},
		"requirepass": {
			get: func(s *Server) string { return s.password() },
			set: func(s *Server, val string) string {
				s.mu.Lock()
				s.requirepass = val
				s.mu.Unlock()
				s.users.SetDefaultPassword(val)
				return ""
			},
		},
		"dir":             {get: func(s *Server) string { return s.cfg.DataDir }},
		"databases":       {get: func(s *Server) string { return strconv.Itoa(len(s.dbs)) }},
		"cluster-enabled": {get: func(s *Server) string { return yesno[s.cfg.Cluster != nil] }},
		"bind":            startParam(func(s *Server) string { return s.bindAddr() }, "bind", "Failed to bind to specified addresses."),
		"appendfilename":  fixed("appendonly"),
		"io-threads":      fixed("1"),
		"hz":              ignored("10", true),
		"save":            saveParam(),
		"replicaof":       {get: func(s *Server) string { return s.replicaOfValue() }},
		"slaveof":         {get: func(s *Server) string { return s.replicaOfValue() }},

		// the backlog keeps its newest bytes when resized (repl.State)
		"repl-backlog-size": memory(func(s *Server) int64 { return int64(s.repl.BacklogSize()) }, 16<<10, 1<<30,
			func(s *Server, v int64) { s.repl.SetBacklogSize(int(v)) }),

		// the replication guards (replguard.go)
		"min-replicas-to-write": integer(func(s *Server) int64 { return s.minReplicas.Load() }, 0, 1<<31-1,
			func(s *Server, v int64) { s.minReplicas.Store(v); s.setReplGuards() }),
		"min-replicas-max-lag": integer(func(s *Server) int64 { return s.minReplicasLag.Load() }, 0, 1<<31-1,
			func(s *Server, v int64) { s.minReplicasLag.Store(v); s.repl.SetGoodLag(v); s.setReplGuards() }),
		"repl-ping-replica-period": integer(func(s *Server) int64 { return s.repl.PingPeriod() }, 1, 1<<31-1,
			func(s *Server, v int64) { s.repl.SetPingPeriod(v) }),
		"replica-serve-stale-data": {
			get: func(s *Server) string { return yesno[s.serveStaleData.Load()] },
			set: func(s *Server, val string) string {
				switch strings.ToLower(val) {
				case "yes":
					s.serveStaleData.Store(true)
				case "no":
					s.serveStaleData.Store(false)
				default:
					return "argument must be 'yes' or 'no'"
				}
				s.setReplGuards()
				return ""
			},
		},

		"maxmemory": memory(func(s *Server) int64 { return s.maxmemory.Load() }, 0, 1<<62,
			func(s *Server, v int64) { s.maxmemory.Store(v) }), // the cron evicts what is over
		"maxmemory-clients": maxmemoryClientsParam(),
		"maxmemory-policy": {
			get: func(s *Server) string { return s.ks.Policy().String() },
			set: func(s *Server, val string) string {
				p, ok := keyspace.ParsePolicy(strings.ToLower(val))
				if !ok {
					return "argument(s) must be one of the following: volatile-lru, allkeys-lru, volatile-lfu, allkeys-lfu, volatile-random, allkeys-random, volatile-ttl, noeviction"
				}
				s.eachKS(func(ks *keyspace.Keyspace) { ks.SetPolicy(p) })
				return ""
			},
		},
		"maxmemory-samples": integer(func(s *Server) int64 { return int64(s.ks.Samples()) }, 1, 64,
			func(s *Server, v int64) { s.eachKS(func(ks *keyspace.Keyspace) { ks.SetSamples(int(v)) }) }),
		"lfu-log-factor": integer(func(s *Server) int64 { f, _ := s.ks.LFU(); return int64(f) }, 0, 1<<31-1,
			func(s *Server, v int64) {
				_, d := s.ks.LFU()
				s.eachKS(func(ks *keyspace.Keyspace) { ks.SetLFU(int(v), d) })
			}),
		"lfu-decay-time": integer(func(s *Server) int64 { _, d := s.ks.LFU(); return int64(d) }, 0, 1<<31-1,
			func(s *Server, v int64) {
				f, _ := s.ks.LFU()
				s.eachKS(func(ks *keyspace.Keyspace) { ks.SetLFU(f, int(v)) })
			}),
		"maxclients": {
			get: func(s *Server) string { return strconv.FormatInt(s.lim.maxClients.Load(), 10) },
			set: func(s *Server, val string) string {
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 {
					return "argument must be between 1 and 2147483647 inclusive"
				}
				if most := maxClientsFor(fileLimit(), n); most < n {
					return "The operating system is not able to handle the specified number of clients, try with " + strconv.Itoa(most)
				}
				s.lim.maxClients.Store(int64(n))
				return ""
			},
		},
		"timeout": {
			get: func(s *Server) string { return strconv.FormatInt(s.lim.timeoutMs.Load()/1000, 10) },
			set: func(s *Server, val string) string {
				n, err := strconv.ParseInt(val, 10, 64)
				if err != nil || n < 0 || n > 1<<31 {
					return "argument must be between 0 and 2147483647 inclusive"
				}
				s.lim.timeoutMs.Store((time.Duration(n) * time.Second).Milliseconds())
				return ""
			},
		},
		"proto-max-bulk-len": memory(func(s *Server) int64 { return s.lim.maxBulk.Load() }, 1<<20, resp.MaxBulk,
			func(s *Server, v int64) { s.lim.maxBulk.Store(v) }),
		"client-query-buffer-limit": memory(func(s *Server) int64 { return s.lim.queryLimit.Load() }, 1<<20, 1<<62,
			func(s *Server, v int64) { s.lim.queryLimit.Store(v) }),
		"client-output-buffer-limit": {
			get: func(s *Server) string { return s.lim.outputString() },
			set: func(s *Server, val string) string {
				if err := s.lim.setOutput(val); err != nil {
					return err.Error()
				}
				return ""
			},
		},
	}
	// the value types' own parameters (stream node sizes, HyperLogLog)
	for _, name := range command.SettingNames() {
		table[name] = configParam{
			get: func(s *Server) string { return s.track.Settings.Params()[name] },
			set: func(s *Server, val string) string {
				_, reason := s.track.Settings.Set(name, val)
				return reason
			},
		}
	}
	for alias, name := range map[string]string{"min-slaves-to-write": "min-replicas-to-write",
		"min-slaves-max-lag": "min-replicas-max-lag", "slave-serve-stale-data": "replica-serve-stale-data",
		"repl-ping-slave-period": "repl-ping-replica-period"} {
		table[alias] = table[name]
	}
	return addCompatParams(table)
}

// CONFIG GET pattern [pattern ...] | SET param value [param value ...] |
// RESETSTAT | REWRITE
func configGet(c *Client) {
	s := c.srv
	if len(c.Args) < 3 {
		c.W.Error("ERR wrong number of arguments for 'config|get' command")
		return
	}
	var names []string
	for name, param := range s.config {
		for _, p := range c.Args[2:] {
			if param.hidden && !strings.EqualFold(string(p), name) {
				continue
			}
			if command.GlobMatch(command.LowerInto(nil, p), []byte(name)) {
				names = append(names, name)
				break
			}
		}
	}
	sort.Strings(names)
	c.W.Map(len(names))
	for _, n := range names {
		c.W.BulkString(n)
		c.W.BulkString(s.config[n].get(s))
	}
}

// configSet sets every pair or none, as Redis: names are checked first
// (unknown, immutable, given twice), then values are applied in order and
// the ones applied are set back if a later one is refused.
// appendOnlyInExec is CONFIG SET appendonly inside EXEC, which holds every
// shard (command.ExecAll): turning the log on starts a rewrite, which takes
// every shard; it is turned on once EXEC released them, before its reply.
// A failure then is logged.
func (c *Client) appendOnlyInExec(set func(*Server, string) string) func(*Server, string) string {
	return func(s *Server, val string) string {
		if val != "yes" || s.aof == nil || s.aof.Enabled() {
			return set(s, val)
		}
		c.afterExec(func() {
			if err := s.aof.SetEnabled(true); err != nil {
				s.logger.Printf("CONFIG SET appendonly yes inside MULTI, after EXEC: %v", err)
			}
		})
		return ""
	}
}

func configSet(c *Client) {
	s := c.srv
	if len(c.Args)%2 != 0 { // the command table checked there is a pair
		c.W.Error(command.ErrSyntax)
		return
	}
	seen := map[string]bool{}
	for i := 2; i < len(c.Args); i += 2 {
		name := string(command.LowerInto(nil, c.Args[i]))
		p, ok := s.config[name]
		if !ok {
			c.W.Error("ERR Unknown option or number of arguments for CONFIG SET - '" + name + "'")
			return
		}
		if p.set == nil {
			c.W.Error("ERR CONFIG SET failed (possibly related to argument '" + name + "') - can't set immutable config")
			return
		}
		if seen[name] {
			c.W.Error("ERR CONFIG SET failed (possibly related to argument '" + name + "') - duplicate parameter")
			return
		}
		seen[name] = true
	}
	type undo struct {
		p   configParam
		old string
	}
	var done []undo
	for i := 2; i < len(c.Args); i += 2 {
		name := string(command.LowerInto(nil, c.Args[i]))
		p := s.config[name]
		old := p.get(s)
		set := p.set
		if name == "appendonly" && c.AllLocked {
			set = c.appendOnlyInExec(p.set)
		}
		if msg := set(s, string(c.Args[i+1])); msg != "" {
			for j := len(done) - 1; j >= 0; j-- {
				_ = done[j].p.set(s, done[j].old) // a value it held is valid
			}
			c.W.Error("ERR CONFIG SET failed (possibly related to argument '" + name + "') - " + msg)
			return
		}
		done = append(done, undo{p, old})
	}
	c.W.OK()
}
