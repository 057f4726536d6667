package kv

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client eviction (maxmemory-clients), as Redis 7: when the memory all
// clients hold together passes the limit, the clients holding the most are
// closed until the rest fit. A client counts its read buffer, its unsent
// replies, its MULTI queue and its watched keys and subscriptions; it
// publishes the sum (noteMem) after each batch of commands, where the
// replies of the batch are still unsent, so a client that asks for a huge
// reply is seen before the reply goes out. Clients with CLIENT NO-EVICT
// on and the link of a replica to its primary are never evicted.
//
// Unlike Redis, which keeps clients in buckets by memory and evicts at
// once on the thread that runs every client, a peer's clients live on
// several event loops: the pass that picks victims scans every client
// (when a client grows the total past the limit, and from the server's
// cron while it stays over), and a victim is closed by its own loop at
// its next iteration, as CLIENT KILL closes it.

// evictIdle is how long passes pause after one that closed nobody.
const evictIdle = 10 * time.Millisecond

// Rough per-item costs of the structures a client keeps besides its
// buffers: a watched key's entry (and its share of the key's watch list),
// a subscription's map entry with a short name.
const (
	watchedKeyMem   = 96
	subscriptionMem = 96
)

type clientEviction struct {
	// limit is maxmemory-clients in bytes, or, when pct >= 0, pct percent
	// of maxmemory (0 of either: no limit)
	limit atomic.Int64
	pct   atomic.Int64
	// total is the sum of every live client's published memory
	total atomic.Int64
	// evicted counts the clients closed for the limit (INFO evicted_clients)
	evicted atomic.Int64
	// scanMu lets one pass run at a time; idleUntil (monoNow) holds passes
	// off after one that closed nobody
	scanMu    sync.Mutex
	idleUntil atomic.Int64
}

// clientsLimit is the limit in bytes now; 0 means none.
func (s *Server) clientsLimit() int64 {
	if p := s.cev.pct.Load(); p >= 0 {
		return s.maxmemory.Load() * p / 100
	}
	return s.cev.limit.Load()
}

// memUsage is what the client holds that grows with what it is sent and
// what it asks for.
func (c *Client) memUsage() int64 {
	// watched keys and subscriptions count per item, not by name: a
	// client may hold many, and this runs after every batch
	return int64(len(c.rbuf)+cap(c.W.B)+len(c.pending)) + c.queuedBytes +
		int64(len(c.watched))*watchedKeyMem + int64(c.subs.count())*subscriptionMem
}

// noteMem publishes the client's memory and starts an eviction pass when
// it grew the total past the limit. Only the client's own goroutine (its
// event loop) calls it.
func (c *Client) noteMem() {
	if o := int64(len(c.W.B) - c.wpos); c.shared.omem.Load() != o {
		c.shared.omem.Store(o) // CLIENT LIST's omem for other clients
	}
	m := c.memUsage()
	old := c.shared.mem.Load()
	if m == old || old < 0 { // unchanged, or the client was dropped
		return
	}
	c.shared.mem.Store(m)
	s := c.srv
	total := s.cev.total.Add(m - old)
	if m > old && total > 0 {
		if lim := s.clientsLimit(); lim > 0 && total > lim {
			s.evictClients(lim)
		}
	}
}

// forgetMem takes a dropped client's memory out of the total for good.
func (c *Client) forgetMem() {
	if old := c.shared.mem.Swap(-1); old > 0 {
		c.srv.cev.total.Add(-old)
	}
}

// evictClients closes the clients holding the most memory until the
// others fit under lim. A pass that closes nobody (what is over is held by
// no-evict clients, or by victims still closing) holds the next ones off
// for evictIdle, so a total that stays over does not cost a scan per
// command.
func (s *Server) evictClients(lim int64) {
	if monoNow() < time.Duration(s.cev.idleUntil.Load()) {
		return
	}
	if !s.cev.scanMu.TryLock() { // a pass is running: it sees this growth
		return
	}
	defer s.cev.scanMu.Unlock()

	type cand struct {
		c   *Client
		mem int64
	}
	var total int64
	var cands []cand
	s.mu.Lock()
	for _, x := range s.clients {
		m := x.shared.mem.Load()
		if m <= 0 || x.shared.killed.Load() { // closing already: its memory goes
			continue
		}
		total += m
		if !x.shared.noEvict.Load() && !x.master {
			cands = append(cands, cand{x, m})
		}
	}
	s.mu.Unlock()
	sort.Slice(cands, func(i, j int) bool { return cands[i].mem > cands[j].mem })
	closed := 0
	for _, v := range cands {
		if total <= lim {
			break
		}
		total -= v.mem
		closed++
		s.cev.evicted.Add(1)
		s.logger.Printf("client id=%d addr=%s evicted: clients hold more than maxmemory-clients (%d bytes); it held %d",
			v.c.id, v.c.nc.RemoteAddr(), lim, v.mem)
		s.killClient(v.c)
	}
	if closed == 0 {
		s.cev.idleUntil.Store(int64(monoNow() + evictIdle))
	}
}

// maxmemoryClientsParam is CONFIG's maxmemory-clients: 0 (no limit), a
// memory value, or a percentage of maxmemory.
func maxmemoryClientsParam() configParam {
	return configParam{
		get: func(s *Server) string {
			if p := s.cev.pct.Load(); p >= 0 {
				return strconv.FormatInt(p, 10) + "%"
			}
			return strconv.FormatInt(s.cev.limit.Load(), 10)
		},
		set: func(s *Server, val string) string {
			if pv, ok := strings.CutSuffix(val, "%"); ok {
				n, err := strconv.ParseInt(pv, 10, 64)
				if err != nil || n < 0 {
					return "argument must be a memory or percent value"
				}
				if n > 100 {
					return "percentage argument must be less or equal to 100"
				}
				s.cev.pct.Store(n)
				return ""
			}
			v, err := parseMemory(val)
			if err != nil || v < 0 {
				return "argument must be a memory or percent value"
			}
			s.cev.limit.Store(v)
			s.cev.pct.Store(-1)
			return ""
		},
	}
}
