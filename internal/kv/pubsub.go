package kv

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/resp"
)

// Pub/sub. A publisher never writes to a subscriber's socket or reply
// buffer, which belong to the subscriber's event loop (or goroutine): it
// appends the encoded message to the subscriber's mailbox and wakes it.
// The subscriber moves its mailbox into its replies before its next
// command and whenever its loop is woken. The mailbox and the unsent
// replies together are held to the pubsub class of
// client-output-buffer-limit: past the hard limit (or the soft limit for
// longer than its seconds) the subscriber is disconnected, so a slow
// subscriber never makes the server hold more than the limit for it.

// pubsubKind is one of the three namespaces: channels, patterns and shard
// channels.
type pubsubKind int

const (
	psChannel pubsubKind = iota
	psPattern
	psShard
	psKinds
)

// mailMax bounds a mailbox when client-output-buffer-limit sets no pubsub
// limit at all.
const mailMax = 1 << 30

// pubsub is the server's registry of subscriptions.
type pubsub struct {
	mu   sync.RWMutex
	subs [psKinds]map[string]*subscribers
	// pats are the patterns of subs[psPattern], which every PUBLISH on a
	// channel (and every keyspace notification) matches in turn: a slice
	// for the same reason as subscribers.list
	pats []*subscribers
	// notify holds the notify-keyspace-events flags (notifyXxx bits).
	notify atomic.Uint32
}

func (p *pubsub) init() {
	for i := range p.subs {
		p.subs[i] = make(map[string]*subscribers)
	}
}

// subscribers are the clients subscribed to one name. PUBLISH ranges
// over list, a slice: ranging over a map costs an iterator and a random
// start (a chacha8 draw) per message, about a tenth of a PUBLISH's
// instructions with one subscriber. pos makes a removal O(1): the last
// client takes the place of the one that leaves (the order of delivery
// across subscribers means nothing; each one's own messages stay in
// order).
type subscribers struct {
	pos  map[*Client]int // index in list
	list []*Client
	name string // the pattern, for a pattern's subscribers
	pat  int    // index in pubsub.pats, for a pattern's subscribers
}

func (ss *subscribers) add(c *Client) {
	if _, ok := ss.pos[c]; ok {
		return
	}
	ss.pos[c] = len(ss.list)
	ss.list = append(ss.list, c)
}

func (ss *subscribers) remove(c *Client) {
	i, ok := ss.pos[c]
	if !ok {
		return
	}
	last := len(ss.list) - 1
	if i != last {
		ss.list[i] = ss.list[last]
		ss.pos[ss.list[i]] = i
	}
	ss.list[last] = nil // no reference to a closed client stays behind
	ss.list = ss.list[:last]
	delete(ss.pos, c)
}

// dropPattern removes a pattern nobody subscribes to any more from pats.
func (p *pubsub) dropPattern(m *subscribers) {
	last := len(p.pats) - 1
	if m.pat != last {
		p.pats[m.pat] = p.pats[last]
		p.pats[m.pat].pat = m.pat
	}
	p.pats[last] = nil
	p.pats = p.pats[:last]
}

// count is the number of subscribers; 0 for a nil list.
func (ss *subscribers) count() int {
	if ss == nil {
		return 0
	}
	return len(ss.list)
}

// clientSubs are a client's subscriptions; only its own goroutine changes
// them, under pubsub.mu.
type clientSubs struct {
	names [psKinds]map[string]struct{}
}

func (cs *clientSubs) count() int {
	if cs == nil {
		return 0
	}
	return len(cs.names[psChannel]) + len(cs.names[psPattern]) + len(cs.names[psShard])
}

// mailbox holds messages published to a client until its own goroutine
// takes them.
type mailbox struct {
	mu     sync.Mutex
	buf    []byte
	proto  int        // the subscriber's protocol when it subscribed
	loop   *eventLoop // the loop serving the client, nil on a goroutine
	queued bool       // in loop's mail list already
	kill   bool       // over the hard limit: close the client
}

// subscribed reports whether a RESP2 client is in subscribed mode.
func (c *Client) subscribed() bool { return c.subs.count() > 0 }

// subscribe adds names of kind to the client, replying one confirmation
// per name as Redis does.
func (c *Client) subscribe(kind pubsubKind, names [][]byte) {
	s := c.srv
	c.takeMail()
	if c.subs == nil {
		c.subs = &clientSubs{}
	}
	c.mail.mu.Lock()
	c.mail.proto = c.W.Proto
	c.mail.mu.Unlock()
	kw := [psKinds]string{"subscribe", "psubscribe", "ssubscribe"}[kind]
	for _, n := range names {
		name := string(n)
		s.ps.mu.Lock()
		// the ACL check ran before: an ACL SETUSER on another loop may
		// have taken the channel away since, and scanned the
		// subscribers before this one joined them. Checked under the
		// lock the scan takes, the subscription is closed as if it had
		// come first.
		if c.user != nil && !c.user.User().KeepsSubscription(name, kind == psPattern) {
			c.closing = true
		}
		if c.subs.names[kind] == nil {
			c.subs.names[kind] = make(map[string]struct{})
		}
		if _, ok := c.subs.names[kind][name]; !ok {
			c.subs.names[kind][name] = struct{}{}
			m := s.ps.subs[kind][name]
			if m == nil {
				m = &subscribers{pos: make(map[*Client]int, 1), name: name}
				s.ps.subs[kind][name] = m
				if kind == psPattern {
					m.pat = len(s.ps.pats)
					s.ps.pats = append(s.ps.pats, m)
				}
			}
			m.add(c)
			c.shared.subs[kind].Add(1)
		}
		s.ps.mu.Unlock()
		c.pushHeader(3)
		c.W.BulkString(kw)
		c.W.Bulk(n)
		c.W.Int(int64(c.subCount(kind)))
	}
}

// subCount is what a (un)subscribe confirmation counts: shard channels
// alone for the shard kind, channels and patterns otherwise.
func (c *Client) subCount(kind pubsubKind) int {
	if c.subs == nil {
		return 0
	}
	if kind == psShard {
		return len(c.subs.names[psShard])
	}
	return len(c.subs.names[psChannel]) + len(c.subs.names[psPattern])
}

// unsubscribe removes names (all of kind when none) and replies one
// confirmation per name, or one with a null name when there was none.
func (c *Client) unsubscribe(kind pubsubKind, names [][]byte, reply bool) {
	s := c.srv
	c.takeMail()
	kw := [psKinds]string{"unsubscribe", "punsubscribe", "sunsubscribe"}[kind]
	if len(names) == 0 && c.subs != nil {
		for n := range c.subs.names[kind] {
			names = append(names, []byte(n))
		}
		sort.Slice(names, func(i, j int) bool { return string(names[i]) < string(names[j]) })
	}
	if len(names) == 0 {
		if reply {
			c.pushHeader(3)
			c.W.BulkString(kw)
			c.W.Null()
			c.W.Int(int64(c.subCount(kind)))
		}
		return
	}
	for _, n := range names {
		name := string(n)
		s.ps.mu.Lock()
		if c.subs != nil {
			if _, ok := c.subs.names[kind][name]; ok {
				delete(c.subs.names[kind], name)
				c.shared.subs[kind].Add(-1)
				if m := s.ps.subs[kind][name]; m != nil {
					m.remove(c)
					if len(m.list) == 0 {
						delete(s.ps.subs[kind], name)
						if kind == psPattern {
							s.ps.dropPattern(m)
						}
					}
				}
			}
		}
		s.ps.mu.Unlock()
		if reply {
			c.pushHeader(3)
			c.W.BulkString(kw)
			c.W.Bulk(n)
			c.W.Int(int64(c.subCount(kind)))
		}
	}
}

// closeRevokedSubscribers closes the connections logged in as user that
// hold a subscription its current version no longer keeps (Redis 7.0's
// ACLKillPubsubClientsIfNeeded, after an ACL SETUSER that revoked
// channels). Each is closed from its own loop (killClient) with nothing
// more sent, as Redis frees it; the connection running the command, when
// it is one of them, gets its reply first (redis-server 7.0.15 crashes
// there).
func (s *Server) closeRevokedSubscribers(c *Client, user string) {
	h := s.users.Get(user)
	if h == nil {
		return
	}
	u := h.User()
	var doomed map[*Client]bool
	s.ps.mu.RLock()
	for k := range s.ps.subs {
		for name, m := range s.ps.subs[k] {
			for _, x := range m.list {
				if x.master || doomed[x] || x.sharedUser() != user ||
					u.KeepsSubscription(name, pubsubKind(k) == psPattern) {
					continue
				}
				if doomed == nil {
					doomed = make(map[*Client]bool)
				}
				doomed[x] = true
			}
		}
	}
	s.ps.mu.RUnlock()
	for x := range doomed {
		if x == c {
			c.closing = true
			continue
		}
		s.killClient(x)
	}
}

// pubsubDrop forgets a closing client's subscriptions.
func (c *Client) pubsubDrop() {
	if c.subs == nil {
		return
	}
	for k := pubsubKind(0); k < psKinds; k++ {
		c.unsubscribe(k, nil, false)
	}
	c.mail.mu.Lock()
	c.mail.buf = nil
	c.mail.mu.Unlock()
}

// pushHeader starts a pub/sub reply: a push in RESP3, an array in RESP2.
func (c *Client) pushHeader(n int) {
	if c.W.Proto == 3 {
		c.W.B = append(c.W.B, '>')
		c.W.B = strconv.AppendInt(c.W.B, int64(n), 10)
		c.W.B = append(c.W.B, '\r', '\n')
		return
	}
	c.W.Array(n)
}

// publish delivers msg on channel of kind (psChannel or psShard; channel
// messages also go to matching patterns) and returns the receivers.
func (s *Server) publish(kind pubsubKind, channel, msg []byte) int {
	s.ps.mu.RLock()
	defer s.ps.mu.RUnlock()
	n := 0
	kw := "message"
	if kind == psShard {
		kw = "smessage"
	}
	var list []*Client
	if m := s.ps.subs[kind][string(channel)]; m != nil {
		list = m.list
	}
	for _, c := range list {
		c.deliver(func(b []byte, proto int) []byte {
			b = appendPushHeader(b, proto, 3)
			b = appendBulk(b, kw)
			b = appendBulkB(b, channel)
			return appendBulkB(b, msg)
		})
		n++
	}
	if kind != psChannel {
		return n
	}
	for _, subs := range s.ps.pats {
		pat := subs.name
		if !command.GlobMatch([]byte(pat), channel) {
			continue
		}
		for _, c := range subs.list {
			c.deliver(func(b []byte, proto int) []byte {
				b = appendPushHeader(b, proto, 4)
				b = appendBulk(b, "pmessage")
				b = appendBulk(b, pat)
				b = appendBulkB(b, channel)
				return appendBulkB(b, msg)
			})
			n++
		}
	}
	return n
}

func appendPushHeader(b []byte, proto, n int) []byte {
	if proto == 3 {
		b = append(b, '>')
	} else {
		b = append(b, '*')
	}
	b = appendCount(b, n)
	return append(b, '\r', '\n')
}

// appendCount appends n >= 0 in decimal; a message's counts and lengths
// are mostly under 100, which strconv formats in about 60 instructions
// (five times per PUBLISH).
func appendCount(b []byte, n int) []byte {
	switch {
	case n >= 0 && n < 10:
		return append(b, byte('0'+n))
	case n >= 10 && n < 100:
		return append(b, byte('0'+n/10), byte('0'+n%10))
	}
	return strconv.AppendInt(b, int64(n), 10)
}

func appendBulk(b []byte, s string) []byte {
	b = append(b, '$')
	b = appendCount(b, len(s))
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulkB(b, s []byte) []byte {
	b = append(b, '$')
	b = appendCount(b, len(s))
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// deliver appends a message to the client's mailbox and wakes the client.
// A mailbox over the pubsub hard limit is dropped and the client closed.
func (c *Client) deliver(enc func(b []byte, proto int) []byte) {
	o := &c.srv.lim.output[classPubsub]
	hard := o.hard.Load()
	if hard <= 0 {
		hard = mailMax
	}
	m := &c.mail
	m.mu.Lock()
	if m.kill {
		m.mu.Unlock()
		return
	}
	m.buf = enc(m.buf, m.proto)
	if int64(len(m.buf)) > hard {
		m.kill = true
		m.buf = nil
		c.srv.outputLimitCloses.Add(1)
		c.srv.logger.Printf("closing client id=%d addr=%s: pub/sub messages unsent over the hard limit %d (client-output-buffer-limit pubsub)",
			c.id, c.nc.RemoteAddr(), hard)
	}
	l, queued := m.loop, m.queued
	if l != nil {
		m.queued = true
	}
	kill := m.kill
	m.mu.Unlock()
	switch {
	case l != nil:
		if !queued {
			l.postMail(c)
		}
	case kill:
		c.nc.Close() // unblocks a write to a subscriber that does not read
	default:
		// interrupt the goroutine's read; serve looks at the mailbox
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// takeMail moves the mailbox into the replies; false means the client is
// over its pubsub output limit and must be closed.
func (c *Client) takeMail() bool {
	m := &c.mail
	m.mu.Lock()
	m.queued = false
	kill := m.kill
	if len(m.buf) > 0 {
		if len(c.W.B) == 0 {
			// nothing else to send: the mailbox becomes the replies and
			// the empty reply buffer the mailbox, with no copy (the
			// common case of a subscriber that only receives)
			c.W.B, m.buf = m.buf, c.W.B[:0]
		} else {
			c.W.B = append(c.W.B, m.buf...)
			m.buf = m.buf[:0]
		}
		c.pushEnd = len(c.W.B)
		if cap(m.buf) > keptBufSize {
			m.buf = nil
		}
	}
	m.mu.Unlock()
	if kill {
		c.W.B = c.W.B[:c.wpos]
		c.closing = true
		return false
	}
	if c.subs.count() > 0 {
		if out := len(c.W.B) - c.wpos; out > 0 {
			if c.pubsubOver(out, c.srv.nowMs()) {
				return false
			}
		}
	}
	return true
}

// pubsubOver applies the pubsub class limits to a subscriber's unsent
// replies.
func (c *Client) pubsubOver(out int, now int64) bool {
	o := &c.srv.lim.output[classPubsub]
	hard, soft, secs := o.hard.Load(), o.soft.Load(), o.softSecs.Load()
	if hard > 0 && int64(out) > hard {
		c.closeForOutput(out, "pubsub hard limit "+strconv.FormatInt(hard, 10))
		return true
	}
	if c.softOver(out, soft, secs, now) {
		c.closeForOutput(out, "pubsub soft limit "+strconv.FormatInt(soft, 10)+" for more than "+strconv.FormatInt(secs, 10)+" s")
		return true
	}
	return false
}

// holdMail reports whether the mailbox holds messages, fewer than limit
// bytes of them, and marks it queued: its loop holds it for a later pass
// (eventLoop.held) and publishers need not post it again.
func (c *Client) holdMail(limit int) bool {
	m := &c.mail
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kill || len(m.buf) == 0 || len(m.buf) >= limit {
		return false
	}
	m.queued = true
	return true
}

// hasMail reports whether messages wait in the mailbox.
func (c *Client) hasMail() bool {
	c.mail.mu.Lock()
	defer c.mail.mu.Unlock()
	return len(c.mail.buf) > 0 || c.mail.kill
}

// setMailLoop records which loop serves the client (nil: a goroutine).
func (c *Client) setMailLoop(l *eventLoop) {
	c.mail.mu.Lock()
	c.mail.loop = l
	c.mail.queued = false
	c.mail.mu.Unlock()
}

// subscribedModeRefusal is the RESP2 rule: a subscribed client may only
// (un)subscribe, PING, QUIT and RESET.
func subscribedModeRefusal(c *Client, cmd *command.Command) bool {
	if c.W.Proto == 3 || !c.subscribed() {
		return false
	}
	switch cmd.Name {
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "ping", "quit", "reset":
		return false
	}
	c.W.Error("ERR Can't execute '" + cmd.Name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
	return true
}

func cmdSubscribe(c *Client) {
	if c.multi || c.InExec {
		c.W.Error("ERR Command not allowed inside a transaction")
		return
	}
	c.subscribe(psChannel, c.Args[1:])
}

func cmdPSubscribe(c *Client) {
	c.subscribe(psPattern, c.Args[1:])
}

func cmdSSubscribe(c *Client) {
	c.subscribe(psShard, c.Args[1:])
}

func cmdUnsubscribe(c *Client)  { c.unsubscribe(psChannel, c.Args[1:], true) }
func cmdPUnsubscribe(c *Client) { c.unsubscribe(psPattern, c.Args[1:], true) }
func cmdSUnsubscribe(c *Client) { c.unsubscribe(psShard, c.Args[1:], true) }

func cmdPublish(c *Client)  { c.publishReply(psChannel) }
func cmdSPublish(c *Client) { c.publishReply(psShard) }

// publishReply publishes the command's message and answers the count. A
// RESP3 client subscribed to what it publishes gets the message before
// the count, as Redis writes it into the publisher's output first
// (not inside EXEC, whose reply is one array: the message follows it).
func (c *Client) publishReply(kind pubsubKind) {
	n := c.srv.publish(kind, c.Args[1], c.Args[2])
	c.propagatePublish()
	if !c.InExec && c.subs.count() > 0 && !c.takeMail() {
		return // over its pubsub output limit: closing
	}
	c.W.Int(int64(n))
}

// propagatePublish sends a PUBLISH or SPUBLISH to the replicas, as Redis
// does, so that their subscribers get the message too (a replica applies
// it as a publish of its own). It is not logged on its own (it changes no
// data); inside a transaction it goes with the transaction's records, in
// order, as Redis propagates it (the log then holds it too: replayed, it
// reaches no subscriber).
func (c *Client) propagatePublish() {
	s := c.srv
	if c.master || s.repl == nil || !s.repl.Active() {
		return
	}
	rec := resp.AppendCommand(nil, c.Args...)
	if c.InExec {
		c.txSelect()
		c.txrec = append(c.txrec, rec...)
		c.nrec++
		return
	}
	c.replOff = s.repl.FeedDB(c.DB, rec, nil)
}

// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT |
// SHARDCHANNELS [pattern] | SHARDNUMSUB [channel ...] | HELP
func cmdPubsub(c *Client) {
	s := c.srv
	sub := string(command.LowerInto(nil, c.Args[1]))
	s.ps.mu.RLock()
	defer s.ps.mu.RUnlock()
	switch {
	case (sub == "channels" || sub == "shardchannels") && len(c.Args) <= 3:
		kind := psChannel
		if sub == "shardchannels" {
			kind = psShard
		}
		var out []string
		for name := range s.ps.subs[kind] {
			if len(c.Args) == 3 && !command.GlobMatch(c.Args[2], []byte(name)) {
				continue
			}
			out = append(out, name)
		}
		sort.Strings(out)
		c.W.Array(len(out))
		for _, n := range out {
			c.W.BulkString(n)
		}
	case sub == "numsub" || sub == "shardnumsub":
		kind := psChannel
		if sub == "shardnumsub" {
			kind = psShard
		}
		c.W.Map(len(c.Args) - 2)
		for _, ch := range c.Args[2:] {
			c.W.Bulk(ch)
			c.W.Int(int64(s.ps.subs[kind][string(ch)].count()))
		}
	case sub == "numpat" && len(c.Args) == 2:
		c.W.Int(int64(len(s.ps.subs[psPattern])))
	case sub == "help" && len(c.Args) == 2:
		help := []string{
			"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"CHANNELS [<pattern>]", "    Return the currently active channels matching a <pattern> (default: '*').",
			"NUMPAT", "    Return number of subscriptions to patterns.",
			"NUMSUB [<channel> ...]", "    Return the number of subscribers for the specified channels, excluding",
			"    pattern subscriptions(default: no channels).",
			"SHARDCHANNELS [<pattern>]", "    Return the currently active shard level channels matching a <pattern> (default: '*').",
			"SHARDNUMSUB [<shardchannel> ...]", "    Return the number of subscribers for the specified shard level channel(s)",
			"HELP", "    Prints this help.",
		}
		c.W.Array(len(help))
		for _, h := range help {
			c.W.Simple(h)
		}
	default:
		c.SubcommandSyntax()
	}
}

// pingSubscribed is PING in RESP2 subscribed mode: ["pong", message].
func pingSubscribed(c *Client) bool {
	if c.W.Proto == 3 || !c.subscribed() {
		return false
	}
	c.W.Array(2)
	c.W.BulkString("pong")
	if len(c.Args) > 1 {
		c.W.Bulk(c.Args[1])
	} else {
		c.W.BulkString("")
	}
	return true
}

func pubsubSpecs() []cmdSpec {
	const ps = "pubsub"
	const f = "pubsub noscript loading stale"
	return []cmdSpec{
		{"subscribe", -2, f, 0, 0, 0, ps, cmdSubscribe, nil},
		{"psubscribe", -2, f, 0, 0, 0, ps, cmdPSubscribe, nil},
		{"unsubscribe", -1, f, 0, 0, 0, ps, cmdUnsubscribe, nil},
		{"punsubscribe", -1, f, 0, 0, 0, ps, cmdPUnsubscribe, nil},
		{"ssubscribe", -2, f + " selflock", 1, -1, 1, ps, cmdSSubscribe, nil},
		{"sunsubscribe", -1, f + " selflock", 1, -1, 1, ps, cmdSUnsubscribe, nil},
		{"publish", 3, "pubsub loading stale fast may-replicate", 0, 0, 0, ps, cmdPublish, nil},
		{"spublish", 3, "pubsub loading stale fast may-replicate selflock", 1, 1, 1, ps, cmdSPublish, nil},
		{"pubsub", -2, "pubsub loading stale", 0, 0, 0, ps, cmdPubsub, nil},
	}
}
