package kv

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gantry-project/gantry/internal/kv/command"
)

// Client-side caching (CLIENT TRACKING), as Redis 6+. In the default mode
// the server remembers which clients read which keys (the tracking
// table) and sends each of them one invalidation when the key changes,
// then forgets the pair. In BCAST mode it remembers nothing per key:
// every change of a key under one of the client's prefixes is sent to it.
// An invalidation goes to the client itself as a RESP3 push (`>2
// invalidate [keys]`), or to the client named by REDIRECT: as a push if
// that one speaks RESP3, else as a pub/sub message on
// __redis__:invalidate if it is subscribed (RESP2 cannot push otherwise).
// Messages travel through the receiver's mailbox, as pub/sub messages do
// (pubsub.go): they are held to the same output limit and never written
// by the changing client's goroutine.
//
// Keys are remembered with the shards of the read locked and invalidated
// with the shards of the write locked, so a read and a change of the same
// key are ordered and no client keeps a value it is never told about. The
// table is bounded by tracking-table-max-keys: over it, keys are dropped
// with an invalidation to their readers, as Redis does.

// trackingChannel is the pub/sub channel of RESP2 redirection.
const trackingChannel = "__redis__:invalidate"

// clientTracking is a client's tracking mode; guarded by tracker.mu.
type clientTracking struct {
	redirect                             int64
	bcast, optin, optout, noloop, broken bool
	// caching: CLIENT CACHING was given for the next command
	caching  bool
	prefixes []string
}

// tracker is the server's tracking state.
type tracker struct {
	mu      sync.Mutex
	n       atomic.Int32 // tracking clients: the write path's fast check
	clients map[*Client]*clientTracking
	// keys: key -> the clients that read it (default mode)
	keys  map[string]map[*Client]struct{}
	items int64
	// prefixes of BCAST clients, with the keys changed since the last
	// flush (key -> the client that changed it first, nil for the server)
	prefixes map[string]*bcastPrefix
	pending  atomic.Bool
	max      atomic.Int64 // tracking-table-max-keys (0: no limit)
}

type bcastPrefix struct {
	clients map[*Client]struct{}
	keys    map[string]*Client
	order   []string // keys in the order they changed
}

func (s *Server) initTracking() {
	t := &s.ct
	t.clients = make(map[*Client]*clientTracking)
	t.keys = make(map[string]map[*Client]struct{})
	t.prefixes = make(map[string]*bcastPrefix)
	t.max.Store(1000000)
	s.config["tracking-table-max-keys"] = configParam{
		get: func(s *Server) string { return strconv.FormatInt(s.ct.max.Load(), 10) },
		set: func(s *Server, v string) string {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return "argument couldn't be parsed into an integer"
			}
			s.ct.max.Store(n)
			return ""
		},
	}
}

// cmdClientTracking is CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]...
// [BCAST] [OPTIN] [OPTOUT] [NOLOOP], with Redis's checks and errors.
func cmdClientTracking(c *Client) {
	s := c.srv
	var (
		redir                               int64
		bcast, optin, optout, noloop, gotID bool
		prefixes                            []string
	)
	for j := 3; j < len(c.Args); j++ {
		more := j+1 < len(c.Args)
		a := c.Args[j]
		switch {
		case command.EqualFold(a, "redirect") && more:
			j++
			if gotID {
				c.W.Error("ERR A client can only redirect to a single other client")
				return
			}
			id, ok := command.ParseInt(c.Args[j])
			if !ok {
				c.W.Error(command.ErrNotInt)
				return
			}
			if s.clientByID(id) == nil {
				c.W.Error("ERR The client ID you want redirect to does not exist")
				return
			}
			redir, gotID = id, true
		case command.EqualFold(a, "bcast"):
			bcast = true
		case command.EqualFold(a, "optin"):
			optin = true
		case command.EqualFold(a, "optout"):
			optout = true
		case command.EqualFold(a, "noloop"):
			noloop = true
		case command.EqualFold(a, "prefix") && more:
			j++
			prefixes = append(prefixes, string(c.Args[j]))
		default:
			c.W.Error(command.ErrSyntax)
			return
		}
	}
	switch {
	case command.EqualFold(c.Args[2], "off"):
		s.ct.disable(c)
		c.W.OK()
		return
	case !command.EqualFold(c.Args[2], "on"):
		c.W.Error(command.ErrSyntax)
		return
	}
	if !bcast && len(prefixes) > 0 {
		c.W.Error("ERR PREFIX option requires BCAST mode to be enabled")
		return
	}
	if len(prefixes) > maxTrackingPrefixes {
		c.W.Error("ERR too many prefixes: at most " + strconv.Itoa(maxTrackingPrefixes) + " per client")
		return
	}
	t := &s.ct
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.clients[c]
	switch {
	case old != nil && old.bcast != bcast:
		c.W.Error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
		return
	case bcast && (optin || optout):
		c.W.Error("ERR OPTIN and OPTOUT are not compatible with BCAST")
		return
	case optin && optout:
		c.W.Error("ERR You can't use both OPTIN and OPTOUT")
		return
	case old != nil && ((optin && old.optout) || (optout && old.optin)):
		c.W.Error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.")
		return
	}
	if bcast {
		if msg := prefixCollision(old, prefixes); msg != "" {
			c.W.Error(msg)
			return
		}
		if len(prefixes) == 0 && (old == nil || len(old.prefixes) == 0) {
			prefixes = []string{""} // every key
		}
		if old != nil && len(old.prefixes)+len(prefixes) > maxTrackingPrefixes {
			c.W.Error("ERR too many prefixes: at most " + strconv.Itoa(maxTrackingPrefixes) + " per client")
			return
		}
	}
	if old == nil {
		old = &clientTracking{}
		t.clients[c] = old
		t.n.Add(1)
		c.trk = old
	}
	old.redirect, old.bcast, old.optin, old.optout, old.noloop, old.broken = redir, bcast, optin, optout, noloop, false
	for _, p := range prefixes {
		if slices.Contains(old.prefixes, p) {
			continue
		}
		old.prefixes = append(old.prefixes, p)
		bp := t.prefixes[p]
		if bp == nil {
			bp = &bcastPrefix{clients: make(map[*Client]struct{}), keys: make(map[string]*Client)}
			t.prefixes[p] = bp
		}
		bp.clients[c] = struct{}{}
	}
	c.pushTarget.Store(true)
	c.mail.mu.Lock()
	c.mail.proto = c.W.Proto
	c.mail.mu.Unlock()
	if redir != 0 {
		if x := s.clientByID(redir); x != nil {
			x.pushTarget.Store(true)
		}
	}
	c.W.OK()
}

// maxTrackingPrefixes bounds a client's BCAST prefixes.
const maxTrackingPrefixes = 1024

// prefixCollision is Redis's check that a client's prefixes do not
// overlap (one a prefix of another), "" if they do not.
func prefixCollision(old *clientTracking, prefixes []string) string {
	overlap := func(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }
	for i, p := range prefixes {
		if old != nil {
			for _, q := range old.prefixes {
				if overlap(q, p) && q != p {
					return "ERR Prefix '" + p + "' overlaps with an existing prefix '" + q + "'. Prefixes for a single client must not overlap."
				}
			}
		}
		for _, q := range prefixes[i+1:] {
			if overlap(p, q) {
				return "ERR Prefix '" + p + "' overlaps with another provided prefix '" + q + "'. Prefixes for a single client must not overlap."
			}
		}
	}
	return ""
}

// disable turns tracking off for c (CLIENT TRACKING OFF, RESET, close).
// Its entries in the table stay until their keys change or are dropped,
// as in Redis; they are skipped then.
func (t *tracker) disable(c *Client) {
	if c.trk == nil {
		return
	}
	t.mu.Lock()
	if ct := t.clients[c]; ct != nil {
		for _, p := range ct.prefixes {
			if bp := t.prefixes[p]; bp != nil {
				delete(bp.clients, c)
				if len(bp.clients) == 0 {
					delete(t.prefixes, p)
				}
			}
		}
		delete(t.clients, c)
		t.n.Add(-1)
	}
	t.mu.Unlock()
	c.trk = nil
}

// remember records the keys c's read-only command read; the shards of
// its keys are locked.
func (s *Server) rememberKeys(c *Client) {
	t := &s.ct
	t.mu.Lock()
	defer t.mu.Unlock()
	ct := t.clients[c]
	if ct == nil || ct.bcast || (ct.optin && !ct.caching) || (ct.optout && ct.caching) {
		return
	}
	for _, k := range c.Keys {
		m := t.keys[string(k)]
		if m == nil {
			m = make(map[*Client]struct{})
			t.keys[string(k)] = m
		}
		if _, ok := m[c]; !ok {
			m[c] = struct{}{}
			t.items++
		}
	}
	// over tracking-table-max-keys: drop keys, telling their readers
	if max := t.max.Load(); max > 0 {
		for int64(len(t.keys)) > max {
			for k := range t.keys {
				s.invalidateLocked(k, nil)
				break
			}
		}
	}
}

// afterTrackedCommand ends a command of a tracking client: CLIENT CACHING
// lasts for one command (a transaction's, whole).
func (c *Client) afterTrackedCommand(cmd *command.Command) {
	if c.multi || cmd.Name == "client" {
		return
	}
	t := &c.srv.ct
	t.mu.Lock()
	if ct := t.clients[c]; ct != nil {
		ct.caching = false
	}
	t.mu.Unlock()
}

// invalidate tells the readers of key (and the BCAST clients of its
// prefixes) that it changed; by is the client that changed it (nil for
// expiry, eviction, the server). The shard of key is locked.
func (s *Server) invalidate(key []byte, by *Client) {
	t := &s.ct
	t.mu.Lock()
	if len(t.prefixes) > 0 {
		for p, bp := range t.prefixes {
			if !strings.HasPrefix(string(key), p) {
				continue
			}
			if _, ok := bp.keys[string(key)]; !ok {
				if len(bp.order) >= maxPendingKeys {
					continue // a flush is overdue: the next one sends what it has
				}
				bp.keys[string(key)] = by
				bp.order = append(bp.order, string(key))
				t.pending.Store(true)
			}
		}
	}
	if len(t.keys) > 0 {
		s.invalidateLocked(string(key), by)
	}
	t.mu.Unlock()
}

// maxPendingKeys bounds the keys a BCAST prefix gathers between flushes.
const maxPendingKeys = 1 << 16

func (s *Server) invalidateLocked(key string, by *Client) {
	t := &s.ct
	readers, ok := t.keys[key]
	if !ok {
		return
	}
	delete(t.keys, key)
	t.items -= int64(len(readers))
	for x := range readers {
		ct := t.clients[x]
		if ct == nil || ct.bcast || (ct.noloop && x == by) {
			continue
		}
		s.sendInvalidation(x, ct, []string{key}, false)
	}
}

// flushBcast sends the BCAST clients the keys changed under their
// prefixes since the last flush: one message per prefix, as Redis sends
// them before it sleeps.
func (s *Server) flushBcast() {
	t := &s.ct
	if !t.pending.Load() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending.Store(false)
	for _, bp := range t.prefixes {
		if len(bp.order) == 0 {
			continue
		}
		for x := range bp.clients {
			ct := t.clients[x]
			if ct == nil {
				continue
			}
			keys := bp.order
			if ct.noloop {
				keys = nil
				for _, k := range bp.order {
					if bp.keys[k] != x {
						keys = append(keys, k)
					}
				}
				if len(keys) == 0 {
					continue
				}
			}
			s.sendInvalidation(x, ct, keys, false)
		}
		clear(bp.keys)
		bp.order = bp.order[:0]
	}
}

// invalidateAll is FLUSHALL's: every tracking client gets a null
// invalidation and the table is emptied.
func (s *Server) invalidateAll() {
	t := &s.ct
	t.mu.Lock()
	defer t.mu.Unlock()
	for x, ct := range t.clients {
		s.sendInvalidation(x, ct, nil, true)
	}
	clear(t.keys)
	t.items = 0
}

// sendInvalidation delivers keys (or a null, flush) to x or to the client
// it redirects to. t.mu is held.
func (s *Server) sendInvalidation(x *Client, ct *clientTracking, keys []string, flush bool) {
	to := x
	if ct.redirect != 0 {
		to = s.clientByID(ct.redirect)
		if to == nil {
			ct.broken = true
			id := ct.redirect
			x.deliver(func(b []byte, proto int) []byte {
				if proto != 3 {
					return b
				}
				b = appendPushHeader(b, 3, 2)
				b = appendBulk(b, "tracking-redir-broken")
				return appendInt(b, id)
			})
			return
		}
	}
	subscribed := false
	if to != x {
		s.ps.mu.RLock()
		subscribed = to.subs.count() > 0
		s.ps.mu.RUnlock()
	}
	to.deliver(func(b []byte, proto int) []byte {
		switch {
		case proto == 3:
			b = appendPushHeader(b, 3, 2)
			b = appendBulk(b, "invalidate")
		case subscribed:
			b = appendPushHeader(b, 2, 3)
			b = appendBulk(b, "message")
			b = appendBulk(b, trackingChannel)
		default: // RESP2 without redirection: nothing can carry it
			return b
		}
		if flush {
			if proto == 3 {
				return append(b, "_\r\n"...)
			}
			return append(b, "$-1\r\n"...)
		}
		b = appendPushHeader(b, 2, len(keys)) // an array
		for _, k := range keys {
			b = appendBulk(b, k)
		}
		return b
	})
}

func appendInt(b []byte, n int64) []byte {
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// clientByID returns the connected client with id, nil if none.
func (s *Server) clientByID(id int64) *Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients[id]
}

// cmdClientCaching is CLIENT CACHING YES|NO.
func cmdClientCaching(c *Client) {
	if len(c.Args) != 3 {
		c.W.Error("ERR wrong number of arguments for 'client|caching' command")
		return
	}
	t := &c.srv.ct
	t.mu.Lock()
	defer t.mu.Unlock()
	ct := t.clients[c]
	if ct == nil {
		c.W.Error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
		return
	}
	switch {
	case command.EqualFold(c.Args[2], "yes"):
		if !ct.optin {
			c.W.Error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
			return
		}
	case command.EqualFold(c.Args[2], "no"):
		if !ct.optout {
			c.W.Error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
			return
		}
	default:
		c.W.Error(command.ErrSyntax)
		return
	}
	ct.caching = true
	c.W.OK()
}

// trackingRedirect is CLIENT GETREDIR's answer and CLIENT LIST's redir:
// -1 without tracking, 0 without redirection.
func (c *Client) trackingRedirect() int64 {
	t := &c.srv.ct
	t.mu.Lock()
	defer t.mu.Unlock()
	if ct := t.clients[c]; ct != nil {
		return ct.redirect
	}
	return -1
}

// cmdClientTrackingInfo is CLIENT TRACKINGINFO.
func cmdClientTrackingInfo(c *Client) {
	t := &c.srv.ct
	t.mu.Lock()
	ct := t.clients[c]
	var (
		flags    []string
		redirect int64 = -1
		prefixes []string
	)
	if ct == nil {
		flags = []string{"off"}
	} else {
		flags = []string{"on"}
		if ct.bcast {
			flags = append(flags, "bcast")
		}
		if ct.optin {
			flags = append(flags, "optin")
			if ct.caching {
				flags = append(flags, "caching-yes")
			}
		}
		if ct.optout {
			flags = append(flags, "optout")
			if ct.caching {
				flags = append(flags, "caching-no")
			}
		}
		if ct.noloop {
			flags = append(flags, "noloop")
		}
		if ct.broken {
			flags = append(flags, "broken_redirect")
		}
		redirect = ct.redirect
		prefixes = append(prefixes, ct.prefixes...)
	}
	t.mu.Unlock()
	c.W.Map(3)
	c.W.BulkString("flags")
	c.W.Set(len(flags))
	for _, f := range flags {
		c.W.BulkString(f)
	}
	c.W.BulkString("redirect")
	c.W.Int(redirect)
	c.W.BulkString("prefixes")
	c.W.Array(len(prefixes))
	for _, p := range prefixes {
		c.W.BulkString(p)
	}
}

// trackingInfo is INFO's tracking figures: clients, keys, items,
// prefixes.
func (s *Server) trackingInfo() (clients, keys, items, prefixes int64) {
	t := &s.ct
	t.mu.Lock()
	defer t.mu.Unlock()
	return int64(len(t.clients)), int64(len(t.keys)), t.items, int64(len(t.prefixes))
}
