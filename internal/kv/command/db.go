package command

import (
	"slices"
	"strconv"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

// DB is one numbered database: its keyspace and the tracker beside it
// (WATCHes and blocked clients are per database, as in Redis).
type DB struct {
	KS    *keyspace.Keyspace
	Track *Tracker
}

// ShareSettings makes t read the value types' settings of from: one set
// of settings for every database.
func (t *Tracker) ShareSettings(from *Tracker) { t.Settings.parent = &from.Settings }

// Global shard numbers name a shard of any database: db*NumShards+shard.
// Commands that cross databases (MOVE, COPY ... DB, SWAPDB, FLUSHALL with
// several databases) lock global shards in ascending order; a command of
// one database locks its shards in ascending order too, so the two never
// wait on each other in a cycle.

// GlobalShard returns the global number of shard i of database db.
func GlobalShard(db, i int) int { return db*keyspace.NumShards + i }

// ErrDBRange is Redis's reply to a database number out of range.
const ErrDBRange = "ERR DB index is out of range"

// dbArg parses a database number; ok is false (nothing replied) when it
// is not an integer or out of range.
func (c *Ctx) dbArg(b []byte) (int, bool) {
	n, ok := ParseInt(b)
	if !ok || n < 0 || n >= int64(len(c.DBs)) {
		return 0, false
	}
	return int(n), true
}

// copyDBArg returns the DB argument of COPY, -1 when there is none (or it
// is not valid: the handler replies the error).
func (c *Ctx) copyDBArg() int {
	for i := 3; i+1 < len(c.Args); i++ {
		if EqualFold(c.Args[i], "db") {
			if n, ok := c.dbArg(c.Args[i+1]); ok {
				return n
			}
			return -1
		}
	}
	return -1
}

// CrossShards appends to dst the global shards the current command (c.Cmd,
// c.Args, run in database c.DB) must hold when it reaches another database
// than c.DB, and reports whether it does. A command that does not (bad
// arguments included: its handler replies the error) locks as usual.
func (c *Ctx) CrossShards(dst []int) ([]int, bool) {
	if len(c.DBs) < 2 || c.Cmd == nil {
		return dst, false
	}
	all := func(db int) {
		for i := 0; i < keyspace.NumShards; i++ {
			dst = append(dst, GlobalShard(db, i))
		}
	}
	switch c.Cmd.Name {
	case "move":
		n, ok := c.dbArg(c.Args[2])
		if !ok || n == c.DB {
			return dst, false
		}
		sh := keyspace.ShardOf(c.Args[1])
		dst = append(dst, GlobalShard(c.DB, sh), GlobalShard(n, sh))
	case "copy":
		n := c.copyDBArg()
		if n < 0 || n == c.DB {
			return dst, false
		}
		// both keys here too: the dispatcher reads and touches c.Keys in c.DB
		dst = append(dst, GlobalShard(c.DB, keyspace.ShardOf(c.Args[1])), GlobalShard(c.DB, keyspace.ShardOf(c.Args[2])),
			GlobalShard(n, keyspace.ShardOf(c.Args[2])))
	case "swapdb":
		a, ok1 := c.dbArg(c.Args[1])
		b, ok2 := c.dbArg(c.Args[2])
		if !ok1 || !ok2 || a == b {
			return dst, false
		}
		all(min(a, b))
		all(max(a, b))
	case "flushall":
		for db := range c.DBs {
			all(db)
		}
	default:
		return dst, false
	}
	slices.Sort(dst)
	return slices.Compact(dst), true
}

// LockCross locks the global shards g (ascending, from CrossShards) and
// records them in c.Cross for UnlockCross. It reports whether it waited
// for a shard another held.
func (c *Ctx) LockCross(g []int) (waited bool) {
	c.Cross = g
	for _, x := range g {
		if lockShard(c.DBs[x/keyspace.NumShards].KS, x%keyspace.NumShards) {
			waited = true
		}
	}
	return waited
}

// UnlockCross unlocks what LockCross locked, after settling every shard
// first (Keyspace.SettleShard says why).
func (c *Ctx) UnlockCross() {
	for _, x := range c.Cross {
		c.DBs[x/keyspace.NumShards].KS.SettleShard(x % keyspace.NumShards)
	}
	for j := len(c.Cross) - 1; j >= 0; j-- {
		x := c.Cross[j]
		c.DBs[x/keyspace.NumShards].KS.UnlockShard(x % keyspace.NumShards)
	}
	c.Cross = c.Cross[:0]
}

// notSingleDB replies the error of a command that reaches another
// database on a server with one: Redis Cluster's words in cluster mode,
// a standalone Redis's (databases 1) otherwise. It reports whether it
// replied.
func (c *Ctx) notSingleDB(cmd string) bool {
	if len(c.DBs) >= 2 {
		return false
	}
	if c.Track.Settings.Cluster() {
		c.W.Error("ERR " + cmd + " is not allowed in cluster mode")
	} else {
		c.W.Error(ErrDBRange)
	}
	return true
}

// MOVE key db: the dispatcher holds the key's shard in both databases
// (CrossShards).
func cmdMove(c *Ctx) {
	if c.notSingleDB("MOVE") {
		return
	}
	n, ok := c.ArgInt(2)
	if !ok {
		return
	}
	if n < 0 || n >= int64(len(c.DBs)) {
		c.W.Error(ErrDBRange)
		return
	}
	if int(n) == c.DB {
		c.W.Error("ERR source and destination objects are the same")
		return
	}
	key := c.Args[1]
	e := c.Lookup(key)
	if e == nil {
		c.W.Int(0)
		return
	}
	dst := c.DBs[n]
	if dst.KS.LookupLocked(key, c.Now) != nil {
		c.W.Int(0)
		return
	}
	c.KS.DeleteLocked(key)
	dst.KS.AddLocked(key, e)
	dst.Track.TouchLocked(key) // WATCHes and blocked clients of the target
	c.Dirty++
	c.Notify('g', "move_from", key)
	c.NotifyDB(int(n), 'g', "move_to", key)
	c.W.Int(1)
}

// SWAPDB a b exchanges two databases' keys: clients of a see b's keys
// from now on. WATCHes on keys of either database fail, and clients
// blocked on them are woken to look again (Redis does the same).
func cmdSwapDB(c *Ctx) {
	if c.notSingleDB("SWAPDB") {
		return
	}
	a, ok := ParseInt(c.Args[1])
	if !ok {
		c.W.Error("ERR invalid first DB index")
		return
	}
	b, ok := ParseInt(c.Args[2])
	if !ok {
		c.W.Error("ERR invalid second DB index")
		return
	}
	if a < 0 || b < 0 || a >= int64(len(c.DBs)) || b >= int64(len(c.DBs)) {
		c.W.Error(ErrDBRange)
		return
	}
	if a == b {
		c.W.OK()
		return
	}
	x, y := c.DBs[a], c.DBs[b]
	touch := func(t *Tracker) {
		t.TouchAllLocked(func(key string) bool {
			return x.KS.PeekLocked([]byte(key), c.Now) != nil || y.KS.PeekLocked([]byte(key), c.Now) != nil
		})
	}
	touch(x.Track)
	touch(y.Track)
	for i := 0; i < keyspace.NumShards; i++ {
		x.KS.SwapShardLocked(y.KS, i)
		x.Track.WakeBlockedLocked(i)
		y.Track.WakeBlockedLocked(i)
	}
	c.Dirty++
	c.W.OK()
}

// flushDBsLocked drops the keys of every database (FLUSHALL with several
// databases; the dispatcher holds all their shards).
// FlushAllLocked drops every key of every database, as FLUSHALL SYNC,
// without counting a change or replying: the caller holds every shard of
// every database.
func FlushAllLocked(c *Ctx) { flushDBsLocked(c, false) }

func flushDBsLocked(c *Ctx, async bool) {
	for _, d := range c.DBs {
		d.Track.TouchAllLocked(func(key string) bool { return d.KS.PeekLocked([]byte(key), c.Now) != nil })
		flushKeyspaceLocked(d.KS, async)
		for i := 0; i < keyspace.NumShards; i++ {
			d.Track.WakeBlockedLocked(i)
		}
	}
}

// copyToDB is COPY src dst DB n for n not the client's database: the
// dispatcher holds src's shard here and dst's in d (CrossShards).
func copyToDB(c *Ctx, d DB, n int, src, dst []byte, replace bool) {
	e := c.Lookup(src)
	if e == nil {
		c.W.Int(0)
		return
	}
	clone := cloneEntry(e)
	if clone == nil {
		c.W.Error("ERR COPY does not support values of type " + e.Kind().String())
		return
	}
	if d.KS.LookupLocked(dst, c.Now) != nil {
		if !replace {
			c.W.Int(0)
			return
		}
		d.KS.DeleteLocked(dst)
	}
	d.KS.AddLocked(dst, clone)
	d.Track.TouchLocked(dst)
	c.Dirty++
	c.NotifyDB(n, 'g', "copy_to", dst)
	c.W.Int(1)
}

// SelectDB makes database n the context's (SELECT); false when n is out
// of range.
func (c *Ctx) SelectDB(n int) bool {
	if n < 0 || n >= len(c.DBs) {
		return false
	}
	c.DB, c.KS, c.Track = n, c.DBs[n].KS, c.DBs[n].Track
	return true
}

// AppendSelect appends the record SELECT n to b.
func AppendSelect(b []byte, n int) []byte {
	var num [20]byte
	return resp.AppendCommand(b, bSELECT, strconv.AppendInt(num[:0], int64(n), 10))
}

var bSELECT = []byte("SELECT")
