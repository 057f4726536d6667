package command

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

func cmdDel(c *Ctx) {
	if lf := c.KS.LazyFree(); lf != nil && lf.UserDel.Load() { // lazyfree-lazy-user-del
		cmdUnlink(c)
		return
	}
	var n int64
	for _, k := range c.Args[1:] {
		if c.Lookup(k) != nil && c.KS.DeleteLocked(k) {
			n++
		}
	}
	c.Dirty += int(n)
	c.W.Int(n)
}

// UNLINK key [key ...] is DEL with big values freed in the background
// (keyspace.LazyFree).
func cmdUnlink(c *Ctx) {
	var n int64
	for _, k := range c.Args[1:] {
		if c.Lookup(k) != nil && c.KS.UnlinkLocked(k) {
			n++
		}
	}
	c.Dirty += int(n)
	c.W.Int(n)
}

func cmdExists(c *Ctx) {
	var n int64
	for _, k := range c.Args[1:] {
		if c.Lookup(k) != nil {
			n++
		}
	}
	c.W.Int(n)
}

// EXPIRE key seconds [NX | XX | GT | LT] and PEXPIRE, EXPIREAT, PEXPIREAT.
func cmdExpire(c *Ctx) {
	key := c.Args[1]
	n, ok := c.ArgInt(2)
	if !ok {
		return
	}
	var nx, xx, gt, lt bool
	for _, a := range c.Args[3:] {
		switch {
		case EqualFold(a, "nx"):
			nx = true
		case EqualFold(a, "xx"):
			xx = true
		case EqualFold(a, "gt"):
			gt = true
		case EqualFold(a, "lt"):
			lt = true
		default:
			c.W.Error("ERR Unsupported option " + string(a))
			return
		}
	}
	if nx && (xx || gt || lt) {
		c.W.Error("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if gt && lt {
		c.W.Error("ERR GT and LT options at the same time are not compatible")
		return
	}
	name := c.Cmd.Name
	if name == "expire" || name == "expireat" {
		if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
			c.W.Error("ERR invalid expire time in '" + name + "' command")
			return
		}
		n *= 1000
	}
	if name == "expire" || name == "pexpire" {
		if (n > 0 && n > math.MaxInt64-c.Now) || (n < 0 && n < math.MinInt64+c.Now) {
			c.W.Error("ERR invalid expire time in '" + name + "' command")
			return
		}
		n += c.Now
	}
	e := c.Lookup(key)
	if e == nil {
		c.W.Int(0)
		return
	}
	cur := e.Expiry()
	switch {
	case nx && cur != 0, xx && cur == 0:
		c.W.Int(0)
		return
	case gt && (cur == 0 || n <= cur): // no expiry counts as infinite
		c.W.Int(0)
		return
	case lt && cur != 0 && n >= cur:
		c.W.Int(0)
		return
	}
	c.Dirty++
	if n <= c.Now {
		c.KS.DeleteLocked(key)
		c.Log(bDEL, key)
	} else {
		c.KS.SetExpireLocked(key, e, n)
		c.Log(bPEXAT, key, []byte(strconv.FormatInt(n, 10)))
	}
	c.W.Int(1)
}

func cmdTTL(c *Ctx) {
	e := c.Lookup(c.Args[1])
	if e == nil {
		c.W.Int(-2)
		return
	}
	if e.Expiry() == 0 {
		c.W.Int(-1)
		return
	}
	switch c.Cmd.Name {
	case "ttl":
		c.W.Int((e.Expiry() - c.Now + 500) / 1000)
	case "pttl":
		c.W.Int(e.Expiry() - c.Now)
	case "expiretime":
		c.W.Int(e.Expiry() / 1000)
	default:
		c.W.Int(e.Expiry())
	}
}

func cmdPersist(c *Ctx) {
	e := c.Lookup(c.Args[1])
	if e == nil || e.Expiry() == 0 {
		c.W.Int(0)
		return
	}
	c.KS.SetExpireLocked(c.Args[1], e, 0)
	c.Dirty++
	c.W.Int(1)
}

func cmdType(c *Ctx) {
	e := c.Lookup(c.Args[1])
	if e == nil {
		c.W.Simple("none")
		return
	}
	c.W.Simple(e.Kind().String())
}

// collectSlot appends the live keys of a slot matching pattern and type.
func (c *Ctx) collectSlot(slot int, pattern []byte, typ string, dst []string) []string {
	c.KS.ForEachInSlotLocked(slot, func(k string, e *keyspace.Entry) bool {
		if e.Expiry() != 0 && e.Expiry() <= c.Now {
			return true
		}
		if typ != "" && e.Kind().String() != typ {
			return true
		}
		if pattern != nil && !GlobMatch(pattern, []byte(k)) {
			return true
		}
		dst = append(dst, k)
		return true
	})
	return dst
}

func cmdKeys(c *Ctx) {
	pattern := c.Args[1]
	if len(pattern) == 1 && pattern[0] == '*' {
		pattern = nil
	}
	var keys []string
	for i := 0; i < keyspace.NumShards; i++ {
		c.lockShard(i)
		for j := 0; j < keyspace.NumSlots/keyspace.NumShards; j++ {
			keys = c.collectSlot(j*keyspace.NumShards+i, pattern, "", keys)
		}
		c.unlockShard(i)
	}
	c.W.Array(len(keys))
	for _, k := range keys {
		c.W.BulkString(k)
	}
}

// scanOpts parses [MATCH pattern] [COUNT n] [TYPE t] from args[from:].
func (c *Ctx) scanOpts(from int, allowType bool) (pattern []byte, count int, typ string, ok bool) {
	count = 10
	for i := from; i < len(c.Args); i++ {
		a := c.Args[i]
		if i+1 >= len(c.Args) {
			c.W.Error(ErrSyntax)
			return nil, 0, "", false
		}
		switch {
		case EqualFold(a, "match"):
			pattern = c.Args[i+1]
			if len(pattern) == 1 && pattern[0] == '*' {
				pattern = nil
			}
		case EqualFold(a, "count"):
			n, ok := ParseInt(c.Args[i+1])
			if !ok {
				c.W.Error(ErrNotInt)
				return nil, 0, "", false
			}
			if n < 1 {
				c.W.Error(ErrSyntax)
				return nil, 0, "", false
			}
			if n > 1<<20 {
				n = 1 << 20
			}
			count = int(n)
		case EqualFold(a, "type") && allowType:
			typ = string(LowerInto(nil, c.Args[i+1]))
		default:
			c.W.Error(ErrSyntax)
			return nil, 0, "", false
		}
		i++
	}
	return pattern, count, typ, true
}

func parseCursor(b []byte) (uint64, bool) {
	n, err := strconv.ParseUint(string(b), 10, 64)
	return n, err == nil
}

// SCAN cursor: the cursor is the next hash slot to visit; a call returns
// whole slots, so COUNT is a lower bound once keys are found (Redis's
// guarantee holds: a key present during the whole scan is returned).
func cmdScan(c *Ctx) {
	cur, ok := parseCursor(c.Args[1])
	if !ok {
		c.W.Error("ERR invalid cursor")
		return
	}
	pattern, count, typ, ok := c.scanOpts(2, true)
	if !ok {
		return
	}
	var keys []string
	slot := int(cur)
	for slot < keyspace.NumSlots && len(keys) < count {
		i := slot % keyspace.NumShards
		c.lockShard(i)
		keys = c.collectSlot(slot, pattern, typ, keys)
		c.unlockShard(i)
		slot++
	}
	if slot >= keyspace.NumSlots {
		slot = 0
	}
	c.W.Array(2)
	c.W.BulkString(strconv.Itoa(slot))
	c.W.Array(len(keys))
	for _, k := range keys {
		c.W.BulkString(k)
	}
}

func cmdRename(c *Ctx) {
	src, dst := c.Args[1], c.Args[2]
	nx := c.Cmd.Name == "renamenx"
	e := c.Lookup(src)
	if e == nil {
		c.W.Error(ErrNoSuchKey)
		return
	}
	if string(src) == string(dst) {
		if nx {
			c.W.Int(0)
		} else {
			c.W.OK()
		}
		return
	}
	if c.Lookup(dst) != nil {
		if nx {
			c.W.Int(0)
			return
		}
		c.KS.DeleteLocked(dst)
	}
	c.KS.DeleteLocked(src)
	c.KS.AddLocked(dst, e)
	c.Dirty++
	if nx {
		c.W.Int(1)
	} else {
		c.W.OK()
	}
}

func cmdRandomKey(c *Ctx) {
	start := rand.IntN(keyspace.NumSlots)
	for n := 0; n < keyspace.NumSlots; n++ {
		slot := (start + n) % keyspace.NumSlots
		i := slot % keyspace.NumShards
		c.lockShard(i)
		var key string
		found := false
		c.KS.ForEachInSlotLocked(slot, func(k string, e *keyspace.Entry) bool {
			if e.Expiry() != 0 && e.Expiry() <= c.Now {
				return true
			}
			key, found = k, true
			return false
		})
		c.unlockShard(i)
		if found {
			c.W.BulkString(key)
			return
		}
	}
	c.W.Null()
}

func cmdDBSize(c *Ctx) {
	n := 0
	for i := 0; i < keyspace.NumShards; i++ {
		c.lockShard(i)
		n += c.KS.ShardLenLocked(i)
		c.unlockShard(i)
	}
	c.W.Int(int64(n))
}

// FLUSHALL [ASYNC | SYNC] drops every database: the dispatcher holds
// every shard of all of them (lockall, crossdb). ASYNC (or no option
// with lazyfree-lazy-user-flush) leaves the keys to the lazy freer.
func cmdFlushAll(c *Ctx) {
	async, ok := flushArgs(c)
	if !ok {
		return
	}
	if len(c.DBs) > 1 {
		flushDBsLocked(c, async)
		c.Dirty++
		c.W.OK()
		return
	}
	flushLocked(c, async)
}

// flushArgs checks the option of FLUSHALL and FLUSHDB and tells whether
// the flush is lazy.
func flushArgs(c *Ctx) (async, ok bool) {
	switch {
	case len(c.Args) == 1:
		lf := c.KS.LazyFree()
		return lf != nil && lf.UserFlush.Load(), true
	case len(c.Args) == 2 && EqualFold(c.Args[1], "async"):
		return true, true
	case len(c.Args) == 2 && EqualFold(c.Args[1], "sync"):
		return false, true
	}
	c.W.Error(ErrSyntax)
	return false, false
}

// FLUSHDB [ASYNC | SYNC] drops the client's database.
func cmdFlushDB(c *Ctx) {
	if async, ok := flushArgs(c); ok {
		flushLocked(c, async)
	}
}

// flushLocked drops the keys of c.KS, whose shards the dispatcher holds.
func flushLocked(c *Ctx, async bool) {
	c.Track.TouchAllLocked(func(key string) bool { return c.KS.PeekLocked([]byte(key), c.Now) != nil })
	flushKeyspaceLocked(c.KS, async)
	for i := 0; i < keyspace.NumShards; i++ {
		// an XREADGROUP blocked on a flushed stream must learn it is gone
		c.Track.WakeBlockedLocked(i)
	}
	c.Dirty++
	c.W.OK()
}

// flushKeyspaceLocked drops every key of ks, whose shards the caller
// holds; async hands them to the lazy freer.
func flushKeyspaceLocked(ks *keyspace.Keyspace, async bool) {
	if async {
		ks.FlushAsyncLocked()
		return
	}
	ks.FlushLocked()
}

// cloneEntry deep-copies a value (COPY); nil for a value type it does
// not know.
func cloneEntry(e *keyspace.Entry) *keyspace.Entry {
	var n *keyspace.Entry
	switch e.Kind() {
	case keyspace.KindString:
		n = keyspace.NewString(keyspace.CopyBytes(e.Bytes()), 0)
	case keyspace.Lists.Kind():
		v, l := keyspace.Lists.Of(e), &keyspace.List{}
		for i := 0; i < v.Len(); i++ {
			l.PushBack(v.At(i))
		}
		n = keyspace.Lists.NewEntry(l)
	case keyspace.Sets.Kind():
		n = keyspace.Sets.NewEntry(keyspace.Sets.Of(e).Clone())
	case keyspace.Hashes.Kind():
		n = keyspace.Hashes.NewEntry(keyspace.Hashes.Of(e).Clone())
	case keyspace.ZSets.Kind():
		n = keyspace.ZSets.NewEntry(keyspace.ZSets.Of(e).Clone())
	case keyspace.Streams.Kind():
		n = keyspace.Streams.NewEntry(keyspace.Streams.Of(e).Clone())
	default:
		return nil
	}
	return n.WithExpiry(e.Expiry())
}

// COPY source destination [DB destination-db] [REPLACE]
func cmdCopy(c *Ctx) {
	src, dst := c.Args[1], c.Args[2]
	replace := false
	target := c.DB
	for i := 3; i < len(c.Args); i++ {
		switch {
		case EqualFold(c.Args[i], "replace"):
			replace = true
		case EqualFold(c.Args[i], "db") && i+1 < len(c.Args):
			n, ok := c.ArgInt(i + 1)
			if !ok {
				return
			}
			if len(c.DBs) < 2 && n != 0 {
				if c.Track.Settings.Cluster() {
					c.W.Error("ERR Copying to another database is not allowed in cluster mode")
				} else {
					c.W.Error(ErrDBRange)
				}
				return
			}
			if n < 0 || n >= int64(max(len(c.DBs), 1)) {
				c.W.Error(ErrDBRange)
				return
			}
			target = int(n)
			i++
		default:
			c.W.Error(ErrSyntax)
			return
		}
	}
	if string(src) == string(dst) && target == c.DB {
		c.W.Error("ERR source and destination objects are the same")
		return
	}
	if target != c.DB { // the dispatcher holds dst's shard in target (CrossShards)
		copyToDB(c, c.DBs[target], target, src, dst, replace)
		return
	}
	e := c.readKey(src)
	if e == nil {
		c.W.Int(0)
		return
	}
	n := cloneEntry(e)
	if n == nil {
		c.W.Error("ERR COPY does not support values of type " + e.Kind().String())
		return
	}
	if c.Lookup(dst) != nil {
		if !replace {
			c.W.Int(0)
			return
		}
		c.KS.DeleteLocked(dst)
	}
	c.KS.AddLocked(dst, n)
	c.Dirty++
	c.W.Int(1)
}

// encoding names the Redis encoding a value of this size would have.
func encoding(e *keyspace.Entry) string {
	switch e.Kind() {
	case keyspace.KindString:
		if len(e.Bytes()) <= 20 {
			if n, ok := ParseInt(e.Bytes()); ok && strconv.FormatInt(n, 10) == string(e.Bytes()) {
				return "int"
			}
		}
		if len(e.Bytes()) <= 44 {
			return "embstr"
		}
		return "raw"
	case keyspace.Lists.Kind():
		v := keyspace.Lists.Of(e)
		size := v.Bytes() + 2*v.Len()
		if size <= 8192 {
			return "listpack"
		}
		return "quicklist"
	case keyspace.Sets.Kind():
		// Redis 7.0 has intsets and hashtables only: gantry's small form
		// of other members is a hashtable to it
		if keyspace.Sets.Of(e).Intset() {
			return "intset"
		}
		return "hashtable"
	case keyspace.Hashes.Kind():
		v := keyspace.Hashes.Of(e)
		if v.Small() {
			return "listpack"
		}
		return "hashtable"
	case keyspace.ZSets.Kind():
		if keyspace.ZSets.Of(e).Packed() {
			return "listpack"
		}
		return "skiplist"
	case keyspace.Streams.Kind():
		return "stream"
	}
	return "raw"
}

// OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ|HELP key
func cmdObject(c *Ctx) {
	sub := string(LowerInto(nil, c.Args[1]))
	if sub == "help" {
		help := []string{"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"ENCODING <key>", "FREQ <key>", "IDLETIME <key>", "REFCOUNT <key>", "HELP"}
		c.W.Array(len(help))
		for _, h := range help {
			c.W.Simple(h)
		}
		return
	}
	if !slices.Contains([]string{"encoding", "refcount", "idletime", "freq"}, sub) {
		c.W.Error("ERR unknown subcommand '" + string(c.Args[1]) + "'. Try OBJECT HELP.")
		return
	}
	if len(c.Args) != 3 {
		c.W.Error("ERR wrong number of arguments for 'object|" + sub + "' command")
		return
	}
	e := c.KS.PeekLocked(c.Args[2], c.Now) // OBJECT is not an access
	// but a read for the statistics, as Redis's lookupKeyReadWithFlags
	if e != nil {
		c.Hits++
	} else {
		c.Misses++
	}
	if e == nil {
		c.W.Null()
		return
	}
	lfu := c.KS.Policy().LFU()
	switch sub {
	case "encoding":
		c.W.BulkString(encoding(e))
	case "refcount":
		c.W.Int(1)
	case "idletime":
		if lfu {
			c.W.Error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
			return
		}
		c.W.Int(e.IdleTime(c.Now))
	case "freq":
		if !lfu {
			c.W.Error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
			return
		}
		c.W.Int(int64(c.KS.Freq(e, c.Now)))
	}
}
