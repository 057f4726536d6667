package kv

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// lockShard locks shard i for keyspace-wide commands, unless the client
// already holds every shard (inside EXEC).
func (c *Client) lockShard(i int) {
	if !c.allLocked {
		c.srv.ks.shards[i].mu.Lock()
	}
}

func (c *Client) unlockShard(i int) {
	if !c.allLocked {
		c.srv.ks.shards[i].mu.Unlock()
	}
}

func cmdDel(c *Client) {
	var n int64
	for _, k := range c.args[1:] {
		if c.lookup(k) != nil && c.srv.ks.deleteLocked(k) {
			n++
		}
	}
	c.dirty += int(n)
	c.w.Int(n)
}

func cmdExists(c *Client) {
	var n int64
	for _, k := range c.args[1:] {
		if c.lookup(k) != nil {
			n++
		}
	}
	c.w.Int(n)
}

// EXPIRE key seconds [NX | XX | GT | LT] and PEXPIRE, EXPIREAT, PEXPIREAT.
func cmdExpire(c *Client) {
	key := c.args[1]
	n, ok := c.argInt(2)
	if !ok {
		return
	}
	var nx, xx, gt, lt bool
	for _, a := range c.args[3:] {
		switch {
		case equalFold(a, "nx"):
			nx = true
		case equalFold(a, "xx"):
			xx = true
		case equalFold(a, "gt"):
			gt = true
		case equalFold(a, "lt"):
			lt = true
		default:
			c.w.Error("ERR Unsupported option " + string(a))
			return
		}
	}
	if nx && (xx || gt || lt) {
		c.w.Error("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if gt && lt {
		c.w.Error("ERR GT and LT options at the same time are not compatible")
		return
	}
	name := c.cmd.Name
	if name == "expire" || name == "expireat" {
		if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
			c.w.Error("ERR invalid expire time in '" + name + "' command")
			return
		}
		n *= 1000
	}
	if name == "expire" || name == "pexpire" {
		if (n > 0 && n > math.MaxInt64-c.now) || (n < 0 && n < math.MinInt64+c.now) {
			c.w.Error("ERR invalid expire time in '" + name + "' command")
			return
		}
		n += c.now
	}
	e := c.lookup(key)
	if e == nil {
		c.w.Int(0)
		return
	}
	cur := e.exp
	switch {
	case nx && cur != 0, xx && cur == 0:
		c.w.Int(0)
		return
	case gt && (cur == 0 || n <= cur): // no expiry counts as infinite
		c.w.Int(0)
		return
	case lt && cur != 0 && n >= cur:
		c.w.Int(0)
		return
	}
	c.dirty++
	if n <= c.now {
		c.srv.ks.deleteLocked(key)
		c.log(bDEL, key)
	} else {
		c.srv.ks.setExpireLocked(key, e, n)
		c.log(bPEXAT, key, []byte(strconv.FormatInt(n, 10)))
	}
	c.w.Int(1)
}

func cmdTTL(c *Client) {
	e := c.lookup(c.args[1])
	if e == nil {
		c.w.Int(-2)
		return
	}
	if e.exp == 0 {
		c.w.Int(-1)
		return
	}
	switch c.cmd.Name {
	case "ttl":
		c.w.Int((e.exp - c.now + 500) / 1000)
	case "pttl":
		c.w.Int(e.exp - c.now)
	case "expiretime":
		c.w.Int(e.exp / 1000)
	default:
		c.w.Int(e.exp)
	}
}

func cmdPersist(c *Client) {
	e := c.lookup(c.args[1])
	if e == nil || e.exp == 0 {
		c.w.Int(0)
		return
	}
	c.srv.ks.setExpireLocked(c.args[1], e, 0)
	c.dirty++
	c.w.Int(1)
}

func cmdType(c *Client) {
	e := c.lookup(c.args[1])
	if e == nil {
		c.w.Simple("none")
		return
	}
	c.w.Simple(e.kind())
}

// collectSlot appends the live keys of a slot matching pattern and type.
func (c *Client) collectSlot(slot int, pattern []byte, typ string, dst []string) []string {
	c.srv.ks.forEachInSlotLocked(slot, func(k string, e *entry) bool {
		if e.exp != 0 && e.exp <= c.now {
			return true
		}
		if typ != "" && e.kind() != typ {
			return true
		}
		if pattern != nil && !globMatch(pattern, []byte(k)) {
			return true
		}
		dst = append(dst, k)
		return true
	})
	return dst
}

func cmdKeys(c *Client) {
	pattern := c.args[1]
	if len(pattern) == 1 && pattern[0] == '*' {
		pattern = nil
	}
	var keys []string
	for i := 0; i < numShards; i++ {
		c.lockShard(i)
		for j := 0; j < slotsPerShard; j++ {
			keys = c.collectSlot(j*numShards+i, pattern, "", keys)
		}
		c.unlockShard(i)
	}
	c.w.Array(len(keys))
	for _, k := range keys {
		c.w.BulkString(k)
	}
}

// scanOpts parses [MATCH pattern] [COUNT n] [TYPE t] from args[from:].
func (c *Client) scanOpts(from int, allowType bool) (pattern []byte, count int, typ string, ok bool) {
	count = 10
	for i := from; i < len(c.args); i++ {
		a := c.args[i]
		if i+1 >= len(c.args) {
			c.w.Error(errSyntax)
			return nil, 0, "", false
		}
		switch {
		case equalFold(a, "match"):
			pattern = c.args[i+1]
			if len(pattern) == 1 && pattern[0] == '*' {
				pattern = nil
			}
		case equalFold(a, "count"):
			n, ok := parseInt(c.args[i+1])
			if !ok {
				c.w.Error(errNotInt)
				return nil, 0, "", false
			}
			if n < 1 {
				c.w.Error(errSyntax)
				return nil, 0, "", false
			}
			if n > 1<<20 {
				n = 1 << 20
			}
			count = int(n)
		case equalFold(a, "type") && allowType:
			typ = string(lowerInto(nil, c.args[i+1]))
		default:
			c.w.Error(errSyntax)
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
func cmdScan(c *Client) {
	cur, ok := parseCursor(c.args[1])
	if !ok {
		c.w.Error("ERR invalid cursor")
		return
	}
	pattern, count, typ, ok := c.scanOpts(2, true)
	if !ok {
		return
	}
	var keys []string
	slot := int(cur)
	for slot < NumSlots && len(keys) < count {
		i := slot % numShards
		c.lockShard(i)
		keys = c.collectSlot(slot, pattern, typ, keys)
		c.unlockShard(i)
		slot++
	}
	if slot >= NumSlots {
		slot = 0
	}
	c.w.Array(2)
	c.w.BulkString(strconv.Itoa(slot))
	c.w.Array(len(keys))
	for _, k := range keys {
		c.w.BulkString(k)
	}
}

func cmdRename(c *Client) {
	src, dst := c.args[1], c.args[2]
	nx := c.cmd.Name == "renamenx"
	e := c.lookup(src)
	if e == nil {
		c.w.Error(errNoSuchKey)
		return
	}
	if string(src) == string(dst) {
		if nx {
			c.w.Int(0)
		} else {
			c.w.OK()
		}
		return
	}
	if c.lookup(dst) != nil {
		if nx {
			c.w.Int(0)
			return
		}
		c.srv.ks.deleteLocked(dst)
	}
	c.srv.ks.deleteLocked(src)
	c.srv.ks.addLocked(dst, e)
	c.dirty++
	if nx {
		c.w.Int(1)
	} else {
		c.w.OK()
	}
}

func cmdRandomKey(c *Client) {
	start := rand.IntN(NumSlots)
	for n := 0; n < NumSlots; n++ {
		slot := (start + n) % NumSlots
		i := slot % numShards
		c.lockShard(i)
		var key string
		found := false
		c.srv.ks.forEachInSlotLocked(slot, func(k string, e *entry) bool {
			if e.exp != 0 && e.exp <= c.now {
				return true
			}
			key, found = k, true
			return false
		})
		c.unlockShard(i)
		if found {
			c.w.BulkString(key)
			return
		}
	}
	c.w.Null()
}

func cmdDBSize(c *Client) {
	n := 0
	for i := 0; i < numShards; i++ {
		c.lockShard(i)
		n += c.srv.ks.shards[i].keys
		c.unlockShard(i)
	}
	c.w.Int(int64(n))
}

// FLUSHALL [ASYNC | SYNC] and FLUSHDB: both drop the only database.
func cmdFlushAll(c *Client) {
	if len(c.args) > 2 || (len(c.args) == 2 && !equalFold(c.args[1], "async") && !equalFold(c.args[1], "sync")) {
		c.w.Error(errSyntax)
		return
	}
	if !c.allLocked {
		c.lockAll()
		defer c.unlock()
	}
	c.touchAllLocked()
	for i := 0; i < numShards; i++ {
		c.srv.ks.flushShardLocked(i)
	}
	c.dirty++
	if !c.inExec {
		c.commitLocked()
	}
	c.w.OK()
}

// cloneEntry deep-copies a value (COPY).
func cloneEntry(e *entry) *entry {
	n := &entry{exp: e.exp}
	switch v := e.object().(type) {
	case nil:
		n.setBytes(copyBytes(e.bytes()))
	case *list:
		l := &list{}
		for i := 0; i < v.len(); i++ {
			l.pushBack(v.at(i))
		}
		n.setObject(l)
	case *set:
		s := newSet()
		v.each(func(m []byte) { s.add(m) })
		n.setObject(s)
	case *hash:
		h := newHash()
		v.each(func(f, x []byte) { h.set(f, x) })
		n.setObject(h)
	case *zset:
		z := newZSet()
		for x := v.header.level[0].forward; x != nil; x = x.level[0].forward {
			z.add(x.member, x.score)
		}
		n.setObject(z)
	}
	return n
}

// COPY source destination [DB destination-db] [REPLACE]
func cmdCopy(c *Client) {
	src, dst := c.args[1], c.args[2]
	replace := false
	for i := 3; i < len(c.args); i++ {
		switch {
		case equalFold(c.args[i], "replace"):
			replace = true
		case equalFold(c.args[i], "db") && i+1 < len(c.args):
			n, ok := c.argInt(i + 1)
			if !ok {
				return
			}
			if n != 0 {
				c.w.Error("ERR Copying to another database is not allowed in cluster mode")
				return
			}
			i++
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	if string(src) == string(dst) {
		c.w.Error("ERR source and destination objects are the same")
		return
	}
	e := c.lookup(src)
	if e == nil {
		c.w.Int(0)
		return
	}
	if c.lookup(dst) != nil {
		if !replace {
			c.w.Int(0)
			return
		}
		c.srv.ks.deleteLocked(dst)
	}
	c.srv.ks.addLocked(dst, cloneEntry(e))
	c.dirty++
	c.w.Int(1)
}

// encoding names the Redis encoding a value of this size would have.
func encoding(e *entry) string {
	small := func(n int, maxLen int) bool { return n <= 128 && maxLen <= 64 }
	switch v := e.object().(type) {
	case nil:
		if len(e.bytes()) <= 20 {
			if n, ok := parseInt(e.bytes()); ok && strconv.FormatInt(n, 10) == string(e.bytes()) {
				return "int"
			}
		}
		if len(e.bytes()) <= 44 {
			return "embstr"
		}
		return "raw"
	case *list:
		size := 0
		for i := 0; i < v.len(); i++ {
			size += len(v.at(i)) + 2
		}
		if size <= 8192 {
			return "listpack"
		}
		return "quicklist"
	case *set:
		ints := true
		v.each(func(m []byte) {
			if n, ok := parseInt(m); !ok || strconv.FormatInt(n, 10) != string(m) {
				ints = false
			}
		})
		if ints && v.len() <= 512 {
			return "intset"
		}
		if v.small() {
			return "listpack"
		}
		return "hashtable"
	case *hash:
		if v.small() {
			return "listpack"
		}
		return "hashtable"
	case *zset:
		maxLen := 0
		for k := range v.dict {
			maxLen = max(maxLen, len(k))
		}
		if small(len(v.dict), maxLen) {
			return "listpack"
		}
		return "skiplist"
	}
	return "raw"
}

// OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ|HELP key
func cmdObject(c *Client) {
	sub := string(lowerInto(nil, c.args[1]))
	if sub == "help" {
		help := []string{"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"ENCODING <key>", "FREQ <key>", "IDLETIME <key>", "REFCOUNT <key>", "HELP"}
		c.w.Array(len(help))
		for _, h := range help {
			c.w.Simple(h)
		}
		return
	}
	if !slices.Contains([]string{"encoding", "refcount", "idletime", "freq"}, sub) {
		c.w.Error("ERR unknown subcommand '" + string(c.args[1]) + "'. Try OBJECT HELP.")
		return
	}
	if len(c.args) != 3 {
		c.w.Error("ERR wrong number of arguments for 'object|" + sub + "' command")
		return
	}
	e := c.lookup(c.args[2])
	if e == nil {
		c.w.Null()
		return
	}
	switch sub {
	case "encoding":
		c.w.BulkString(encoding(e))
	case "refcount":
		c.w.Int(1)
	case "idletime":
		c.w.Int(0)
	case "freq":
		c.w.Error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
	}
}
