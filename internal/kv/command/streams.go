package command

import (
	"math"
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Stream commands: XADD, XTRIM, XRANGE, XREVRANGE, XLEN, XDEL, XSETID here;
// consumer groups in stream_groups.go, XREAD and XREADGROUP in
// stream_read.go, XINFO in stream_info.go.

const (
	errInvalidStreamID = "ERR Invalid stream ID specified as stream command argument"
	errStreamTopItem   = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
)

var (
	bXADD   = []byte("XADD")
	bXTRIM  = []byte("XTRIM")
	bMAXLEN = []byte("MAXLEN")
	bMINID  = []byte("MINID")
	bEQUALS = []byte("=")
)

// lookupStream returns the stream of key (nil if absent); ok is false after
// replying WRONGTYPE.
func (c *Ctx) lookupStream(key []byte) (*keyspace.Stream, bool) {
	return LookupAs(c, keyspace.Streams, key)
}

// ParseStreamID parses a stream ID as Redis does: "ms-seq", "ms" (the
// sequence is missingSeq), "-" and "+" (the smallest and largest IDs,
// refused when strict), and with seqStar "ms-*" (seqGiven false). It never
// allocates.
func ParseStreamID(b []byte, missingSeq uint64, strict, seqStar bool) (id keyspace.StreamID, seqGiven bool, ok bool) {
	if len(b) > 127 {
		return id, false, false
	}
	if len(b) == 1 && (b[0] == '-' || b[0] == '+') {
		if strict {
			return id, false, false
		}
		if b[0] == '+' {
			return keyspace.MaxStreamID, true, true
		}
		return id, true, true
	}
	msPart, seqPart, hasSeq := b, []byte(nil), false
	for i, ch := range b {
		if ch == '-' {
			msPart, seqPart, hasSeq = b[:i], b[i+1:], true
			break
		}
	}
	if id.Ms, ok = parseUint64(msPart); !ok {
		return id, false, false
	}
	switch {
	case !hasSeq:
		id.Seq = missingSeq
		return id, true, true
	case seqStar && len(seqPart) == 1 && seqPart[0] == '*':
		return id, false, true
	}
	if id.Seq, ok = parseUint64(seqPart); !ok {
		return id, false, false
	}
	return id, true, true
}

// parseUint64 parses an unsigned decimal as Redis's string2ull accepts it
// (leading blanks and '+' included, as strtoull does).
func parseUint64(b []byte) (uint64, bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
		i++
	}
	if i < len(b) && b[i] == '+' {
		i++
	}
	if i == len(b) {
		return 0, false
	}
	var n uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 || n > (math.MaxUint64-uint64(d))/10 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	return n, true
}

// streamID parses a strict ID argument (no "-"/"+"), replying the error.
func (c *Ctx) streamID(b []byte) (keyspace.StreamID, bool) {
	id, _, ok := ParseStreamID(b, 0, true, false)
	if !ok {
		c.W.Error(errInvalidStreamID)
	}
	return id, ok
}

// removeIDs parses args as stream IDs (answering the error for a bad
// one) and then applies remove to each, answering how many it removed:
// XDEL's and XACK's shape. Every ID is checked before any is removed, as
// Redis does.
func (c *Ctx) removeIDs(args [][]byte, remove func(keyspace.StreamID) bool) {
	ids := make([]keyspace.StreamID, 0, len(args))
	for _, a := range args {
		id, ok := c.streamID(a)
		if !ok {
			return
		}
		ids = append(ids, id)
	}
	n := 0
	for _, id := range ids {
		if remove(id) {
			n++
		}
	}
	c.Dirty += n
	c.W.Int(int64(n))
}

// intervalID parses a range bound: an ID, "-", "+", or "(" and a strict
// ID for an exclusive bound, which it turns into the next (start) or
// previous (end) ID.
func (c *Ctx) intervalID(b []byte, end bool) (keyspace.StreamID, bool) {
	missing := uint64(0)
	if end {
		missing = math.MaxUint64
	}
	if len(b) > 1 && b[0] == '(' {
		id, _, ok := ParseStreamID(b[1:], missing, true, false)
		if !ok {
			c.W.Error(errInvalidStreamID)
			return id, false
		}
		if end {
			id, ok = id.Prev()
			if !ok {
				c.W.Error("ERR invalid end ID for the interval")
			}
		} else {
			id, ok = id.Next()
			if !ok {
				c.W.Error("ERR invalid start ID for the interval")
			}
		}
		return id, ok
	}
	id, _, ok := ParseStreamID(b, missing, false, false)
	if !ok {
		c.W.Error(errInvalidStreamID)
	}
	return id, ok
}

// replyStreamID writes an ID as a bulk string.
func (c *Ctx) replyStreamID(id keyspace.StreamID) {
	var tmp [48]byte
	c.W.Bulk(id.AppendTo(tmp[:0]))
}

// replyEntry writes an entry as [id, [field, value, ...]].
func (c *Ctx) replyEntry(e keyspace.StreamEntry) {
	c.W.Array(2)
	c.replyStreamID(e.ID)
	c.W.Array(2 * e.Pairs())
	e.Fields(func(f, v []byte) {
		c.W.Bulk(f)
		c.W.Bulk(v)
	})
}

// addTrimArgs are the parsed options of XADD and XTRIM.
type addTrimArgs struct {
	trim      keyspace.TrimArgs
	strategy  bool // MAXLEN or MINID given
	nomk      bool
	id        keyspace.StreamID
	idGiven   bool
	seqGiven  bool
	idPos     int
	threshold []byte // the MAXLEN/MINID argument as given
}

// parseAddTrim parses the options of XADD (up to the ID) or XTRIM, as
// Redis's streamParseAddOrTrimArgsOrReply does.
func (c *Ctx) parseAddTrim(xadd bool) (a addTrimArgs, ok bool) {
	limitGiven := false
	i := 2
	for ; i < len(c.Args); i++ {
		more := len(c.Args) - 1 - i
		opt := c.Args[i]
		switch {
		case xadd && len(opt) == 1 && opt[0] == '*':
			a.idPos = i
			goto done
		case (EqualFold(opt, "maxlen") || EqualFold(opt, "minid")) && more > 0:
			if a.strategy {
				c.W.Error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
				return a, false
			}
			a.trim.MaxLen = EqualFold(opt, "maxlen")
			a.trim.Approx = false
			if next := c.Args[i+1]; more >= 2 && len(next) == 1 && (next[0] == '~' || next[0] == '=') {
				a.trim.Approx = next[0] == '~'
				i++
			}
			a.threshold = c.Args[i+1]
			if a.trim.MaxLen {
				n, ok := ParseInt(a.threshold)
				if !ok {
					c.W.Error(ErrNotInt)
					return a, false
				}
				if n < 0 {
					c.W.Error("ERR The MAXLEN argument must be >= 0.")
					return a, false
				}
				a.trim.N = n
			} else {
				id, _, ok := ParseStreamID(a.threshold, 0, true, false)
				if !ok {
					c.W.Error(errInvalidStreamID)
					return a, false
				}
				a.trim.MinID = id
			}
			a.strategy = true
			i++
		case EqualFold(opt, "limit") && more > 0:
			n, ok := ParseInt(c.Args[i+1])
			if !ok {
				c.W.Error(ErrNotInt)
				return a, false
			}
			if n < 0 {
				c.W.Error("ERR The LIMIT argument must be >= 0.")
				return a, false
			}
			a.trim.Limit = n
			limitGiven = true
			i++
		case xadd && EqualFold(opt, "nomkstream"):
			a.nomk = true
		case xadd:
			id, seqGiven, ok := ParseStreamID(opt, 0, true, true)
			if !ok {
				c.W.Error(errInvalidStreamID)
				return a, false
			}
			a.id, a.idGiven, a.seqGiven, a.idPos = id, true, seqGiven, i
			goto done
		default:
			c.W.Error(ErrSyntax)
			return a, false
		}
	}
	a.idPos = i
done:
	if a.trim.Limit != 0 && !a.strategy {
		c.W.Error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
		return a, false
	}
	if !xadd && !a.strategy {
		c.W.Error("ERR syntax error, XTRIM must be called with a trimming strategy")
		return a, false
	}
	switch {
	case c.Replaying:
		// from a log or a primary: the threshold was rewritten to the result
		a.trim.Limit = 0
	case limitGiven:
		if !a.trim.Approx {
			c.W.Error("ERR syntax error, LIMIT cannot be used without the special ~ option")
			return a, false
		}
	case a.trim.Approx:
		// Redis bounds the work of "~" to 100 nodes
		a.trim.Limit = 100 * c.Track.Settings.NodeLimits().MaxEntries
		if a.trim.Limit <= 0 {
			a.trim.Limit = 10000
		}
		a.trim.Limit = min(a.trim.Limit, 1000000)
	default:
		a.trim.Limit = 0
	}
	return a, true
}

// trimRecord returns the trimming arguments to log (MAXLEN or MINID, "=",
// the threshold): "~" becomes "=" with the threshold the trim reached (the
// length, or the first ID), so a replay trims the same entries. buf holds
// the threshold's text.
func trimRecord(a *addTrimArgs, s *keyspace.Stream, buf []byte) (kind, threshold []byte) {
	kind = bMINID
	if a.trim.MaxLen {
		kind = bMAXLEN
	}
	switch {
	case !a.trim.Approx:
		return kind, a.threshold
	case a.trim.MaxLen:
		return kind, strconv.AppendInt(buf, int64(s.Len()), 10)
	}
	first := s.FirstID()
	if s.Len() == 0 {
		first = keyspace.MaxStreamID // as Redis: trims whatever the replica has
	}
	return kind, first.AppendTo(buf)
}

// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]]
// *|id field value [field value ...]
func cmdXAdd(c *Ctx) {
	a, ok := c.parseAddTrim(true)
	if !ok {
		return
	}
	fv := c.Args[a.idPos+1:]
	if len(fv) < 2 || len(fv)%2 == 1 {
		c.WrongArgs()
		return
	}
	if a.idGiven && a.seqGiven && a.id.IsZero() {
		c.W.Error("ERR The ID specified in XADD must be greater than 0-0")
		return
	}
	key := c.Args[1]
	s, ok := c.lookupStream(key)
	if !ok {
		return
	}
	if s == nil && a.nomk {
		c.W.Null()
		return
	}
	var last keyspace.StreamID
	if s != nil {
		last = s.LastID()
	}
	if last == keyspace.MaxStreamID {
		c.W.Error("ERR The stream has exhausted the last possible ID, unable to add more items")
		return
	}
	id := a.id
	switch {
	case !a.idGiven:
		if ms := uint64(max(c.Now, 0)); ms > last.Ms {
			id = keyspace.StreamID{Ms: ms}
		} else {
			id, _ = last.Next()
		}
	case !a.seqGiven:
		if last.Ms == id.Ms {
			if last.Seq == math.MaxUint64 {
				// Redis 7.0 answers this overflow with the size error
				c.W.Error("ERR Elements are too large to be stored")
				return
			}
			id.Seq = last.Seq + 1
		}
	}
	if !last.Less(id) {
		c.W.Error(errStreamTopItem)
		return
	}
	total := 0
	for _, x := range fv {
		total += len(x)
	}
	if total > 1<<30 {
		c.W.Error("ERR Elements are too large to be stored")
		return
	}
	if s == nil {
		s = keyspace.NewStream()
		c.KS.AddLocked(key, keyspace.Streams.NewEntry(s))
	}
	s.Append(id, fv, c.Track.Settings.NodeLimits())
	// the ID is formatted once, for the reply and the record
	var idBuf, thBuf [48]byte
	idText := id.AppendTo(idBuf[:0])
	c.W.Bulk(idText)
	c.Dirty++
	// the record's head is on the stack: XADD is a hot command
	var head [6][]byte
	head[0], head[1] = bXADD, key
	n := 2
	if a.strategy {
		s.Trim(a.trim)
		head[2], head[4] = trimRecord(&a, s, thBuf[:0])
		head[3] = bEQUALS
		n = 5
	}
	head[n] = idText
	c.LogParts(head[:n+1], fv)
}

// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
func cmdXTrim(c *Ctx) {
	a, ok := c.parseAddTrim(false)
	if !ok {
		return
	}
	s, ok := c.lookupStream(c.Args[1])
	if !ok {
		return
	}
	if s == nil {
		c.W.Int(0)
		return
	}
	n := s.Trim(a.trim)
	if n > 0 {
		c.Dirty += int(n)
		var thBuf [48]byte
		kind, th := trimRecord(&a, s, thBuf[:0])
		c.Log(bXTRIM, c.Args[1], kind, bEQUALS, th)
	}
	c.W.Int(n)
}

// XRANGE key start end [COUNT n] and XREVRANGE key end start [COUNT n].
func cmdXRange(c *Ctx) {
	rev := c.Cmd.Name == "xrevrange"
	startArg, endArg := c.Args[2], c.Args[3]
	if rev {
		startArg, endArg = endArg, startArg
	}
	start, ok := c.intervalID(startArg, false)
	if !ok {
		return
	}
	end, ok := c.intervalID(endArg, true)
	if !ok {
		return
	}
	count := int64(-1)
	for i := 4; i < len(c.Args); i++ {
		if EqualFold(c.Args[i], "count") && i+1 < len(c.Args) {
			if count, ok = c.ArgInt(i + 1); !ok {
				return
			}
			count = max(count, 0)
			i++
			continue
		}
		c.W.Error(ErrSyntax)
		return
	}
	s, ok := c.lookupStream(c.Args[1])
	if !ok {
		return
	}
	if s == nil {
		c.W.Array(0)
		return
	}
	if count == 0 {
		c.W.NullArray()
		return
	}
	// the entries are counted before the reply: collected first, the
	// first 16 on the stack (the closure does not escape)
	var buf [16]keyspace.StreamEntry
	out := buf[:0]
	s.Range(start, end, rev, func(e keyspace.StreamEntry) bool {
		out = append(out, e)
		return count < 0 || int64(len(out)) < count
	})
	c.W.Array(len(out))
	for _, e := range out {
		c.replyEntry(e)
	}
}

func cmdXLen(c *Ctx) {
	s, ok := c.lookupStream(c.Args[1])
	if !ok {
		return
	}
	if s == nil {
		c.W.Int(0)
		return
	}
	c.W.Int(int64(s.Len()))
}

// XDEL key id [id ...]: every ID is parsed before any is deleted.
func cmdXDel(c *Ctx) {
	s, ok := c.lookupStream(c.Args[1])
	if !ok {
		return
	}
	if s == nil {
		c.W.Int(0)
		return
	}
	c.removeIDs(c.Args[2:], s.Delete)
}

// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]
func cmdXSetID(c *Ctx) {
	id, ok := c.streamID(c.Args[2])
	if !ok {
		return
	}
	added := int64(-1)
	var maxDel keyspace.StreamID
	for i := 3; i < len(c.Args); i += 2 {
		switch {
		case EqualFold(c.Args[i], "entriesadded") && i+1 < len(c.Args):
			if added, ok = c.ArgInt(i + 1); !ok {
				return
			}
			if added < 0 {
				c.W.Error("ERR entries_added must be positive")
				return
			}
		case EqualFold(c.Args[i], "maxdeletedid") && i+1 < len(c.Args):
			if maxDel, ok = c.streamID(c.Args[i+1]); !ok {
				return
			}
			if id.Less(maxDel) {
				c.W.Error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
				return
			}
		default:
			c.W.Error(ErrSyntax)
			return
		}
	}
	s, ok := c.lookupStream(c.Args[1])
	if !ok {
		return
	}
	if s == nil {
		c.W.Error(ErrNoSuchKey)
		return
	}
	if id.Less(s.MaxDeletedID()) {
		c.W.Error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id")
		return
	}
	if s.Len() > 0 {
		if id.Less(s.LastEntryID()) {
			c.W.Error("ERR The ID specified in XSETID is smaller than the target stream top item")
			return
		}
		if added != -1 && int64(s.Len()) > added {
			c.W.Error("ERR The entries_added specified in XSETID is smaller than the target stream length")
			return
		}
	}
	if added == -1 {
		added = s.EntriesAdded()
	}
	if maxDel.IsZero() {
		maxDel = s.MaxDeletedID()
	}
	s.SetMeta(id, added, maxDel)
	c.Dirty++
	c.W.OK()
}
