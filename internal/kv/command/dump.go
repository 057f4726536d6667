package command

import (
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// DUMP key
func cmdDump(c *Ctx) {
	e := c.Lookup(c.Args[1])
	if e == nil {
		c.W.Null()
		return
	}
	p := keyspace.Dump(e)
	if p == nil {
		c.W.Error("ERR DUMP does not support values of type " + e.Kind().String())
		return
	}
	c.W.Bulk(p)
}

var bABSTTL = []byte("ABSTTL")

// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ
// frequency], and RESTORE-ASKING (the same, routed as after ASKING). The
// log records it with an absolute expiry so a replay gives the same key.
func cmdRestore(c *Ctx) {
	key := c.Args[1]
	ttl, ok := ParseInt(c.Args[2])
	if !ok {
		c.W.Error(ErrNotInt)
		return
	}
	replace, absTTL := false, false
	idle, freq := int64(-1), int64(-1)
	for i := 4; i < len(c.Args); i++ {
		a := c.Args[i]
		switch {
		case EqualFold(a, "replace"):
			replace = true
		case EqualFold(a, "absttl"):
			absTTL = true
		case EqualFold(a, "idletime") && i+1 < len(c.Args):
			n, ok := c.ArgInt(i + 1)
			if !ok {
				return
			}
			if n < 0 {
				c.W.Error("ERR Invalid IDLETIME value, must be >= 0")
				return
			}
			idle = n
			i++
		case EqualFold(a, "freq") && i+1 < len(c.Args):
			n, ok := c.ArgInt(i + 1)
			if !ok {
				return
			}
			if n < 0 || n > 255 {
				c.W.Error("ERR Invalid FREQ value, must be >= 0 and <= 255")
				return
			}
			freq = n
			i++
		default:
			c.W.Error(ErrSyntax)
			return
		}
	}
	if ttl < 0 {
		c.W.Error("ERR Invalid TTL value, must be >= 0")
		return
	}
	if !replace && c.Lookup(key) != nil {
		c.W.Error("BUSYKEY Target key name already exists.")
		return
	}
	e, err := keyspace.ParseDumpWithin(c.Args[3], c.Track.Settings.HashLimits(), c.Track.Settings.ZSetLimits())
	if err != nil {
		c.W.Error(err.Error())
		return
	}
	var exp int64
	switch {
	case ttl == 0:
	case absTTL:
		exp = ttl
	default:
		exp = c.Now + ttl
		if exp < c.Now { // overflow
			c.W.Error("ERR Invalid TTL value, must be >= 0")
			return
		}
	}
	existed := c.Lookup(key) != nil
	if existed {
		c.KS.DeleteLocked(key)
	}
	if exp != 0 && exp <= c.Now {
		// already expired: as Redis, the key is not created (a replaced
		// one is deleted)
		if existed {
			c.Dirty++
			c.Log(bDEL, key)
		}
		c.W.OK()
		return
	}
	c.KS.AddLocked(key, e.WithExpiry(exp))
	c.KS.SetAccessLocked(e, idle, freq, c.Now)
	c.Dirty++
	if exp != 0 {
		c.Log(bRESTORE, key, strconv.AppendInt(nil, exp, 10), c.Args[3], bREPLACE, bABSTTL)
	} else {
		c.Log(bRESTORE, key, []byte("0"), c.Args[3], bREPLACE)
	}
	c.W.OK()
}

var (
	bRESTORE = []byte("RESTORE")
	bREPLACE = []byte("REPLACE")
)
