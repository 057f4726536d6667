package command

import (
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

// Ctx is the context a command handler runs in: its arguments, the reply
// writer, the keyspace with the shards of its keys locked, and what the
// handler changed (Dirty and the log record). The server embeds one in
// each connection and reuses it for every command; a Ctx is used by one
// goroutine at a time.
type Ctx struct {
	Args [][]byte
	W    resp.Writer
	Cmd  *Command
	// Now is the time of the command in Unix ms, read once: every expiry
	// check of the command sees the same time.
	Now int64
	// Keys are the command's keys (Command.GetKeys) and Locked the shards
	// the dispatcher locked for them, ascending.
	Keys   [][]byte
	Locked []int
	// Dirty counts the changes the handler made; a command that ends with
	// Dirty > 0 is logged and replicated, and WATCHes on its keys fail.
	Dirty int
	// Changed, when a handler sets it, are the keys it changed, fewer
	// than Keys (SMOVE of a member the destination has): only they are
	// touched (WATCH, blocked clients, tracking). ResetRecord clears it.
	Changed [][]byte
	// AllLocked is set while the caller holds every shard (EXEC with a
	// keyspace-wide command); InExec while EXEC runs its queued commands.
	AllLocked bool
	InExec    bool
	// InScript is set while a script's commands run (EVAL, FCALL).
	InScript bool
	// Replaying is set while the command is an effect recorded elsewhere
	// (a log being loaded, a primary's stream on a replica): handlers apply
	// it as given and do not bound times by the local clock, which a
	// replica does not use (its Now stays at 1 so nothing expires).
	Replaying bool

	KS    *keyspace.Keyspace
	Track *Tracker
	// DB is the number of the database KS and Track belong to; DBs are
	// all of them (one in cluster mode), for the commands that cross
	// databases (db.go), which hold the global shards in Cross.
	DB    int
	DBs   []DB
	Cross []int
	// Conn is the connection the command came from (the server's client),
	// nil while a log is replayed.
	Conn any
	// Hits and Misses count the keys the command's reads found and did
	// not find (INFO keyspace_hits and keyspace_misses); the server adds
	// them to its statistics and zeroes them.
	Hits, Misses int64
	// reading: the command, a write, reads the key it looks up (readKey)
	reading bool

	custom bool   // the handler wrote its own log records
	rec    []byte // log records of the command
	// parts is the last record of LogParts, kept in parts until Record
	// asks for it: without a log or replicas it is never built (XADD's
	// record was a seventh of its instructions)
	parts partsRec
	// events are the keyspace notifications the handler raised (Notify)
	events   []Event
	notified bool
	// resume is what a blocking command that left the event loop keeps
	// for its second run on the connection's goroutine (BlockingPop.Detach).
	resume any
	// memo is the hash slot of the last key SlotOf computed one for
	memo slotMemo
}

// slotMemo holds a key's slot with a copy of the key: compared by
// content, it cannot outlive the bytes it was computed from (a client's
// arguments point into its read buffer, which the next read overwrites).
type slotMemo struct {
	key  [48]byte
	n    int
	slot uint16
	ok   bool
}

// SlotOf returns keyspace.KeySlot(key), computed once for the key the
// dispatcher locked and the handler then looks up (the CRC of every
// keyed command was computed two to four times).
func (c *Ctx) SlotOf(key []byte) uint16 {
	m := &c.memo
	if m.ok && len(key) == m.n && string(key) == string(m.key[:m.n]) {
		return m.slot
	}
	slot := keyspace.KeySlot(key)
	if len(key) <= len(m.key) {
		m.n = copy(m.key[:], key)
		m.slot, m.ok = slot, true
	}
	return slot
}

// partsRec is a record of LogParts not built yet: the bytes of its head
// (copied: the handler's may be on its stack) and its tail, which are
// arguments of the command, valid until Record.
type partsRec struct {
	on   bool
	n    int
	lens [8]int
	buf  []byte
	tail [][]byte
}

// Log replaces the record of the current command by args (called by
// handlers whose effect differs from their arguments: relative expiries,
// random pops, float increments). It may be called several times.
func (c *Ctx) Log(args ...[]byte) {
	c.buildParts()
	if !c.custom {
		c.custom = true
		c.rec = c.rec[:0]
	}
	c.rec = resp.AppendCommand(c.rec, args...)
}

// LogParts is Log of one command made of head then tail, without a slice
// holding both (a hot handler builds head on its stack). tail must be
// arguments of the command: the record is built when Record asks for it.
func (c *Ctx) LogParts(head, tail [][]byte) {
	c.buildParts()
	if len(head) > len(c.parts.lens) {
		c.appendParts(head, tail)
		return
	}
	if !c.custom {
		c.custom = true
		c.rec = c.rec[:0]
	}
	p := &c.parts
	p.on, p.n, p.tail = true, len(head), tail
	p.buf = p.buf[:0]
	for i, h := range head {
		p.buf = append(p.buf, h...)
		p.lens[i] = len(h)
	}
}

// buildParts appends the record LogParts kept in parts to c.rec.
func (c *Ctx) buildParts() {
	p := &c.parts
	if !p.on {
		return
	}
	var head [len(p.lens)][]byte
	b := p.buf
	for i := 0; i < p.n; i++ {
		head[i], b = b[:p.lens[i]], b[p.lens[i]:]
	}
	p.on = false
	c.appendParts(head[:p.n], p.tail)
	p.tail = nil
}

// appendParts appends the command head then tail to c.rec.
func (c *Ctx) appendParts(head, tail [][]byte) {
	if !c.custom {
		c.custom = true
		c.rec = c.rec[:0]
	}
	c.rec = append(c.rec, '*')
	c.rec = strconv.AppendInt(c.rec, int64(len(head)+len(tail)), 10)
	c.rec = append(c.rec, '\r', '\n')
	for _, part := range [2][][]byte{head, tail} {
		for _, a := range part {
			c.rec = append(c.rec, '$')
			c.rec = strconv.AppendInt(c.rec, int64(len(a)), 10)
			c.rec = append(c.rec, '\r', '\n')
			c.rec = append(c.rec, a...)
			c.rec = append(c.rec, '\r', '\n')
		}
	}
}

// Record returns the log record of a command that changed the keyspace:
// what the handler logged, or else the command itself. It is valid until
// ResetRecord.
func (c *Ctx) Record() []byte {
	c.buildParts()
	if !c.custom {
		c.rec = resp.AppendCommand(c.rec[:0], c.Args...)
	}
	return c.rec
}

// ResetRecord forgets the record and the changes of the last command.
func (c *Ctx) ResetRecord() {
	c.rec = c.rec[:0]
	c.custom = false
	c.parts.on, c.parts.tail = false, nil
	c.Dirty = 0
	c.Changed = nil
	c.ResetEvents()
}

// lockShard locks shard i for keyspace-wide commands, unless the caller
// already holds every shard (inside EXEC).
func (c *Ctx) lockShard(i int) {
	if !c.AllLocked {
		c.KS.LockShard(i)
	}
}

func (c *Ctx) unlockShard(i int) {
	if !c.AllLocked {
		c.KS.UnlockShard(i)
	}
}

// Error replies shared by the handlers, in Redis's words.
const (
	ErrWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
	ErrNotInt    = "ERR value is not an integer or out of range"
	ErrNotFloat  = "ERR value is not a valid float"
	ErrSyntax    = "ERR syntax error"
	ErrOverflow  = "ERR increment or decrement would overflow"
	ErrNoSuchKey = "ERR no such key"
)

// WrongArgs replies the wrong-number-of-arguments error of the command.
func (c *Ctx) WrongArgs() {
	c.W.Error("ERR wrong number of arguments for '" + c.Cmd.Name + "' command")
}

// ArgInt parses Args[i] as an integer, replying the Redis error if not.
func (c *Ctx) ArgInt(i int) (int64, bool) {
	n, ok := ParseInt(c.Args[i])
	if !ok {
		c.W.Error(ErrNotInt)
	}
	return n, ok
}

// argInts2 parses the integer arguments i and i+1 (a start and a stop).
func (c *Ctx) argInts2(i int) (int64, int64, bool) {
	a, ok := c.ArgInt(i)
	if !ok {
		return 0, 0, false
	}
	b, ok := c.ArgInt(i + 1)
	return a, b, ok
}

// ParseInt parses a decimal 64-bit integer as Redis does.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	return resp.ParseInt(b)
}

// ParseFloat parses a float as Redis does (inf spellings, no NaN).
func ParseFloat(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	if n, ok := smallInt(b); ok {
		// scores and increments are mostly integers: strconv's general
		// path was a tenth of a ZADD's instructions
		return float64(n), true
	}
	return parseFloatStrconv(b)
}

// parseFloatStrconv is ParseFloat of any input, with strconv.
func parseFloatStrconv(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		// strconv rejects "inf" spellings Redis accepts only partly; and
		// reports range errors for huge values.
		switch string(b) {
		case "inf", "+inf", "Inf", "+Inf", "INF", "+INF":
			return posInf, true
		case "-inf", "-Inf", "-INF":
			return negInf, true
		}
		return 0, false
	}
	if f != f { // NaN
		return 0, false
	}
	return f, true
}

// smallInt parses b, decimal digits with an optional '-', when its value
// is exact as a float64 (at most 15 digits) and not -0 (which is a float
// of its own); ok is false for anything else, which ParseFloat reads with
// strconv.
func smallInt(b []byte) (int64, bool) {
	i := 0
	if b[0] == '-' {
		i = 1
	}
	if len(b) == i || len(b)-i > 15 {
		return 0, false
	}
	var n int64
	for _, ch := range b[i:] {
		d := ch - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int64(d)
	}
	if i == 1 {
		if n == 0 {
			return 0, false
		}
		n = -n
	}
	return n, true
}

// EqualFold reports whether b equals the lower-case ASCII s, ignoring case.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// LowerInto appends b in lower-case ASCII to dst.
func LowerInto(dst, b []byte) []byte {
	for _, ch := range b {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		dst = append(dst, ch)
	}
	return dst
}

// Trunc returns b as a string of at most n bytes (for error replies and
// log lines that quote client input).
func Trunc(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
