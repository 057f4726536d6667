package command

import (
	"math"
	"time"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

var (
	bLPOP  = []byte("LPOP")
	bRPOP  = []byte("RPOP")
	bLMOVE = []byte("LMOVE")
	bLEFT  = []byte("LEFT")
	bRIGHT = []byte("RIGHT")
)

func sideArg(left bool) []byte {
	if left {
		return bLEFT
	}
	return bRIGHT
}

// parseTimeout parses a blocking timeout in seconds (0 blocks forever).
func (c *Ctx) parseTimeout(b []byte) (time.Duration, bool) {
	f, ok := ParseFloat(b)
	if !ok || math.IsInf(f, 0) || f > 1e12 {
		c.W.Error("ERR timeout is not a float or out of range")
		return 0, false
	}
	if f < 0 {
		c.W.Error("ERR timeout is negative")
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// BlockingPop is a parsed blocking command: BLPOP, BRPOP, BLMOVE,
// BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, XREAD and XREADGROUP. The
// command layer knows how to pop or read; waiting is the connection's
// business: the server calls Try with the shards of the command's keys
// locked, and when there is nothing to take waits for a change of one of
// the keys (or the Timeout, 0 for none) and tries again.
type BlockingPop struct {
	Timeout time.Duration
	// NoWait is set for a command that must not wait (XREAD without
	// BLOCK): one Try, then the timeout reply.
	NoWait bool
	c      *Ctx
	try    func() bool
	detach func()
}

// ParseBlockingPop parses the blocking pop in c; false means the error
// reply is written.
func ParseBlockingPop(c *Ctx) (*BlockingPop, bool) {
	b := &BlockingPop{c: c}
	var timeoutArg []byte
	switch c.Cmd.Name {
	case "xread", "xreadgroup":
		if !parseStreamRead(c, b) {
			return nil, false
		}
		return b, true
	case "bzpopmin", "bzpopmax", "bzmpop":
		if !parseBZPop(c, b) {
			return nil, false
		}
		return b, true
	case "blpop", "brpop":
		left := c.Cmd.Name == "blpop"
		keys := c.Args[1 : len(c.Args)-1]
		timeoutArg = c.Args[len(c.Args)-1]
		retry := resumed(c)
		b.detach = func() { c.resume = &blockResume{args: cloneArgs(c.Args)} }
		b.try = func() bool {
			// woken, a key that is no list now is passed over, as Redis
			// serves only lists; the first try answers WRONGTYPE
			defer func() { retry = true }()
			for _, k := range keys {
				var l *keyspace.List
				ok := true
				if retry {
					if e := c.Lookup(k); e != nil {
						l = keyspace.Lists.Of(e)
					}
				} else {
					l, ok = c.lookupList(k)
				}
				if !ok {
					return true
				}
				if l == nil {
					continue
				}
				v := popList(l, left)
				c.W.Array(2)
				c.W.Bulk(k)
				c.W.Bulk(v)
				c.Dirty++
				if left {
					c.Log(bLPOP, k)
				} else {
					c.Log(bRPOP, k)
				}
				c.dropIfEmpty(k, l.Len())
				return true
			}
			return false
		}
	case "blmove", "brpoplpush":
		src, dst := c.Args[1], c.Args[2]
		fromLeft, toLeft := false, true
		timeoutArg = c.Args[3]
		if c.Cmd.Name == "blmove" {
			var ok1, ok2 bool
			fromLeft, ok1 = parseSide(c.Args[3])
			toLeft, ok2 = parseSide(c.Args[4])
			if !ok1 || !ok2 {
				c.W.Error(ErrSyntax)
				return nil, false
			}
			timeoutArg = c.Args[5]
		}
		b.try = func() bool {
			if !c.moveLocked(src, dst, fromLeft, toLeft, false) {
				return false
			}
			if c.Dirty > 0 {
				c.Log(bLMOVE, src, dst, sideArg(fromLeft), sideArg(toLeft))
			}
			return true
		}
	case "blmpop":
		timeoutArg = c.Args[1]
		keys, left, count, ok := c.parseMPop(2)
		if !ok {
			return nil, false
		}
		retry := resumed(c)
		b.detach = func() { c.resume = &blockResume{args: cloneArgs(c.Args)} }
		b.try = func() bool {
			defer func() { retry = true }()
			return c.mpopListLocked(keys, left, count, retry)
		}
	default:
		c.W.Error("ERR " + c.Cmd.Name + " is not a blocking pop")
		return nil, false
	}
	var ok bool
	if b.Timeout, ok = c.parseTimeout(timeoutArg); !ok {
		return nil, false
	}
	return b, true
}

// Try pops if a list has an element (or replies an error) and reports
// whether the command is done; the keys' shards are locked. A Try that is
// not done may still have changed something (XREADGROUP creates its
// consumer) for the server to commit.
func (b *BlockingPop) Try() bool { return b.try() }

// Detach is called when the command leaves the event loop to wait on the
// connection's goroutine, where it is parsed and run again: it keeps what
// the second run must not compute afresh (the IDs XREAD resolved "$" to).
func (b *BlockingPop) Detach() {
	if b.detach != nil {
		b.detach()
	}
}

// ReplyTimeout replies what the command answers when nothing came.
func (b *BlockingPop) ReplyTimeout() {
	if n := b.c.Cmd.Name; n == "blmove" || n == "brpoplpush" {
		b.c.W.Null()
	} else {
		b.c.W.NullArray()
	}
}

// BlockingSpecs are the blocking pops. Their handler belongs to the server
// (it waits on the connection) and is given as h.
func BlockingSpecs(h Handler) []Spec {
	const (
		w  = "write denyoom blocking selflock"
		d  = "write blocking selflock"
		df = "write fast blocking selflock"
	)
	return []Spec{
		{"blpop", -3, d, 1, -2, 1, "list", h, nil},
		{"brpop", -3, d, 1, -2, 1, "list", h, nil},
		{"blmove", 6, w, 1, 2, 1, "list", h, nil},
		{"brpoplpush", 4, w, 1, 2, 1, "list", h, nil},
		{"blmpop", -5, d, 0, 0, 0, "list", h, NumKeysAt(2)},
		{"bzpopmin", -3, df, 1, -2, 1, "sorted-set", h, nil},
		{"bzpopmax", -3, df, 1, -2, 1, "sorted-set", h, nil},
		{"bzmpop", -5, d, 0, 0, 0, "sorted-set", h, NumKeysAt(2)},
		{"xread", -4, "readonly blocking selflock", 0, 0, 0, "stream", h, StreamKeys},
		{"xreadgroup", -7, "write blocking selflock", 0, 0, 0, "stream", h, StreamKeys},
	}
}
