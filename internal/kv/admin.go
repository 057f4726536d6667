package kv

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
)

// The introspection of a server (docs/kv.md, "Introspection and admin"):
// per-command statistics, the error counters, the slow log, the latency
// monitor and MONITOR. Their cost on the hot path is one clock reading and
// a few uncontended atomic adds per command (afterCall).

const (
	slowlogArgs    = 32  // arguments kept per slow log entry, as Redis
	slowlogArgLen  = 128 // bytes kept per argument, as Redis
	latencySamples = 160 // samples kept per latency event, as Redis
	monitorQueue   = 4096
	maxErrorCodes  = 128 // distinct error codes counted, as Redis
)

type slowEntry struct {
	id       int64
	time     int64 // Unix seconds
	usec     int64
	args     []string
	addr     string
	name     string
	argCount int
}

type latencySample struct {
	time int64 // Unix seconds
	ms   int64
}

type latencyEvent struct {
	samples []latencySample // oldest first, at most latencySamples
	max     int64
}

// adminState is the server's introspection state.
type adminState struct {
	slowThreshold atomic.Int64 // µs; negative disables the slow log
	slowMax       atomic.Int64
	latThreshold  atomic.Int64              // ms; 0 disables the latency monitor
	latencyOff    atomic.Bool               // latency-tracking no: histograms not fed
	latencyPcts   atomic.Pointer[[]float64] // latency-tracking-info-percentiles; nil: the default

	slowMu   sync.Mutex
	slowlog  []slowEntry // newest first
	slowNext int64

	latMu   sync.Mutex
	latency map[string]*latencyEvent

	errMu     sync.Mutex
	errCodes  map[string]int64
	errTotal  atomic.Int64
	subMu     sync.Mutex
	subStats  map[string]*command.CallStats // "client|list" ...
	skipSlow  map[*command.Command]bool     // skip-slowlog commands
	skipMon   map[*command.Command]bool     // commands MONITOR does not show
	monitorsN atomic.Int32
	monMu     sync.Mutex
	monitors  map[*Client]chan []byte

	debugMode        string      // enable-debug-command: no, yes or local
	moduleMode       string      // enable-module-command: no, yes or local
	activeExpireOff  atomic.Bool // DEBUG SET-ACTIVE-EXPIRE 0
	cpuAtStart       [2]float64
	quicklistPackedN atomic.Int64 // DEBUG QUICKLIST-PACKED-THRESHOLD, accepted only

	io      ioStats     // INFO counters of the clients served by goroutines (iostats.go)
	metrics instMetrics // instantaneous_* and used_memory_peak (iostats.go)

	runIDOnce sync.Once
	runID     string // INFO run_id
}

func (s *Server) initAdmin() {
	a := &s.adm
	a.slowThreshold.Store(s.cfg.SlowlogLogSlowerThan)
	s.rbufs.peakResetMs.Store(replyPeakResetDefault)
	a.slowMax.Store(int64(s.cfg.SlowlogMaxLen))
	a.latThreshold.Store(s.cfg.LatencyMonitorThreshold)
	a.latency = map[string]*latencyEvent{}
	a.errCodes = map[string]int64{}
	a.subStats = map[string]*command.CallStats{}
	a.monitors = map[*Client]chan []byte{}
	a.debugMode = s.cfg.EnableDebugCommand
	a.moduleMode = s.cfg.EnableModuleCommand
	a.skipSlow = map[*command.Command]bool{}
	a.skipMon = map[*command.Command]bool{}
	for _, cmd := range s.cmds.Sorted() {
		cmd.Stats.Container = isContainer(cmd)
		for _, f := range cmd.Flags {
			switch f {
			case "skip-slowlog":
				a.skipSlow[cmd] = true
			case "skip-monitor", "admin":
				a.skipMon[cmd] = true
			}
		}
	}
	for _, n := range []string{"exec", "auth", "hello", "migrate"} {
		if cmd := s.cmds.Lookup([]byte(n)); cmd != nil && n != "exec" {
			a.skipMon[cmd] = false // shown redacted, as Redis
		}
	}
	u, sy := cpuTimes()
	a.cpuAtStart = [2]float64{u, sy}
}

// isContainer reports whether cmd has subcommands with their own stats,
// as in Redis ("client|list").
func isContainer(cmd *command.Command) bool { return cmd.Subs != nil }

// afterCall records a command that ran: its statistics, the slow log, the
// latency monitor and the monitors' feed. It returns when the command
// ended, the start of the next one of the batch.
func (s *Server) afterCall(c *Client, cmd *command.Command, start time.Duration) time.Duration {
	end := monoNow()
	usec := (end - start).Microseconds()
	if c.shared.lastCmd.Load() != cmd { // a pipeline of one command stores once
		c.shared.lastCmd.Store(cmd)
	}
	a := &s.adm
	stats := &cmd.Stats
	hist := !a.latencyOff.Load()
	if cmd.Stats.Container && len(c.Args) > 1 {
		if sub := cmd.Sub(c.Args); sub != nil {
			stats = s.subStatsFor(sub.Name)
			c.shared.lastSub.Store(&sub.Name)
		} else { // not from a client (the dispatcher refuses it)
			stats = s.subStatsFor(cmd.Name + "|" + strings.ToLower(string(c.Args[1])))
			c.showCmd(nil)
			hist = false // no histogram (24 KB) for a name a client made up
		}
	} else if c.shared.lastSub.Load() != nil {
		c.shared.lastSub.Store(nil)
	}
	c.ranStats = stats
	if c.tally.on && stats == &cmd.Stats {
		c.tallyCall(stats, usec, hist)
	} else {
		stats.Record(usec, hist)
	}
	if t := a.slowThreshold.Load(); t >= 0 && usec >= t && !a.skipSlow[cmd] {
		s.slowlogAdd(c, usec)
	}
	if t := a.latThreshold.Load(); t > 0 && usec/1000 >= t {
		s.latencyAdd(latencyEventOf(cmd), usec/1000)
	}
	// a command leaving the event loop (c.detach) runs again: shown then
	if a.monitorsN.Load() > 0 && !a.skipMon[cmd] && !c.detach {
		s.feedMonitors(c, cmd)
	}
	return end
}

// afterNested records a command EXEC or a script ran (call), started at
// start, its reply at c.W.B[at:]: as Redis's call() does for them, its
// calls, microseconds and latency histogram (its subcommand's for a
// container), total_commands_processed, an error reply in the error
// statistics and its failed calls, the slow log and the latency monitor.
// EXEC's and the script's own call is counted by afterCall.
func (s *Server) afterNested(c *Client, cmd *command.Command, start time.Duration, at int) {
	usec := (monoNow() - start).Microseconds()
	a := &s.adm
	st, known := s.scriptCmdStats(cmd, c.Args)
	st.Record(usec, known && !a.latencyOff.Load())
	c.countCommand()
	if at < len(c.W.B) && c.W.B[at] == '-' {
		if c.errCounted { // a script's error its command's reply counted already
			c.errCounted = false
		} else {
			s.countError(c.W.B[at:])
		}
		st.Failed.Add(1)
	}
	if t := a.slowThreshold.Load(); t >= 0 && usec >= t && !a.skipSlow[cmd] {
		s.slowlogAdd(c, usec)
	}
	if t := a.latThreshold.Load(); t > 0 && usec/1000 >= t {
		s.latencyAdd(latencyEventOf(cmd), usec/1000)
	}
}

// latencyEventOf is the latency monitor's event of a slow call of cmd.
func latencyEventOf(cmd *command.Command) string {
	for _, f := range cmd.Flags {
		if f == "fast" {
			return "fast-command"
		}
	}
	return "command"
}

// monoEpoch is the origin of monoNow.
var monoEpoch = time.Now()

// monoNow reads the monotonic clock alone (time.Now reads the wall clock
// too): commands are timed with it, once each. It is never 0, which
// Client.mark uses for "not set".
func monoNow() time.Duration { return max(time.Since(monoEpoch), 1) }

func (s *Server) subStatsFor(name string) *command.CallStats {
	a := &s.adm
	a.subMu.Lock()
	defer a.subMu.Unlock()
	st := a.subStats[name]
	if st == nil {
		if len(a.subStats) >= 1024 { // bounded: unknown subcommands share one
			name = "unknown|unknown"
			if st = a.subStats[name]; st != nil {
				return st
			}
		}
		st = new(command.CallStats)
		a.subStats[name] = st
	}
	return st
}

// noteReply counts an error reply of the command just dispatched (INFO
// errorstats, failed and rejected calls). start is where its reply begins.
func (s *Server) noteReply(c *Client, start int) {
	ran := c.ranStats
	c.ranStats = nil
	counted := c.errCounted
	c.errCounted = false
	if start >= len(c.W.B) || c.W.B[start] != '-' {
		return
	}
	if counted { // a script's error its command's reply counted already
		if ran != nil {
			ran.Failed.Add(1)
		}
		return
	}
	s.countError(c.W.B[start:])
	if ran != nil {
		ran.Failed.Add(1)
	} else if len(c.Args) > 0 {
		if cmd := s.cmds.Lookup(c.Args[0]); cmd != nil {
			if cmd.Subs == nil || len(c.Args) < 2 {
				cmd.Stats.Rejected.Add(1)
			} else if sub := cmd.Sub(c.Args); sub != nil { // the subcommand's, as Redis counts it
				s.subStatsFor(sub.Name).Rejected.Add(1)
			}
			// an unknown subcommand is no command: counted in no
			// command's statistics (errorstats only), as in Redis
		}
	}
}

// countErrorAt counts the error reply at c.W.B[at:], if there is one.
func (s *Server) countErrorAt(c *Client, at int) {
	if at < len(c.W.B) && c.W.B[at] == '-' {
		s.countError(c.W.B[at:])
	}
}

// countError counts an error reply (starting with '-') in INFO
// errorstats and total_error_replies.
func (s *Server) countError(reply []byte) {
	line := reply[1:]
	if i := strings.IndexByte(string(line[:min(len(line), 64)]), ' '); i > 0 {
		line = line[:i]
	} else if i := strings.IndexByte(string(line[:min(len(line), 64)]), '\r'); i > 0 {
		line = line[:i]
	}
	code := string(line)
	a := &s.adm
	a.errTotal.Add(1)
	a.errMu.Lock()
	if _, ok := a.errCodes[code]; ok || len(a.errCodes) < maxErrorCodes {
		a.errCodes[code]++
	}
	a.errMu.Unlock()
}

// resetStats is the introspection part of CONFIG RESETSTAT.
func (s *Server) resetStats() {
	for _, cmd := range s.cmds.Sorted() {
		cmd.Stats.Reset()
	}
	a := &s.adm
	a.subMu.Lock()
	a.subStats = map[string]*command.CallStats{}
	a.subMu.Unlock()
	a.errMu.Lock()
	a.errCodes = map[string]int64{}
	a.errMu.Unlock()
	a.errTotal.Store(0)
	s.lazy.ResetStats()
	s.resetIO()
	s.resetMetrics()
}

func (s *Server) slowlogAdd(c *Client, usec int64) {
	a := &s.adm
	max := a.slowMax.Load()
	if max <= 0 {
		return
	}
	e := slowEntry{time: s.clock.Now().Unix(), usec: usec, addr: c.remoteAddr(), name: c.name, argCount: len(c.Args)}
	if c.InScript && c.nc == nil { // a script's command: Redis's script client has no address
		e.addr = "?:0"
	}
	n := min(len(c.Args), slowlogArgs)
	for i := 0; i < n; i++ {
		if i == slowlogArgs-1 && len(c.Args) > slowlogArgs {
			e.args = append(e.args, fmt.Sprintf("... (%d more arguments)", len(c.Args)-slowlogArgs+1))
			break
		}
		arg := c.Args[i]
		if len(arg) > slowlogArgLen {
			e.args = append(e.args, fmt.Sprintf("%s... (%d more bytes)", arg[:slowlogArgLen], len(arg)-slowlogArgLen))
			continue
		}
		e.args = append(e.args, string(arg))
	}
	if red := redactedArgs(c.Cmd, c.Args); red != nil {
		for i := 1; i < len(e.args) && i < len(red); i++ {
			if red[i] {
				e.args[i] = "(redacted)"
			}
		}
	}
	a.slowMu.Lock()
	e.id = a.slowNext
	a.slowNext++
	a.slowlog = append([]slowEntry{e}, a.slowlog...)
	if int64(len(a.slowlog)) > max {
		a.slowlog = a.slowlog[:max]
	}
	a.slowMu.Unlock()
}

// redactedArgs marks the arguments of args (a command of cmd) that
// MONITOR and the slow log show as "(redacted)", as Redis: every argument
// of AUTH, the user and password after HELLO's AUTH, MIGRATE's AUTH
// password and AUTH2 user and password. nil when none.
func redactedArgs(cmd *command.Command, args [][]byte) []bool {
	if cmd == nil {
		return nil
	}
	var red []bool
	mark := func(from, n int) {
		if red == nil {
			red = make([]bool, len(args))
		}
		for i := from; i < from+n && i < len(args); i++ {
			red[i] = true
		}
	}
	switch cmd.Name {
	case "auth":
		mark(1, len(args)-1)
	case "hello":
		for i := 2; i < len(args); i++ {
			if command.EqualFold(args[i], "auth") {
				mark(i+1, 2)
				i += 2
			}
		}
	case "migrate":
		for i := 6; i < len(args); i++ {
			switch {
			case command.EqualFold(args[i], "keys"):
				return red
			case command.EqualFold(args[i], "auth"):
				mark(i+1, 1)
				i++
			case command.EqualFold(args[i], "auth2"):
				mark(i+1, 2)
				i += 2
			}
		}
	}
	return red
}

// SLOWLOG GET [count] | LEN | RESET | HELP
func cmdSlowlog(c *Client) {
	a := &c.srv.adm
	switch strings.ToLower(string(c.Args[1])) {
	case "get":
		if len(c.Args) > 3 {
			c.SubcommandSyntax()
			return
		}
		count := int64(10)
		if len(c.Args) == 3 {
			n, ok := command.ParseInt(c.Args[2])
			if !ok || n < -1 {
				c.W.Error("ERR count should be greater than or equal to -1")
				return
			}
			count = n
			if n == -1 {
				count = 1 << 62
			}
		}
		a.slowMu.Lock()
		entries := a.slowlog[:min(int64(len(a.slowlog)), count)]
		entries = append([]slowEntry(nil), entries...)
		a.slowMu.Unlock()
		c.W.Array(len(entries))
		for _, e := range entries {
			c.W.Array(6)
			c.W.Int(e.id)
			c.W.Int(e.time)
			c.W.Int(e.usec)
			c.W.Array(len(e.args))
			for _, x := range e.args {
				c.W.BulkString(x)
			}
			c.W.BulkString(e.addr)
			c.W.BulkString(e.name)
		}
	case "len":
		if len(c.Args) != 2 {
			c.W.Error("ERR wrong number of arguments for 'slowlog|len' command")
			return
		}
		a.slowMu.Lock()
		n := len(a.slowlog)
		a.slowMu.Unlock()
		c.W.Int(int64(n))
	case "reset":
		if len(c.Args) != 2 {
			c.W.Error("ERR wrong number of arguments for 'slowlog|reset' command")
			return
		}
		a.slowMu.Lock()
		a.slowlog = nil
		a.slowMu.Unlock()
		c.W.OK()
	case "help":
		writeHelp(c, "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
			"LEN", "    Return the length of the slowlog.", "RESET", "    Reset the slowlog.", "HELP", "    Print this help.")
	default:
		c.W.Error("ERR unknown subcommand '" + command.Trunc(c.Args[1], 128) + "'. Try SLOWLOG HELP.")
	}
}

func writeHelp(c *Client, lines ...string) {
	c.W.Array(len(lines))
	for _, l := range lines {
		c.W.Simple(l)
	}
}

// noteLatency samples event (expire-cycle...) when it took at least
// latency-monitor-threshold, as Redis's latencyAddSampleIfNeeded.
func (s *Server) noteLatency(event string, d time.Duration) {
	if t := s.adm.latThreshold.Load(); t > 0 && d.Milliseconds() >= t {
		s.latencyAdd(event, d.Milliseconds())
	}
}

func (s *Server) latencyAdd(event string, ms int64) {
	a := &s.adm
	now := s.clock.Now().Unix()
	a.latMu.Lock()
	defer a.latMu.Unlock()
	ev := a.latency[event]
	if ev == nil {
		ev = &latencyEvent{}
		a.latency[event] = ev
	}
	ev.max = max(ev.max, ms)
	// one sample per second: a second sample in the same second keeps the
	// worse, as Redis
	if n := len(ev.samples); n > 0 && ev.samples[n-1].time == now {
		ev.samples[n-1].ms = max(ev.samples[n-1].ms, ms)
		return
	}
	ev.samples = append(ev.samples, latencySample{time: now, ms: ms})
	if len(ev.samples) > latencySamples {
		ev.samples = ev.samples[1:]
	}
}

// LATENCY LATEST | HISTORY event | RESET [event...] | DOCTOR | GRAPH event
// | HISTOGRAM [command...] | HELP
func cmdLatency(c *Client) {
	s := c.srv
	a := &s.adm
	sub := strings.ToLower(string(c.Args[1]))
	a.latMu.Lock()
	events := make([]string, 0, len(a.latency))
	for name := range a.latency {
		events = append(events, name)
	}
	sort.Strings(events)
	a.latMu.Unlock()
	switch sub {
	case "latest", "doctor", "help":
		if len(c.Args) != 2 {
			c.W.Error("ERR wrong number of arguments for 'latency|" + sub + "' command")
			return
		}
	}
	switch sub {
	case "latest":
		a.latMu.Lock()
		c.W.Array(len(events))
		for _, name := range events {
			ev := a.latency[name]
			last := ev.samples[len(ev.samples)-1]
			c.W.Array(4)
			c.W.BulkString(name)
			c.W.Int(last.time)
			c.W.Int(last.ms)
			c.W.Int(ev.max)
		}
		a.latMu.Unlock()
	case "history":
		if len(c.Args) != 3 {
			c.W.Error("ERR wrong number of arguments for 'latency|history' command")
			return
		}
		a.latMu.Lock()
		ev := a.latency[string(c.Args[2])]
		var samples []latencySample
		if ev != nil {
			samples = append(samples, ev.samples...)
		}
		a.latMu.Unlock()
		c.W.Array(len(samples))
		for _, x := range samples {
			c.W.Array(2)
			c.W.Int(x.time)
			c.W.Int(x.ms)
		}
	case "reset":
		a.latMu.Lock()
		n := 0
		if len(c.Args) == 2 {
			n = len(a.latency)
			a.latency = map[string]*latencyEvent{}
		} else {
			for _, e := range c.Args[2:] {
				if _, ok := a.latency[string(e)]; ok {
					delete(a.latency, string(e))
					n++
				}
			}
		}
		a.latMu.Unlock()
		c.W.Int(int64(n))
	case "graph":
		if len(c.Args) != 3 {
			c.W.Error("ERR wrong number of arguments for 'latency|graph' command")
			return
		}
		a.latMu.Lock()
		ev := a.latency[string(c.Args[2])]
		var b strings.Builder
		if ev != nil {
			fmt.Fprintf(&b, "%s - high %d ms, low %d ms (all time high %d ms)\n", c.Args[2], ev.max, ev.max, ev.max)
			for _, x := range ev.samples {
				fmt.Fprintf(&b, "%d %s\n", x.time, strings.Repeat("#", int(min(x.ms/10+1, 60))))
			}
		}
		a.latMu.Unlock()
		if ev == nil {
			c.W.Error("ERR No samples available for event '" + string(c.Args[2]) + "'")
			return
		}
		c.W.Verbatim(b.String())
	case "doctor":
		c.W.Verbatim(s.latencyDoctor(events))
	case "histogram":
		s.latencyHistogram(c)
	case "help":
		writeHelp(c, "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"DOCTOR", "GRAPH <event>", "HISTORY <event>", "LATEST", "RESET [<event> ...]",
			"HISTOGRAM [COMMAND ...]", "HELP")
	default:
		c.W.Error("ERR unknown subcommand '" + command.Trunc(c.Args[1], 128) + "'. Try LATENCY HELP.")
	}
}

func (s *Server) latencyDoctor(events []string) string {
	a := &s.adm
	if a.latThreshold.Load() == 0 {
		return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it.\n"
	}
	if len(events) == 0 {
		return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep a little better tonight.\n"
	}
	var b strings.Builder
	b.WriteString("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n")
	a.latMu.Lock()
	for i, name := range events {
		ev := a.latency[name]
		var sum int64
		for _, x := range ev.samples {
			sum += x.ms
		}
		fmt.Fprintf(&b, "%d. %s: %d latency spikes (average %dms, mean deviation 0ms, period %d sec). Worst all time event %dms.\n",
			i+1, name, len(ev.samples), sum/int64(len(ev.samples)), 0, ev.max)
	}
	a.latMu.Unlock()
	b.WriteString("\nI have a few advices for you:\n\n- Check the slow log (SLOWLOG GET): commands taking long block every client of their event loop.\n")
	return b.String()
}

// latencyHistogram is LATENCY HISTOGRAM [command ...]: per command, its
// calls and the cumulative counts of its latency histogram at Redis's
// power-of-two levels (command.Latency.LogBuckets).
func (s *Server) latencyHistogram(c *Client) {
	type entry struct {
		name string
		lat  *command.Latency
	}
	var list []entry
	add := func(name string, st *command.CallStats) {
		if l := st.Latency(); l != nil {
			list = append(list, entry{name, l})
		}
	}
	subs := func(prefix string) {
		s.adm.subMu.Lock()
		for n, st := range s.adm.subStats {
			if prefix == "" || strings.HasPrefix(n, prefix+"|") {
				add(n, st)
			}
		}
		s.adm.subMu.Unlock()
	}
	if len(c.Args) == 2 {
		for _, cmd := range s.cmds.Sorted() {
			add(cmd.Name, &cmd.Stats)
		}
		subs("")
	} else {
		seen := map[string]bool{}
		for _, arg := range c.Args[2:] {
			name := strings.ToLower(string(arg))
			if seen[name] {
				continue
			}
			seen[name] = true
			if parent, _, ok := strings.Cut(name, "|"); ok {
				if s.cmds.Lookup([]byte(parent)) == nil {
					continue
				}
				s.adm.subMu.Lock()
				if st := s.adm.subStats[name]; st != nil {
					add(name, st)
				}
				s.adm.subMu.Unlock()
				continue
			}
			cmd := s.cmds.Lookup([]byte(name))
			if cmd == nil {
				continue
			}
			if isContainer(cmd) {
				subs(cmd.Name)
			} else {
				add(cmd.Name, &cmd.Stats)
			}
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	c.W.Map(len(list))
	for _, e := range list {
		c.W.BulkString(e.name)
		c.W.Map(2)
		c.W.BulkString("calls")
		c.W.Int(e.lat.Total())
		c.W.BulkString("histogram_usec")
		buckets := e.lat.LogBuckets()
		c.W.Map(len(buckets))
		for _, b := range buckets {
			c.W.Int(b[0])
			c.W.Int(b[1])
		}
	}
}

// MONITOR: the connection leaves its event loop and is sent every command
// the server runs from then on, until it closes. A monitor that does not
// read falls behind by at most monitorQueue commands and is then closed,
// as Redis closes it at its output buffer limit.
func cmdMonitor(c *Client) {
	if c.multi {
		c.W.Error("ERR MONITOR not allowed in a transaction")
		return
	}
	if c.InExec {
		// Redis's reply to a client that expects a reply per command
		// (CLIENT_DENY_BLOCKING): it would serve the stream holding the
		// shards EXEC holds
		c.W.Error("ERR MONITOR isn't allowed for DENY BLOCKING client")
		return
	}
	if c.inLoop {
		c.detach = true
		return
	}
	s := c.srv
	ch := make(chan []byte, monitorQueue)
	s.adm.monMu.Lock()
	s.adm.monitors[c] = ch
	s.adm.monitorsN.Add(1)
	s.adm.monMu.Unlock()
	defer func() {
		s.adm.monMu.Lock()
		delete(s.adm.monitors, c)
		s.adm.monitorsN.Add(-1)
		s.adm.monMu.Unlock()
	}()
	c.W.OK()
	if c.flush() != nil {
		c.closing = true
		return
	}
	c.shared.flags.Or(flagMonitor)
	defer c.shared.flags.And(^flagMonitor)
	// a monitor sends nothing but QUIT or RESET: any other end ends it
	gone := make(chan string, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var buf [512]byte
		for {
			n, err := c.nc.Read(buf[:])
			if err != nil || n == 0 {
				gone <- ""
				return
			}
			in := strings.ToLower(string(buf[:n]))
			switch {
			case strings.Contains(in, "reset"):
				gone <- "reset"
				return
			case strings.Contains(in, "quit"):
				gone <- "quit"
				return
			}
		}
	}()
	for {
		select {
		case line, ok := <-ch:
			if !ok {
				c.closing = true
				return
			}
			if _, err := c.nc.Write(line); err != nil {
				c.closing = true
				return
			}
		case why := <-gone:
			switch why {
			case "reset": // a client again, its reader gone
				cmdReset(c)
			case "quit":
				c.W.OK()
				c.closing = true
			default:
				c.closing = true
			}
			return
		case <-s.done:
			c.closing = true
			return
		}
	}
}

func (s *Server) feedMonitors(c *Client, cmd *command.Command) {
	now := s.clock.Now()
	var b []byte
	b = append(b, '+')
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, '.')
	b = append(b, fmt.Sprintf("%06d", now.Nanosecond()/1000)...)
	b = append(b, " ["...)
	b = strconv.AppendInt(b, int64(c.DB), 10) // the database it ran in, as Redis
	b = append(b, ' ')
	if c.InScript { // a script's command, as Redis shows it
		b = append(b, "lua"...)
	} else {
		b = append(b, c.remoteAddr()...)
	}
	b = append(b, ']')
	red := redactedArgs(cmd, c.Args)
	for i, a := range c.Args {
		b = append(b, ' ')
		if red != nil && red[i] {
			b = append(b, "\"(redacted)\""...)
			continue
		}
		b = strconv.AppendQuote(b, string(a))
	}
	b = append(b, '\r', '\n')
	s.adm.monMu.Lock()
	for m, ch := range s.adm.monitors {
		if m == c {
			continue
		}
		select {
		case ch <- b:
		default: // too far behind: its reader closes it
			close(ch)
			delete(s.adm.monitors, m)
			s.adm.monitorsN.Add(-1)
		}
	}
	s.adm.monMu.Unlock()
}

// remoteAddr is the client's address; the link applying a primary's
// stream has no connection of its own and shows as "master".
func (c *Client) remoteAddr() string {
	if c.nc == nil {
		return "master"
	}
	return c.nc.RemoteAddr().String()
}

// loopback reports whether the client connects from this machine
// (enable-debug-command local).
func (c *Client) loopback() bool {
	if c.nc == nil {
		return false
	}
	addr, ok := c.nc.RemoteAddr().(*net.TCPAddr)
	return !ok || addr.IP.IsLoopback()
}

func adminSpecs() []cmdSpec {
	const srv = "server"
	return []cmdSpec{
		{"slowlog", -2, "admin loading stale", 0, 0, 0, srv, cmdSlowlog, nil},
		{"latency", -2, "admin noscript loading stale", 0, 0, 0, srv, cmdLatency, nil},
		{"monitor", 1, "admin noscript loading stale", 0, 0, 0, srv, cmdMonitor, nil},
		{"memory", -2, "readonly execall", 0, 0, 0, srv, cmdMemory, memoryKeys},
		{"debug", -2, "admin noscript loading stale protected execall", 0, 0, 0, srv, cmdDebug, nil},
		{"module", -2, "admin noscript protected", 0, 0, 0, srv, cmdModule, nil},
	}
}
