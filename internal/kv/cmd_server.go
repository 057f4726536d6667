package kv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/kv/aof"
	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/script"
)

// Version is the Redis version gantry reports to clients (HELLO, INFO,
// redis.REDIS_VERSION): 7.0.15, the version whose replies it follows
// (scores as %.17g) and whose test suite it passes; the few 7.2 additions
// it also serves (CLIENT SETINFO, CLIENT NO-TOUCH) change no 7.0 reply.
const Version = script.RedisVersion

func cmdPing(c *Client) {
	switch len(c.Args) {
	case 1:
		c.W.Simple("PONG")
	case 2:
		c.W.Bulk(c.Args[1])
	default:
		c.WrongArgs()
	}
}

func cmdEcho(c *Client) { c.W.Bulk(c.Args[1]) }

// checkAuth validates AUTH arguments: [username] password.
func (c *Client) checkAuth(user, pass []byte) bool {
	if user == nil {
		if c.srv.users.Default().User().NoPass() {
			c.W.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return false
		}
		return c.auth("default", string(pass))
	}
	return c.auth(string(user), string(pass))
}

func cmdAuth(c *Client) {
	switch len(c.Args) {
	case 2:
		if c.checkAuth(nil, c.Args[1]) {
			c.W.OK()
		}
	case 3:
		if c.checkAuth(c.Args[1], c.Args[2]) {
			c.W.OK()
		}
	default:
		c.W.Error(command.ErrSyntax)
	}
}

// HELLO [protover [AUTH username password] [SETNAME clientname]]
func cmdHello(c *Client) {
	proto := c.W.Proto
	if len(c.Args) >= 2 {
		n, ok := command.ParseInt(c.Args[1])
		if !ok {
			c.W.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		if n != 2 && n != 3 {
			c.W.Error("NOPROTO unsupported protocol version")
			return
		}
		proto = int(n)
	}
	var name []byte
	hasName := false
	for i := 2; i < len(c.Args); i++ {
		switch {
		case command.EqualFold(c.Args[i], "auth") && i+2 < len(c.Args):
			if !c.checkAuth(c.Args[i+1], c.Args[i+2]) {
				return
			}
			i += 2
		case command.EqualFold(c.Args[i], "setname") && i+1 < len(c.Args):
			name, hasName = c.Args[i+1], true
			i++
		default:
			c.W.Error("ERR Syntax error in HELLO option '" + string(c.Args[i]) + "'")
			return
		}
	}
	if !c.authed {
		c.W.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if hasName {
		if !validClientName(name) {
			c.W.Error("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.setName(string(name))
	}
	c.W.Proto = proto
	c.shared.proto.Store(int32(proto))
	c.mail.mu.Lock()
	c.mail.proto = proto // invalidations and messages from now on
	c.mail.mu.Unlock()
	c.W.Map(7)
	c.W.BulkString("server")
	c.W.BulkString("redis")
	c.W.BulkString("version")
	c.W.BulkString(Version)
	c.W.BulkString("proto")
	c.W.Int(int64(proto))
	c.W.BulkString("id")
	c.W.Int(c.id)
	c.W.BulkString("mode")
	c.W.BulkString("standalone")
	c.W.BulkString("role")
	c.W.BulkString("master")
	c.W.BulkString("modules")
	c.W.Array(0)
}

func cmdQuit(c *Client) {
	c.W.OK()
	c.closing = true
}

func cmdReset(c *Client) {
	c.discardMulti()
	c.unwatchAll()
	if c.subs != nil { // leaves subscribed mode (messages already come first)
		for k := pubsubKind(0); k < psKinds; k++ {
			c.unsubscribe(k, nil, false)
		}
	}
	c.srv.ct.disable(c)
	c.W.Proto = 2
	c.shared.proto.Store(2)
	c.setName("")
	c.replyMode = replyOn
	c.setUser(c.srv.users.Default())
	c.authed = c.srv.defaultAuthed()
	c.selectDB(0)
	c.W.Simple("RESET")
}

func validClientName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

// CLIENT SETNAME|GETNAME|ID|LIST|INFO|SETINFO|HELP
func cmdClient(c *Client) {
	sub := string(command.LowerInto(nil, c.Args[1]))
	argc := func(n int) bool {
		if len(c.Args) != n {
			c.W.Error("ERR wrong number of arguments for 'client|" + sub + "' command")
			return false
		}
		return true
	}
	switch sub {
	case "pause", "unpause":
		clientPause(c, sub)
	case "setname":
		if !argc(3) {
			return
		}
		if !validClientName(c.Args[2]) {
			c.W.Error("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.setName(string(c.Args[2]))
		c.W.OK()
	case "getname":
		if !argc(2) {
			return
		}
		if c.name == "" {
			c.W.Null()
		} else {
			c.W.BulkString(c.name)
		}
	case "id":
		if argc(2) {
			c.W.Int(c.id)
		}
	case "setinfo":
		if !argc(4) {
			return
		}
		v := string(c.Args[3])
		switch {
		case command.EqualFold(c.Args[2], "lib-name"):
			if !validClientName(c.Args[3]) {
				c.W.Error("ERR lib-name cannot contain spaces, newlines or special characters.")
				return
			}
			c.libName = v
			c.shared.lib.Store(&[2]string{c.libName, c.libVer})
		case command.EqualFold(c.Args[2], "lib-ver"):
			if !validClientName(c.Args[3]) {
				c.W.Error("ERR lib-ver cannot contain spaces, newlines or special characters.")
				return
			}
			c.libVer = v
			c.shared.lib.Store(&[2]string{c.libName, c.libVer})
		default:
			c.W.Error("ERR Unrecognized option '" + string(c.Args[2]) + "'")
			return
		}
		c.W.OK()
	case "help":
		help := []string{"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GETNAME", "ID", "INFO", "LIST", "SETINFO <LIB-NAME|LIB-VER> <value>", "SETNAME <name>", "HELP"}
		c.W.Array(len(help))
		for _, h := range help {
			c.W.Simple(h)
		}
	default:
		if !clientAdmin(c, sub) {
			c.W.Error("ERR unknown subcommand '" + string(c.Args[1]) + "'. Try CLIENT HELP.")
		}
	}
}

func cmdTime(c *Client) {
	now := c.srv.clock.Now()
	c.W.Array(2)
	c.W.BulkInt(now.Unix())
	c.W.BulkInt(int64(now.Nanosecond() / 1000))
}

func cmdLastSave(c *Client) { c.W.Int(c.srv.lastSave.Load()) }

// cmdSave serves SAVE, BGSAVE and BGREWRITEAOF: each writes a new snapshot
// and starts a new empty log (see docs/kv.md); SAVE waits for it.
func cmdSave(c *Client) {
	s := c.srv
	if s.aof == nil {
		c.W.Error("ERR no data directory configured (start the peer with --data-dir)")
		return
	}
	if c.Cmd.Name == "bgsave" && len(c.Args) == 2 && !command.EqualFold(c.Args[1], "schedule") {
		c.W.Error(command.ErrSyntax)
		return
	}
	var done <-chan error
	var err error
	if c.AllLocked && c.Cmd.Name != "save" {
		// inside EXEC, which holds every shard the rewrite's start takes:
		// as Redis's (server.in_exec), it is scheduled, here to start
		// once EXEC released them, before EXEC's reply
		if msg := s.onlyRewrite(); msg != "" {
			err = aof.ErrRewriteRunning
		} else {
			name := strings.ToUpper(c.Cmd.Name)
			c.afterExec(func() {
				if _, err := s.aof.StartRewrite(); err != nil {
					s.logger.Printf("%s inside MULTI, after EXEC: %v", name, err)
				}
			})
			if name == "BGSAVE" {
				c.W.Simple("Background saving scheduled")
			} else {
				c.W.Simple("Background append only file rewriting scheduled")
			}
			return
		}
	} else {
		done, err = s.aof.StartRewrite()
	}
	if err != nil {
		switch {
		case c.Cmd.Name == "bgrewriteaof" && errors.Is(err, aof.ErrRewriteRunning):
			c.W.Error("ERR Background append only file rewriting already in progress")
		case errors.Is(err, aof.ErrRewriteRunning) && c.Cmd.Name == "bgsave":
			c.W.Error("ERR Background save already in progress")
		default:
			c.W.Error("ERR " + err.Error())
		}
		return
	}
	switch c.Cmd.Name {
	case "save":
		if err := <-done; err != nil {
			c.W.Error("ERR " + err.Error())
			return
		}
		c.W.OK()
	case "bgsave":
		c.W.Simple("Background saving started")
	default:
		c.W.Simple("Background append only file rewriting started")
	}
}

// CONFIG GET pattern [pattern ...] | SET param value [param value ...] |
// RESETSTAT | REWRITE
func cmdConfig(c *Client) {
	s := c.srv
	sub := string(command.LowerInto(nil, c.Args[1]))
	switch sub {
	case "get":
		configGet(c)
	case "set":
		configSet(c)
	case "resetstat":
		s.totalCommands.Store(0)
		s.totalConns.Store(0)
		s.expiredKeys.Store(0)
		s.evictedKeys.Store(0)
		s.oomRejected.Store(0)
		s.rbufs.shrinks.Store(0)
		s.rbufs.expands.Store(0)
		s.rejectedConns.Store(0)
		s.queryLimitCloses.Store(0)
		s.outputLimitCloses.Store(0)
		s.cev.evicted.Store(0)
		s.repl.ResetStats()
		s.resetStats()
		c.W.OK()
	case "rewrite":
		if s.cfg.ConfigRewrite == nil {
			c.W.Error("ERR The server is running without a config file")
			return
		}
		// the parameters CONFIG SET can change; the file's values of the
		// others (port, bind...) are what the server started with
		get := func(name string) (string, bool) {
			p, ok := s.config[name]
			if !ok || p.set == nil {
				return "", false
			}
			return p.get(s), true
		}
		if err := s.cfg.ConfigRewrite(get); err != nil {
			s.logger.Printf("CONFIG REWRITE: %v", err)
			c.W.Error("ERR Rewriting config file: " + err.Error())
			return
		}
		c.W.OK()
	case "help":
		c.W.Array(1)
		c.W.Simple("CONFIG GET|SET|RESETSTAT|REWRITE")
	default:
		c.W.Error("ERR unknown subcommand '" + string(c.Args[1]) + "'. Try CONFIG HELP.")
	}
}

func cmdInfo(c *Client) {
	s := c.srv
	want := map[string]bool{}
	for _, a := range c.Args[1:] {
		want[string(command.LowerInto(nil, a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	var b strings.Builder
	section := func(name string, lines func() []string) {
		if !all && !want[strings.ToLower(name)] {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		for _, l := range lines() {
			b.WriteString(l + "\r\n")
		}
	}
	now := s.clock.Now()
	var ms runtime.MemStats
	if all || want["memory"] {
		runtime.ReadMemStats(&ms)
	}
	section("Server", func() []string { return s.serverInfo(now) })
	section("Clients", s.clientsInfo)
	section("Memory", func() []string { return s.memoryInfo(&ms) })
	section("Persistence", s.persistenceInfo)
	section("Stats", s.statsInfo)
	section("Replication", s.replInfo)
	section("CPU", s.cpuInfo)
	section("Modules", func() []string { return nil })
	if full := want["all"] || want["everything"]; full || want["commandstats"] {
		section("Commandstats", s.commandStatsInfo)
	}
	section("Errorstats", s.errorStatsInfo)
	if full := want["all"] || want["everything"]; full || want["latencystats"] {
		section("Latencystats", s.latencyStatsInfo)
	}
	if s.cfg.Cluster != nil {
		section("Cluster", func() []string { return []string{"cluster_enabled:1"} })
	} else {
		section("Cluster", func() []string { return []string{"cluster_enabled:0"} })
	}
	section("Keyspace", func() []string { return s.keyspaceInfo(c.AllLocked) })
	c.W.Verbatim(b.String())
}

// humanBytes formats a byte count as Redis's *_human fields (1.50M).
func humanBytes(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + "B"
	case n < 1<<20:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
}

func (s *Server) port() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return "0"
	}
	_, port, _ := strings.Cut(s.ln.Addr().String(), "]:")
	if i := strings.LastIndexByte(s.ln.Addr().String(), ':'); i >= 0 {
		port = s.ln.Addr().String()[i+1:]
	}
	return port
}

// bindAddr is CONFIG GET bind: the address the server listens on.
func (s *Server) bindAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(s.ln.Addr().String())
	if err != nil {
		return ""
	}
	return host
}

func pid() int { return os.Getpid() }

func serverSpecs() []cmdSpec {
	const (
		srv = "server"
		con = "connection"
	)
	return []cmdSpec{
		{"ping", -1, "fast", 0, 0, 0, con, cmdPing, nil},
		{"echo", 2, "fast", 0, 0, 0, con, cmdEcho, nil},
		{"auth", -2, "noscript loading stale fast no-auth allow-busy", 0, 0, 0, con, cmdAuth, nil},
		{"hello", -1, "noscript loading stale fast no-auth allow-busy", 0, 0, 0, con, cmdHello, nil},
		{"select", 2, "loading stale fast", 0, 0, 0, con, cmdSelect, nil},
		{"quit", -1, "noscript loading stale fast no-auth allow-busy noqueue", 0, 0, 0, con, cmdQuit, nil},
		{"reset", 1, "noscript loading stale fast no-auth allow-busy noqueue", 0, 0, 0, con, cmdReset, nil},
		{"client", -2, "noscript loading stale", 0, 0, 0, con, cmdClient, nil},
		{"info", -1, "loading stale execall", 0, 0, 0, srv, cmdInfo, nil},
		{"config", -2, "admin noscript loading stale execall", 0, 0, 0, srv, cmdConfig, nil},
		{"command", -1, "loading stale", 0, 0, 0, srv, cmdCommand, nil},
		{"time", 1, "loading stale fast", 0, 0, 0, srv, cmdTime, nil},
		{"save", 1, "admin noscript no-async-loading no-multi", 0, 0, 0, srv, cmdSave, nil},
		{"bgsave", -1, "admin noscript no-async-loading execall", 0, 0, 0, srv, cmdSave, nil},
		{"bgrewriteaof", 1, "admin noscript no-async-loading execall", 0, 0, 0, srv, cmdSave, nil},
		{"lastsave", 1, "loading stale fast", 0, 0, 0, srv, cmdLastSave, nil},
		{"shutdown", -1, "admin noscript loading stale no-multi allow-busy", 0, 0, 0, srv, cmdShutdown, nil},
	}
}
