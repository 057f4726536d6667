package command

import (
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Consumer group commands: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM.
// Their effects are logged the way Redis 7.0 propagates them: a claim or a
// delivery as an idempotent "XCLAIM key group consumer 0 id TIME ms
// RETRYCOUNT n FORCE JUSTID LASTID id", a group's progress without a
// claim (NOACK, LASTID alone) as "XGROUP SETID key group id ENTRIESREAD
// n", so a replica and a replayed log end with the same pending entries
// and group positions. The XCLAIM carries the group's entries-read count
// too, as "ENTRIESREAD n" after LASTID (a gantry extension of XCLAIM):
// Redis 7.0's XCLAIM moves the group's last ID and leaves entries-read
// behind, which Redis 7.2 fixes by logging an XGROUP SETID after the
// claims; the extra option keeps the entries of a transaction as Redis
// 7.0 logs them and the count exact.

var (
	bXCLAIM         = []byte("XCLAIM")
	bXGROUP         = []byte("XGROUP")
	bSETID          = []byte("SETID")
	bCREATE         = []byte("CREATE")
	bCREATECONSUMER = []byte("CREATECONSUMER")
	bENTRIESREAD    = []byte("ENTRIESREAD")
	bTIME           = []byte("TIME")
	bRETRYCOUNT     = []byte("RETRYCOUNT")
	bFORCE          = []byte("FORCE")
	bJUSTID         = []byte("JUSTID")
	bLASTID         = []byte("LASTID")
	bMKSTREAM       = []byte("MKSTREAM")
	bZero           = []byte("0")
)

func noGroupError(key, group []byte) string {
	return "NOGROUP No such key '" + string(key) + "' or consumer group '" + string(group) + "'"
}

// logXClaim logs the pending entry id of group g as the XCLAIM that
// recreates it.
func (c *Ctx) logXClaim(key, group []byte, g *keyspace.StreamGroup, id keyspace.StreamID, p *keyspace.PendingEntry) {
	c.Log(bXCLAIM, key, group, []byte(p.Consumer.Name), bZero, id.AppendTo(nil),
		bTIME, strconv.AppendInt(nil, p.DeliveryTime, 10),
		bRETRYCOUNT, strconv.AppendInt(nil, p.DeliveryCount, 10),
		bFORCE, bJUSTID, bLASTID, g.LastID.AppendTo(nil),
		bENTRIESREAD, strconv.AppendInt(nil, g.EntriesRead, 10))
	c.Dirty++
}

// logGroupID logs a group's position.
func (c *Ctx) logGroupID(key, group []byte, g *keyspace.StreamGroup) {
	c.Log(bXGROUP, bSETID, key, group, g.LastID.AppendTo(nil), bENTRIESREAD, strconv.AppendInt(nil, g.EntriesRead, 10))
	c.Dirty++
}

// consumerFor returns the consumer name of group g, creating it when it
// does not exist; it is marked seen now. A consumer created is logged as
// XGROUP CREATECONSUMER unless claimed says an XCLAIM of the consumer is
// logged next, which creates it too (as Redis 7.0 propagates a claim or a
// delivery; Redis 7.0 logs nothing for a consumer that got nothing, which
// leaves it out of replicas).
func (c *Ctx) consumerFor(key, group []byte, g *keyspace.StreamGroup, name []byte, claimed bool) *keyspace.StreamConsumer {
	cons := g.Consumer(name)
	if cons == nil {
		cons = g.CreateConsumer(name, c.Now)
		if !claimed {
			c.Log(bXGROUP, bCREATECONSUMER, key, group, name)
		}
		c.Dirty++
		c.Notify('t', "xgroup-createconsumer", key)
	}
	cons.SeenTime = c.Now
	return cons
}

var xgroupHelp = []string{
	"XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"CREATE <key> <groupname> <id|$> [option]",
	"    Create a new consumer group. Options are:",
	"    * MKSTREAM",
	"      Create the empty stream if it does not exist.",
	"    * ENTRIESREAD entries_read",
	"      Set the group's entries_read counter (internal use).",
	"CREATECONSUMER <key> <groupname> <consumer>",
	"    Create a new consumer in the specified group.",
	"DELCONSUMER <key> <groupname> <consumer>",
	"    Remove the specified consumer.",
	"DESTROY <key> <groupname>",
	"    Remove the specified group.",
	"SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
	"    Set the current group ID and entries_read counter.",
	"HELP",
	"    Prints this help.",
}

func (c *Ctx) replyHelp(lines []string) {
	c.W.Array(len(lines))
	for _, l := range lines {
		c.W.Simple(l)
	}
}

// subcommand returns the lower-case subcommand of a container command
// (XGROUP, XINFO). The dispatcher refused an unknown one, or a wrong
// number of arguments for one (Command.CheckSub); so does Table.Apply,
// but ok is false, with the error replied, for a call that was not
// checked.
func (c *Ctx) subcommand() (sub string, ok bool) {
	sc, msg := c.Cmd.CheckSub(c.Args)
	if msg != "" {
		c.W.Error(msg)
		return "", false
	}
	return sc.Name[len(c.Cmd.Name)+1:], true
}

// SubcommandSyntax replies Redis's error of a container command's
// handler for a subcommand it cannot run with the arguments given.
func (c *Ctx) SubcommandSyntax() {
	c.W.Error(SubSyntaxError(c.Cmd.Name, c.Args[1]))
}

// XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP
func cmdXGroup(c *Ctx) {
	sub, ok := c.subcommand()
	if !ok {
		return
	}
	if sub == "help" {
		c.replyHelp(xgroupHelp)
		return
	}
	key, group := c.Args[2], c.Args[3]
	mkstream := false
	entriesRead := keyspace.InvalidEntriesRead
	for i := 5; i < len(c.Args); {
		a := c.Args[i]
		switch {
		case sub == "create" && EqualFold(a, "mkstream"):
			mkstream = true
			i++
		case (sub == "create" || sub == "setid") && EqualFold(a, "entriesread") && i+1 < len(c.Args):
			if entriesRead, ok = c.ArgInt(i + 1); !ok {
				return
			}
			if entriesRead < 0 && entriesRead != keyspace.InvalidEntriesRead {
				c.W.Error("ERR value for ENTRIESREAD must be positive or -1")
				return
			}
			i += 2
		default:
			c.SubcommandSyntax()
			return
		}
	}
	s, ok := c.lookupStream(key)
	if !ok {
		return
	}
	if s == nil && !mkstream {
		c.W.Error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
		return
	}
	var g *keyspace.StreamGroup
	if s != nil {
		g = s.Group(group)
	}
	if g == nil && (sub == "setid" || sub == "createconsumer" || sub == "delconsumer") {
		c.W.Error("NOGROUP No such consumer group '" + string(group) + "' for key name '" + string(key) + "'")
		return
	}
	switch sub {
	case "create", "setid":
		if sub == "setid" && len(c.Args) != 5 && len(c.Args) != 7 {
			c.SubcommandSyntax()
			return
		}
		var id keyspace.StreamID
		if string(c.Args[4]) == "$" {
			if s != nil {
				id = s.LastID()
			}
		} else {
			var ok bool
			if sub == "create" {
				id, ok = c.streamID(c.Args[4])
			} else {
				id, _, ok = ParseStreamID(c.Args[4], 0, false, false)
				if !ok {
					c.W.Error(errInvalidStreamID)
				}
			}
			if !ok {
				return
			}
		}
		rec := [][]byte{bXGROUP, bCREATE, key, group, id.AppendTo(nil)}
		if sub == "setid" {
			g.LastID, g.EntriesRead = id, entriesRead
			rec[1] = bSETID
		} else {
			if s == nil {
				s = keyspace.NewStream()
				c.KS.AddLocked(key, keyspace.Streams.NewEntry(s))
				rec = append(rec, bMKSTREAM)
			}
			if s.CreateGroup(group, id, entriesRead) == nil {
				c.W.Error("BUSYGROUP Consumer Group name already exists")
				return
			}
		}
		c.Dirty++
		c.Log(append(rec, bENTRIESREAD, strconv.AppendInt(nil, entriesRead, 10))...)
		c.W.OK()
	case "destroy":
		if s.DestroyGroup(group) {
			c.Dirty++
			c.W.Int(1)
			return
		}
		c.W.Int(0)
	case "createconsumer":
		if g.CreateConsumer(c.Args[4], c.Now) == nil {
			c.W.Int(0)
			return
		}
		c.Dirty++
		c.W.Int(1)
	case "delconsumer":
		n := g.DeleteConsumer(c.Args[4])
		if n < 0 {
			c.W.Int(0)
			return
		}
		c.Dirty++
		c.W.Int(int64(n))
	}
}

// XACK key group id [id ...]
func cmdXAck(c *Ctx) {
	s, ok := c.lookupStream(c.Args[1])
	if !ok {
		return
	}
	var g *keyspace.StreamGroup
	if s != nil {
		g = s.Group(c.Args[2])
	}
	if g == nil {
		c.W.Int(0)
		return
	}
	c.removeIDs(c.Args[3:], g.Ack)
}

// XPENDING key group [[IDLE min-idle] start end count [consumer]]
func cmdXPending(c *Ctx) {
	n := len(c.Args)
	if n != 3 && (n < 6 || n > 9) {
		c.W.Error(ErrSyntax)
		return
	}
	var start, end keyspace.StreamID
	var count, minIdle int64
	var consumer []byte
	if n >= 6 {
		i := 3
		if EqualFold(c.Args[3], "idle") {
			var ok bool
			if minIdle, ok = c.ArgInt(4); !ok {
				return
			}
			if n < 8 {
				c.W.Error(ErrSyntax)
				return
			}
			i += 2
		}
		var ok bool
		if count, ok = c.ArgInt(i + 2); !ok {
			return
		}
		count = max(count, 0)
		if start, ok = c.intervalID(c.Args[i], false); !ok {
			return
		}
		if end, ok = c.intervalID(c.Args[i+1], true); !ok {
			return
		}
		if i+3 < n {
			consumer = c.Args[i+3]
		}
		if i+4 < n {
			c.W.Error(ErrSyntax)
			return
		}
	}
	s, ok := c.lookupStream(c.Args[1])
	if !ok {
		return
	}
	var g *keyspace.StreamGroup
	if s != nil {
		g = s.Group(c.Args[2])
	}
	if g == nil {
		c.W.Error(noGroupError(c.Args[1], c.Args[2]))
		return
	}
	if n == 3 {
		c.W.Array(4)
		c.W.Int(int64(g.PendingLen()))
		if g.PendingLen() == 0 {
			c.W.Null()
			c.W.Null()
			c.W.NullArray()
			return
		}
		first, _ := g.FirstPending()
		last, _ := g.LastPending()
		c.replyStreamID(first)
		c.replyStreamID(last)
		var owners []*keyspace.StreamConsumer
		for _, cons := range g.Consumers() {
			if cons.PendingLen() > 0 {
				owners = append(owners, cons)
			}
		}
		c.W.Array(len(owners))
		for _, cons := range owners {
			c.W.Array(2)
			c.W.BulkString(cons.Name)
			c.W.BulkInt(int64(cons.PendingLen()))
		}
		return
	}
	var cons *keyspace.StreamConsumer
	if consumer != nil {
		if cons = g.Consumer(consumer); cons == nil {
			c.W.Array(0)
			return
		}
	}
	type row struct {
		id keyspace.StreamID
		p  *keyspace.PendingEntry
	}
	var rows []row
	if count > 0 {
		g.PendingRange(cons, start, end, func(id keyspace.StreamID, p *keyspace.PendingEntry) bool {
			if minIdle > 0 && c.Now-p.DeliveryTime < minIdle {
				return true
			}
			rows = append(rows, row{id, p})
			return int64(len(rows)) < count
		})
	}
	c.W.Array(len(rows))
	for _, r := range rows {
		c.W.Array(4)
		c.replyStreamID(r.id)
		c.W.BulkString(r.p.Consumer.Name)
		c.W.Int(max(c.Now-r.p.DeliveryTime, 0))
		c.W.Int(r.p.DeliveryCount)
	}
}

// existingGroup is stream s's consumer group named group, nil when the
// stream (nil: no such key) or the group does not exist.
func existingGroup(s *keyspace.Stream, group []byte) *keyspace.StreamGroup {
	if s == nil {
		return nil
	}
	return s.Group(group)
}

// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME
// unix-ms] [RETRYCOUNT n] [FORCE] [JUSTID] [LASTID id [ENTRIESREAD n]]
//
// ENTRIESREAD (gantry's, see the top of the file) sets the group's
// entries-read count with the last ID LASTID gives, when that ID is not
// behind the group's.
func cmdXClaim(c *Ctx) {
	key, group := c.Args[1], c.Args[2]
	s, ok := c.lookupStream(key)
	if !ok {
		return
	}
	g := existingGroup(s, group)
	if g == nil {
		c.W.Error(noGroupError(key, group))
		return
	}
	minIdle, ok := ParseInt(c.Args[4])
	if !ok {
		c.W.Error("ERR Invalid min-idle-time argument for XCLAIM")
		return
	}
	minIdle = max(minIdle, 0)
	j := 5
	var ids []keyspace.StreamID
	for ; j < len(c.Args); j++ {
		id, _, ok := ParseStreamID(c.Args[j], 0, true, false)
		if !ok {
			break
		}
		ids = append(ids, id)
	}
	retry, delivery := int64(-1), int64(0)
	force, justID, timeGiven := false, false, false
	var lastID keyspace.StreamID
	lastGiven, entriesRead := false, int64(0)
	readGiven := false
	for ; j < len(c.Args); j++ {
		opt := c.Args[j]
		more := j+1 < len(c.Args)
		switch {
		case EqualFold(opt, "force"):
			force = true
		case EqualFold(opt, "justid"):
			justID = true
		case EqualFold(opt, "idle") && more:
			j++
			n, ok := ParseInt(c.Args[j])
			if !ok {
				c.W.Error("ERR Invalid IDLE option argument for XCLAIM")
				return
			}
			delivery, timeGiven = c.Now-n, true
		case EqualFold(opt, "time") && more:
			j++
			n, ok := ParseInt(c.Args[j])
			if !ok {
				c.W.Error("ERR Invalid TIME option argument for XCLAIM")
				return
			}
			delivery, timeGiven = n, true
		case EqualFold(opt, "retrycount") && more:
			j++
			n, ok := ParseInt(c.Args[j])
			if !ok {
				c.W.Error("ERR Invalid RETRYCOUNT option argument for XCLAIM")
				return
			}
			retry = n
		case EqualFold(opt, "lastid") && more:
			j++
			if lastID, ok = c.streamID(c.Args[j]); !ok {
				return
			}
			lastGiven = true
		case EqualFold(opt, "entriesread") && more:
			j++
			if entriesRead, ok = c.ArgInt(j); !ok {
				return
			}
			if entriesRead < 0 && entriesRead != keyspace.InvalidEntriesRead {
				c.W.Error("ERR value for ENTRIESREAD must be positive or -1")
				return
			}
			readGiven = true
		default:
			c.W.Error("ERR Unrecognized XCLAIM option '" + Trunc(opt, 128) + "'")
			return
		}
	}
	if readGiven && !lastGiven {
		c.W.Error("ERR XCLAIM ENTRIESREAD needs LASTID")
		return
	}
	propagateLast := false
	if g.LastID.Less(lastID) {
		g.LastID = lastID
		propagateLast = true
	}
	if readGiven && !lastID.Less(g.LastID) {
		g.EntriesRead = entriesRead
	}
	switch {
	case !timeGiven:
		delivery = c.Now // no IDLE or TIME: delivered now
	case c.Replaying:
		// the time the primary (or the log) recorded; a replica's Now is
		// not a clock
		delivery = max(delivery, 0)
	case delivery < 0 || delivery > c.Now:
		// Redis clamps a delivery time in the future (or a negative one) to now
		delivery = c.Now
	}
	// as Redis 7.0, the consumer is looked up (and created) when the first
	// entry is claimed
	var cons *keyspace.StreamConsumer
	var claimed []keyspace.StreamID
	for _, id := range ids {
		p := g.Pending(id)
		if !s.Has(id) {
			if p != nil { // the entry is gone: drop it from the PEL
				c.logXClaim(key, group, g, id, p)
				propagateLast = false
				g.Ack(id)
			}
			continue
		}
		if p == nil && !force {
			continue
		}
		if p != nil && minIdle > 0 && c.Now-p.DeliveryTime < minIdle {
			continue
		}
		if cons == nil {
			cons = c.consumerFor(key, group, g, c.Args[3], true)
			if c.Replaying && delivery > cons.SeenTime {
				cons.SeenTime = delivery // a replica's clock is not the primary's
			}
		}
		p = g.Claim(cons, id)
		p.DeliveryTime = delivery
		if retry >= 0 {
			p.DeliveryCount = retry
		} else if !justID {
			p.DeliveryCount++
		}
		cons.ActiveTime = c.Now
		claimed = append(claimed, id)
		c.logXClaim(key, group, g, id, p)
		propagateLast = false
	}
	if propagateLast {
		c.logGroupID(key, group, g)
	}
	c.W.Array(len(claimed))
	for _, id := range claimed {
		if justID {
			c.replyStreamID(id)
			continue
		}
		e, _ := s.Get(id)
		c.replyEntry(e)
	}
}

// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
func cmdXAutoClaim(c *Ctx) {
	key, group := c.Args[1], c.Args[2]
	minIdle, ok := ParseInt(c.Args[4])
	if !ok {
		c.W.Error("ERR Invalid min-idle-time argument for XAUTOCLAIM")
		return
	}
	minIdle = max(minIdle, 0)
	start, ok := c.intervalID(c.Args[5], false)
	if !ok {
		return
	}
	count, justID := int64(100), false
	const attemptsFactor = 10
	for j := 6; j < len(c.Args); j++ {
		switch {
		case EqualFold(c.Args[j], "count") && j+1 < len(c.Args):
			n, ok := ParseInt(c.Args[j+1])
			if !ok || n < 1 || n > (1<<63-1)/16 {
				c.W.Error("ERR COUNT must be > 0")
				return
			}
			count = n
			j++
		case EqualFold(c.Args[j], "justid"):
			justID = true
		default:
			c.W.Error(ErrSyntax)
			return
		}
	}
	s, ok := c.lookupStream(key)
	if !ok {
		return
	}
	g := existingGroup(s, group)
	if g == nil {
		c.W.Error(noGroupError(key, group))
		return
	}
	var cons *keyspace.StreamConsumer // created when the first entry is claimed
	attempts := count * attemptsFactor
	var claimed, deleted []keyspace.StreamID
	next := keyspace.StreamID{}
	type pend struct {
		id keyspace.StreamID
		p  *keyspace.PendingEntry
	}
	// collect first (one more than can be examined, for the cursor):
	// claiming changes the PEL being walked
	var scan []pend
	g.PendingRange(nil, start, keyspace.MaxStreamID, func(id keyspace.StreamID, p *keyspace.PendingEntry) bool {
		scan = append(scan, pend{id, p})
		return int64(len(scan)) <= attempts
	})
	i := 0
	for ; i < len(scan) && attempts > 0 && count > 0; i++ {
		attempts--
		id, p := scan[i].id, scan[i].p
		if !s.Has(id) {
			c.logXClaim(key, group, g, id, p)
			g.Ack(id)
			deleted = append(deleted, id)
			count--
			continue
		}
		if minIdle > 0 && c.Now-p.DeliveryTime < minIdle {
			continue
		}
		if cons == nil {
			cons = c.consumerFor(key, group, g, c.Args[3], true)
		}
		p = g.Claim(cons, id)
		p.DeliveryTime = c.Now
		if !justID {
			p.DeliveryCount++
		}
		cons.ActiveTime = c.Now
		claimed = append(claimed, id)
		count--
		c.logXClaim(key, group, g, id, p)
	}
	// the cursor is the first pending entry not looked at (0-0 at the end)
	if i < len(scan) {
		next = scan[i].id
	}
	c.W.Array(3)
	c.replyStreamID(next)
	c.W.Array(len(claimed))
	for _, id := range claimed {
		if justID {
			c.replyStreamID(id)
			continue
		}
		e, _ := s.Get(id)
		c.replyEntry(e)
	}
	c.W.Array(len(deleted))
	for _, id := range deleted {
		c.replyStreamID(id)
	}
}
