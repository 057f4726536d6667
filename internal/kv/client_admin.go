package kv

import (
	"github.com/gantry-project/gantry/internal/kv/acl"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
)

// clientShared is what other connections read of a client (CLIENT LIST,
// CLIENT KILL): atomics, since a client's own fields belong to its
// goroutine.
type clientShared struct {
	name    atomic.Pointer[string]
	lastCmd atomic.Pointer[command.Command]
	lastSub atomic.Pointer[string] // "client|list" when lastCmd has subcommands
	killed  atomic.Bool            // CLIENT KILL: close at the next chance
	flags   atomic.Int32           // clientFlag bits
	db      atomic.Int32           // the selected database (SELECT)
	noEvict atomic.Bool
	noTouch atomic.Bool
	user    atomic.Pointer[string] // the ACL user's name; nil: default
	// unblock is the channel of the blocking command waiting now (CLIENT
	// UNBLOCK sends it unblockTimeout or unblockError), nil otherwise
	unblock atomic.Pointer[chan waitResult]
	// qbuf and qbufSize are the input held and the read buffer's size,
	// as of the client's last read or the cron (querybuf.go)
	qbuf     atomic.Int64
	qbufSize atomic.Int64
	// mem is the memory the client held at its last batch (noteMem,
	// client_evict.go); -1 once it is dropped
	mem atomic.Int64
	// omem is its reply bytes unsent, as of the same moment
	omem atomic.Int64
	// subs counts its subscriptions by kind (channels, patterns, shard
	// channels), proto is its protocol (2 or 3) once it said HELLO
	subs  [psKinds]atomic.Int32
	proto atomic.Int32
	// lib is CLIENT SETINFO's lib-name and lib-ver
	lib atomic.Pointer[[2]string]
	// multiN is the number of commands queued in its MULTI (CLIENT
	// LIST's multi when flagMulti is set)
	multiN atomic.Int32
}

const (
	flagMulti int32 = 1 << iota
	flagMonitor
	flagBlocked
)

// replyMode is CLIENT REPLY: on, off or skip (the next command only).
type replyMode uint8

const (
	replyOn replyMode = iota
	replyOff
	replySkip
	replySkipNext // SKIP was the command just run: the one after it is skipped
)

// showCmd names cmd as the client's command in CLIENT LIST (NULL for
// nil, an unknown command) when it does not run (queued in MULTI,
// refused) or before it runs (EXEC): Redis names the command it looked
// up, whether it runs or not. afterCall names a command that ran.
func (c *Client) showCmd(cmd *command.Command) {
	if c.shared.lastCmd.Load() != cmd {
		c.shared.lastCmd.Store(cmd)
	}
	if cmd != nil && cmd.Stats.Container && len(c.Args) > 1 {
		if !c.srv.knownSub(cmd, c.Args) {
			c.showCmd(nil)
			return
		}
		full := cmd.Name + "|" + strings.ToLower(string(c.Args[1]))
		c.shared.lastSub.Store(&full)
	} else if c.shared.lastSub.Load() != nil {
		c.shared.lastSub.Store(nil)
	}
}

// knownSub reports whether args[1] is a subcommand of the container cmd
// (Redis's or gantry's, cmd.Subs): the dispatcher refuses an unknown one
// when it looks the command up, and CLIENT LIST shows cmd=NULL for it,
// as for an unknown command.
func (s *Server) knownSub(cmd *command.Command, args [][]byte) bool {
	return cmd.Sub(args) != nil
}

// setName sets the client's name (CLIENT SETNAME, HELLO SETNAME, RESET).
func (c *Client) setName(n string) {
	c.name = n
	c.shared.name.Store(&n)
}

func (c *Client) sharedName() string {
	if p := c.shared.name.Load(); p != nil {
		return *p
	}
	return ""
}

// applyReplyMode drops the reply of the command just run when CLIENT
// REPLY says so; start is where its reply begins.
func (c *Client) applyReplyMode(start int) {
	// pushes are not replies: messages and invalidations moved in before
	// the reply, and (un)subscribe confirmations (pushes in Redis 7, in
	// RESP2 too), stay whatever CLIENT REPLY says
	if c.pushEnd > start {
		start = c.pushEnd
	}
	if c.Cmd != nil && c.Cmd.Group == "pubsub" && strings.HasSuffix(c.Cmd.Name, "subscribe") {
		start = len(c.W.B)
	}
	switch c.replyMode {
	case replyOff:
		c.W.B = c.W.B[:start]
	case replySkipNext:
		c.replyMode = replySkip
	case replySkip:
		c.W.B = c.W.B[:start]
		c.replyMode = replyOn
	}
}

// setUser logs the connection in as h; other connections read the name
// (CLIENT LIST, CLIENT KILL USER) from shared.
func (c *Client) setUser(h *acl.Handle) {
	c.user = h
	name := h.User().Name
	c.shared.user.Store(&name)
}

// sharedUser is x's user name, safe to read from any connection.
func (x *Client) sharedUser() string {
	if p := x.shared.user.Load(); p != nil {
		return *p
	}
	return acl.DefaultUser
}

// infoLine is the connection's own CLIENT INFO line (the ACL log's
// client-info).
func (c *Client) infoLine() string { return c.clientLine(c) }

// clientLine is the CLIENT LIST / CLIENT INFO line of x as seen by c.
func (c *Client) clientLine(x *Client) string {
	s := c.srv
	nowMs := s.nowMs()
	last := x.lastTime.Load()
	if last == 0 {
		last = x.created.UnixMilli()
	}
	flags := ""
	f := x.shared.flags.Load()
	if f&flagMulti != 0 {
		flags += "x"
	}
	if f&flagMonitor != 0 {
		flags += "O"
	}
	if f&flagBlocked != 0 {
		flags += "b"
	}
	if x.shared.noEvict.Load() {
		flags += "e"
	}
	if x.shared.noTouch.Load() {
		flags += "T"
	}
	var subs [psKinds]int
	for k := range subs {
		subs[k] = int(x.shared.subs[k].Load())
	}
	if subs[psChannel]+subs[psPattern]+subs[psShard] > 0 {
		flags += "P"
	}
	if flags == "" {
		flags = "N"
	}
	cmd := "NULL"
	if sub := x.shared.lastSub.Load(); sub != nil {
		cmd = *sub
	} else if lc := x.shared.lastCmd.Load(); lc != nil {
		cmd = lc.Name
	}
	switch {
	case x != c:
	case c.InExec: // Redis names the command the client sent
		cmd = "exec"
	case len(c.Args) > 1 && c.Cmd != nil && c.Cmd.Stats.Container:
		cmd = c.Cmd.Name + "|" + strings.ToLower(string(c.Args[1]))
	case c.Cmd != nil:
		cmd = c.Cmd.Name
	}
	// qsize is the read buffer's size, unsent the reply bytes not written
	// yet, rbs and rbp the reply buffer's usable size and peak
	// (replybuf.go), argvMem the running command's arguments
	multi, proto, lib, ver := "-1", 0, "", ""
	var qbuf, qsize, unsent, rbs, rbp, argvMem, totMem int
	if x == c { // its own fields: safe to read
		if f&flagMulti != 0 { // in MULTI, or in EXEC: multiN is len(c.queued) or EXEC's queue's
			multi = strconv.Itoa(int(c.shared.multiN.Load()))
		}
		// the query buffer still holds the running command, as in Redis
		qbuf, qsize, proto, lib, ver = c.rend-c.rstart+requestLen(c.Args), len(c.rbuf), c.W.Proto, c.libName, c.libVer
		unsent, rbs, rbp = len(c.W.B)-c.wpos, c.reply.size, c.reply.peak
		for _, a := range c.Args {
			argvMem += len(a)
		}
		totMem = int(c.memUsage()) + argvMem
	} else { // another client's: what it published after its last read
		qbuf, qsize = int(x.shared.qbuf.Load()), int(x.shared.qbufSize.Load())
		unsent, proto = int(x.shared.omem.Load()), int(x.shared.proto.Load())
		rbs, rbp = int(x.reply.sharedSize.Load()), int(x.reply.sharedPeak.Load())
		if l := x.shared.lib.Load(); l != nil {
			lib, ver = l[0], l[1]
		}
		if f&flagMulti != 0 {
			multi = strconv.Itoa(int(x.shared.multiN.Load()))
		}
		// its buffers, MULTI queue, watched keys and subscriptions
		totMem = max(int(x.shared.mem.Load()), qsize+unsent)
	}
	obl, oll, omem := replyFields(unsent, rbs)
	var b strings.Builder
	b.Grow(300)
	w := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	itoa := strconv.Itoa
	w("id", strconv.FormatInt(x.id, 10))
	w("addr", x.nc.RemoteAddr().String())
	w("laddr", x.nc.LocalAddr().String())
	w("fd", itoa(x.fd))
	w("name", x.sharedName())
	w("age", strconv.FormatInt((nowMs-x.created.UnixMilli())/1000, 10))
	w("idle", strconv.FormatInt(max(0, nowMs-last)/1000, 10))
	w("flags", flags)
	w("db", itoa(int(x.shared.db.Load())))
	w("sub", itoa(subs[psChannel]))
	w("psub", itoa(subs[psPattern]))
	w("ssub", itoa(subs[psShard]))
	w("multi", multi)
	w("qbuf", itoa(qbuf))
	w("qbuf-free", itoa(max(0, qsize-qbuf)))
	w("argv-mem", itoa(argvMem))
	w("multi-mem", "0")
	w("rbs", itoa(rbs))
	w("rbp", itoa(rbp))
	w("obl", itoa(obl))
	w("oll", itoa(oll))
	w("omem", itoa(omem))
	w("tot-mem", itoa(totMem))
	w("events", "r")
	w("cmd", cmd)
	w("user", x.sharedUser())
	w("redir", "-1")
	w("resp", itoa(max(proto, 2)))
	w("lib-name", lib)
	w("lib-ver", ver)
	return b.String()
}

func (s *Server) clientsSorted() []*Client {
	s.mu.Lock()
	clients := make([]*Client, 0, len(s.clients))
	for _, x := range s.clients {
		clients = append(clients, x)
	}
	s.mu.Unlock()
	sort.Slice(clients, func(i, j int) bool { return clients[i].id < clients[j].id })
	return clients
}

// clientType is the type CLIENT LIST TYPE and CLIENT KILL TYPE name:
// master for the link applying a primary's stream, pubsub for a client
// with a subscription (as Redis 7.0, whatever its protocol), normal
// otherwise (a replica's link is not told apart from other clients).
func clientType(x *Client) string {
	if x.master {
		return "master"
	}
	for k := range x.shared.subs {
		if x.shared.subs[k].Load() > 0 {
			return "pubsub"
		}
	}
	return "normal"
}

func validType(t string) bool {
	switch t {
	case "normal", "master", "replica", "slave", "pubsub":
		return true
	}
	return false
}

// CLIENT LIST [TYPE type] [ID id ...]
func clientList(c *Client) {
	var typ string
	ids := map[int64]bool{}
	for i := 2; i < len(c.Args); i++ {
		switch {
		case command.EqualFold(c.Args[i], "type") && i+1 < len(c.Args):
			typ = strings.ToLower(string(c.Args[i+1]))
			if !validType(typ) {
				c.W.Error("ERR Unknown client type '" + string(c.Args[i+1]) + "'")
				return
			}
			if typ == "slave" {
				typ = "replica"
			}
			i++
		case command.EqualFold(c.Args[i], "id") && i+1 < len(c.Args):
			for i++; i < len(c.Args); i++ {
				id, ok := command.ParseInt(c.Args[i])
				if !ok || id <= 0 {
					c.W.Error("ERR Invalid client ID")
					return
				}
				ids[id] = true
			}
		default:
			c.W.Error(command.ErrSyntax)
			return
		}
	}
	var b strings.Builder
	for _, x := range c.srv.clientsSorted() {
		if typ != "" && clientType(x) != typ {
			continue
		}
		if len(ids) > 0 && !ids[x.id] {
			continue
		}
		b.WriteString(c.clientLine(x))
		b.WriteByte('\n')
	}
	c.W.Verbatim(b.String())
}

// CLIENT KILL addr | CLIENT KILL [ID id] [TYPE type] [USER user]
// [ADDR addr] [LADDR addr] [SKIPME yes|no] [MAXAGE secs] ...
func clientKill(c *Client) {
	if len(c.Args) < 3 {
		c.W.Error("ERR wrong number of arguments for 'client|kill' command")
		return
	}
	type filter struct {
		id            int64
		typ, user     string
		addr, laddr   string
		maxAge        int64
		skipMe, isOld bool
	}
	f := filter{skipMe: true}
	if len(c.Args) == 3 { // the old form: one address
		f.addr, f.isOld, f.skipMe = string(c.Args[2]), true, false
	} else {
		if len(c.Args)%2 != 0 {
			c.W.Error(command.ErrSyntax)
			return
		}
		for i := 2; i < len(c.Args); i += 2 {
			v := string(c.Args[i+1])
			switch strings.ToLower(string(c.Args[i])) {
			case "id":
				n, ok := command.ParseInt(c.Args[i+1])
				if !ok || n <= 0 {
					c.W.Error("ERR client-id should be greater than 0")
					return
				}
				f.id = n
			case "type":
				f.typ = strings.ToLower(v)
				if !validType(f.typ) {
					c.W.Error("ERR Unknown client type '" + v + "'")
					return
				}
				if f.typ == "slave" {
					f.typ = "replica"
				}
			case "user":
				if c.srv.users.Get(v) == nil {
					c.W.Error("ERR No such user '" + v + "'")
					return
				}
				f.user = v
			case "addr":
				f.addr = v
			case "laddr":
				f.laddr = v
			case "skipme":
				switch strings.ToLower(v) {
				case "yes":
					f.skipMe = true
				case "no":
					f.skipMe = false
				default:
					c.W.Error(command.ErrSyntax)
					return
				}
			case "maxage":
				n, ok := command.ParseInt(c.Args[i+1])
				if !ok || n <= 0 {
					c.W.Error("ERR maxage should be greater than 0")
					return
				}
				f.maxAge = n
			default:
				c.W.Error(command.ErrSyntax)
				return
			}
		}
	}
	now := c.srv.nowMs()
	killed := 0
	for _, x := range c.srv.clientsSorted() {
		switch {
		case f.id != 0 && x.id != f.id,
			f.typ != "" && clientType(x) != f.typ,
			f.user != "" && x.sharedUser() != f.user,
			f.addr != "" && x.nc.RemoteAddr().String() != f.addr,
			f.laddr != "" && x.nc.LocalAddr().String() != f.laddr,
			f.maxAge != 0 && (now-x.created.UnixMilli())/1000 < f.maxAge,
			f.skipMe && x == c:
			continue
		}
		killed++
		if x == c {
			c.closing = true // after this reply
			continue
		}
		c.srv.killClient(x)
	}
	if f.isOld {
		if killed == 0 {
			c.W.Error("ERR No such client")
			return
		}
		c.W.OK()
		return
	}
	c.W.Int(int64(killed))
}

// killClient closes another client: a goroutine-served one when its read
// fails, one in an event loop by its loop's cron, requested now.
func (s *Server) killClient(x *Client) {
	x.shared.killed.Store(true)
	// wakes a goroutine-served client's read; a loop's raw reads ignore it
	_ = x.nc.SetReadDeadline(time.Unix(1, 0))
	for _, l := range s.loops {
		l.requestCron()
	}
}

// clientAdmin serves the CLIENT subcommands added for introspection; false
// if sub is not one of them.
func clientAdmin(c *Client, sub string) bool {
	argc := func(n int) bool {
		if len(c.Args) != n {
			c.W.Error("ERR wrong number of arguments for 'client|" + sub + "' command")
			return false
		}
		return true
	}
	onOff := func(set func(bool)) {
		if !argc(3) {
			return
		}

		switch {
		case command.EqualFold(c.Args[2], "on"):
			set(true)
		case command.EqualFold(c.Args[2], "off"):
			set(false)
		default:
			c.W.Error(command.ErrSyntax)
			return
		}
		c.W.OK()
	}
	switch sub {
	case "list":
		clientList(c)
	case "info":
		if argc(2) {
			c.W.Verbatim(c.clientLine(c) + "\n")
		}
	case "kill":
		clientKill(c)
	case "no-evict":
		onOff(c.shared.noEvict.Store)
	case "no-touch":
		onOff(c.shared.noTouch.Store)
	case "reply":
		if !argc(3) {
			return true
		}
		switch strings.ToLower(string(c.Args[2])) {
		case "on":
			c.replyMode = replyOn
			c.W.OK()
		case "off":
			c.replyMode = replyOff
		case "skip":
			if c.replyMode != replyOff {
				c.replyMode = replySkipNext
			}
		default:
			c.W.Error(command.ErrSyntax)
		}
	case "getredir":
		if argc(2) {
			c.W.Int(c.trackingRedirect())
		}
	case "tracking":
		if len(c.Args) < 3 {
			c.W.Error("ERR wrong number of arguments for 'client|tracking' command")
			return true
		}
		cmdClientTracking(c)
	case "caching":
		cmdClientCaching(c)
	case "trackinginfo":
		if argc(2) {
			cmdClientTrackingInfo(c)
		}
	case "unblock":
		if len(c.Args) > 4 {
			c.SubcommandSyntax()
			return true
		}
		how := waitTimeout // the reason first, then the id, as Redis
		if len(c.Args) == 4 {
			switch {
			case command.EqualFold(c.Args[3], "timeout"):
			case command.EqualFold(c.Args[3], "error"):
				how = waitUnblockError
			default:
				c.W.Error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
				return true
			}
		}
		id, ok := command.ParseInt(c.Args[2])
		if !ok {
			c.W.Error("ERR value is not an integer or out of range")
			return true
		}
		c.W.Int(c.srv.unblockClient(id, how))
	default:
		return false
	}
	return true
}

// requestLen is the length of args as a RESP multibulk request.
func requestLen(args [][]byte) int {
	n := 1 + len(strconv.Itoa(len(args))) + 2
	for _, a := range args {
		n += 1 + len(strconv.Itoa(len(a))) + 2 + len(a) + 2
	}
	return n
}
