package command

import (
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// XREAD [COUNT n] [BLOCK ms] STREAMS key... id... and XREADGROUP GROUP g c
// [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id.... Both run through the
// server's blocking path (BlockingPop): Try serves what it can with the
// keys' shards locked; with BLOCK and nothing to serve the server waits
// for a change of one of the keys and tries again.

// StreamKeys is the key extractor of XREAD and XREADGROUP: the first half
// of the arguments after STREAMS.
func StreamKeys(args [][]byte, dst [][]byte) [][]byte {
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case EqualFold(a, "block") || EqualFold(a, "count"):
			i++
		case EqualFold(a, "group"):
			i += 2
		case EqualFold(a, "streams"):
			rest := args[i+1:]
			if len(rest) == 0 || len(rest)%2 != 0 {
				return dst
			}
			return append(dst, rest[:len(rest)/2]...)
		}
	}
	return dst
}

// streamRead is a parsed XREAD or XREADGROUP.
type streamRead struct {
	c        *Ctx
	group    []byte // nil for XREAD
	consumer []byte
	noack    bool
	count    int64 // 0: no limit
	keys     [][]byte
	idArgs   [][]byte
	ids      []keyspace.StreamID
	newOnly  []bool // ">": entries never delivered to the group
	tries    int
}

// streamResume is what an XREAD keeps when it leaves the event loop to
// wait on a goroutine of its own and is parsed again there: the IDs it
// resolved "$" to, so entries added in between are not skipped.
type streamResume struct {
	args [][]byte
	ids  []keyspace.StreamID
}

const (
	errXReadGroupDollar = "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."
	errXReadGT          = "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
)

// parseStreamRead parses XREAD and XREADGROUP into b.
func parseStreamRead(c *Ctx, b *BlockingPop) bool {
	group := c.Cmd.Name == "xreadgroup"
	r := &streamRead{c: c}
	b.NoWait = true
	streamsAt := 0
	for i := 1; i < len(c.Args) && streamsAt == 0; i++ {
		a := c.Args[i]
		more := len(c.Args) - 1 - i
		switch {
		case EqualFold(a, "block") && more > 0:
			i++
			ms, ok := ParseInt(c.Args[i])
			if !ok {
				c.W.Error("ERR timeout is not an integer or out of range")
				return false
			}
			if ms < 0 {
				c.W.Error("ERR timeout is negative")
				return false
			}
			b.NoWait = false
			b.Timeout = time.Duration(min(ms, int64(1<<62)/int64(time.Millisecond))) * time.Millisecond
		case EqualFold(a, "count") && more > 0:
			i++
			n, ok := c.ArgInt(i)
			if !ok {
				return false
			}
			r.count = max(n, 0)
		case EqualFold(a, "streams") && more > 0:
			streamsAt = i + 1
			if (len(c.Args)-streamsAt)%2 != 0 {
				// Redis 7.0 words it so for both commands
				c.W.Error("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
				return false
			}
		case EqualFold(a, "group") && more >= 2:
			if !group {
				c.W.Error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
				return false
			}
			r.group, r.consumer = c.Args[i+1], c.Args[i+2]
			i += 2
		case EqualFold(a, "noack"):
			if !group {
				c.W.Error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
				return false
			}
			r.noack = true
		default:
			c.W.Error(ErrSyntax)
			return false
		}
	}
	if streamsAt == 0 {
		c.W.Error(ErrSyntax)
		return false
	}
	if group && r.group == nil {
		c.W.Error("ERR Missing GROUP option for XREADGROUP")
		return false
	}
	n := (len(c.Args) - streamsAt) / 2
	r.keys = c.Args[streamsAt : streamsAt+n]
	r.idArgs = c.Args[streamsAt+n:]
	r.ids = make([]keyspace.StreamID, n)
	r.newOnly = make([]bool, n)
	var resumed *streamResume
	if res, ok := c.resume.(*streamResume); ok && slices.EqualFunc(res.args, c.Args, func(a, b []byte) bool { return string(a) == string(b) }) {
		resumed = res
	}
	c.resume = nil
	if resumed != nil {
		// the second run after leaving the event loop: the command was
		// checked and blocked; whatever changed since is a wake-up
		copy(r.ids, resumed.ids)
		for i, a := range r.idArgs {
			r.newOnly[i] = group && len(a) == 1 && a[0] == '>'
		}
		r.tries = 1
	}
	b.try = r.try
	b.detach = func() {
		c.resume = &streamResume{args: cloneArgs(c.Args), ids: slices.Clone(r.ids)}
	}
	return true
}

// check looks every key up and parses every ID before any is served, as
// Redis does, replying the first error. It runs in the first try, with
// the keys' shards locked.
func (r *streamRead) check(group bool) bool {
	c := r.c
	for i, k := range r.keys {
		s, ok := c.lookupStream(k)
		if !ok {
			return false
		}
		if group && (s == nil || s.Group(r.group) == nil) {
			c.W.Error("NOGROUP No such key '" + string(k) + "' or consumer group '" + string(r.group) + "' in XREADGROUP with GROUP option")
			return false
		}
		a := r.idArgs[i]
		switch {
		case len(a) == 1 && a[0] == '$':
			if group {
				c.W.Error(errXReadGroupDollar)
				return false
			}
			if s != nil {
				r.ids[i] = s.LastID()
			}
		case len(a) == 1 && a[0] == '>':
			if !group {
				c.W.Error(errXReadGT)
				return false
			}
			r.newOnly[i] = true
		default:
			if r.ids[i], ok = c.streamID(a); !ok {
				return false
			}
		}
	}
	return true
}

func cloneArgs(args [][]byte) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = slices.Clone(a)
	}
	return out
}

// readRow is one entry of a reply: an entry, or (history of a consumer)
// the ID of a pending entry that was deleted.
type readRow struct {
	id    keyspace.StreamID
	e     keyspace.StreamEntry
	found bool
}

type readResult struct {
	key  []byte
	rows []readRow
}

// try serves the keys that have something to read and reports whether the
// command is done (served, or an error replied).
func (r *streamRead) try() bool {
	c := r.c
	first := r.tries == 0
	r.tries++
	if first && !r.check(r.group != nil) {
		return true // an error is replied
	}
	var results []readResult
	for i, k := range r.keys {
		e := c.Lookup(k)
		var s *keyspace.Stream
		if e != nil {
			s = keyspace.Streams.Of(e)
		}
		if r.group == nil {
			if s == nil {
				continue // XREAD waits for the key to be a stream again
			}
			if rows := r.readNew(s, r.ids[i]); len(rows) > 0 {
				results = append(results, readResult{k, rows})
			}
			continue
		}
		if s == nil {
			if first { // not reached: parsing checked it
				c.W.Error("NOGROUP No such key '" + string(k) + "' or consumer group '" + string(r.group) + "' in XREADGROUP with GROUP option")
			} else {
				c.W.Error("UNBLOCKED the stream key no longer exists")
			}
			return true
		}
		g := s.Group(r.group)
		if g == nil {
			c.W.Error("NOGROUP the consumer group this client was blocked on no longer exists")
			return true
		}
		fresh := s.Len() > 0 && g.LastID.Less(s.LastEntryID())
		if r.newOnly[i] && !fresh {
			// nothing new for ">": as Redis 7.0, the consumer is made
			// (or seen) only when it is served, not when it waits
			continue
		}
		// ">" without NOACK logs an XCLAIM per entry delivered
		claims := r.newOnly[i] && !r.noack
		cons := c.consumerFor(k, r.group, g, r.consumer, claims)
		if !r.newOnly[i] {
			results = append(results, readResult{k, r.readHistory(k, s, g, cons, r.ids[i])})
			continue
		}
		if rows := r.readGroup(k, s, g, cons); len(rows) > 0 {
			results = append(results, readResult{k, rows})
		}
	}
	if len(results) == 0 {
		return false
	}
	if c.W.RESP3() {
		c.W.Map(len(results))
	} else {
		c.W.Array(len(results))
	}
	for _, res := range results {
		if !c.W.RESP3() {
			c.W.Array(2)
		}
		c.W.Bulk(res.key)
		c.W.Array(len(res.rows))
		for _, row := range res.rows {
			if row.found {
				c.replyEntry(row.e)
				continue
			}
			c.W.Array(2)
			c.replyStreamID(row.id)
			c.W.NullArray()
		}
	}
	return true
}

// readNew returns the entries after id (XREAD).
func (r *streamRead) readNew(s *keyspace.Stream, id keyspace.StreamID) []readRow {
	start, ok := id.Next()
	if !ok || !id.Less(s.LastEntryID()) || s.Len() == 0 {
		return nil
	}
	var rows []readRow
	s.Range(start, keyspace.MaxStreamID, false, func(e keyspace.StreamEntry) bool {
		rows = append(rows, readRow{id: e.ID, e: e, found: true})
		return r.count == 0 || int64(len(rows)) < r.count
	})
	return rows
}

// readGroup delivers the entries the group has not delivered yet to cons
// (">"), adding them to the PEL unless NOACK.
func (r *streamRead) readGroup(key []byte, s *keyspace.Stream, g *keyspace.StreamGroup, cons *keyspace.StreamConsumer) []readRow {
	c := r.c
	if s.Len() == 0 || !g.LastID.Less(s.LastEntryID()) {
		return nil
	}
	start, _ := g.LastID.Next()
	var rows []readRow
	s.Range(start, keyspace.MaxStreamID, false, func(e keyspace.StreamEntry) bool {
		rows = append(rows, readRow{id: e.ID, e: e, found: true})
		return r.count == 0 || int64(len(rows)) < r.count
	})
	for _, row := range rows {
		s.Advance(g, row.id)
		if !r.noack {
			p := g.Deliver(cons, row.id, c.Now)
			cons.ActiveTime = c.Now
			c.logXClaim(key, r.group, g, row.id, p) // with the group's position
		}
	}
	if r.noack { // as Redis 7.0: no claim carries the position
		c.logGroupID(key, r.group, g)
	}
	return rows
}

// readHistory returns the consumer's pending entries after id; each
// existing one counts as delivered again.
func (r *streamRead) readHistory(key []byte, s *keyspace.Stream, g *keyspace.StreamGroup, cons *keyspace.StreamConsumer, id keyspace.StreamID) []readRow {
	c := r.c
	start, ok := id.Next()
	if !ok {
		return nil
	}
	var rows []readRow
	g.PendingRange(cons, start, keyspace.MaxStreamID, func(pid keyspace.StreamID, p *keyspace.PendingEntry) bool {
		e, found := s.Get(pid)
		rows = append(rows, readRow{id: pid, e: e, found: found})
		return r.count == 0 || int64(len(rows)) < r.count
	})
	for _, row := range rows {
		if !row.found {
			continue
		}
		p := g.Pending(row.id)
		p.DeliveryTime = c.Now
		p.DeliveryCount++
		c.logXClaim(key, r.group, g, row.id, p)
	}
	return rows
}
